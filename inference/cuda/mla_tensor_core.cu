// SPDX-License-Identifier: GPL-3.0-or-later
// MLA attention over the latent cache on tensor cores, for the real model's shape (32 heads,
// latent 512, rope 64): per cache tile of 64 rows, S = Q · tileᵀ (32 × 64, K = 576) and
// O += P · tile[:, :512] with mma.sync m16n8k16 (bf16 in, fp32 accumulate), an online softmax
// between them. The cache values are bf16 already; the queries and the probabilities enter as
// two bf16 terms (hi + lo), so the result keeps close to fp32 accuracy. Writes the same partial
// results (max, sum, unnormalised O per split and head) as the CUDA-core kernel.
#include "device_math.cuh"
#include "kernels.h"
#include "mma.cuh"

namespace folio::inference::cuda {
namespace {

constexpr int kHeads = 32, kRank = 512, kRope = 64, kWidth = kRank + kRope;
constexpr int kPitch = 584;  // bf16 per shared row: fragment loads hit 32 distinct banks
constexpr int kTile = 64;    // cache rows per step
constexpr int kPPitch = 72;  // bf16 per row of P
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;  // warp w: S rows [8 w, 8 w + 8), O columns [64 w, 64 w + 64)
constexpr int kOutTiles = kRank / 8 / kWarps;  // 8-column O tiles per warp

constexpr size_t kSharedBytes = sizeof(bf16) * (2 * kHeads * kPitch + kTile * kPitch) +
                                sizeof(float) * kHeads * kTile +
                                sizeof(bf16) * 2 * kHeads * kPPitch + sizeof(float) * 3 * kHeads;

__device__ __forceinline__ const bf16* cacheRow(const LatentCache& c, int64_t row) {
    return c.pages[row / c.pageRows] + (row % c.pageRows) * c.width;
}

__global__ void __launch_bounds__(kThreads, 1) tensorCoreAttentionKernel(MlaAttentionArgs a) {
    extern __shared__ __align__(16) unsigned char shared[];
    bf16* qHi = reinterpret_cast<bf16*>(shared);
    bf16* qLo = qHi + kHeads * kPitch;
    bf16* tile = qLo + kHeads * kPitch;
    float* scores = reinterpret_cast<float*>(tile + kTile * kPitch);
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
    // The queries as hi/lo bf16 pairs, read with 16-byte loads (all independent, so in flight
    // together): the absorbed latent part, then q_pe.
    auto storeQ = [&](int h, int j, float4 v) {
        const float values[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const bf16 hi = __float2bfloat16(values[k]);
            qHi[h * kPitch + j + k] = hi;
            qLo[h * kPitch + j + k] = __float2bfloat16(values[k] - __bfloat162float(hi));
        }
    };
    const float4* latent =
        reinterpret_cast<const float4*>(a.qLatent + static_cast<int64_t>(t) * kHeads * kRank);
#pragma unroll 4
    for (int i = tid; i < kHeads * kRank / 4; i += kThreads)
        storeQ(i / (kRank / 4), (i % (kRank / 4)) * 4, latent[i]);
    for (int i = tid; i < kHeads * kRope / 4; i += kThreads) {
        const int h = i / (kRope / 4), j = (i % (kRope / 4)) * 4;
        const float* pe =
            a.q + t * a.qStride + static_cast<int64_t>(h) * (a.nope + kRope) + a.nope + j;
        storeQ(h, kRank + j, make_float4(pe[0], pe[1], pe[2], pe[3]));
    }
    if (tid < kHeads) {
        maxS[tid] = -INFINITY;
        sumS[tid] = 0.0f;
    }
    float o[2][kOutTiles][4] = {};
    const int64_t per = (visible + active - 1) / active;
    const int64_t begin = split * per, end = min(visible, begin + per);

    for (int64_t base = begin; base < end; base += kTile) {
        const int rows = static_cast<int>(min(static_cast<int64_t>(kTile), end - base));
        __syncthreads();
        constexpr int kChunks = kWidth / 8;  // 16-byte pieces of a row
        for (int i = tid; i < kTile * kChunks; i += kThreads) {
            const int row = i / kChunks, c = i % kChunks;
            uint4 v = make_uint4(0, 0, 0, 0);
            if (row < rows)
                v = reinterpret_cast<const uint4*>(cacheRow(a.cache, base + row))[c];
            reinterpret_cast<uint4*>(tile + row * kPitch)[c] = v;
        }
        __syncthreads();

        // Scores of this warp's 8 rows for all 32 heads.
        float s[2][4] = {};
        for (int k0 = 0; k0 < kWidth; k0 += 16) {
            const bf16* row = tile + (8 * warp + g) * kPitch + k0 + 2 * tg;
            const uint32_t b0 = load2(row), b1 = load2(row + 8);
            for (int mt = 0; mt < 2; ++mt) {
                uint32_t aHi[4], aLo[4];
                loadA(qHi, kPitch, 16 * mt, k0, g, tg, aHi);
                loadA(qLo, kPitch, 16 * mt, k0, g, tg, aLo);
                mma(s[mt], aHi, b0, b1);
                mma(s[mt], aLo, b0, b1);
            }
        }
        for (int mt = 0; mt < 2; ++mt) {
            const int n = 8 * warp + 2 * tg;
            for (int half = 0; half < 2; ++half) {
                const int h = 16 * mt + g + 8 * half;
                for (int j = 0; j < 2; ++j)
                    scores[h * kTile + n + j] =
                        n + j < rows ? s[mt][2 * half + j] * a.scale : -INFINITY;
            }
        }
        __syncthreads();

        // Online softmax: eight threads per head, 8 columns each.
        {
            const int h = tid >> 3, part = tid & 7;
            const float* row = scores + h * kTile + part * 8;
            float m = -INFINITY;
            for (int j = 0; j < 8; ++j)
                m = fmaxf(m, row[j]);
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
            const float oldMax = maxS[h];
            const float newMax = fmaxf(oldMax, m);
            float sum = 0.0f;
            for (int j = 0; j < 8; ++j) {
                const float p = __expf(row[j] - newMax);
                sum += p;
                const bf16 hi = __float2bfloat16(p);
                pHi[h * kPPitch + part * 8 + j] = hi;
                pLo[h * kPPitch + part * 8 + j] = __float2bfloat16(p - __bfloat162float(hi));
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
        for (int mt = 0; mt < 2; ++mt) {
            const float c0 = corrS[16 * mt + g], c1 = corrS[16 * mt + g + 8];
            for (int nt = 0; nt < kOutTiles; ++nt) {
                o[mt][nt][0] *= c0;
                o[mt][nt][1] *= c0;
                o[mt][nt][2] *= c1;
                o[mt][nt][3] *= c1;
            }
        }
        for (int k0 = 0; k0 < kTile; k0 += 16) {
            uint32_t aHi[2][4], aLo[2][4];
            for (int mt = 0; mt < 2; ++mt) {
                loadA(pHi, kPPitch, 16 * mt, k0, g, tg, aHi[mt]);
                loadA(pLo, kPPitch, 16 * mt, k0, g, tg, aLo[mt]);
            }
            const bf16* r0 = tile + (k0 + 2 * tg) * kPitch;
            for (int nt = 0; nt < kOutTiles; ++nt) {
                const int n = 8 * kOutTiles * warp + 8 * nt + g;
                const uint32_t b0 = pack2(r0[n], r0[kPitch + n]);
                const uint32_t b1 = pack2(r0[8 * kPitch + n], r0[9 * kPitch + n]);
                for (int mt = 0; mt < 2; ++mt) {
                    mma(o[mt][nt], aHi[mt], b0, b1);
                    mma(o[mt][nt], aLo[mt], b0, b1);
                }
            }
        }
    }
    __syncthreads();
    if (tid < kHeads) {
        out[tid * (kRank + 2)] = maxS[tid];
        out[tid * (kRank + 2) + 1] = sumS[tid];
    }
    for (int mt = 0; mt < 2; ++mt) {
        for (int nt = 0; nt < kOutTiles; ++nt) {
            const int col = 8 * kOutTiles * warp + 8 * nt + 2 * tg;
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
