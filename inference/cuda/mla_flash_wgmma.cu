// SPDX-License-Identifier: GPL-3.0-or-later
// MLA prefill attention on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a): the same
// contract and softmax as the mma.sync kernel in mla_flash_prefill.cu (a segment of keys per
// launch, the softmax state carried between segments, splits of the keys merged afterwards), with
// a block of 128 queries of one head in two warpgroups of 64 and key tiles of 128:
//  - Q (128 × 192) stays in shared memory; every tile's K (128 × 192) and V (128 × 128) arrive by
//    cp.async into the other of two stages while the current one is used;
//  - shared tiles are in the 128-byte swizzled layout the wgmma descriptors describe: slabs of 64
//    bf16 columns, rows of 128 bytes, the 16-byte chunk index XORed with the row index mod 8;
//    Q and K are K-major (dims contiguous), V is MN-major (its value dims contiguous,
//    "transposed");
//  - S = Q Kᵀ is 12 wgmma m64n128k16 from shared memory; the online softmax runs on the
//    accumulators in registers; O += P V is 8 wgmma m64n128k16 with P from registers.
// A warpgroup skips tiles that are entirely in its queries' future. Query tiles are taken from
// the end backwards, so the longest blocks start first. Built only for sm_90a; the host checks
// mlaFlashWgmmaAvailable() before launching it.
#include "async_copy.cuh"
#include "mla_flash_common.cuh"
#include "mla_flash_wgmma.h"
#include "wgmma.cuh"

namespace folio::inference::cuda {
namespace {

using namespace flash;
constexpr int kQueries = kMlaFlashQueries, kKeys = kMlaFlashWgmmaKeys, kThreads = 256;
constexpr int kKeyTiles = kKeys / 8;  // 8-column groups of S
constexpr int kSlab = 64;             // bf16 columns per swizzled slab (128-byte rows)
constexpr int kQSlabBytes = kQueries * 128, kKeySlabBytes = kKeys * 128;
constexpr int kQBytes = (kQk / kSlab) * kQSlabBytes;
constexpr int kKBytes = (kQk / kSlab) * kKeySlabBytes, kVBytes = (kValue / kSlab) * kKeySlabBytes;
constexpr size_t kSharedBytes = kQBytes + 2 * (kKBytes + kVBytes) + 1024;  // + alignment
static_assert(kQueries == 128 && kKeys == 128, "two warpgroups of 64 queries, 128-key tiles");

// The tiles' copies into shared memory. Each thread copies fixed chunks of every tile, so the
// per-tile work is a few pointer increments: the nope part of K and all of V as rows
// (tid / 16) + 16 m, chunk tid % 16 (both read from the same expanded row); the rope part of K
// as rows (tid / 8) + 32 m, chunk tid % 8, from the latent cache's pages. Rows at or past `end`
// are zero-filled (V must be finite where P is zero).
struct TileCopier {
    const MlaFlashArgs* a;
    int h;
    int wideRow, wideChunk;  // nope / value chunks
    int ropeRow, ropeChunk;  // rope chunks
    uint32_t wideOffset;     // the chunk's place in a K or V tile (the swizzle is the same for m)
    uint32_t ropeOffset;

    __device__ __forceinline__ TileCopier(const MlaFlashArgs& args, int head) : a(&args), h(head) {
        const int tid = static_cast<int>(threadIdx.x);
        wideRow = tid >> 4;
        wideChunk = tid & 15;
        ropeRow = tid >> 3;
        ropeChunk = tid & 7;
        wideOffset = (wideChunk >> 3) * kKeySlabBytes + swizzled(wideRow, wideChunk & 7);
        ropeOffset = 2 * kKeySlabBytes + swizzled(ropeRow, ropeChunk);
    }

    // The expanded row of key `base + row` for this head (nope dims, then value dims).
    __device__ __forceinline__ const bf16* expanded(int64_t base, int row) const {
        const int local = static_cast<int>(base - a->keyBegin) + row;
        return a->kv + static_cast<int64_t>(local * a->heads + h) * (kNope + kValue);
    }

