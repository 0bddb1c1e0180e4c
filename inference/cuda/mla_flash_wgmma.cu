// SPDX-License-Identifier: GPL-3.0-or-later
// MLA prefill attention on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a): the same
// contract and softmax as the mma.sync kernel in mla_flash_prefill.cu (a segment of keys per
// launch, the softmax state carried between segments, splits of the keys merged afterwards). A
// block owns 128 queries of one head and has three warpgroups with their own roles:
//  - a producer copies Q (128 × 192) once, then every key tile's K (128 × 192) and V (128 × 128)
//    into two K and two V stages with cp.async; each copy's completion arrives on the stage's
//    "full" mbarrier (cp.async.mbarrier.arrive.noinc), and the producer refills a stage only
//    after the consumers' arrivals on its "empty" mbarrier;
//  - two consumers own 64 queries each. Per key tile j they issue S_j = Q K_jᵀ (12 wgmma
//    m64n128k16 from shared memory) together with O += P_{j-1} V_{j-1} (8 wgmma with P from
//    registers), run the online softmax of S_j while the tensor cores finish P_{j-1} V_{j-1},
//    then rescale O and keep P_j for the next tile. K_j is released as soon as S_j is done,
//    V_{j-1} once its product is.
// No block-wide barrier runs inside the loop, so the two consumers drift apart and one's softmax
// overlaps the other's products. The producer gives registers to the consumers (setmaxnreg).
// Shared tiles use the 128-byte swizzled layout of wgmma.cuh; Q and K are K-major, V is MN-major.
// Query tiles are taken from the end backwards, so the longest blocks start first. Built only for
// sm_90a; the host checks mlaFlashWgmmaAvailable() before launching it.
#include "async_copy.cuh"
#include "mla_flash_common.cuh"
#include "mla_flash_wgmma.h"
#include "wgmma.cuh"

namespace folio::inference::cuda {
namespace {

using namespace flash;
constexpr int kQueries = kMlaFlashQueries, kKeys = kMlaFlashWgmmaKeys;
constexpr int kProducerThreads = 128, kThreads = 3 * 128;
constexpr int kProducerRegisters = 40, kConsumerRegisters = 232;
constexpr int kKeyTiles = kKeys / 8;  // 8-column groups of S
constexpr int kSlab = 64;             // bf16 columns per swizzled slab (128-byte rows)
constexpr int kQSlabBytes = kQueries * 128, kKeySlabBytes = kKeys * 128;
constexpr int kQBytes = (kQk / kSlab) * kQSlabBytes;
constexpr int kKBytes = (kQk / kSlab) * kKeySlabBytes, kVBytes = (kValue / kSlab) * kKeySlabBytes;
constexpr int kTileBytes = kQBytes + 2 * (kKBytes + kVBytes);
constexpr size_t kSharedBytes = kTileBytes + 128 + 1024;  // + barriers + alignment to 1024
static_assert(kQueries == 128 && kKeys == 128, "two consumers of 64 queries, 128-key tiles");
static_assert(kProducerThreads * kProducerRegisters + 256 * kConsumerRegisters <= 65536,
              "the register file holds the producer and both consumers");

// The block's mbarriers (shared memory).
struct Barriers {
    uint64_t query;
    uint64_t keyFull[2], keyEmpty[2], valueFull[2], valueEmpty[2];
};
constexpr int kEmptyArrivals = 8;  // lane 0 of each consumer warp

__device__ __forceinline__ void barrierInit(uint64_t* b, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(sharedAddress(b)), "r"(count)
                 : "memory");
}
__device__ __forceinline__ void barrierWait(uint64_t* b, int parity) {
    uint32_t done;
    do {
        asm volatile(
            "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
            "selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(sharedAddress(b)), "r"(parity)
            : "memory");
    } while (!done);
}
__device__ __forceinline__ void barrierArrive(uint64_t* b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(sharedAddress(b)) : "memory");
}
// Arrives once this thread's earlier cp.async copies have landed (counted in the init count).
__device__ __forceinline__ void barrierArriveOnCopies(uint64_t* b) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(sharedAddress(b))
                 : "memory");
}
// Orders copies this thread has seen complete (through an mbarrier) before its wgmma reads.
__device__ __forceinline__ void fenceForTensorCores() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// The producer's copies. Each of its threads copies fixed chunks of every tile, so the per-tile
// work is a few pointer increments: the nope part of K and all of V as rows (t / 16) + 8 m,
// chunk t % 16 (both from the same expanded row); the rope part of K as rows (t / 8) + 16 m,
// chunk t % 8, from the latent cache's pages. Rows at or past `end` are zero-filled (V must be
// finite where P is zero).
struct TileCopier {
    const MlaFlashArgs* a;
    int h;
    int wideRow, wideChunk;  // nope / value chunks
    int ropeRow, ropeChunk;  // rope chunks
    uint32_t wideOffset;     // the chunk's place in a K or V tile (the swizzle is the same for m)
    uint32_t ropeOffset;

