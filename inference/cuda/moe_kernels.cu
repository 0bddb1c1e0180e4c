// SPDX-License-Identifier: GPL-3.0-or-later
// Mixture-of-experts routing on the GPU: scores (sigmoid or softmax), the bias-corrected,
// group-limited top-k choice (ties to the lower index, as the CPU reference), renormalised and
// scaled weights; the shared experts appended as extra slots of weight 1; for decode, the
// router product and the choice in one launch. And the weighted sum of the experts' outputs back
// into the residual stream.
#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxExperts = 1024;
constexpr int kMaxGroups = 64;

struct Best {
    float value;
    int index;
};

__device__ __forceinline__ Best better(Best a, Best b) {
    if (a.value != b.value)
        return a.value > b.value ? a : b;
    return a.index < b.index ? a : b;
}

__device__ Best blockArgmax(Best mine, Best* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int offset = 16; offset > 0; offset >>= 1) {
        Best other{__shfl_xor_sync(0xffffffffu, mine.value, offset),
                   __shfl_xor_sync(0xffffffffu, mine.index, offset)};
        mine = better(mine, other);
    }
    __syncthreads();
    if (lane == 0)
        scratch[warp] = mine;
    __syncthreads();
    Best result = scratch[0];
    for (int i = 1; i < kThreads / 32; ++i)
        result = better(result, scratch[i]);
    return result;
}

// The choice for token t by a whole block of kThreads threads.
__device__ void chooseExperts(const MoeSelectArgs& a, int t) {
    __shared__ float scores[kMaxExperts], choice[kMaxExperts];
    __shared__ float groupScore[kMaxGroups];
    __shared__ Best scratch[kThreads / 32];
    __shared__ float reduce[32];
    __shared__ bool taken[kMaxExperts];
    const int E = a.experts;
    const float* logits = a.logits + static_cast<int64_t>(t) * E;
    if (a.sigmoid) {
        for (int e = threadIdx.x; e < E; e += kThreads)
            scores[e] = sigmoidf(logits[e]);
    } else {
        float m = -INFINITY;
        for (int e = threadIdx.x; e < E; e += kThreads)
            m = fmaxf(m, logits[e]);
        Best mb = blockArgmax(Best{m, 0}, scratch);
        float sum = 0.0f;
        for (int e = threadIdx.x; e < E; e += kThreads)
            sum += scores[e] = __expf(logits[e] - mb.value);
        const float total = blockSum(sum, reduce);
        for (int e = threadIdx.x; e < E; e += kThreads)
            scores[e] /= total;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += kThreads) {
        choice[e] = scores[e] + a.correctionBias[e];
        taken[e] = false;
    }
    __syncthreads();
    if (a.grouped && a.groups > 1) {
        const int perGroup = E / a.groups;
        for (int g = threadIdx.x; g < a.groups; g += kThreads) {
            // The two best of the group; on equal values the lower index counts first.
            float first = -INFINITY, second = -INFINITY;
            for (int i = 0; i < perGroup; ++i) {
                const float value = choice[g * perGroup + i];
                if (value > first) {
                    second = first;
                    first = value;
                } else if (value > second) {
                    second = value;
                }
            }
            groupScore[g] = first + second;
        }
        __syncthreads();
        // Keep the best topGroups groups; mask the others' experts.
        __shared__ bool kept[kMaxGroups];
        if (threadIdx.x == 0) {
            for (int g = 0; g < a.groups; ++g)
                kept[g] = false;
            for (int k = 0; k < a.topGroups; ++k) {
                int best = -1;
                for (int g = 0; g < a.groups; ++g) {
                    if (!kept[g] && (best < 0 || groupScore[g] > groupScore[best]))
                        best = g;
                }
                kept[best] = true;
            }
        }
        __syncthreads();
        for (int e = threadIdx.x; e < E; e += kThreads) {
            if (!kept[e / perGroup])
                choice[e] = -INFINITY;
        }
        __syncthreads();
    }
    const int slots = a.topK + a.sharedSlots;
    int32_t* ids = a.ids + static_cast<int64_t>(t) * slots;
    float* weights = a.weights + static_cast<int64_t>(t) * slots;
    float sum = 0.0f;
    for (int k = 0; k < a.topK; ++k) {
        Best mine{-INFINITY, E};
        for (int e = threadIdx.x; e < E; e += kThreads) {
            if (!taken[e])
                mine = better(mine, Best{choice[e], e});
        }
        const Best chosen = blockArgmax(mine, scratch);
        const float weight = a.biasedWeights ? scores[chosen.index] + a.correctionBias[chosen.index]
                                             : scores[chosen.index];
        sum += weight;
        if (threadIdx.x == 0) {
            ids[k] = chosen.index;
            weights[k] = weight;
        }
        if (threadIdx.x == 0)
            taken[chosen.index] = true;
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        for (int k = 0; k < a.topK; ++k) {
            float w = weights[k];
            if (a.renormalize)
                w /= sum + 1e-20f;
            weights[k] = w * a.scaling;
        }
        for (int k = 0; k < a.sharedSlots; ++k) {
            ids[a.topK + k] = E + k;
            weights[a.topK + k] = 1.0f;
        }
    }
}

