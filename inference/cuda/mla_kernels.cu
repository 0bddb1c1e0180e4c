// SPDX-License-Identifier: GPL-3.0-or-later
// MLA in the absorbed form over the latent cache (NoPE: nothing is rotated):
//   score(t, h, s) = scale * ((W_UK_h^T q_nope) . c_s + q_pe . k_pe_s),
//   o(t, h) = W_UV_h sum_s softmax(score)_s c_s.
// A call runs, in order: the append of the new rows with the query absorption (one launch; the
// two are independent), the attention split over the sequence (flash-decoding: for the real
// model's shape the tensor-core kernel of mla_decode_wgmma.cu on Hopper or mla_tensor_core.cu
// elsewhere, else the CUDA-core kernel here, whose blocks share each cache tile between all
// heads), the merge of the splits' partial results, and the value up-projection. The
// matrix-vector kernels (absorption, up-projection) read their bf16 weights with 16-byte loads,
// all of a thread's issued before its products, and reduce across lanes and warps; the merge
// spreads every head's columns over several blocks.
#include "dependent_launch.cuh"
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

// Eight consecutive bf16 weights at row[j ..] as floats, zeros past `count` (the row's length):
// one 16-byte load where rows are whole 16-byte pieces, else one load per value.
__device__ __forceinline__ void loadWeights8(const bf16* row, int j, int count, bool vectors,
                                             float w[8]) {
    if (vectors && j + 8 <= count) {
        const uint4 packed = __ldg(reinterpret_cast<const uint4*>(row + j));
        const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const float2 v = __bfloat1622float2(pairs[k]);
            w[2 * k] = v.x;
            w[2 * k + 1] = v.y;
        }
    } else {
#pragma unroll
        for (int k = 0; k < 8; ++k)
            w[k] = j + k < count ? __bfloat162float(row[j + k]) : 0.0f;
    }
}

struct AppendArgs {
    const float* kvA;
    int64_t stride;
    const float* norm;
    float eps;
    int rank;
    LatentCache cache;
    const int32_t* length;
};

struct AbsorbArgs {
    const float* q;
    int64_t qStride;
    const bf16* kvB;
    int heads, nope, rope, dv, rank;
    float* qLatent;
};

// A block writes token t's cache row: the RMS-normalised latent, then the rope part. The length
// and its page are read first, so that their loads overlap the row's and the reduction.
__device__ void appendRow(const AppendArgs& a, int t) {
    __shared__ float scratch[32];
    const float* row = a.kvA + t * a.stride;
    const int64_t position = static_cast<int64_t>(*a.length) + t;
    bf16* out =
        a.cache.pages[position / a.cache.pageRows] + (position % a.cache.pageRows) * a.cache.width;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < a.rank; i += blockDim.x)
        sum += row[i] * row[i];
    const float inv = rsqrtf(blockSum(sum, scratch) / static_cast<float>(a.rank) + a.eps);
    for (int i = threadIdx.x; i < a.cache.width; i += blockDim.x)
        out[i] = __float2bfloat16(i < a.rank ? a.norm[i] * (row[i] * inv) : row[i]);
}

// Columns per block of the query absorption.
constexpr int kAbsorbColumns = 64;