    __device__ __forceinline__ TileCopier(const MlaFlashArgs& args, int head, int t)
        : a(&args), h(head) {
        wideRow = t >> 4;
        wideChunk = t & 15;
        ropeRow = t >> 3;
        ropeChunk = t & 7;
        wideOffset = (wideChunk >> 3) * kKeySlabBytes + swizzled(wideRow, wideChunk & 7);
        ropeOffset = 2 * kKeySlabBytes + swizzled(ropeRow, ropeChunk);
    }

    // The expanded row of key `base + row` for this head (nope dims, then value dims). Rows are
    // counted from the segment's start, so the product stays in 32 bits (segments are at most
    // 16K rows of 32 heads).
    __device__ __forceinline__ const bf16* expanded(int64_t base, int row) const {
        const int local = static_cast<int>(base - a->keyBegin) + row;
        return a->kv + static_cast<int64_t>(local * a->heads + h) * (kNope + kValue);
    }

    // K rows [base, base + 128): nope from the expanded segment, rope from the cache.
    __device__ __forceinline__ void keys(int64_t base, int64_t end, unsigned char* tile) const {
#pragma unroll 4
        for (int m = 0; m < kKeys / 8; ++m) {
            const int row = wideRow + 8 * m;
            const bool valid = base + row < end;
            const bf16* src = expanded(valid ? base : a->keyBegin, valid ? row : 0);
            copy16(tile + wideOffset + 8 * m * 128, src + 8 * wideChunk, valid);
        }
        const int pageRows = a->cache.pageRows;
#pragma unroll 4
        for (int m = 0; m < kKeys / 16; ++m) {
            const int row = ropeRow + 16 * m;
            const bool valid = base + row < end;
            const int key = static_cast<int>(valid ? base + row : a->keyBegin);
            const bf16* src = a->cache.pages[key / pageRows] +
                              static_cast<int64_t>(key % pageRows) * a->cache.width +
                              (a->cache.width - kRope) + 8 * ropeChunk;
            copy16(tile + ropeOffset + 16 * m * 128, src, valid);
        }
    }

    // V rows [base, base + 128).
    __device__ __forceinline__ void values(int64_t base, int64_t end, unsigned char* tile) const {
#pragma unroll 4
        for (int m = 0; m < kKeys / 8; ++m) {
            const int row = wideRow + 8 * m;
            const bool valid = base + row < end;
            const bf16* src = expanded(valid ? base : a->keyBegin, valid ? row : 0);
            copy16(tile + wideOffset + 8 * m * 128, src + kNope + 8 * wideChunk, valid);
        }
    }
};