    // K rows [base, base + 128): nope from the expanded segment, rope from the cache.
    __device__ __forceinline__ void keys(int64_t base, int64_t end, unsigned char* tile) const {
#pragma unroll
        for (int m = 0; m < kKeys / 16; ++m) {
            const int row = wideRow + 16 * m;
            const bool valid = base + row < end;
            const bf16* src = expanded(valid ? base : a->keyBegin, valid ? row : 0);
            copy16(tile + wideOffset + 16 * m * 128, src + 8 * wideChunk, valid);
        }
        const int pageRows = a->cache.pageRows;
#pragma unroll
        for (int m = 0; m < kKeys / 32; ++m) {
            const int row = ropeRow + 32 * m;
            const bool valid = base + row < end;
            const int key = static_cast<int>(valid ? base + row : a->keyBegin);
            const bf16* src = a->cache.pages[key / pageRows] +
                              static_cast<int64_t>(key % pageRows) * a->cache.width +
                              (a->cache.width - kRope) + 8 * ropeChunk;
            copy16(tile + ropeOffset + 32 * m * 128, src, valid);
        }
    }

    // V rows [base, base + 128).
    __device__ __forceinline__ void values(int64_t base, int64_t end, unsigned char* tile) const {
#pragma unroll
        for (int m = 0; m < kKeys / 16; ++m) {
            const int row = wideRow + 16 * m;
            const bool valid = base + row < end;
            const bf16* src = expanded(valid ? base : a->keyBegin, valid ? row : 0);
            copy16(tile + wideOffset + 16 * m * 128, src + kNope + 8 * wideChunk, valid);
        }
    }
};

// Makes this thread's completed cp.async writes visible to the tensor cores' (async) proxy.
__device__ __forceinline__ void publishCopies() {
    waitCopies<0>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

template <int kCount>
__device__ __forceinline__ void pinFragments(uint32_t (&p)[kCount][4]) {
#pragma unroll
    for (int i = 0; i < kCount; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            asm volatile("" : "+r"(p[i][e])::"memory");
}

// The pipeline, per warpgroup and tile j: S_j = Q K_jᵀ and O += P_{j-1} V_{j-1} are issued
// together; the softmax of S_j runs while the tensor cores finish P_{j-1} V_{j-1}; then O is
// rescaled and P_j kept in registers for the next tile. Meanwhile the block copies K_{j+1} and
// V_j. Shared memory: Q, two K stages, two V stages (S_j reads K stage j % 2, the previous
// product V stage (j - 1) % 2, the copies write K stage (j + 1) % 2 and V stage j % 2).
__global__ void __launch_bounds__(kThreads, 1) flashWgmmaKernel(const MlaFlashArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ unsigned char sharedRaw[];
    unsigned char* shared = reinterpret_cast<unsigned char*>(
        (reinterpret_cast<uintptr_t>(sharedRaw) + 1023) & ~static_cast<uintptr_t>(1023));
    unsigned char* qTile = shared;
    auto keyStage = [&](int j) { return shared + kQBytes + (j & 1) * kKBytes; };
    auto valueStage = [&](int j) { return shared + kQBytes + 2 * kKBytes + (j & 1) * kVBytes; };

    const int h = blockIdx.y;
    const int q0 = (gridDim.x - 1 - blockIdx.x) * kQueries;  // the longest blocks first
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
    const int wg = warp >> 2;
    const KeyRange range = keyRange(a, q0, kQueries, kKeys, static_cast<int>(blockIdx.z));
    const int64_t begin = range.begin, end = range.end;
    // The last position among this warpgroup's queries (it skips tiles wholly after it).
    const int wgRows = min(64, a.tokens - (q0 + 64 * wg));
    const int64_t wgLast = a.queryPos0 + q0 + 64 * wg + wgRows - 1;
    const TileCopier copier(a, h);

    for (int i = threadIdx.x; i < kQueries * (kQk / 8); i += kThreads) {
        const int row = i / (kQk / 8), c = i % (kQk / 8);
        const bool valid = q0 + row < a.tokens;
        const bf16* src =
            a.q + (static_cast<int64_t>(valid ? q0 + row : 0) * a.heads + h) * kQk + c * 8;
        copy16(qTile + (c >> 3) * kQSlabBytes + swizzled(row, c & 7), src, valid);
    }
    if (begin < end)
        copier.keys(begin, end, keyStage(0));
    commitCopies();

    float o[kValueTiles][4];
    Rows rows = startRows(a, range, q0 + 16 * warp + g, h, tg, o);

    publishCopies();
    __syncthreads();

    // Descriptors: Q rows of this warpgroup and K (K-major, 8-row groups 1 KB apart), V
    // (MN-major: 64-column slabs 16 KB apart, 8-key groups 1 KB apart). Advancing a descriptor
    // by 16 bytes is adding 1.
    const uint64_t qDesc = descriptor(sharedAddress(qTile + wg * 64 * 128), 16, 1024);
    const float scaleLog2 = a.scale * kLog2e;
    uint32_t p[kKeys / 16][4];
    bool pending = false;  // P of the previous tile still to be multiplied by its V
    int j = 0;
    for (int64_t base = begin; base < end; base += kKeys, ++j) {
        if (base + kKeys < end)
            copier.keys(base + kKeys, end, keyStage(j + 1));
        copier.values(base, end, valueStage(j));
        commitCopies();
        const uint64_t previousValues =
            descriptor(sharedAddress(valueStage(j - 1)), kKeySlabBytes, 1024);
        if (wgRows > 0 && base <= wgLast) {
            const uint64_t kDesc = descriptor(sharedAddress(keyStage(j)), 16, 1024);
            float s[kKeyTiles][4];
            pinAccumulators(s);
            pinAccumulators(o);
            wgmmaFence();
#pragma unroll
            for (int kk = 0; kk < kQk / 16; ++kk) {
                const uint64_t step = (kk >> 2) * (kQSlabBytes >> 4) + (kk & 3) * 2;
                const uint64_t keyStep = (kk >> 2) * (kKeySlabBytes >> 4) + (kk & 3) * 2;
                wgmmaShared(s, qDesc + step, kDesc + keyStep, kk > 0);
            }
            wgmmaCommit();
            if (pending) {
#pragma unroll
                for (int kk = 0; kk < kKeys / 16; ++kk)
                    wgmmaRegisters(o, p[kk], previousValues + kk * (16 * 128 >> 4));
                wgmmaCommit();
                wgmmaWait<1>();
            } else {
                wgmmaWait<0>();
            }
            pinAccumulators(s);
            const bool needsMask =
                base + kKeys > min(rows.posA, rows.posB) + 1 || base + kKeys > end;
            const Keep keep = softmaxScores(s, base, end, needsMask, scaleLog2, tg, rows);
            wgmmaWait<0>();
            pinAccumulators(o);
            pinFragments(p);
            rescale(o, keep);
#pragma unroll
            for (int kk = 0; kk < kKeys / 16; ++kk)
                probabilityFragment(s, kk, p[kk]);
            pending = true;
        } else if (pending) {
            pinAccumulators(o);
            wgmmaFence();
#pragma unroll
            for (int kk = 0; kk < kKeys / 16; ++kk)
                wgmmaRegisters(o, p[kk], previousValues + kk * (16 * 128 >> 4));
            wgmmaCommit();
            wgmmaWait<0>();
            pinAccumulators(o);
            pinFragments(p);
            pending = false;
        }
        publishCopies();
        __syncthreads();
    }
    if (pending) {
        const uint64_t lastValues =
            descriptor(sharedAddress(valueStage(j - 1)), kKeySlabBytes, 1024);
        pinAccumulators(o);
        wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk)
            wgmmaRegisters(o, p[kk], lastValues + kk * (16 * 128 >> 4));
        wgmmaCommit();
        wgmmaWait<0>();
        pinAccumulators(o);
        pinFragments(p);
    }
    finishRows(a, range, rows, h, tg, o);
#endif
}

}  // namespace

bool mlaFlashWgmmaAvailable() {
#if defined(FOLIO_CUDA_SM90A)
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
        return false;
    return major == 9 && minor == 0;
#else
    return false;
#endif
}

cudaError_t configureMlaFlashWgmma() {
    return cudaFuncSetAttribute(flashWgmmaKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(kSharedBytes));
}

void launchMlaFlashWgmma(const MlaFlashArgs& a, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>((a.tokens + kQueries - 1) / kQueries),
                    static_cast<unsigned>(a.heads), static_cast<unsigned>(a.splits));
    flashWgmmaKernel<<<grid, kThreads, kSharedBytes, stream>>>(a);
}

}  // namespace folio::inference::cuda