// A block computes qLatent[t][h][j] = sum_n q_nope[n] W_UK[n][j] for 64 columns j: thread
// (slot = tid / 8, c = tid % 8) takes columns 8 c .. + 8 of rows n = slot, slot + 32, ..., its
// 16-byte weight loads all in flight at once; the 32 slots' sums are added by shuffles (the four
// slots of a warp) and through shared memory (the eight warps).
__device__ void absorbColumns(const AbsorbArgs& a, int block, int t) {
    __shared__ float sums[kWarps][kAbsorbColumns];
    const int columnBlocks = (a.rank + kAbsorbColumns - 1) / kAbsorbColumns;
    const int h = block / columnBlocks, j0 = block % columnBlocks * kAbsorbColumns;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int slot = threadIdx.x >> 3, j = j0 + 8 * (threadIdx.x & 7);
    const float* qh = a.q + t * a.qStride + static_cast<int64_t>(h) * (a.nope + a.rope);
    const bf16* uk = a.kvB + static_cast<int64_t>(h) * (a.nope + a.dv) * a.rank;
    const bool vectors = a.rank % 8 == 0;
    float acc[8] = {};
#pragma unroll 4
    for (int n = slot; n < a.nope; n += kThreads / 8) {
        float w[8];
        loadWeights8(uk + static_cast<int64_t>(n) * a.rank, j, a.rank, vectors, w);
        const float qn = __ldg(qh + n);
#pragma unroll
        for (int k = 0; k < 8; ++k)
            acc[k] = fmaf(qn, w[k], acc[k]);
    }
#pragma unroll
    for (int k = 0; k < 8; ++k) {
        acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], 8);
        acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], 16);
    }
    if (lane < 8) {
#pragma unroll
        for (int k = 0; k < 8; ++k)
            sums[warp][8 * lane + k] = acc[k];
    }
    __syncthreads();
    const int column = j0 + static_cast<int>(threadIdx.x);
    if (threadIdx.x < kAbsorbColumns && column < a.rank) {
        float total = 0.0f;
        for (int w = 0; w < kWarps; ++w)
            total += sums[w][threadIdx.x];
        a.qLatent[(static_cast<int64_t>(t) * a.heads + h) * a.rank + column] = total;
    }
}

// grid (1, T)
__global__ void __launch_bounds__(kThreads) appendKernel(AppendArgs a) {
    appendRow(a, blockIdx.y);
}

