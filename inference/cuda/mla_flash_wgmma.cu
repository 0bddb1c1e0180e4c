// SPDX-License-Identifier: GPL-3.0-or-later
// MLA prefill attention on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a): the same
// contract and softmax as the mma.sync kernel in mla_flash_prefill.cu (a segment of keys per
// launch, the softmax state carried between segments, splits of the keys merged afterwards). A
// block owns 128 queries of one head and has three warpgroups with their own roles:
//  - one producer thread copies Q (128 × 192) once, then every key tile's K (128 × 192) and V
//    (128 × 128) into two K and two V stages with the tensor memory accelerator (TMA: 2-D tiles
//    of 64 columns × 128 rows, swizzled on the way in), completing on the stage's "full"
//    mbarrier; it refills a stage only after the consumers' arrivals on its "empty" mbarrier.
//    Keys' nope parts and values come from the expanded segment, their rope parts from a dense
//    copy of the segment's rows gathered from the cache's pages first (a tensor map needs one
//    array); rows past the segment's end arrive as zeros;
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
#include <cuda.h>
#include <cudaTypedefs.h>

#include "async_copy.cuh"
#include "device_query.h"
#include "mbarrier.cuh"
#include "mla_flash_common.cuh"
#include "mla_flash_wgmma.h"
#include "wgmma.cuh"

namespace folio::inference::cuda {
namespace {

using namespace flash;
constexpr int kQueries = kMlaFlashQueries, kKeys = kMlaFlashWgmmaKeys;
constexpr int kProducerThreads = 128, kThreads = 3 * 128;
constexpr int kProducerRegisters = 24, kConsumerRegisters = 240;
constexpr int kSlab = 64;  // bf16 columns per swizzled slab (128-byte rows)
constexpr int kQSlabBytes = kQueries * 128, kKeySlabBytes = kKeys * 128;
constexpr int kQBytes = (kQk / kSlab) * kQSlabBytes;
constexpr int kKBytes = (kQk / kSlab) * kKeySlabBytes, kVBytes = (kValue / kSlab) * kKeySlabBytes;
constexpr int kTileBytes = kQBytes + 2 * (kKBytes + kVBytes);
constexpr size_t kSharedBytes = kTileBytes + 128 + 1024;  // + barriers + alignment to 1024
static_assert(kQueries == 128 && kKeys == 128, "two consumers of 64 queries, 128-key tiles");
static_assert(kProducerThreads * kProducerRegisters + 256 * kConsumerRegisters <= 65536,
              "the register file holds the producer and both consumers");

// The tensor maps of one launch: queries [T][H × 192], the segment's expanded rows
// [rows][H × 256] (nope then value per head) and its rope parts [rows][64].
struct FlashMaps {
    CUtensorMap query, expanded, rope;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Device code for sm_90a only (other targets' passes would find it unused).
constexpr int kKeyTiles = kKeys / 8;  // 8-column groups of S
// The block's mbarriers (shared memory).
struct Barriers {
    uint64_t query;
    uint64_t keyFull[2], keyEmpty[2], valueFull[2], valueEmpty[2];
};
constexpr int kEmptyArrivals = 8;  // lane 0 of each consumer warp

// One 64-column × 128-row tile of a 2-D tensor map at (column, row) into shared memory (swizzled
// as the map says), completing on barrier b.
__device__ __forceinline__ void copyTile(void* dst, const CUtensorMap& map, int column, int row,
                                         uint64_t* b) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, "
        "{%2, %3}], [%4];\n" ::"r"(sharedAddress(dst)),
        "l"(reinterpret_cast<uint64_t>(&map)), "r"(column), "r"(row), "r"(sharedAddress(b))
        : "memory");
}
constexpr uint32_t kSlabTileBytes = 128 * 128;  // one 64-column × 128-row bf16 tile

#endif

__global__ void __launch_bounds__(kThreads, 1)
    flashWgmmaKernel(const MlaFlashArgs a, const __grid_constant__ FlashMaps maps) {
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
        barrierInit(&bar.query, 1);
        for (int s = 0; s < 2; ++s) {
            barrierInit(&bar.keyFull[s], 1);
            barrierInit(&bar.valueFull[s], 1);
            barrierInit(&bar.keyEmpty[s], kEmptyArrivals);
            barrierInit(&bar.valueEmpty[s], kEmptyArrivals);
        }
    }
    __syncthreads();