__global__ void __launch_bounds__(kThreads) selectKernel(MoeSelectArgs a) {
    chooseExperts(a, blockIdx.x);
}

// Decode's router product and expert choice in one launch. Each warp computes one router logit
// (bf16 weights, the input RMS-normalised on load into shared memory); each block publishes its
// logits and counts itself done; the last block to finish makes the choice and resets the count
// for the next launch (the decode graph replays this node every step).
__global__ void __launch_bounds__(kThreads) routeKernel(MoeRouteArgs r) {
    extern __shared__ float xs[];
    __shared__ float reduce[32];
    __shared__ bool lastBlock;
    const int D = r.hidden;
    for (int i = threadIdx.x; i < D; i += kThreads)
        xs[i] = r.x[i];
    float sum = 0.0f;
    for (int i = threadIdx.x; i < D; i += kThreads)
        sum += xs[i] * xs[i];
    const float inv = rsqrtf(blockSum(sum, reduce) / static_cast<float>(D) + r.normEps);
    for (int i = threadIdx.x; i < D; i += kThreads)
        xs[i] = r.normWeight[i] * (xs[i] * inv);
    __syncthreads();

    const int lane = threadIdx.x & 31;
    const int expert = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
    if (expert < r.select.experts) {
        const bf16* row = r.router + static_cast<int64_t>(expert) * D;
        float acc = 0.0f;
        for (int k = lane * 8; k < D; k += 32 * 8) {
            accumulate8(__ldg(reinterpret_cast<const uint4*>(row + k)), xs + k, acc);
        }
        acc = warpSum(acc);
        if (lane == 0)
            r.logits[expert] = acc;
    }
    // Publish this block's logits before counting it done (the pattern of CUDA's
    // threadFenceReduction sample).
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0)
        lastBlock = atomicAdd(r.blocksDone, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!lastBlock)
        return;
    __threadfence();
    chooseExperts(r.select, 0);
    if (threadIdx.x == 0)
        *r.blocksDone = 0;
}

__global__ void combineKernel(float* x, const float* y, const float* weights, int slots,
                              int hidden) {
    const int t = blockIdx.y;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= hidden)
        return;
    const float* yt = y + static_cast<int64_t>(t) * slots * hidden;
    const float* wt = weights + static_cast<int64_t>(t) * slots;
    float acc = 0.0f;
    for (int j = 0; j < slots; ++j)
        acc = fmaf(wt[j], yt[static_cast<int64_t>(j) * hidden + i], acc);
    x[static_cast<int64_t>(t) * hidden + i] += acc;
}

__global__ void gatherKernel(const float* x, const int32_t* rows, int width, float* out) {
    const float* src = x + static_cast<int64_t>(rows[blockIdx.x]) * width;
    float* dst = out + static_cast<int64_t>(blockIdx.x) * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        dst[i] = src[i];
}

__global__ void scatterAddKernel(float* x, const int32_t* rows, const float* weights,
                                 const float* y, int width) {
    float* dst = x + static_cast<int64_t>(rows[blockIdx.x]) * width;
    const float* src = y + static_cast<int64_t>(blockIdx.x) * width;
    const float w = weights[blockIdx.x];
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        dst[i] = fmaf(w, src[i], dst[i]);
}

}  // namespace

void launchMoeSelect(const MoeSelectArgs& a, cudaStream_t stream) {
    selectKernel<<<a.tokens, kThreads, 0, stream>>>(a);
}

void launchMoeRoute(const MoeRouteArgs& args, cudaStream_t stream) {
    MoeRouteArgs r = args;
    r.select.logits = r.logits;
    const int warps = kThreads / 32;
    const int blocks = (r.select.experts + warps - 1) / warps;
    routeKernel<<<blocks, kThreads, sizeof(float) * r.hidden, stream>>>(r);
}

void launchMoeCombine(float* x, const float* y, const float* weights, int tokens, int slots,
                      int hidden, cudaStream_t stream) {
    combineKernel<<<dim3((hidden + 255) / 256, tokens), 256, 0, stream>>>(x, y, weights, slots,
                                                                          hidden);
}

void launchGatherRows(const float* x, const int32_t* rows, int count, int width, float* out,
                      cudaStream_t stream) {
    if (count > 0)
        gatherKernel<<<count, 256, 0, stream>>>(x, rows, width, out);
}

void launchScatterAddRows(float* x, const int32_t* rows, const float* weights, const float* y,
                          int count, int width, cudaStream_t stream) {
    if (count > 0)
        scatterAddKernel<<<count, 256, 0, stream>>>(x, rows, weights, y, width);
}

}  // namespace folio::inference::cuda