// grid (1 + H * ceil(r / 64), T): block 0 appends token t's row (first, as the longest chain of
// dependent loads), the others absorb its query.
__global__ void __launch_bounds__(kThreads)
    appendAbsorbKernel(AppendArgs append, AbsorbArgs absorb) {
    waitForPriorGrid();
    if (blockIdx.x == 0)
        appendRow(append, blockIdx.y);
    else
        absorbColumns(absorb, blockIdx.x - 1, blockIdx.y);
    allowDependentLaunch();
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

    waitForPriorGrid();
    const int split = blockIdx.x, t = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    // Short contexts use fewer splits than the grid has blocks (the grid is fixed inside the
    // captured decode step); the idle blocks mark their part empty.
    const int64_t visible = static_cast<int64_t>(*a.length) + t + 1;
    const int64_t active =
        min(static_cast<int64_t>(a.splits), (visible + kMinRowsPerSplit - 1) / kMinRowsPerSplit);
    if (split >= active) {
        for (int h = threadIdx.x; h < H; h += kThreads) {
            mlaSplitMaxima(a, t, h)[split] = -INFINITY;
            mlaSplitSums(a, t, h)[split] = 0.0f;
        }
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
    float* out = mlaSplitOutputs(a, t, split);
    for (int i = threadIdx.x; i < H * r; i += kThreads)
        out[i] = os[i];
    for (int h = threadIdx.x; h < H; h += kThreads) {
        mlaSplitMaxima(a, t, h)[split] = ms[h];
        mlaSplitSums(a, t, h)[split] = ls[h];
    }
}

constexpr int kCombineColumns = 64;  // per block: two per lane, 32 apart
constexpr int kCombineWarps = 16;    // per block: each sums every 16th split

// grid (H, ceil(r / 64), T), 16 warps: merges the splits' results into the normalised latent
// output, 64 columns per block. Every warp finds the largest maximum, the number of splits in
// use (a prefix of them) and the softmax's total; warp w then sums the splits w, w + 16, ... of
// the block's columns, their loads unrolled to be in flight together, and the warps' sums are
// added through shared memory.
__global__ void __launch_bounds__(32 * kCombineWarps) combineKernel(MlaAttentionArgs a) {
    extern __shared__ float weights[];  // [splits]
    __shared__ float columnSums[kCombineWarps][kCombineColumns];
    waitForPriorGrid();
    const int h = blockIdx.x, t = blockIdx.z, r = a.latentRank;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float* maxima = mlaSplitMaxima(a, t, h);
    const float* sums = mlaSplitSums(a, t, h);
    // One pass over the statistics (a split not in use has a sum of 0): each lane's largest
    // maximum and its total relative to it, then the warp's.
    float laneMax = -INFINITY, laneTotal = 0.0f;
    for (int s = lane; s < a.splits; s += 32) {
        const float m = __ldg(maxima + s), l = __ldg(sums + s);
        if (m > laneMax) {
            laneTotal = laneTotal * __expf(laneMax - m) + l;
            laneMax = m;
        } else if (m != -INFINITY) {
            laneTotal += l * __expf(m - laneMax);
        }
    }
    const float maxScore = warpMax(laneMax);
    const float total =
        warpSum(laneMax == -INFINITY ? 0.0f : laneTotal * __expf(laneMax - maxScore));
    // The splits' weights (their maxima are in the L1 cache now) and how many are in use.
    int active = 0;
    for (int s0 = 0; s0 < a.splits; s0 += 32) {
        const int s = s0 + lane;
        const float m = s < a.splits ? __ldg(maxima + s) : -INFINITY;
        if (warp == 0 && s < a.splits)
            weights[s] = m == -INFINITY ? 0.0f : __expf(m - maxScore);
        active += __popc(__ballot_sync(0xffffffffu, m != -INFINITY));
    }
    __syncthreads();  // the weights are visible

    const int j0 = blockIdx.y * kCombineColumns + lane, j1 = j0 + 32;
    const float* outputs = mlaSplitOutputs(a, t, 0) + static_cast<int64_t>(h) * r;
    const int64_t splitStride = static_cast<int64_t>(a.heads) * r;
    float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll 8
    for (int s = warp; s < active; s += kCombineWarps) {
        const float w = weights[s];
        const float* o = outputs + s * splitStride;
        acc0 = fmaf(w, j0 < r ? __ldg(o + j0) : 0.0f, acc0);
        acc1 = fmaf(w, j1 < r ? __ldg(o + j1) : 0.0f, acc1);
    }
    columnSums[warp][lane] = acc0;
    columnSums[warp][lane + 32] = acc1;
    __syncthreads();
    const int column = blockIdx.y * kCombineColumns + static_cast<int>(threadIdx.x);
    if (threadIdx.x < kCombineColumns && column < r) {
        float sum = 0.0f;
        for (int w = 0; w < kCombineWarps; ++w)
            sum += columnSums[w][threadIdx.x];
        a.out[(static_cast<int64_t>(t) * a.heads + h) * r + column] = sum / total;
    }
    allowDependentLaunch();
}

constexpr int kUpRowsPerWarp = 2;

// grid (H, ceil(dv / 16), T), 8 warps: out[t][h][i] = W_UV_h[i] . oLatent[t][h], two output
// values per warp: lane takes columns 8 lane .. + 8 of every 256, its 16-byte loads of the
// latent and of both weight rows issued before the products, then the warp sums.
__global__ void __launch_bounds__(kThreads)
    upValueKernel(const float* oLatent, const bf16* kvB, int heads, int nope, int dv, int rank,
                  float* out) {
    waitForPriorGrid();
    const int h = blockIdx.x, t = blockIdx.z;
    const int lane = threadIdx.x & 31;
    const int i0 = (blockIdx.y * kWarps + (threadIdx.x >> 5)) * kUpRowsPerWarp;
    if (i0 >= dv)
        return;
    const float* latent = oLatent + (static_cast<int64_t>(t) * heads + h) * rank;
    const bf16* rows = kvB + (static_cast<int64_t>(h) * (nope + dv) + nope + i0) * rank;
    const bool vectors = rank % 8 == 0;
    float acc[kUpRowsPerWarp] = {};
#pragma unroll 2
    for (int j = 8 * lane; j < rank; j += 32 * 8) {
        float x[8];
        if (vectors) {
            const float4 lo = __ldg(reinterpret_cast<const float4*>(latent + j));
            const float4 hi = __ldg(reinterpret_cast<const float4*>(latent + j + 4));
            x[0] = lo.x, x[1] = lo.y, x[2] = lo.z, x[3] = lo.w;
            x[4] = hi.x, x[5] = hi.y, x[6] = hi.z, x[7] = hi.w;
        } else {
#pragma unroll
            for (int k = 0; k < 8; ++k)
                x[k] = j + k < rank ? __ldg(latent + j + k) : 0.0f;
        }
#pragma unroll
        for (int row = 0; row < kUpRowsPerWarp; ++row) {
            if (i0 + row < dv) {
                float w[8];
                loadWeights8(rows + static_cast<int64_t>(row) * rank, j, rank, vectors, w);
#pragma unroll
                for (int k = 0; k < 8; ++k)
                    acc[row] = fmaf(w[k], x[k], acc[row]);
            }
        }
    }
#pragma unroll
    for (int row = 0; row < kUpRowsPerWarp; ++row) {
        const float sum = warpSum(acc[row]);
        if (lane == 0 && i0 + row < dv)
            out[(static_cast<int64_t>(t) * heads + h) * dv + i0 + row] = sum;
    }
    allowDependentLaunch();  // o_proj, a dependent launch, reads `out` after its wait
}

}  // namespace

