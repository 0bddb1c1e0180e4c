// SPDX-License-Identifier: GPL-3.0-or-later
// MLA in the absorbed form over the latent cache (NoPE: nothing is rotated):
//   score(t, h, s) = scale * ((W_UK_h^T q_nope) . c_s + q_pe . k_pe_s),
//   o(t, h) = W_UV_h sum_s softmax(score)_s c_s.
// The cache is read in tiles that every head of the block shares; the sequence is split over
// blocks whose partial softmax statistics are merged afterwards (flash-decoding).
#include <cfloat>

#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTileRows = 32;
constexpr int kMinRowsPerSplit = kTileRows;

__device__ __forceinline__ const bf16* cacheRow(const LatentCache& c, int64_t row) {
    return c.pages[row / c.pageRows] + (row % c.pageRows) * c.width;
}

__global__ void appendKernel(const float* kvA, int64_t stride, const float* norm, float eps,
                             int rank, LatentCache cache, const int32_t* length) {
    __shared__ float scratch[32];
    const int t = blockIdx.x;
    const float* row = kvA + t * stride;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < rank; i += blockDim.x)
        sum += row[i] * row[i];
    const float inv = rsqrtf(blockSum(sum, scratch) / static_cast<float>(rank) + eps);
    const int64_t position = static_cast<int64_t>(*length) + t;
    bf16* out = cache.pages[position / cache.pageRows] + (position % cache.pageRows) * cache.width;
    for (int i = threadIdx.x; i < cache.width; i += blockDim.x)
        out[i] = __float2bfloat16(i < rank ? norm[i] * (row[i] * inv) : row[i]);
}

// grid (H, ceil(r / 64), T), 8 warps: qLatent[j] = sum_n q_nope[n] W_UK[n][j] for 64 columns;
// each warp takes every 8th n (two columns per lane), then the warps' partial sums are added.
__global__ void absorbKernel(const float* q, int64_t qStride, const bf16* kvB, int nope, int rope,
                             int dv, int rank, int heads, float* qLatent) {
    __shared__ float partial[8][64];
    const int h = blockIdx.x, t = blockIdx.z;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int j = blockIdx.y * 64 + 2 * lane;
    const float* qh = q + t * qStride + static_cast<int64_t>(h) * (nope + rope);
    const bf16* uk = kvB + static_cast<int64_t>(h) * (nope + dv) * rank;
    float2 acc = make_float2(0.0f, 0.0f);
    if (j + 1 < rank) {
        for (int n = warp; n < nope; n += 8) {
            const float2 w = __bfloat1622float2(
                *reinterpret_cast<const __nv_bfloat162*>(uk + static_cast<int64_t>(n) * rank + j));
            const float qn = qh[n];
            acc.x = fmaf(qn, w.x, acc.x);
            acc.y = fmaf(qn, w.y, acc.y);
        }
    }
    partial[warp][2 * lane] = acc.x;
    partial[warp][2 * lane + 1] = acc.y;
    __syncthreads();
    if (threadIdx.x < 64 && blockIdx.y * 64 + static_cast<int>(threadIdx.x) < rank) {
        float sum = 0.0f;
        for (int w = 0; w < 8; ++w)
            sum += partial[w][threadIdx.x];
        qLatent[(static_cast<int64_t>(t) * heads + h) * rank + blockIdx.y * 64 + threadIdx.x] = sum;
    }
}

