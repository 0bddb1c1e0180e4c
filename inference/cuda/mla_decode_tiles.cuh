// SPDX-License-Identifier: GPL-3.0-or-later
// What the two tensor-core forms of the MLA decode attention share (mla_tensor_core.cu with
// mma.sync, mla_decode_wgmma.cu with Hopper's wgmma): the real model's shape, how a query's
// visible cache rows are cut into splits of whole 32-row tiles, where a tile's rows lie in the
// paged cache, and fp32 values as two bf16 terms. Device helpers only; nothing here
// synchronises a block.
#pragma once

#include <cuda_bf16.h>
#include <cstdint>

#include "async_copy.cuh"
#include "kernels.h"

namespace folio::inference::cuda::mla_decode {

constexpr int kHeads = 32, kRank = 512, kRope = 64, kWidth = kRank + kRope;
constexpr int kTile = 32;  // cache rows per step
// Fewer, longer splits cost each block more tiles; more splits cost the merge 64 KB of partial
// results each. Two tiles is the estimated balance at a 4K context.
constexpr int kMinTilesPerSplit = 2;

// A split's rows of query t: the context's tiles split evenly in whole tiles, at least
// kMinTilesPerSplit per split; `tiles` is 0 for the splits past the last one in use.
struct SplitRows {
    int64_t begin = 0, end = 0;
    int tiles = 0;
    // The rows of the split's tile `tile` that are read (kTile but in the last).
    __device__ __forceinline__ int rowsOf(int tile) const {
        return static_cast<int>(
            min(static_cast<int64_t>(kTile), end - begin - static_cast<int64_t>(tile) * kTile));
    }
};
__device__ __forceinline__ SplitRows splitRows(const MlaAttentionArgs& a, int split, int t) {
    const int64_t visible = static_cast<int64_t>(*a.length) + t + 1;
    const int64_t contextTiles = (visible + kTile - 1) / kTile;
    const int64_t rows = kTile * max(static_cast<int64_t>(kMinTilesPerSplit),
                                     (contextTiles + a.splits - 1) / a.splits);
    SplitRows s;
    s.begin = split * rows;
    if (s.begin < visible) {
        s.end = min(visible, s.begin + rows);
        s.tiles = static_cast<int>((s.end - s.begin + kTile - 1) / kTile);
    }
    return s;
}

// An unused split's statistics: a maximum of -inf and a sum of 0 for every head.
__device__ __forceinline__ void markSplitEmpty(const MlaAttentionArgs& a, int split, int t) {
    for (int h = static_cast<int>(threadIdx.x); h < a.heads; h += static_cast<int>(blockDim.x)) {
        mlaSplitMaxima(a, t, h)[split] = -INFINITY;
        mlaSplitSums(a, t, h)[split] = 0.0f;
    }
}

// Where the rows of one tile lie: pages hold at least kTile rows (launchMlaAttention checks),
// so a tile spans at most two.
struct TilePages {
    const bf16* here;
    const bf16* next;
    int first, pageRows, width;
    // Row r of the tile (r < kTile).
    __device__ __forceinline__ const bf16* row(int r) const {
        const int at = first + r;
        return at < pageRows ? here + static_cast<int64_t>(at) * width
                             : next + static_cast<int64_t>(at - pageRows) * width;
    }
};

// A split's tiles in order: one division at the split's start, then kTile rows on per tile;
// a page's pointer is read from the table once, and only for a tile that has rows in it.
class TileCursor {
  public:
    __device__ __forceinline__ TileCursor(const LatentCache& cache, int64_t base)
        : cache_(cache),
          page_(base / cache.pageRows),
          first_(static_cast<int>(base % cache.pageRows)) {}
    // The current tile's pages (its first `rows` rows are read), then on to the next tile.
    __device__ __forceinline__ TilePages next(int rows) {
        TilePages p;
        p.pageRows = cache_.pageRows;
        p.width = cache_.width;
        p.first = first_;
        if (here_ == nullptr)  // a new page's first tile
            here_ = cache_.pages[page_];
        p.here = here_;
        const bool spans = first_ + rows > cache_.pageRows;
        p.next = spans ? cache_.pages[page_ + 1] : here_;
        first_ += kTile;
        if (first_ >= cache_.pageRows) {
            first_ -= cache_.pageRows;
            ++page_;
            here_ = spans ? p.next : nullptr;  // read when a tile needs it
        }
        return p;
    }

  private:
    LatentCache cache_;
    int64_t page_;
    int first_;
    const bf16* here_ = nullptr;
};

// Issues a tile's copies (cp.async, 16 bytes each) with 256 threads: warp w (of 8) takes rows
// w, w + 8, w + 16 and w + 24, lane l the chunks l, l + 32 and (l < 8) l + 64 of each of them
// (72 chunks of 8 columns a row), so every offset but the row's is fixed at compile time.
// `destination(r, m)` is the shared address of chunk lane + 32 m of row warp + 8 r. Rows past
// `rows` become zeros (their scores are masked and their P is zero, but 0 × a stale NaN would
// not be).
template <typename Destination>
__device__ __forceinline__ void copyTileRows(const TilePages& pages, int rows,
                                             Destination destination) {
    static_assert(kWidth / 8 == 72, "two full rounds of 32 chunks and 8 more a row");
    const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
#pragma unroll
    for (int r = 0; r < kTile / 8; ++r) {
        const int row = warp + 8 * r;
        const bool valid = row < rows;
        const bf16* src = pages.row(valid ? row : 0) + 8 * lane;
#pragma unroll
        for (int m = 0; m < 3; ++m)
            if (m < 2 || lane < 8)
                copy16(destination(r, m), src + 256 * m, valid);
    }
}

// Two fp32 values as the hi and lo bf16 terms of an mma operand register each (hi = bf16(v),
// lo = bf16(v - hi); the first value in the low half).
__device__ __forceinline__ void splitTerms(float2 v, uint32_t& hi, uint32_t& lo) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(v.x, v.y);
    const float2 rounded = __bfloat1622float2(h);
    const __nv_bfloat162 l = __floats2bfloat162_rn(v.x - rounded.x, v.y - rounded.y);
    hi = *reinterpret_cast<const uint32_t*>(&h);
    lo = *reinterpret_cast<const uint32_t*>(&l);
}

}  // namespace folio::inference::cuda::mla_decode