void launchMlaAppend(const float* kvA, int64_t kvAStride, const float* latentNorm, float eps,
                     int latentRank, LatentCache cache, const int32_t* length, int tokens,
                     cudaStream_t stream) {
    const AppendArgs append{kvA, kvAStride, latentNorm, eps, latentRank, cache, length};
    appendKernel<<<dim3(1, tokens), kThreads, 0, stream>>>(append);
}

void launchMlaAppendAndAbsorb(const float* kvA, int64_t kvAStride, const float* latentNorm,
                              float eps, LatentCache cache, const int32_t* length, const float* q,
                              int64_t qStride, const bf16* kvB, int heads, int nope, int rope,
                              int valueDim, int latentRank, int tokens, float* qLatent,
                              cudaStream_t stream) {
    const AppendArgs append{kvA, kvAStride, latentNorm, eps, latentRank, cache, length};
    const AbsorbArgs absorb{q, qStride, kvB, heads, nope, rope, valueDim, latentRank, qLatent};
    const int blocks = 1 + heads * ((latentRank + kAbsorbColumns - 1) / kAbsorbColumns);
    launchDependent(appendAbsorbKernel, dim3(blocks, tokens), kThreads, 0, stream, append, absorb);
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
    if (status != cudaSuccess)
        return status;
    const cudaError_t tensorCores = configureMlaTensorCoreAttention();
    return tensorCores != cudaSuccess ? tensorCores : configureMlaDecodeWgmma();
}

void launchMlaAttention(const MlaAttentionArgs& a, cudaStream_t stream) {
    // The tensor-core kernel copies 32-row tiles, each within at most two pages.
    if (mlaTensorCoreShape(a.heads, a.latentRank, a.rope) && a.cache.pageRows >= 32) {
        if (!launchMlaDecodeWgmma(a, stream))
            launchMlaTensorCoreAttention(a, stream);
    } else {
        const size_t shared = mlaAttentionSharedBytes(a.heads, a.latentRank, a.rope);
        launchDependent(attentionKernel, dim3(a.splits, a.tokens), kThreads, shared, stream, a);
    }
    launchDependent(combineKernel,
                    dim3(a.heads, (a.latentRank + kCombineColumns - 1) / kCombineColumns, a.tokens),
                    32 * kCombineWarps, a.splits * sizeof(float), stream, a);
}

void launchMlaUpValue(const float* oLatent, const bf16* kvB, int heads, int nope, int valueDim,
                      int latentRank, int tokens, float* out, cudaStream_t stream) {
    constexpr int kRowsPerBlock = kWarps * kUpRowsPerWarp;
    launchDependent(upValueKernel,
                    dim3(heads, (valueDim + kRowsPerBlock - 1) / kRowsPerBlock, tokens), kThreads,
                    0, stream, oLatent, kvB, heads, nope, valueDim, latentRank, out);
}

}  // namespace folio::inference::cuda