// grid (splits, T). Shared: q [H][width] f32 | o [H][r] f32 | m, l [H] | p [warps][32] |
// tile [32][width + 2] bf16 (the padding puts each row on its own bank).
__global__ void __launch_bounds__(kThreads) attentionKernel(MlaAttentionArgs a) {
    extern __shared__ float shared[];
    const int H = a.heads, r = a.latentRank, width = r + a.rope, pitch = width + 2;
    float* qs = shared;
    float* os = qs + H * width;
    float* ms = os + H * r;
    float* ls = ms + H;
    float* ps = ls + H;
    bf16* tile = reinterpret_cast<bf16*>(ps + kWarps * 32);

    const int split = blockIdx.x, t = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float* out = a.partial + (static_cast<int64_t>(t) * a.splits + split) * H * (r + 2);
    // Short contexts use fewer splits than the grid has blocks (the grid is fixed inside the
    // captured decode step); the idle blocks mark their part empty.
    const int64_t visible = static_cast<int64_t>(*a.length) + t + 1;
    const int64_t active =
        min(static_cast<int64_t>(a.splits), (visible + kMinRowsPerSplit - 1) / kMinRowsPerSplit);
    if (split >= active) {
        for (int h = threadIdx.x; h < H; h += kThreads)
            out[h * (r + 2)] = -INFINITY;
        return;
    }
    for (int i = threadIdx.x; i < H * width; i += kThreads) {
        const int h = i / width, j = i % width;
        qs[i] = j < r ? a.qLatent[(static_cast<int64_t>(t) * H + h) * r + j]
                      : a.q[t * a.qStride + static_cast<int64_t>(h) * (a.nope + a.rope) + a.nope +
                            (j - r)];
    }
    for (int i = threadIdx.x; i < H * r; i += kThreads)
        os[i] = 0.0f;
    for (int h = threadIdx.x; h < H; h += kThreads) {
        ms[h] = -INFINITY;
        ls[h] = 0.0f;
    }
    const int64_t per = (visible + active - 1) / active;
    const int64_t begin = split * per;
    const int64_t end = min(visible, begin + per);

    for (int64_t base = begin; base < end; base += kTileRows) {
        __syncthreads();
        const int rows = static_cast<int>(min(static_cast<int64_t>(kTileRows), end - base));
        const int pairs = width / 2;
        for (int i = threadIdx.x; i < rows * pairs; i += kThreads) {
            const int row = i / pairs, c = i % pairs;
            reinterpret_cast<__nv_bfloat162*>(tile + row * pitch)[c] =
                reinterpret_cast<const __nv_bfloat162*>(cacheRow(a.cache, base + row))[c];
        }
        __syncthreads();
        for (int h = warp; h < H; h += kWarps) {
            float score = -INFINITY;
            if (lane < rows) {
                const float* qh = qs + h * width;
                const __nv_bfloat162* row =
                    reinterpret_cast<const __nv_bfloat162*>(tile + lane * pitch);
                float acc = 0.0f;
                for (int c = 0; c < pairs; ++c) {
                    const float2 kv = __bfloat1622float2(row[c]);
                    acc = fmaf(qh[2 * c], kv.x, fmaf(qh[2 * c + 1], kv.y, acc));
                }
                score = acc * a.scale;
            }
            const float oldMax = ms[h];
            const float newMax = fmaxf(oldMax, warpMax(score));
            const float correction = __expf(oldMax - newMax);
            const float p = lane < rows ? __expf(score - newMax) : 0.0f;
            const float rowSum = warpSum(p);
            ps[warp * 32 + lane] = p;
            __syncwarp();
            float* oh = os + h * r;
            for (int c = lane; c < r; c += 32) {
                float acc = oh[c] * correction;
                for (int i = 0; i < rows; ++i)
                    acc = fmaf(ps[warp * 32 + i], __bfloat162float(tile[i * pitch + c]), acc);
                oh[c] = acc;
            }
            __syncwarp();
            if (lane == 0) {
                ms[h] = newMax;
                ls[h] = ls[h] * correction + rowSum;
            }
            __syncwarp();
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < H * (r + 2); i += kThreads) {
        const int h = i / (r + 2), j = i % (r + 2);
        out[i] = j == 0 ? ms[h] : (j == 1 ? ls[h] : os[h * r + j - 2]);
    }
}

constexpr int kCombineColumns = 128;
// The split weights' shared array, a whole number of the combine loop's unrolled steps.
__host__ __device__ constexpr int paddedSplits(int splits) {
    return (splits + 7) / 8 * 8;
}

// grid (H, ceil(rank / 128), T), 128 threads: merges the splits' partial results into the
// normalised latent output, 128 columns per block (so a decode step's merge spreads over 128
// blocks, not 32). Each block computes the splits' weights into shared memory; then each thread
// sums its column over the splits that saw any rows (independent loads, so they overlap).
__global__ void combineKernel(const float* partial, int splits, int heads, int rank, float* out) {
    extern __shared__ float weights[];  // [paddedSplits(splits)]
    __shared__ float scratch[32];
    const int h = blockIdx.x, t = blockIdx.z;
    const int64_t stride = static_cast<int64_t>(heads) * (rank + 2);
    const float* base = partial + static_cast<int64_t>(t) * splits * stride + h * (rank + 2);
    float localMax = -INFINITY;
    for (int s = threadIdx.x; s < splits; s += blockDim.x)
        localMax = fmaxf(localMax, base[s * stride]);
    localMax = warpMax(localMax);
    if ((threadIdx.x & 31) == 0)
        scratch[threadIdx.x >> 5] = localMax;
    __syncthreads();
    float maxScore = -INFINITY;
    for (int i = 0; i < (static_cast<int>(blockDim.x) + 31) / 32; ++i)
        maxScore = fmaxf(maxScore, scratch[i]);
    float sum = 0.0f;
    for (int s = threadIdx.x; s < paddedSplits(splits); s += blockDim.x) {
        const float m = s < splits ? base[s * stride] : -INFINITY;
        const float w = m == -INFINITY ? 0.0f : __expf(m - maxScore);
        weights[s] = w;  // zero past the splits: the unrolled loop's vector loads may read them
        if (w != 0.0f)
            sum += w * base[s * stride + 1];
    }
    const float total = blockSum(sum, scratch);  // synchronises, so weights are visible
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    for (int j = blockIdx.y * kCombineColumns + threadIdx.x;
         j < min(rank, (blockIdx.y + 1) * kCombineColumns); j += blockDim.x) {
        float acc = 0.0f;
#pragma unroll 8
        for (int s = 0; s < splits; ++s) {
            const float w = weights[s];
            if (w != 0.0f)
                acc = fmaf(base[s * stride + 2 + j], w, acc);
        }
        out[(static_cast<int64_t>(t) * heads + h) * rank + j] = acc * inv;
    }
}

// grid (H, ceil(dv / 8), T), 8 warps: out[t][h][i] = W_UV_h[i] . oLatent[t][h], a warp per
// output value, reading its weight row with 16-byte loads.
__global__ void upValueKernel(const float* oLatent, const bf16* kvB, int heads, int nope, int dv,
                              int rank, float* out) {
    const int h = blockIdx.x, t = blockIdx.z;
    const int lane = threadIdx.x & 31, i = blockIdx.y * 8 + (threadIdx.x >> 5);
    if (i >= dv)
        return;
    const float* latent = oLatent + (static_cast<int64_t>(t) * heads + h) * rank;
    const bf16* row = kvB + (static_cast<int64_t>(h) * (nope + dv) + nope + i) * rank;
    float acc = 0.0f;
    for (int j = lane * 8; j < rank; j += 32 * 8) {
        const uint4 packed = *reinterpret_cast<const uint4*>(row + j);
        const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
        for (int k = 0; k < 4; ++k) {
            const float2 w = __bfloat1622float2(pairs[k]);
            acc = fmaf(w.x, latent[j + 2 * k], fmaf(w.y, latent[j + 2 * k + 1], acc));
        }
    }
    acc = warpSum(acc);
    if (lane == 0)
        out[(static_cast<int64_t>(t) * heads + h) * dv + i] = acc;
}

}  // namespace

