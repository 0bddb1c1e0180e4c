// SPDX-License-Identifier: GPL-3.0-or-later
// MLA attention over the latent cache on tensor cores, for the real model's shape (32 heads,
// latent 512, rope 64), as decode runs it: a block owns one split of one query's cache rows and
// walks it in tiles of 32 rows, copied with cp.async five stages deep so that four tiles stream
// in while one is used. The splits adapt to the context (read on the device, so one captured
// launch serves every step): each takes at least kMinTilesPerSplit tiles, so a short context
// keeps few blocks busy and leaves little for the merge, a long one uses the whole grid.
// Per tile, with mma.sync m16n8k16 (bf16 in, fp32 accumulate):
//  - scores Sᵀ = tile · Qᵀ (rows as M, heads as N): warp w owns heads 16 (w % 2) .. + 16 and the
//    columns 144 (w / 2) .. + 144 of the 576, for all 32 rows. Its share of the queries stays in
//    registers as B fragments for the whole split, so shared memory carries only the cache tile
//    (read once per head group) and the four column groups' partial scores;
//  - the online softmax, eight threads per head (four rows each), sums those partial scores;
//  - O += P · tile[:, :512]: warp w owns O columns 64 w .. + 64 of every head.
// The cache values are bf16 already; the queries and the probabilities enter as two bf16 terms
// (hi + lo), so the result keeps close to fp32 accuracy (a single term would leave ~1e-3 relative
// error in the output). Writes the split results in the layout of kernels.h (mlaSplitOutputs).
#include "async_copy.cuh"
#include "dependent_launch.cuh"
#include "kernels.h"
#include "mla_decode_tiles.cuh"
#include "mma.cuh"

