// SPDX-License-Identifier: GPL-3.0-or-later
// Mixture-of-experts routing on the GPU: scores (sigmoid or softmax), the bias-corrected,
// group-limited top-k choice (ties to the lower index, as the CPU reference), renormalised and
// scaled weights; the shared experts appended as extra slots of weight 1; for decode, the
// router product and the choice in one launch. And the weighted sum of the experts' outputs back
// into the residual stream.
#include "dependent_launch.cuh"
#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxExperts = kMoeMaxExperts;
constexpr int kMaxGroups = kMoeMaxGroups;
constexpr int kRouterSteps = 9;  // router columns held in registers: 9 × 256 (Kimi: all)

struct Best {
    float value;
    int index;
};

__device__ __forceinline__ Best better(Best a, Best b) {
    if (a.value != b.value)
        return a.value > b.value ? a : b;
    return a.index < b.index ? a : b;
}

// `scratch` holds one entry per warp of the block.
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
    for (int i = 1; i < static_cast<int>(blockDim.x / 32); ++i)
        result = better(result, scratch[i]);
    return result;
}

// How many of choice[begin, end) come before `value` at index e: a higher value, or an equal
// one at a lower index.
__device__ __forceinline__ int countBefore(const float* choice, int begin, int end, float value,
                                           int e) {
    int before = 0, j = begin;
    for (; j + 4 <= end; j += 4) {
        const float4 o = *reinterpret_cast<const float4*>(choice + j);
        before += (o.x > value) | ((o.x == value) & (j < e));
        before += (o.y > value) | ((o.y == value) & (j + 1 < e));
        before += (o.z > value) | ((o.z == value) & (j + 2 < e));
        before += (o.w > value) | ((o.w == value) & (j + 3 < e));
    }
    for (; j < end; ++j)
        before += (choice[j] > value) | ((choice[j] == value) & (j < e));
    return before;
}

