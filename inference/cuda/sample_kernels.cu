// SPDX-License-Identifier: GPL-3.0-or-later
// Choosing the next token on the GPU, so only its id reaches the host: the repetition penalty
// (from a bitmap of the context's tokens), then greedy (ties to the lowest id) or temperature
// with top-k and top-p. The top-k and top-p thresholds are found by bisection on the value,
// the token by one ordered scan of the kept probabilities against a uniform draw from the host's
// seeded generator. One block; the logits stay in L2.
#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kBisections = 28;

__device__ __forceinline__ float penalised(const float* logits, const uint32_t* seen, float penalty,
                                           int i) {
    const float v = logits[i];
    if (penalty == 1.0f || seen == nullptr || ((seen[i >> 5] >> (i & 31)) & 1u) == 0)
        return v;
    return v > 0.0f ? v / penalty : v * penalty;
}

__device__ float blockMax(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warpMax(v);
    __syncthreads();
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    float m = scratch[0];
    for (int i = 1; i < kThreads / 32; ++i)
        m = fmaxf(m, scratch[i]);
    return m;
}

__global__ void __launch_bounds__(kThreads)
    sampleKernel(const float* logits, int V, const SampleParams* params, const uint32_t* seen,
                 int32_t* token) {
    __shared__ float scratch[32];
    __shared__ int indexScratch[32];
    __shared__ float chunkSums[kThreads];
    const SampleParams p = *params;
    const int chunk = (V + kThreads - 1) / kThreads;
    const int begin = min(V, threadIdx.x * chunk), end = min(V, begin + chunk);

    // Greedy: the largest value, lowest index on ties.
    float best = -INFINITY;
    int bestIndex = V;
    for (int i = begin; i < end; ++i) {
        const float v = penalised(logits, seen, p.repetitionPenalty, i);
        if (v > best) {
            best = v;
            bestIndex = i;
        }
    }
    const float maxValue = blockMax(best, scratch);
    if (p.temperature <= 0.0f) {
        int candidate = best == maxValue ? bestIndex : V;
        for (int offset = 16; offset > 0; offset >>= 1)
            candidate = min(candidate, __shfl_xor_sync(0xffffffffu, candidate, offset));
        if ((threadIdx.x & 31) == 0)
            indexScratch[threadIdx.x >> 5] = candidate;
        __syncthreads();
        if (threadIdx.x == 0) {
            int chosen = V;
            for (int i = 0; i < kThreads / 32; ++i)
                chosen = min(chosen, indexScratch[i]);
            *token = chosen;
        }
        return;
    }

    const float invT = 1.0f / p.temperature;
    const float top = maxValue * invT;
    auto z = [&](int i) { return penalised(logits, seen, p.repetitionPenalty, i) * invT; };
    // Lowest kept value: the k-th largest (top-k), then the nucleus (top-p).
    float threshold = -INFINITY;
    if (p.topK > 0 && p.topK < V) {
        float lo = top - 100.0f, hi = top;
        for (int it = 0; it < kBisections; ++it) {
            const float mid = 0.5f * (lo + hi);
            float count = 0.0f;
            for (int i = begin; i < end; ++i)
                count += z(i) >= mid ? 1.0f : 0.0f;
            if (blockSum(count, scratch) >= static_cast<float>(p.topK))
                lo = mid;
            else
                hi = mid;
        }
        threshold = lo;
    }
    auto massAbove = [&](float tau) {
        float sum = 0.0f;
        for (int i = begin; i < end; ++i) {
            const float zi = z(i);
            if (zi >= tau)
                sum += __expf(zi - top);
        }
        return blockSum(sum, scratch);
    };
    if (p.topP < 1.0f) {
        const float target = p.topP * massAbove(threshold);
        float lo = fmaxf(threshold, top - 100.0f), hi = top;
        for (int it = 0; it < kBisections; ++it) {
            const float mid = 0.5f * (lo + hi);
            if (massAbove(mid) >= target)
                lo = mid;
            else
                hi = mid;
        }
        threshold = lo;
    }
    float mine = 0.0f;
    for (int i = begin; i < end; ++i) {
        const float zi = z(i);
        if (zi >= threshold)
            mine += __expf(zi - top);
    }
    chunkSums[threadIdx.x] = mine;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0.0f;
        for (int i = 0; i < kThreads; ++i)
            total += chunkSums[i];
        float target = p.uniform * total, running = 0.0f;
        int owner = -1;
        for (int i = 0; i < kThreads; ++i) {
            if (chunkSums[i] > 0.0f) {
                owner = i;
                if (running + chunkSums[i] > target)
                    break;
            }
            running += chunkSums[i];
        }
        int chosen = bestIndex;
        if (owner >= 0) {
            const int b = min(V, owner * chunk), e = min(V, b + chunk);
            target -= running;
            for (int i = b; i < e; ++i) {
                const float zi = z(i);
                if (zi < threshold)
                    continue;
                chosen = i;
                target -= __expf(zi - top);
                if (target < 0.0f)
                    break;
            }
        }
        *token = chosen;
    }
}

__global__ void markSeenKernel(uint32_t* seen, const int32_t* ids, int count) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
        atomicOr(&seen[ids[i] >> 5], 1u << (ids[i] & 31));
}

}  // namespace

void launchSample(const float* logits, int vocab, const SampleParams* params, const uint32_t* seen,
                  int32_t* token, cudaStream_t stream) {
    sampleKernel<<<1, kThreads, 0, stream>>>(logits, vocab, params, seen, token);
}

void launchMarkSeen(uint32_t* seen, const int32_t* ids, int count, cudaStream_t stream) {
    if (count > 0)
        markSeenKernel<<<(count + 255) / 256, 256, 0, stream>>>(seen, ids, count);
}

}  // namespace folio::inference::cuda