    if (role == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegisters));
        if (threadIdx.x != 0)
            return;
        // Column offsets of this head's parts; rows count from the segment's start.
        const int qColumn = h * kQk, kvColumn = h * (kNope + kValue);
        barrierExpectBytes(&bar.query, (kQk / kSlab) * kSlabTileBytes);
        for (int slab = 0; slab < kQk / kSlab; ++slab)
            copyTile(qTile + slab * kQSlabBytes, maps.query, qColumn + kSlab * slab, q0,
                     &bar.query);
        int j = 0;
        for (int64_t base = begin; base < end; base += kKeys, ++j) {
            const int s = j & 1, round = j >> 1, row = static_cast<int>(base - a.keyBegin);
            if (round > 0)
                barrierWait(&bar.keyEmpty[s], (round - 1) & 1);
            unsigned char* k = keyStage(j);
            barrierExpectBytes(&bar.keyFull[s], (kQk / kSlab) * kSlabTileBytes);
            copyTile(k, maps.expanded, kvColumn, row, &bar.keyFull[s]);
            copyTile(k + kKeySlabBytes, maps.expanded, kvColumn + kSlab, row, &bar.keyFull[s]);
            copyTile(k + 2 * kKeySlabBytes, maps.rope, 0, row, &bar.keyFull[s]);
            if (round > 0)
                barrierWait(&bar.valueEmpty[s], (round - 1) & 1);
            unsigned char* v = valueStage(j);
            barrierExpectBytes(&bar.valueFull[s], (kValue / kSlab) * kSlabTileBytes);
            copyTile(v, maps.expanded, kvColumn + kNope, row, &bar.valueFull[s]);
            copyTile(v + kKeySlabBytes, maps.expanded, kvColumn + kNope + kSlab, row,
                     &bar.valueFull[s]);
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegisters));
    const int consumer = role - 1, g = lane >> 2, tg = lane & 3;
    float o[kValueTiles][4];
    Rows rows = startRows(a, range, q0 + 64 * consumer + 16 * (warp & 3) + g, h, tg, o);
    barrierWait(&bar.query, 0);

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
    // The consumers take turns at issuing their products (named barriers 1 and 2), so that one's
    // softmax runs while the tensor cores work on the other's products. Consumer 0 goes first;
    // consumer 1 hands over after each of its issues but the last (each consumer issues once
    // per tile and once more at the end).
    const int tiles = static_cast<int>((end - begin + kKeys - 1) / kKeys);
    int issues = 0;
    auto awaitTurn = [&]() { asm volatile("bar.sync %0, 256;\n" ::"r"(1 + consumer) : "memory"); };
    auto handOver = [&]() {
        if (consumer == 0 || ++issues <= tiles)
            asm volatile("bar.arrive %0, 256;\n" ::"r"(2 - consumer) : "memory");
    };
    if (begin < end) {
        if (consumer == 1)
            asm volatile("bar.arrive 1, 256;\n" ::: "memory");
        // Tile 0: its scores alone.
        barrierWait(&bar.keyFull[0], 0);
        pinAccumulators(s);
        awaitTurn();
        wgmmaFence();
        issueScores(0);
        handOver();
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
            pinAccumulators(s);
            pinAccumulators(o);
            awaitTurn();
            wgmmaFence();
            issueScores(j);
            issueValues(j - 1);
            handOver();
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
        pinAccumulators(o);
        awaitTurn();
        wgmmaFence();
        issueValues(j - 1);
        handOver();
        wgmmaWait<0>();
        pinAccumulators(o);
        pinFragments(p);
    }
    finishRows(a, range, rows, h, tg, o);
