// SPDX-License-Identifier: GPL-3.0-or-later
// MLA attention over the latent cache on tensor cores, for the real model's shape (32 heads,
// latent 512, rope 64), as decode runs it: a block owns one split of the cache rows and walks it
// in tiles of 32 rows, copied with cp.async three stages deep so the next tiles stream in while
// one is used. Per tile, S = Q · tileᵀ (32 heads × 32 rows, K = 576; warp w owns heads
// 16 (w % 2) .. + 16 and rows 8 (w / 2) .. + 8) and O += P · tile[:, :512] (warp w owns O columns
// 64 w .. + 64) with mma.sync m16n8k16 (bf16 in, fp32 accumulate) and ldmatrix, an online softmax
// between them. The cache values are bf16 already; the queries and the probabilities enter as
// two bf16 terms (hi + lo), so the result keeps close to fp32 accuracy. Writes the same partial
// results (max, sum, unnormalised O per split and head) as the CUDA-core kernel.
#include "async_copy.cuh"
#include "device_math.cuh"
#include "kernels.h"
#include "mma.cuh"

namespace folio::inference::cuda {
namespace {

constexpr int kHeads = 32, kRank = 512, kRope = 64, kWidth = kRank + kRope;
constexpr int kPitch = 584;  // bf16 per shared row: rows 16 bytes apart mod 128, no conflicts
constexpr int kTile = 32;    // cache rows per step
constexpr int kStages = 3;
constexpr int kPPitch = kTile + 8;  // bf16 per row of P
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kOutTiles = kRank / 8 / kWarps;  // 8-column O tiles per warp
static_assert(kWarps == 2 * (kTile / 8), "one 16 × 8 score tile per warp");

constexpr size_t kSharedBytes = sizeof(bf16) * (2 * kHeads * kPitch + kStages * kTile * kPitch) +
                                sizeof(float) * kHeads * kTile +
                                sizeof(bf16) * 2 * kHeads * kPPitch + sizeof(float) * 3 * kHeads;

// Issues the copies of cache rows [base, base + rows) into a stage; rows past `rows` become
// zeros (their scores are masked and their P is zero, but 0 × a stale NaN would not be). Pages
// hold at least kTile rows (mlaTensorCoreShape's caller checks), so a tile spans at most two.
__device__ __forceinline__ void copyTile(const LatentCache& cache, int64_t base, int rows,
                                         bf16* stage) {
    constexpr int kChunks = kWidth / 8;  // 16-byte pieces of a row
    const int pageRows = cache.pageRows;
    const int64_t page = base / pageRows;
    const int first = static_cast<int>(base % pageRows);
    const bf16* here = cache.pages[page];
    const bf16* next = first + rows > pageRows ? cache.pages[page + 1] : here;
    for (int i = threadIdx.x; i < kTile * kChunks; i += kThreads) {
        const int row = i / kChunks, c = i % kChunks;
        const bool valid = row < rows;
        const int at = first + (valid ? row : 0);
        const bf16* src =
            (at < pageRows ? here + static_cast<int64_t>(at) * cache.width
                           : next + static_cast<int64_t>(at - pageRows) * cache.width);
        copy16(stage + row * kPitch + 8 * c, src + 8 * c, valid);
    }
}

__global__ void __launch_bounds__(kThreads, 1) tensorCoreAttentionKernel(MlaAttentionArgs a) {
    extern __shared__ __align__(16) unsigned char shared[];
    bf16* qHi = reinterpret_cast<bf16*>(shared);
    bf16* qLo = qHi + kHeads * kPitch;
    bf16* stages = qLo + kHeads * kPitch;
    float* scores = reinterpret_cast<float*>(stages + kStages * kTile * kPitch);
    bf16* pHi = reinterpret_cast<bf16*>(scores + kHeads * kTile);
    bf16* pLo = pHi + kHeads * kPPitch;
    float* maxS = reinterpret_cast<float*>(pLo + kHeads * kPPitch);
    float* sumS = maxS + kHeads;
    float* corrS = sumS + kHeads;

    const int split = blockIdx.x, t = blockIdx.y, tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, tg = lane & 3;
    float* out = a.partial + (static_cast<int64_t>(t) * a.splits + split) * kHeads * (kRank + 2);
    const int64_t visible = static_cast<int64_t>(*a.length) + t + 1;
    const int64_t active = min(static_cast<int64_t>(a.splits), (visible + kTile - 1) / kTile);
    if (split >= active) {
        if (tid < kHeads)
            out[tid * (kRank + 2)] = -INFINITY;
        return;
    }
    const int64_t per = (visible + active - 1) / active;
    const int64_t begin = split * per, end = min(visible, begin + per);
    const int tiles = static_cast<int>((end - begin + kTile - 1) / kTile);
    auto stage = [&](int tile) { return stages + (tile % kStages) * kTile * kPitch; };
    auto rowsOf = [&](int tile) {
        return static_cast<int>(min(static_cast<int64_t>(kTile), end - begin - tile * kTile));
    };
    // The first two tiles start streaming before the queries are converted.
    for (int tile = 0; tile < kStages - 1; ++tile) {
        if (tile < tiles)
            copyTile(a.cache, begin + tile * kTile, rowsOf(tile), stage(tile));
        commitCopies();
    }

    // The queries as hi/lo bf16 pairs: all of a thread's 16-byte loads issued before any store.
    auto storeQ = [&](int h, int j, float4 v) {
        const float values[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const bf16 hi = __float2bfloat16(values[k]);
            qHi[h * kPitch + j + k] = hi;
            qLo[h * kPitch + j + k] = __float2bfloat16(values[k] - __bfloat162float(hi));
        }
    };
    {
        const float4* latent =
            reinterpret_cast<const float4*>(a.qLatent + static_cast<int64_t>(t) * kHeads * kRank);
        constexpr int kPerThread = kHeads * kRank / 4 / kThreads;
        float4 v[kPerThread];
#pragma unroll
        for (int m = 0; m < kPerThread; ++m)
            v[m] = __ldg(latent + tid + m * kThreads);
#pragma unroll
        for (int m = 0; m < kPerThread; ++m) {
            const int i = tid + m * kThreads;
            storeQ(i / (kRank / 4), (i % (kRank / 4)) * 4, v[m]);
        }
        const int h = tid / (kRope / 4), j = (tid % (kRope / 4)) * 4;  // 256 threads = 32 × 16 / 2
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int head = h + half * (kThreads / (kRope / 4));
            const float* pe =
                a.q + t * a.qStride + static_cast<int64_t>(head) * (a.nope + kRope) + a.nope + j;
            storeQ(head, kRank + j,
                   make_float4(__ldg(pe), __ldg(pe + 1), __ldg(pe + 2), __ldg(pe + 3)));
        }
    }
    if (tid < kHeads) {
        maxS[tid] = -INFINITY;
        sumS[tid] = 0.0f;
    }
    float o[2][kOutTiles][4] = {};
    const int sHeads = 16 * (warp & 1), sRows = 8 * (warp >> 1);

