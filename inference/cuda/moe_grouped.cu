// SPDX-License-Identifier: GPL-3.0-or-later
// MoE for many tokens at once, with no host round trip: the (token, slot) pairs chosen by the
// router are grouped by expert on the GPU (count, scan, place), then each expert's SwiGLU MLP
// runs as a grouped product on tensor cores — one launch for every expert's gate and up rows
// (SwiGLU fused), one for every expert's down rows. Two forms: for a few pairs per expert (a
// question) a block owns 64 output rows of one expert and walks the pairs 32 at a time with the
// weights loaded straight into fragments, so each weight is read once; for many (long prompts)
// a block owns 64 rows × 128 pairs and the tiles go through shared memory (cp.async
// double-buffered, ldmatrix); on Hopper (sm_90a builds) the tiled products run on wgmma
// instead (moe_grouped_wgmma.cu).
// Numerics, as in other bf16 engines: the activations enter as one bf16 term each (the caller
// rounds them once), products accumulate in fp32, and the SwiGLU output is rounded to bf16
// once for the down projection, whose result is fp32. (The attention projections elsewhere
// keep a second, low bf16 term; the MoE does not need it: see CudaBackend::gemmOneTerm.)
#include "device_math.cuh"
#include "kernels.h"
#include "mma.cuh"

namespace folio::inference::cuda {
namespace {

constexpr int kWarps = 4;  // 16 output rows each
constexpr int kRowsPerBlock = 16 * kWarps;
constexpr int kPairTiles = 4;  // 8 pairs each: 32 pairs per pass over the weights
constexpr int kPairsPerPass = 8 * kPairTiles;

__global__ void countKernel(const int32_t* ids, int pairs, int32_t* counts) {
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p < pairs)
        atomicAdd(&counts[ids[p]], 1);
}

// One thread: the groups are few (experts + shared), the scan is a few hundred additions.
__global__ void scanKernel(const int32_t* counts, int groups, int32_t* start, int32_t* cursor) {
    int32_t sum = 0;
    for (int e = 0; e < groups; ++e) {
        start[e] = sum;
        cursor[e] = sum;
        sum += counts[e];
    }
    start[groups] = sum;
}

// Order within a group is arbitrary: every pair's result lands in its own row.
__global__ void placeKernel(const int32_t* ids, int pairs, int32_t* cursor, int32_t* order) {
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p < pairs)
        order[atomicAdd(&cursor[ids[p]], 1)] = p;
}

// ---- the direct form, for a few pairs per expert ----
template <bool kSwiglu>
__global__ void __launch_bounds__(32 * kWarps) groupedKernel(ExpertGemmArgs a) {
    const int expert = blockIdx.y;
    const int begin = a.groupStart[expert], count = a.groupStart[expert + 1] - begin;
    if (count == 0)
        return;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
    const int row0 = blockIdx.x * kRowsPerBlock + 16 * warp;  // this warp's output rows
    const bf16* w = a.table[expert];
    const bf16* gate = w + static_cast<int64_t>(row0) * a.cols;
    const bf16* up = w + (static_cast<int64_t>(a.rows) + row0) * a.cols;  // swiglu only

    for (int pass = 0; pass < count; pass += kPairsPerPass) {
        const int inPass = min(kPairsPerPass, count - pass);
        const int tiles = (inPass + 7) / 8;
        // Rows of the B operand (one pair per column n = g) for pair tile j of this pass.
        const bf16* in[kPairTiles];
#pragma unroll
        for (int j = 0; j < kPairTiles; ++j) {
            const int pos = pass + 8 * j + g;  // this lane's pair within the group
            const int sorted = begin + min(pos, count - 1);
            const int64_t row = a.inputBySlot ? a.order[sorted] / a.slotsPerRow : sorted;
            in[j] = a.x + row * a.xStride;
        }
        float accGate[kPairTiles][4] = {}, accUp[kPairTiles][4] = {};
#pragma unroll 2
        for (int k0 = 0; k0 < a.cols; k0 += 16) {
            uint32_t aGate[4], aUp[4];
            loadA(gate, a.cols, 0, k0, g, tg, aGate);
            if constexpr (kSwiglu)
                loadA(up, a.cols, 0, k0, g, tg, aUp);
#pragma unroll
            for (int j = 0; j < kPairTiles; ++j) {
                if (j >= tiles)
                    break;
                const uint32_t b0 = load2(in[j] + k0 + 2 * tg);
                const uint32_t b1 = load2(in[j] + k0 + 8 + 2 * tg);
                mma(accGate[j], aGate, b0, b1);
                if constexpr (kSwiglu)
                    mma(accUp[j], aUp, b0, b1);
            }
        }
        // C fragment: rows (output features) g, g + 8; columns (pairs) 2 tg, 2 tg + 1.
#pragma unroll
        for (int j = 0; j < kPairTiles; ++j) {
            if (j >= tiles)
                break;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int pos = pass + 8 * j + 2 * tg + (e & 1);
                if (pos >= count)
                    continue;
                const int feature = row0 + g + (e >> 1) * 8;
                const int sorted = begin + pos;
                if constexpr (kSwiglu) {
                    const float v = siluf(accGate[j][e]) * accUp[j][e];
                    a.act[static_cast<int64_t>(sorted) * a.rows + feature] = __float2bfloat16(v);
                } else {
                    const int64_t outRow = a.order[sorted];  // back to the pair's own row
                    a.out[outRow * a.rows + feature] = accGate[j][e];
                }
            }
        }
    }
}

