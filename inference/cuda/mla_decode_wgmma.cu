// SPDX-License-Identifier: GPL-3.0-or-later
// MLA decode attention on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a) for the
// real model's shape (32 heads, latent 512, rope 64): the contract, splits and partial results
// of the mma.sync kernel in mla_tensor_core.cu, which stays the form for other GPUs. That kernel
// is bound by its mma.sync work at long contexts (two-term operands, ~1,100 MMAs per tile); here
// the same products are a few asynchronous wgmma per tile, so the cache streams at close to the
// copy bandwidth.
// A block owns one split of one query's cache rows and has two warpgroups:
//  - all 256 threads copy 32-row cache tiles with cp.async, three stages deep, into the 128-byte
//    swizzled layout of wgmma.cuh (nine 64-column slabs a tile), so that one copy serves as the
//    K-major operand of the scores and the MN-major operand of the values;
//  - the queries, scaled by scale · log2(e), enter as two bf16 terms stacked as the 64 rows of
//    the A operand: warp w's rows 16 w + g hold head 8 w + g's hi term and rows 16 w + g + 8 its
//    lo term. Every thread then holds both terms' scores of one head and adds them, and in P·V
//    the same rows carry the probabilities' hi and lo terms. M = 64 is wgmma's smallest; the two
//    terms fill what 32 heads would leave empty.
// Per tile:
//  - scores (64 × 32) = Q (64 × 576) · tileᵀ: warpgroup c over the k16 steps 2 i + c (18
//    m64n32k16 each, both operands in shared memory); each hands its partial sums to the other
//    through shared memory;
//  - the online softmax in base 2, computed by both warpgroups alike;
//  - O (64 × 512) += P (64 × 32) · tile[:, :512]: warpgroup c owns columns 256 c .. + 256
//    (4 m64n128k16 with P from registers); the hi and lo rows are added at the end.
// Built only for sm_90a; launchMlaAttention runs it where mlaDecodeWgmmaAvailable() says so.
#include "async_copy.cuh"
#include "dependent_launch.cuh"
#include "device_query.h"
#include "kernels.h"
#include "mbarrier.cuh"
#include "mla_decode_tiles.cuh"
#include "wgmma.cuh"