namespace folio::inference::cuda {
namespace {

using namespace mla_decode;
constexpr int kPitch = kWidth + 8;  // bf16 per shared row: rows 16 bytes apart mod 128
constexpr int kRowTiles = kTile / 16;
constexpr int kStages = 5;
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
// The score product's division of the warps: head groups × column groups.
constexpr int kHeadGroups = 2, kColumnGroups = kWarps / kHeadGroups;
constexpr int kGroupHeads = kHeads / kHeadGroups;         // two 8-head n-tiles
constexpr int kGroupSteps = kWidth / 16 / kColumnGroups;  // k-steps of 16 columns
constexpr int kScorePitch = kTile + 4;  // floats per head of a partial score tile: no conflicts
constexpr int kPPitch = kTile + 8;      // bf16 per head of P: ldmatrix rows 16 bytes apart mod 128
constexpr int kOutTiles = kRank / 8 / kWarps;  // 8-column O tiles per warp
static_assert(kGroupHeads == 16 && kGroupSteps * 16 * kColumnGroups == kWidth,
              "a warp's share of the scores: two n-tiles of heads, whole k-steps of columns");
static_assert(kRank % 16 == 0, "every k-step lies wholly in the latent or in the rope part");
static_assert(kHeads * kTile == 4 * kThreads, "the softmax takes four scores per thread");
static_assert(kOutTiles % 2 == 0, "V fragments are loaded for two O tiles at a time");

constexpr size_t kSharedBytes = sizeof(bf16) * kStages * kTile * kPitch +
                                sizeof(float) * kColumnGroups * kHeads * kScorePitch +
                                sizeof(bf16) * 2 * kHeads * kPPitch + sizeof(float) * 3 * kHeads;

// Issues the copies of a tile's rows into a stage (row-major, kPitch apart).
__device__ __forceinline__ void copyTile(const TilePages& pages, int rows, bf16* stage) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    bf16* base = stage + warp * kPitch + 8 * lane;
    copyTileRows(pages, rows, [&](int r, int m) { return base + 8 * r * kPitch + 256 * m; });
}

__global__ void __launch_bounds__(kThreads, 1) tensorCoreAttentionKernel(MlaAttentionArgs a) {
    extern __shared__ __align__(16) unsigned char shared[];
    bf16* stages = reinterpret_cast<bf16*>(shared);
    float* scores = reinterpret_cast<float*>(stages + kStages * kTile * kPitch);
    bf16* pHi = reinterpret_cast<bf16*>(scores + kColumnGroups * kHeads * kScorePitch);
    bf16* pLo = pHi + kHeads * kPPitch;
    float* maxS = reinterpret_cast<float*>(pLo + kHeads * kPPitch);
    float* sumS = maxS + kHeads;
    float* corrS = sumS + kHeads;

    const int split = blockIdx.x, t = blockIdx.y, tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, tg = lane & 3;
    waitForPriorGrid();  // a dependent launch: the newest cache row and the queries come before
    // The blocks past the last split in use mark theirs empty.
    const SplitRows range = splitRows(a, split, t);
    if (range.tiles == 0) {
        markSplitEmpty(a, split, t);
        return;
    }
    const int64_t begin = range.begin;
    const int tiles = range.tiles;
    auto stage = [&](int tile) { return stages + (tile % kStages) * kTile * kPitch; };
    auto rowsOf = [&](int tile) { return range.rowsOf(tile); };
    // The first tiles start streaming before the queries are loaded.
    TileCursor cursor(a.cache, begin);
    for (int tile = 0; tile < kStages - 1; ++tile) {
        if (tile < tiles)
            copyTile(cursor.next(rowsOf(tile)), rowsOf(tile), stage(tile));
        commitCopies();
    }

    // This warp's share of the queries as B fragments (hi and lo terms): heads
    // 16 headGroup + 8 nt + g, columns 16 (9 columnGroup + step) + 2 tg, + 1 and + 8, + 9.
    const int headGroup = warp % kHeadGroups, columnGroup = warp / kHeadGroups;
    uint32_t qHi[2][kGroupSteps][2], qLo[2][kGroupSteps][2];
    {
        float2 values[2][kGroupSteps][2];  // every load issued before any conversion
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
            const int head = kGroupHeads * headGroup + 8 * nt + g;
            const float* latent = a.qLatent + (static_cast<int64_t>(t) * kHeads + head) * kRank;
            const float* pe =
                a.q + t * a.qStride + static_cast<int64_t>(head) * (a.nope + kRope) + a.nope;
#pragma unroll
            for (int step = 0; step < kGroupSteps; ++step) {
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int col = 16 * (kGroupSteps * columnGroup + step) + 8 * half + 2 * tg;
                    values[nt][step][half] =
                        col < kRank
                            ? __ldg(reinterpret_cast<const float2*>(latent + col))
                            : make_float2(__ldg(pe + col - kRank), __ldg(pe + col - kRank + 1));
                }
            }
        }
#pragma unroll
        for (int nt = 0; nt < 2; ++nt)
#pragma unroll
            for (int step = 0; step < kGroupSteps; ++step)
#pragma unroll
                for (int half = 0; half < 2; ++half)
                    splitTerms(values[nt][step][half], qHi[nt][step][half], qLo[nt][step][half]);
    }
    if (tid < kHeads) {
        maxS[tid] = -INFINITY;
        sumS[tid] = 0.0f;
    }
    float o[2][kOutTiles][4] = {};

    for (int tile = 0; tile < tiles; ++tile) {
        const int rows = rowsOf(tile);
        waitCopies<kStages - 2>();  // this thread's copies of `tile` have landed
        __syncthreads();            // everyone's have; everyone is done with tile - 1
        if (tile + kStages - 1 < tiles) {
            const int nextRows = rowsOf(tile + kStages - 1);
            copyTile(cursor.next(nextRows), nextRows, stage(tile + kStages - 1));
        }
        commitCopies();
        const bf16* tileRows = stage(tile);

        // This warp's partial scores: its 16 heads over its 144 columns, every row. The hi and
        // lo terms accumulate apart, so the 72 products form eight independent chains.
        {
            float accHi[kRowTiles][2][4] = {}, accLo[kRowTiles][2][4] = {};
#pragma unroll
            for (int step = 0; step < kGroupSteps; ++step) {
                const int col = 16 * (kGroupSteps * columnGroup + step);
#pragma unroll
                for (int mt = 0; mt < kRowTiles; ++mt) {
                    uint32_t cacheA[4];
                    ldmatrix4(cacheA,
                              tileRows + (16 * mt + (lane & 15)) * kPitch + col + (lane >> 4) * 8);
#pragma unroll
                    for (int nt = 0; nt < 2; ++nt) {
                        mma(accHi[mt][nt], cacheA, qHi[nt][step][0], qHi[nt][step][1]);
                        mma(accLo[mt][nt], cacheA, qLo[nt][step][0], qLo[nt][step][1]);
                    }
                }
            }
            float* groupScores = scores + columnGroup * kHeads * kScorePitch;
#pragma unroll
            for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
                for (int nt = 0; nt < 2; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int head = kGroupHeads * headGroup + 8 * nt + 2 * tg + (e & 1);
                        groupScores[head * kScorePitch + 16 * mt + g + 8 * (e >> 1)] =
                            accHi[mt][nt][e] + accLo[mt][nt][e];
                    }
        }
        __syncthreads();

        // Online softmax: eight threads per head, 4 rows each.
        {
            const int h = tid >> 3, part = tid & 7;
            float4 sum4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
            for (int group = 0; group < kColumnGroups; ++group) {
                const float4 v = *reinterpret_cast<const float4*>(
                    scores + (group * kHeads + h) * kScorePitch + 4 * part);
                sum4.x += v.x;
                sum4.y += v.y;
                sum4.z += v.z;
                sum4.w += v.w;
            }
            const float raw[4] = {sum4.x, sum4.y, sum4.z, sum4.w};
            float s[4];
#pragma unroll
            for (int j = 0; j < 4; ++j)
                s[j] = 4 * part + j < rows ? raw[j] * a.scale : -INFINITY;
            float m = fmaxf(fmaxf(s[0], s[1]), fmaxf(s[2], s[3]));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
            const float oldMax = maxS[h];
            const float newMax = fmaxf(oldMax, m);
            float sum = 0.0f;
            uint32_t hi[2], lo[2];
#pragma unroll
            for (int j = 0; j < 4; j += 2) {
                const float2 p = make_float2(__expf(s[j] - newMax), __expf(s[j + 1] - newMax));
                sum += p.x + p.y;
                splitTerms(p, hi[j / 2], lo[j / 2]);
            }
            *reinterpret_cast<uint2*>(pHi + h * kPPitch + 4 * part) = make_uint2(hi[0], hi[1]);
            *reinterpret_cast<uint2*>(pLo + h * kPPitch + 4 * part) = make_uint2(lo[0], lo[1]);
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            sum += __shfl_xor_sync(0xffffffffu, sum, 4);
            if (part == 0) {
                const float correction = __expf(oldMax - newMax);
                corrS[h] = correction;
                sumS[h] = sumS[h] * correction + sum;
                maxS[h] = newMax;
            }
        }
        __syncthreads();

        // O = O * correction + P · V over this warp's 64 columns.
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            const float c0 = corrS[16 * mt + g], c1 = corrS[16 * mt + g + 8];
#pragma unroll
            for (int nt = 0; nt < kOutTiles; ++nt) {
                o[mt][nt][0] *= c0;
                o[mt][nt][1] *= c0;
                o[mt][nt][2] *= c1;
                o[mt][nt][3] *= c1;
            }
        }