// ---- the tiled form, for many pairs per expert ----
// A block of 8 warps computes 64 output rows × 128 pairs of one expert (a warp 16 rows × 64
// pairs); k advances 32 at a time through shared memory (cp.async, double-buffered): the weight
// tile and the pairs' input rows once, then ldmatrix fragments for every warp.
// Why 128 pairs: a block reads its 64 weight rows again for every pass over the pairs, and with
// one activation term a pass does half the arithmetic it did with two, so those weight reads
// would set the pace; 128 pairs per pass halve them (an expert gets ~128 pairs in a 4K-token
// call: one pass instead of two). The shared memory of the dropped low input tile pays for the
// wider pair tile: 40 KiB a block with SwiGLU, as before, under the 48 KiB a launch gets without
// opting in (a third stage would take 60 KiB). Pairs past the group's end in its last pass are
// loaded (the last pair's row again) but not multiplied: a warp skips the 16-pair column groups
// that hold none, so small groups cost no more arithmetic than with 64-pair tiles.
constexpr int kTiledWarps = 8;
constexpr int kTileRows = 64, kTilePairs = 128, kWarpPairs = 64, kTileK = 32;
constexpr int kTilePitch = kTileK + 8;  // padded rows: conflict-free ldmatrix

__device__ __forceinline__ uint32_t smemAddress(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void copy16(void* dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smemAddress(dst)), "l"(src));
}
__device__ __forceinline__ void ldsm4(uint32_t r[4], const bf16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smemAddress(p)));
}