    for (int tile = 0; tile < tiles; ++tile) {
        const int rows = rowsOf(tile);
        waitCopies<kStages - 2>();  // this thread's copies of `tile` have landed
        __syncthreads();            // everyone's have; everyone is done with tile - 1
        if (tile + kStages - 1 < tiles)
            copyTile(a.cache, begin + (tile + kStages - 1) * kTile, rowsOf(tile + kStages - 1),
                     stage(tile + kStages - 1));
        commitCopies();
        const bf16* rowsBase = stage(tile);

        // Scores of this warp's 16 heads and 8 rows, in four independent accumulators (the
        // hi and lo terms of even and odd k-steps) so the 72 products do not form one chain.
        float acc[4][4] = {};
#pragma unroll
        for (int step = 0; step < kWidth / 16; ++step) {
            const int k0 = 16 * step;
            const bf16* row = rowsBase + (sRows + g) * kPitch + k0 + 2 * tg;
            const uint32_t b0 = load2(row), b1 = load2(row + 8);
            uint32_t aHi[4], aLo[4];
            const int qAt = (sHeads + (lane & 15)) * kPitch + k0 + (lane >> 4) * 8;
            ldmatrix4(aHi, qHi + qAt);
            ldmatrix4(aLo, qLo + qAt);
            mma(acc[step & 1], aHi, b0, b1);
            mma(acc[2 + (step & 1)], aLo, b0, b1);
        }
        float sc[4];
#pragma unroll
        for (int e = 0; e < 4; ++e)
            sc[e] = (acc[0][e] + acc[1][e]) + (acc[2][e] + acc[3][e]);
        {
            const int n = sRows + 2 * tg;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int h = sHeads + g + 8 * half;
#pragma unroll
                for (int j = 0; j < 2; ++j)
                    scores[h * kTile + n + j] =
                        n + j < rows ? sc[2 * half + j] * a.scale : -INFINITY;
            }
        }
        __syncthreads();

        // Online softmax: eight threads per head, 4 columns each.
        {
            const int h = tid >> 3, part = tid & 7;
            const float* row = scores + h * kTile + part * 4;
            float m = fmaxf(fmaxf(row[0], row[1]), fmaxf(row[2], row[3]));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
            const float oldMax = maxS[h];
            const float newMax = fmaxf(oldMax, m);
            float sum = 0.0f;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float p = __expf(row[j] - newMax);
                sum += p;
                const bf16 hi = __float2bfloat16(p);
                pHi[h * kPPitch + part * 4 + j] = hi;
                pLo[h * kPPitch + part * 4 + j] = __float2bfloat16(p - __bfloat162float(hi));
            }
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
                loadA(pHi, kPPitch, 16 * mt, k0, g, tg, aHi[mt]);
                loadA(pLo, kPPitch, 16 * mt, k0, g, tg, aLo[mt]);
            }
#pragma unroll
            for (int nt = 0; nt < kOutTiles; nt += 2) {
                const int n = 8 * kOutTiles * warp + 8 * nt;
                uint32_t b[4];
                ldmatrix4Trans(b, rowsBase + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * kPitch +
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
    waitCopies<0>();
    __syncthreads();
    if (tid < kHeads) {
        out[tid * (kRank + 2)] = maxS[tid];
        out[tid * (kRank + 2) + 1] = sumS[tid];
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int nt = 0; nt < kOutTiles; ++nt) {
            const int col = 8 * kOutTiles * warp + 8 * nt + 2 * tg;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                float* dst = out + (16 * mt + g + 8 * half) * (kRank + 2) + 2 + col;
                dst[0] = o[mt][nt][2 * half];
                dst[1] = o[mt][nt][2 * half + 1];
            }
        }
    }
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
    tensorCoreAttentionKernel<<<dim3(a.splits, a.tokens), kThreads, kSharedBytes, stream>>>(a);
}

}  // namespace folio::inference::cuda