template <int kCount>
__device__ __forceinline__ void pinFragments(uint32_t (&p)[kCount][4]) {
#pragma unroll
    for (int i = 0; i < kCount; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            asm volatile("" : "+r"(p[i][e])::"memory");
}

__global__ void __launch_bounds__(kThreads, 1) flashWgmmaKernel(const MlaFlashArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ unsigned char sharedRaw[];
    unsigned char* shared = reinterpret_cast<unsigned char*>(
        (reinterpret_cast<uintptr_t>(sharedRaw) + 1023) & ~static_cast<uintptr_t>(1023));
    unsigned char* qTile = shared;
    auto keyStage = [&](int j) { return shared + kQBytes + (j & 1) * kKBytes; };
    auto valueStage = [&](int j) { return shared + kQBytes + 2 * kKBytes + (j & 1) * kVBytes; };
    Barriers& bar = *reinterpret_cast<Barriers*>(shared + kTileBytes);

    const int h = blockIdx.y;
    const int q0 = (gridDim.x - 1 - blockIdx.x) * kQueries;  // the longest blocks first
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int role = warp >> 2;  // 0: producer, 1 and 2: consumers
    const KeyRange range = keyRange(a, q0, kQueries, kKeys, static_cast<int>(blockIdx.z));
    const int64_t begin = range.begin, end = range.end;

    if (threadIdx.x == 0) {
        barrierInit(&bar.query, kProducerThreads);
        for (int s = 0; s < 2; ++s) {
            barrierInit(&bar.keyFull[s], kProducerThreads);
            barrierInit(&bar.valueFull[s], kProducerThreads);
            barrierInit(&bar.keyEmpty[s], kEmptyArrivals);
            barrierInit(&bar.valueEmpty[s], kEmptyArrivals);
        }
    }
    __syncthreads();

    if (role == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegisters));
        const int t = static_cast<int>(threadIdx.x);
        for (int i = t; i < kQueries * (kQk / 8); i += kProducerThreads) {
            const int row = i / (kQk / 8), c = i % (kQk / 8);
            const bool valid = q0 + row < a.tokens;
            const bf16* src =
                a.q + (static_cast<int64_t>(valid ? q0 + row : 0) * a.heads + h) * kQk + c * 8;
            copy16(qTile + (c >> 3) * kQSlabBytes + swizzled(row, c & 7), src, valid);
        }
        barrierArriveOnCopies(&bar.query);
        const TileCopier copier(a, h, t);
        int j = 0;
        for (int64_t base = begin; base < end; base += kKeys, ++j) {
            const int s = j & 1, round = j >> 1;
            if (round > 0)
                barrierWait(&bar.keyEmpty[s], (round - 1) & 1);
            copier.keys(base, end, keyStage(j));
            barrierArriveOnCopies(&bar.keyFull[s]);
            if (round > 0)
                barrierWait(&bar.valueEmpty[s], (round - 1) & 1);
            copier.values(base, end, valueStage(j));
            barrierArriveOnCopies(&bar.valueFull[s]);
        }
        waitCopies<0>();  // nothing of this thread's stays in flight after it leaves
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegisters));
    const int consumer = role - 1, g = lane >> 2, tg = lane & 3;
    float o[kValueTiles][4];
    Rows rows = startRows(a, range, q0 + 64 * consumer + 16 * (warp & 3) + g, h, tg, o);
    barrierWait(&bar.query, 0);
    fenceForTensorCores();

    // Descriptors: this consumer's Q rows and K (K-major, 8-row groups 1 KB apart), V (MN-major:
    // 64-column slabs 16 KB apart, 8-key groups 1 KB apart). Advancing a descriptor by 16 bytes
    // is adding 1.
    const uint64_t qDesc = descriptor(sharedAddress(qTile + consumer * 64 * 128), 16, 1024);
    const float scaleLog2 = a.scale * kLog2e;
    uint32_t p[kKeys / 16][4];
    float s[kKeyTiles][4];
    // S_j = Q K_jᵀ, issued (not waited for).
    auto issueScores = [&](int j) {
        const uint64_t k = descriptor(sharedAddress(keyStage(j)), 16, 1024);
#pragma unroll
        for (int kk = 0; kk < kQk / 16; ++kk) {
            const uint64_t qStep = (kk >> 2) * (kQSlabBytes >> 4) + (kk & 3) * 2;
            const uint64_t kStep = (kk >> 2) * (kKeySlabBytes >> 4) + (kk & 3) * 2;
            wgmmaShared(s, qDesc + qStep, k + kStep, kk > 0);
        }
        wgmmaCommit();
    };
    // O += P_j V_j, issued.
    auto issueValues = [&](int j) {
        const uint64_t v = descriptor(sharedAddress(valueStage(j)), kKeySlabBytes, 1024);
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk)
            wgmmaRegisters(o, p[kk], v + kk * (16 * 128 >> 4));
        wgmmaCommit();
    };
    auto softmax = [&](int64_t base) {
        const bool needsMask = base + kKeys > min(rows.posA, rows.posB) + 1 || base + kKeys > end;
        return softmaxScores(s, base, end, needsMask, scaleLog2, tg, rows);
    };
    auto keepProbabilities = [&]() {
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk)
            probabilityFragment(s, kk, p[kk]);
    };
    if (begin < end) {
        // Tile 0: its scores alone.
        barrierWait(&bar.keyFull[0], 0);
        fenceForTensorCores();
        pinAccumulators(s);
        wgmmaFence();
        issueScores(0);
        wgmmaWait<0>();
        pinAccumulators(s);
        if (lane == 0)
            barrierArrive(&bar.keyEmpty[0]);
        rescale(o, softmax(begin));
        keepProbabilities();
        // Tile j: S_j with P_{j-1} V_{j-1} in flight during the softmax of S_j.
        int j = 1;
        for (int64_t base = begin + kKeys; base < end; base += kKeys, ++j) {
            barrierWait(&bar.keyFull[j & 1], (j >> 1) & 1);
            barrierWait(&bar.valueFull[(j - 1) & 1], ((j - 1) >> 1) & 1);
            fenceForTensorCores();
            pinAccumulators(s);
            pinAccumulators(o);
            wgmmaFence();
            issueScores(j);
            issueValues(j - 1);
            wgmmaWait<1>();
            pinAccumulators(s);
            if (lane == 0)
                barrierArrive(&bar.keyEmpty[j & 1]);
            const Keep keep = softmax(base);
            wgmmaWait<0>();
            pinAccumulators(o);
            pinFragments(p);
            if (lane == 0)
                barrierArrive(&bar.valueEmpty[(j - 1) & 1]);
            rescale(o, keep);
            keepProbabilities();
        }
        // The last tile's P V.
        barrierWait(&bar.valueFull[(j - 1) & 1], ((j - 1) >> 1) & 1);
        fenceForTensorCores();
        pinAccumulators(o);
        wgmmaFence();
        issueValues(j - 1);
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