#endif
}

// The driver's tensor-map encoder, looked up once through the runtime (no link to libcuda).
PFN_cuTensorMapEncodeTiled_v12000 tensorMapEncoder() {
    static const PFN_cuTensorMapEncodeTiled_v12000 encoder = [] {
        void* fn = nullptr;
        cudaDriverEntryPointQueryResult found{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                             cudaEnableDefault, &found) != cudaSuccess ||
            found != cudaDriverEntryPointSuccess) {
            fn = nullptr;
            cudaGetLastError();  // the portable kernel serves; nobody else's error to find later
        }
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
    }();
    return encoder;
}

// A 2-D bf16 map of `rows` rows of `columns` elements, `pitch` bytes apart, read in swizzled tiles
// of 64 columns × 128 rows; rows past `rows` read as zeros.
bool encodeMap(CUtensorMap* map, const void* base, int64_t columns, int64_t rows, int64_t pitch) {
    const cuuint64_t dims[2] = {static_cast<cuuint64_t>(columns), static_cast<cuuint64_t>(rows)};
    const cuuint64_t strides[1] = {static_cast<cuuint64_t>(pitch)};
    const cuuint32_t box[2] = {kSlab, 128};
    const cuuint32_t elementStrides[2] = {1, 1};
    return tensorMapEncoder()(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base),
                              dims, strides, box, elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                              CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// out[r][0 .. 64) = the rope part of cache row keyBegin + r, for r < rows; 16 bytes per thread.
__global__ void gatherRopeKernel(LatentCache cache, int64_t keyBegin, int rows, bf16* out) {
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= rows * (kRope / 8))
        return;
    const int row = i / (kRope / 8), chunk = i % (kRope / 8);
    const int64_t key = keyBegin + row;
    const bf16* src = cache.pages[key / cache.pageRows] + (key % cache.pageRows) * cache.width +
                      (cache.width - kRope) + 8 * chunk;
    *reinterpret_cast<uint4*>(out + static_cast<int64_t>(row) * kRope + 8 * chunk) =
        *reinterpret_cast<const uint4*>(src);
}

}  // namespace

bool mlaFlashWgmmaAvailable() {
#if defined(FOLIO_CUDA_SM90A)
    return currentComputeCapability() == 90 && tensorMapEncoder() != nullptr;
#else
    return false;
#endif
}

cudaError_t configureMlaFlashWgmma() {
    return cudaFuncSetAttribute(flashWgmmaKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(kSharedBytes));
}

bool launchMlaFlashWgmma(const MlaFlashArgs& a, cudaStream_t stream) {
    const int64_t rows = a.keyEnd - a.keyBegin;
    FlashMaps maps;
    const int64_t expandedWidth = static_cast<int64_t>(a.heads) * (kNope + kValue);
    if (a.ropeRows == nullptr || rows <= 0 ||
        !encodeMap(&maps.query, a.q, static_cast<int64_t>(a.heads) * kQk, a.tokens,
                   static_cast<int64_t>(a.heads) * kQk * 2) ||
        !encodeMap(&maps.expanded, a.kv, expandedWidth, rows, expandedWidth * 2) ||
        !encodeMap(&maps.rope, a.ropeRows, kRope, rows, kRope * 2))
        return false;
    const int chunks = static_cast<int>(rows) * (kRope / 8);
    gatherRopeKernel<<<(chunks + 255) / 256, 256, 0, stream>>>(a.cache, a.keyBegin,
                                                               static_cast<int>(rows), a.ropeRows);
    const dim3 grid(static_cast<unsigned>((a.tokens + kQueries - 1) / kQueries),
                    static_cast<unsigned>(a.heads), static_cast<unsigned>(a.splits));
    flashWgmmaKernel<<<grid, kThreads, kSharedBytes, stream>>>(a, maps);
    return true;
}

}  // namespace folio::inference::cuda