namespace folio::inference::cuda {
namespace {

using namespace mla_decode;
constexpr int kThreads = 256;
constexpr int kStages = 4;
constexpr int kSlabs = kWidth / 64;          // 64-column slabs of a row
constexpr int kTileSlabBytes = kTile * 128;  // one slab of a 32-row tile
constexpr int kStageBytes = kSlabs * kTileSlabBytes;
constexpr int kQSlabBytes = 64 * 128;  // one slab of the 64 stacked query rows
constexpr int kQBytes = kSlabs * kQSlabBytes;
constexpr int kScoreSteps = kWidth / 16 / 2;  // k16 steps of the scores per warpgroup
constexpr int kExchangeVectors = 2 * 128;     // a warpgroup's partial scores, 8 floats a thread
constexpr size_t kSharedBytes =
    kQBytes + kStages * kStageBytes + 2 * kExchangeVectors * sizeof(float4) + 1024;
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
static_assert(kWidth % 64 == 0 && kRank % 256 == 0, "whole slabs; 256 value columns a group");
static_assert(kScoreSteps * 2 * 16 == kWidth, "the scores' columns split evenly in k16 steps");
static_assert(kHeads == 32 && kTile == 32, "8 heads per warp, two k16 steps of P per tile");

// Set by configureMlaDecodeWgmma (when available), cleared by selectMlaDecodeWgmma(false).
bool useWgmma = false;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Issues the copies of a tile's rows into a stage's swizzled slabs: chunk c of row
// warp + 8 r lies in slab c / 8, at row × 128 + ((c % 8) ^ warp) × 16.
__device__ __forceinline__ void copyTile(const TilePages& pages, int rows, unsigned char* stage) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    unsigned char* base =
        stage + (lane >> 3) * kTileSlabBytes + warp * 128 + (((lane & 7) ^ warp) << 4);
    copyTileRows(pages, rows,
                 [&](int r, int m) { return base + m * 4 * kTileSlabBytes + r * 8 * 128; });
}

// Writes query t's stacked two-term rows (see the file comment), scaled by `scale`: thread i
// takes the 8-column pieces i, i + 256, ... (all of its loads issued before any store).
__device__ __forceinline__ void stageQueries(const MlaAttentionArgs& a, int t, float scale,
                                             unsigned char* qTile) {
    constexpr int kChunks = kWidth / 8, kPieces = kHeads * kChunks / kThreads;
    static_assert(kPieces * kThreads == kHeads * kChunks, "whole pieces per thread");
    float v[kPieces][8];
#pragma unroll
    for (int n = 0; n < kPieces; ++n) {
        const int i = static_cast<int>(threadIdx.x) + n * kThreads;
        const int h = i / kChunks, col = 8 * (i % kChunks);
        const float* src = col < kRank
                               ? a.qLatent + (static_cast<int64_t>(t) * kHeads + h) * kRank + col
                               : a.q + t * a.qStride + static_cast<int64_t>(h) * (a.nope + kRope) +
                                     a.nope + (col - kRank);
#pragma unroll
        for (int k = 0; k < 8; ++k)
            v[n][k] = __ldg(src + k);
    }
#pragma unroll
    for (int n = 0; n < kPieces; ++n) {
        const int i = static_cast<int>(threadIdx.x) + n * kThreads;
        const int h = i / kChunks, c = i % kChunks;
        uint4 hi, lo;
        splitTerms(make_float2(v[n][0] * scale, v[n][1] * scale), hi.x, lo.x);
        splitTerms(make_float2(v[n][2] * scale, v[n][3] * scale), hi.y, lo.y);
        splitTerms(make_float2(v[n][4] * scale, v[n][5] * scale), hi.z, lo.z);
        splitTerms(make_float2(v[n][6] * scale, v[n][7] * scale), hi.w, lo.w);
        const int row = 16 * (h >> 3) + (h & 7);
        unsigned char* slab = qTile + (c >> 3) * kQSlabBytes;
        *reinterpret_cast<uint4*>(slab + swizzled(row, c & 7)) = hi;
        *reinterpret_cast<uint4*>(slab + swizzled(row + 8, c & 7)) = lo;
    }
}
#endif

__global__ void __launch_bounds__(kThreads, 1) decodeWgmmaKernel(MlaAttentionArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ unsigned char sharedRaw[];
    // 1024-byte aligned for the swizzled slabs (offsetting the __shared__ array itself keeps
    // the accesses in the shared address space).
    unsigned char* shared = sharedRaw + ((1024 - (sharedAddress(sharedRaw) & 1023)) & 1023);
    unsigned char* qTile = shared;
    unsigned char* stages = shared + kQBytes;
    float4* exchange = reinterpret_cast<float4*>(stages + kStages * kStageBytes);

    const int split = blockIdx.x, t = blockIdx.y, tid = threadIdx.x;
    // The warpgroup, read through a shuffle so the compiler knows it is the same for a warp
    // (the descriptors built from it then live in uniform registers).
    const int group = __shfl_sync(0xffffffffu, tid >> 7, 0);
    const int member = tid & 127, warp = (tid >> 5) & 3;
    const int lane = tid & 31, tg = lane & 3;
    waitForPriorGrid();  // a dependent launch: the newest cache row and the queries come before
    const SplitRows range = splitRows(a, split, t);
    if (range.tiles == 0) {
        markSplitEmpty(a, split, t);
        return;
    }
    const int64_t begin = range.begin;
    const int tiles = range.tiles;
    auto stage = [&](int tile) { return stages + (tile % kStages) * kStageBytes; };
    auto rowsOf = [&](int tile) { return range.rowsOf(tile); };
    // The first tiles start streaming before the queries are staged.
    TileCursor cursor(a.cache, begin);
    for (int tile = 0; tile < kStages - 1; ++tile) {
        if (tile < tiles)
            copyTile(cursor.next(rowsOf(tile)), rowsOf(tile), stage(tile));
        commitCopies();
    }
    stageQueries(a, t, a.scale * kLog2e, qTile);

    // Descriptors (K-major: 8-row groups 1 KB apart, a k16 step 32 bytes (+2) within a slab).
    // Warpgroup `group` takes the k-steps 2 i + group: step 2 i + group lies in slab i / 2, at
    // 32 × (2 (i % 2) + group) bytes.
    const uint64_t qDesc = descriptor(sharedAddress(qTile), 16, 1024) + 2 * group;
    float o[2][16][4] = {};  // columns 256 group + 128 half + 8 j + 2 tg (+1); rows g, g + 8
    float s[4][4];
    uint32_t pa[2][4];  // P of the tile before, read by its product still in flight
    float runMax = -INFINITY, runSum = 0.0f;  // head 8 warp + g; the sum over this thread's rows
    float4* mine = exchange + group * kExchangeVectors;
    const float4* theirs = exchange + (1 - group) * kExchangeVectors;

    // Per tile j: its scores, the partial sums exchanged, then the tile j + kStages - 1 copies
    // into the stage of tile j - 1 (whose P·V both warpgroups have waited for by then), the
    // softmax, and P_j·V_j issued without waiting: it runs while the next tile's barrier and
    // scores are issued.
    for (int tile = 0; tile < tiles; ++tile) {
        const int rows = rowsOf(tile);
        waitCopies<kStages - 2>();  // this thread's copies of `tile` have landed
        fenceForTensorCores();      // its writes (and the queries) are visible to wgmma
        __syncthreads();            // everyone's are
        unsigned char* tileRows = stage(tile);

        // This warpgroup's partial scores.
        const uint64_t tileDesc = descriptor(sharedAddress(tileRows), 16, 1024) + 2 * group;
        pinAccumulators(s);
        wgmmaFence();
#pragma unroll
        for (int i = 0; i < kScoreSteps; ++i)
            wgmmaShared(s, qDesc + (i >> 1) * (kQSlabBytes >> 4) + (i & 1) * 4,
                        tileDesc + (i >> 1) * (kTileSlabBytes >> 4) + (i & 1) * 4, i > 0);
        wgmmaCommit();
        wgmmaWait<0>();  // the scores, and P·V of the tile before
        pinAccumulators(s);
        pinAccumulators(o[0]);
        pinAccumulators(o[1]);
        pinFragments(pa);
        // hi row + lo row: columns 8 j + 2 tg and + 1 of the tile, for head 8 warp + g.
        float x[8];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            x[2 * j] = s[j][0] + s[j][2];
            x[2 * j + 1] = s[j][1] + s[j][3];
        }
        mine[member] = make_float4(x[0], x[1], x[2], x[3]);
        mine[128 + member] = make_float4(x[4], x[5], x[6], x[7]);
        __syncthreads();  // the partial sums are visible; no one reads stage(tile - 1) any more
        if (tile + kStages - 1 < tiles) {
            const int nextRows = rowsOf(tile + kStages - 1);
            copyTile(cursor.next(nextRows), nextRows, stage(tile + kStages - 1));
        }
        commitCopies();
        // Both groups add the same two numbers per score (in either order, the same sum). The
        // other group writes its half again only after the next tile's first barrier.
        const float4 lo = theirs[member], hi = theirs[128 + member];
        const float other[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const int col = 8 * (k >> 1) + 2 * tg + (k & 1);
            x[k] = col < rows ? x[k] + other[k] : -INFINITY;
        }
        float tileMax = x[0];
#pragma unroll
        for (int k = 1; k < 8; ++k)
            tileMax = fmaxf(tileMax, x[k]);
        tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
        tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 2));
        const float newMax = fmaxf(runMax, tileMax);  // finite: every tile has a visible row
        const float correction = exp2f(runMax - newMax);
        runMax = newMax;
        float p[8], tileSum = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            p[k] = exp2f(x[k] - newMax);
            tileSum += p[k];
        }
        runSum = runSum * correction + tileSum;
        // Once the maxima settle (most tiles of a long split), no warp rescales.
        if (__any_sync(0xffffffffu, correction != 1.0f)) {
#pragma unroll
            for (int half = 0; half < 2; ++half)
#pragma unroll
                for (int j = 0; j < 16; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        o[half][j][e] *= correction;
        }
        // P as A fragments of the two k16 steps: hi terms in row g, lo terms in row g + 8.
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
            splitTerms(make_float2(p[4 * kk], p[4 * kk + 1]), pa[kk][0], pa[kk][1]);
            splitTerms(make_float2(p[4 * kk + 2], p[4 * kk + 3]), pa[kk][2], pa[kk][3]);
        }
        // O += P · V with V MN-major: 64-column slabs kTileSlabBytes apart, 8-row groups 1 KB
        // apart, a k16 step 2 KB on.
        pinAccumulators(o[0]);
        pinAccumulators(o[1]);
        pinFragments(pa);
        wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < 2; ++kk)
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const uint64_t v =
                    descriptor(sharedAddress(tileRows + (4 * group + 2 * half) * kTileSlabBytes),
                               kTileSlabBytes, 1024);
                wgmmaRegisters(o[half], pa[kk], v + kk * (16 * 128 >> 4));
            }
        wgmmaCommit();
    }
    wgmmaWait<0>();
    pinAccumulators(o[0]);
    pinAccumulators(o[1]);
    pinFragments(pa);

    runSum += __shfl_xor_sync(0xffffffffu, runSum, 1);
    runSum += __shfl_xor_sync(0xffffffffu, runSum, 2);
    const int head = 8 * warp + (lane >> 2);
    if (group == 0 && tg == 0) {
        mlaSplitMaxima(a, t, head)[split] = runMax * kLn2;  // in units of the scores
        mlaSplitSums(a, t, head)[split] = runSum;
    }
    float* out = mlaSplitOutputs(a, t, split) + static_cast<int64_t>(head) * kRank;
