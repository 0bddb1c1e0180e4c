// SPDX-License-Identifier: GPL-3.0-or-later
// Small device helpers shared by the kernels: warp and block reductions, activations, a bf16
// dot-product step.
#pragma once

#include <cuda_bf16.h>

namespace folio::inference::cuda {

__device__ __forceinline__ float warpSum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warpMax(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the block; every thread gets the result. `scratch` holds >= 32 floats.
__device__ __forceinline__ float blockSum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    v = warpSum(v);
    __syncthreads();
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < warps; ++i)
        total += scratch[i];
    return total;
}

// Asks for the n floats at p (global memory) to be brought into this SM's L1, one request per
// 128-byte line from the block's first threads, and returns at once: for small vectors a kernel
// reads later (norm weights), so their latency overlaps the work before.
__device__ __forceinline__ void prefetchToL1(const float* p, int n) {
    for (int line = threadIdx.x; line * 32 < n; line += blockDim.x)
        asm volatile("prefetch.global.L1 [%0];" ::"l"(p + line * 32));
}

__device__ __forceinline__ float siluf(float x) {
    return x / (1.0f + __expf(-x));
}
__device__ __forceinline__ float sigmoidf(float x) {
    return 1.0f / (1.0f + __expf(-x));
}
__device__ __forceinline__ float softplusf(float x) {
    return x > 20.0f ? x : log1pf(__expf(x));
}

// acc += the 8 bf16 weights packed in `packed` · x[0..8), in order.
__device__ __forceinline__ void accumulate8(const uint4 packed, const float* x, float& acc) {
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 w = __bfloat1622float2(pairs[i]);
        acc = fmaf(w.x, x[2 * i], acc);
        acc = fmaf(w.y, x[2 * i + 1], acc);
    }
}

}  // namespace folio::inference::cuda