// Two blocks per SM (at most 128 registers a thread): 16 warps to hide the copies' latency.
template <bool kSwiglu>
__global__ void __launch_bounds__(32 * kTiledWarps, 2) tiledGroupedKernel(ExpertGemmArgs a) {
    constexpr int kMats = kSwiglu ? 2 : 1;
    __shared__ __align__(16) bf16 wTile[2][kMats][kTileRows][kTilePitch];
    __shared__ __align__(16) bf16 xTile[2][kTilePairs][kTilePitch];
    const int expert = blockIdx.y;
    const int begin = a.groupStart[expert], count = a.groupStart[expert + 1] - begin;
    if (count == 0)
        return;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, tg = lane & 3;
    const int warpRow = 16 * (warp & 3), warpPair = kWarpPairs * (warp >> 2);  // of the tile
    const int rowBase = blockIdx.x * kTileRows;
    // This thread's share of the copies: 16-byte chunk tid % 4 of the 32-wide k slice, of weight
    // row tid / 4 (of each matrix) and of pair rows tid / 4 and tid / 4 + 64.
    const int chunk = tid & 3, r0 = tid >> 2;
    const bf16* wRows[kMats];
#pragma unroll
    for (int m = 0; m < kMats; ++m)
        wRows[m] = a.table[expert] + (static_cast<int64_t>(m) * a.rows + rowBase + r0) * a.cols +
                   chunk * 8;

    for (int pass = 0; pass < count; pass += kTilePairs) {
        const bf16* xRows[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int sorted = begin + min(pass + r0 + kWarpPairs * h, count - 1);
            const int64_t row = a.inputBySlot ? a.order[sorted] / a.slotsPerRow : sorted;
            xRows[h] = a.x + row * a.xStride + chunk * 8;
        }
        auto load = [&](int stage, int k0) {
#pragma unroll
            for (int m = 0; m < kMats; ++m)
                copy16(&wTile[stage][m][r0][chunk * 8], wRows[m] + k0);
#pragma unroll
            for (int h = 0; h < 2; ++h)
                copy16(&xTile[stage][r0 + kWarpPairs * h][chunk * 8], xRows[h] + k0);
            asm volatile("cp.async.commit_group;\n" ::);
        };
        // Pairs of this pass in this warp's 64 (none when <= 0): the same for the whole warp.
        const int warpCount = count - pass - warpPair;
        float acc[kMats][kWarpPairs / 8][4];
#pragma unroll
        for (int m = 0; m < kMats; ++m)
#pragma unroll
            for (int j = 0; j < kWarpPairs / 8; ++j)
                acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.0f;
        __syncthreads();  // the previous pass is done with the tiles
        load(0, 0);
        int stage = 0;
        for (int k0 = 0; k0 < a.cols; k0 += kTileK) {
            if (k0 + kTileK < a.cols) {
                load(stage ^ 1, k0 + kTileK);
                asm volatile("cp.async.wait_group 1;\n" ::);
            } else {
                asm volatile("cp.async.wait_group 0;\n" ::);
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < kTileK / 16; ++kk) {
                uint32_t af[kMats][4];
#pragma unroll
                for (int m = 0; m < kMats; ++m)
                    ldsm4(af[m],
                          &wTile[stage][m][warpRow + (lane & 15)][16 * kk + (lane >> 4) * 8]);
#pragma unroll
                for (int j = 0; j < kWarpPairs / 8; j += 2) {
                    if (8 * j >= warpCount)
                        break;  // no pair in column groups j, j + 1
                    uint32_t b[4];
                    const int row = warpPair + 8 * j + (lane & 7) + (lane >> 4) * 8;
                    ldsm4(b, &xTile[stage][row][16 * kk + ((lane >> 3) & 1) * 8]);
#pragma unroll
                    for (int m = 0; m < kMats; ++m) {
                        mma(acc[m][j], af[m], b[0], b[1]);
                        mma(acc[m][j + 1], af[m], b[2], b[3]);
                    }
                }
            }
            __syncthreads();  // everyone is done with this stage before it is refilled
            stage ^= 1;
        }
        // C fragment: rows (features) g, g + 8 of the warp's 16; columns (pairs) 2 tg, 2 tg + 1.
#pragma unroll
        for (int j = 0; j < kWarpPairs / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int pos = pass + warpPair + 8 * j + 2 * tg + (e & 1);
                if (pos >= count)
                    continue;
                const int feature = rowBase + warpRow + g + (e >> 1) * 8;
                const int sorted = begin + pos;
                if constexpr (kSwiglu) {
                    const float v = siluf(acc[0][j][e]) * acc[1][j][e];
                    a.act[static_cast<int64_t>(sorted) * a.rows + feature] = __float2bfloat16(v);
                } else {
                    a.out[static_cast<int64_t>(a.order[sorted]) * a.rows + feature] = acc[0][j][e];
                }
            }
        }
    }
}

}  // namespace

void launchMoeGroupPairs(const int32_t* ids, int pairs, int groups, int32_t* counts,
                         int32_t* groupStart, int32_t* cursor, int32_t* order,
                         cudaStream_t stream) {
    cudaMemsetAsync(counts, 0, sizeof(int32_t) * static_cast<size_t>(groups), stream);
    if (pairs > 0)
        countKernel<<<(pairs + 255) / 256, 256, 0, stream>>>(ids, pairs, counts);
    scanKernel<<<1, 1, 0, stream>>>(counts, groups, groupStart, cursor);
    if (pairs > 0)
        placeKernel<<<(pairs + 255) / 256, 256, 0, stream>>>(ids, pairs, cursor, order);
}

void launchExpertGemm(const ExpertGemmArgs& a, cudaStream_t stream) {
    if (a.tiled) {
        if (launchExpertGemmWgmma(a, stream))
            return;  // Hopper: the wgmma form
        const dim3 grid(static_cast<unsigned>(a.rows / kTileRows), static_cast<unsigned>(a.groups));
        if (a.swiglu)
            tiledGroupedKernel<true><<<grid, 32 * kTiledWarps, 0, stream>>>(a);
        else
            tiledGroupedKernel<false><<<grid, 32 * kTiledWarps, 0, stream>>>(a);
        return;
    }
    const dim3 grid(static_cast<unsigned>(a.rows / kRowsPerBlock), static_cast<unsigned>(a.groups));
    if (a.swiglu)
        groupedKernel<true><<<grid, 32 * kWarps, 0, stream>>>(a);
    else
        groupedKernel<false><<<grid, 32 * kWarps, 0, stream>>>(a);
}

}  // namespace folio::inference::cuda