void launchMlaAppend(const float* kvA, int64_t kvAStride, const float* latentNorm, float eps,
                     int latentRank, LatentCache cache, const int32_t* length, int tokens,
                     cudaStream_t stream) {
    appendKernel<<<tokens, 256, 0, stream>>>(kvA, kvAStride, latentNorm, eps, latentRank, cache,
                                             length);
}

void launchMlaAbsorbQuery(const float* q, int64_t qStride, const bf16* kvB, int heads, int nope,
                          int rope, int valueDim, int latentRank, int tokens, float* qLatent,
                          cudaStream_t stream) {
    const dim3 grid(heads, (latentRank + 63) / 64, tokens);
    absorbKernel<<<grid, 256, 0, stream>>>(q, qStride, kvB, nope, rope, valueDim, latentRank, heads,
                                           qLatent);
}

size_t mlaAttentionSharedBytes(int heads, int latentRank, int rope) {
    const int width = latentRank + rope;
    return sizeof(float) *
               (static_cast<size_t>(heads) * width + heads * latentRank + 2 * heads + kWarps * 32) +
           sizeof(bf16) * kTileRows * (width + 2);
}

cudaError_t configureMlaAttention(size_t sharedBytes) {
    const cudaError_t status =
        cudaFuncSetAttribute(attentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(sharedBytes));
    return status != cudaSuccess ? status : configureMlaTensorCoreAttention();
}

void launchMlaAttention(const MlaAttentionArgs& a, cudaStream_t stream) {
    // The tensor-core kernel copies 32-row tiles, each within at most two pages.
    if (mlaTensorCoreShape(a.heads, a.latentRank, a.rope) && a.cache.pageRows >= 32) {
        launchMlaTensorCoreAttention(a, stream);
    } else {
        const size_t shared = mlaAttentionSharedBytes(a.heads, a.latentRank, a.rope);
        attentionKernel<<<dim3(a.splits, a.tokens), kThreads, shared, stream>>>(a);
    }
    combineKernel<<<dim3(a.heads, (a.latentRank + kCombineColumns - 1) / kCombineColumns, a.tokens),
                    kCombineColumns, paddedSplits(a.splits) * sizeof(float), stream>>>(
        a.partial, a.splits, a.heads, a.latentRank, a.out);
}

void launchMlaUpValue(const float* oLatent, const bf16* kvB, int heads, int nope, int valueDim,
                      int latentRank, int tokens, float* out, cudaStream_t stream) {
    upValueKernel<<<dim3(heads, (valueDim + 7) / 8, tokens), 256, 0, stream>>>(
        oLatent, kvB, heads, nope, valueDim, latentRank, out);
}

}  // namespace folio::inference::cuda