#pragma unroll
    for (int half = 0; half < 2; ++half)
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int col = 256 * group + 128 * half + 8 * j + 2 * tg;
            *reinterpret_cast<float2*>(out + col) =
                make_float2(o[half][j][0] + o[half][j][2], o[half][j][1] + o[half][j][3]);
        }
    allowDependentLaunch();  // the merge, a dependent launch, waits for the whole grid
#endif
}

}  // namespace

bool mlaDecodeWgmmaAvailable() {
#if defined(FOLIO_CUDA_SM90A)
    return currentComputeCapability() == 90;
#else
    return false;
#endif
}

cudaError_t configureMlaDecodeWgmma() {
    useWgmma = mlaDecodeWgmmaAvailable();
    if (!useWgmma)
        return cudaSuccess;
    return cudaFuncSetAttribute(decodeWgmmaKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(kSharedBytes));
}

void selectMlaDecodeWgmma(bool wgmma) {
    useWgmma = wgmma && mlaDecodeWgmmaAvailable();
}

bool launchMlaDecodeWgmma(const MlaAttentionArgs& a, cudaStream_t stream) {
    if (!useWgmma)
        return false;
    launchDependent(decodeWgmmaKernel, dim3(a.splits, a.tokens), kThreads, kSharedBytes, stream, a);
    return true;
}

}  // namespace folio::inference::cuda