// The choice for token t by a whole block (any multiple of 32 threads up to 1,024), from its
// router logits (global or shared memory).
__device__ void chooseExperts(const MoeSelectArgs& a, int t, const float* logits) {
    __shared__ float scores[kMaxExperts];
    __shared__ __align__(16) float choice[kMaxExperts];
    __shared__ float groupScore[kMaxGroups];
    __shared__ Best scratch[32];
    __shared__ float reduce[32];
    __shared__ float candidateValue[kMaxExperts];
    __shared__ int candidateExpert[kMaxExperts], candidates;
    __shared__ int rankedExpert[kMoeMaxTopK];
    __shared__ float rankedWeight[kMoeMaxTopK];
    const int E = a.experts, threads = static_cast<int>(blockDim.x);
    if (a.sigmoid) {
        for (int e = threadIdx.x; e < E; e += threads)
            scores[e] = sigmoidf(logits[e]);
    } else {
        float m = -INFINITY;
        for (int e = threadIdx.x; e < E; e += threads)
            m = fmaxf(m, logits[e]);
        Best mb = blockArgmax(Best{m, 0}, scratch);
        float sum = 0.0f;
        for (int e = threadIdx.x; e < E; e += threads)
            sum += scores[e] = __expf(logits[e] - mb.value);
        const float total = blockSum(sum, reduce);
        for (int e = threadIdx.x; e < E; e += threads)
            scores[e] /= total;
    }
    __syncthreads();
    // A NaN score ranks last (its comparisons would otherwise break the ranking's order).
    if (threadIdx.x == 0)
        candidates = 0;
    for (int e = threadIdx.x; e < E; e += threads) {
        const float value = scores[e] + a.correctionBias[e];
        choice[e] = isnan(value) ? -INFINITY : value;
    }
    __syncthreads();
    if (a.grouped && a.groups > 1) {
        const int perGroup = E / a.groups;
        for (int g = threadIdx.x; g < a.groups; g += threads) {
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
        for (int e = threadIdx.x; e < E; e += threads) {
            if (!kept[e / perGroup])
                choice[e] = -INFINITY;
        }
        __syncthreads();
    }
    // Each expert's rank: how many experts come before it. Ranks are distinct, so the first
    // topK fill the slots in order, with two barriers instead of a block arg-max per slot. Only
    // candidates are ranked: experts with fewer than topK of their own run of 32 before them
    // (everything before a top-k expert has fewer than topK before it, so is a candidate too).
    for (int e = threadIdx.x; e < E; e += threads) {
        const int run = e & ~31;
        const float value = choice[e];
        if (countBefore(choice, run, min(E, run + 32), value, e) < a.topK) {
            const int at = atomicAdd(&candidates, 1);
            candidateValue[at] = value;
            candidateExpert[at] = e;
        }
    }
    __syncthreads();
    const int count = candidates;
    for (int c = threadIdx.x; c < count; c += threads) {
        const float value = candidateValue[c];
        const int e = candidateExpert[c];
        int before = 0;
        for (int j = 0; j < count; ++j) {
            const float other = candidateValue[j];
            before += (other > value) | ((other == value) & (candidateExpert[j] < e));
        }
        if (before < a.topK) {
            rankedExpert[before] = e;
            rankedWeight[before] = a.biasedWeights ? scores[e] + a.correctionBias[e] : scores[e];
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const int slots = a.topK + a.sharedSlots;
        int32_t* ids = a.ids + static_cast<int64_t>(t) * slots;
        float* weights = a.weights + static_cast<int64_t>(t) * slots;
        float sum = 0.0f;
        for (int k = 0; k < a.topK; ++k)
            sum += rankedWeight[k];
        for (int k = 0; k < a.topK; ++k) {
            float w = rankedWeight[k];
            if (a.renormalize)
                w /= sum + 1e-20f;
            ids[k] = rankedExpert[k];
            weights[k] = w * a.scaling;
        }
        for (int k = 0; k < a.sharedSlots; ++k) {
            ids[a.topK + k] = E + k;
            weights[a.topK + k] = 1.0f;
        }
    }
}

__global__ void __launch_bounds__(kThreads) selectKernel(MoeSelectArgs a) {
    chooseExperts(a, blockIdx.x, a.logits + static_cast<int64_t>(blockIdx.x) * a.experts);
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
    const int lane = threadIdx.x & 31;
    const int expert = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
    const bool active = expert < r.select.experts;
    const bf16* row = r.router + static_cast<int64_t>(active ? expert : 0) * D;
    // The router row's first kRouterSteps × 256 columns are requested before the input is
    // staged: they do not depend on the previous kernel.
    uint4 early[kRouterSteps];
#pragma unroll
    for (int j = 0; j < kRouterSteps; ++j) {
        const int k = lane * 8 + j * 256;
        early[j] = active && k < D ? __ldg(reinterpret_cast<const uint4*>(row + k)) : uint4{};
    }
    waitForPriorGrid();  // a dependent launch: x comes from the kernel before
    prefetchToL1(r.normWeight, D);
    prefetchToL1(r.select.correctionBias, r.select.experts);  // for the last block's choice
    for (int i = threadIdx.x; i < D; i += kThreads)
        xs[i] = r.x[i];
    float sum = 0.0f;
    for (int i = threadIdx.x; i < D; i += kThreads)
        sum += xs[i] * xs[i];
    const float inv = rsqrtf(blockSum(sum, reduce) / static_cast<float>(D) + r.normEps);
    for (int i = threadIdx.x; i < D; i += kThreads)
        xs[i] = r.normWeight[i] * (xs[i] * inv);
    __syncthreads();

    if (active) {
        float acc = 0.0f;
#pragma unroll
        for (int j = 0; j < kRouterSteps; ++j) {
            const int k = lane * 8 + j * 256;
            if (k < D)
                accumulate8(early[j], xs + k, acc);
        }
        for (int k = lane * 8 + kRouterSteps * 256; k < D; k += 32 * 8)
            accumulate8(__ldg(reinterpret_cast<const uint4*>(row + k)), xs + k, acc);
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
    if (r.normalizedOut != nullptr) {
        for (int i = threadIdx.x; i < D; i += kThreads)
            r.normalizedOut[i] = xs[i];
    }
    chooseExperts(r.select, 0, r.logits);
    if (threadIdx.x == 0)
        *r.blocksDone = 0;
    allowDependentLaunch();  // the experts' products, dependents, wait for the whole grid
}

__global__ void combineKernel(float* x, const float* y, const float* weights, int slots,
                              int hidden) {
    waitForPriorGrid();
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
    allowDependentLaunch();
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
    launchDependent(routeKernel, blocks, kThreads, sizeof(float) * r.hidden, stream, r);
}

void launchMoeCombine(float* x, const float* y, const float* weights, int tokens, int slots,
                      int hidden, cudaStream_t stream) {
    launchDependent(combineKernel, dim3((hidden + 255) / 256, tokens), 256, 0, stream, x, y,
                    weights, slots, hidden);
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