#pragma unroll
        for (int k0 = 0; k0 < kTile; k0 += 16) {
            uint32_t aHi[2][4], aLo[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
                const int at = (16 * mt + (lane & 15)) * kPPitch + k0 + (lane >> 4) * 8;
                ldmatrix4(aHi[mt], pHi + at);
                ldmatrix4(aLo[mt], pLo + at);
            }
#pragma unroll
            for (int nt = 0; nt < kOutTiles; nt += 2) {
                const int n = 8 * kOutTiles * warp + 8 * nt;
                uint32_t b[4];
                ldmatrix4Trans(b, tileRows + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * kPitch +
                                      n + (lane >> 4) * 8);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    mma(o[mt][nt], aHi[mt], b[0], b[1]);
                    mma(o[mt][nt], aLo[mt], b[0], b[1]);
                    mma(o[mt][nt + 1], aHi[mt], b[2], b[3]);
                    mma(o[mt][nt + 1], aLo[mt], b[2], b[3]);
                }
            }
        }
    }
    // The statistics were last written before the last tile's second barrier.
    if (tid < kHeads) {
        mlaSplitMaxima(a, t, tid)[split] = maxS[tid];
        mlaSplitSums(a, t, tid)[split] = sumS[tid];
    }
    float* out = mlaSplitOutputs(a, t, split);
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int nt = 0; nt < kOutTiles; ++nt) {
            const int col = 8 * kOutTiles * warp + 8 * nt + 2 * tg;
#pragma unroll
            for (int half = 0; half < 2; ++half)
                *reinterpret_cast<float2*>(out + (16 * mt + g + 8 * half) * kRank + col) =
                    make_float2(o[mt][nt][2 * half], o[mt][nt][2 * half + 1]);
        }
    }
    allowDependentLaunch();  // the merge, a dependent launch, waits for the whole grid
}

}  // namespace

bool mlaTensorCoreShape(int heads, int latentRank, int rope) {
    return heads == kHeads && latentRank == kRank && rope == kRope;
}

cudaError_t configureMlaTensorCoreAttention() {
    return cudaFuncSetAttribute(tensorCoreAttentionKernel,
                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(kSharedBytes));
}

void launchMlaTensorCoreAttention(const MlaAttentionArgs& a, cudaStream_t stream) {
    launchDependent(tensorCoreAttentionKernel, dim3(a.splits, a.tokens), kThreads, kSharedBytes,
                    stream, a);
}

}  // namespace folio::inference::cuda
