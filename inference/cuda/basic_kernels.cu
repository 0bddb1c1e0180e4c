// SPDX-License-Identifier: GPL-3.0-or-later
// Element-wise kernels: embedding lookup, RMSNorm, conversions, SwiGLU, deterministic random
// fills for benchmark models.
#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

__global__ void embedKernel(const bf16* table, const int32_t* ids, int hidden, float* out) {
    const int t = blockIdx.x;
    const bf16* row = table + static_cast<int64_t>(ids[t]) * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        out[static_cast<int64_t>(t) * hidden + i] = __bfloat162float(row[i]);
}

__global__ void rmsNormKernel(const float* x, const float* weight, int cols, float eps,
                              float* out) {
    __shared__ float scratch[32];
    const float* row = x + static_cast<int64_t>(blockIdx.x) * cols;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        sum += row[i] * row[i];
    const float inv = rsqrtf(blockSum(sum, scratch) / static_cast<float>(cols) + eps);
    float* o = out + static_cast<int64_t>(blockIdx.x) * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        o[i] = weight[i] * (row[i] * inv);
}

__global__ void toBf16Kernel(const float* x, int64_t count, bf16* out) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        out[i] = __float2bfloat16(x[i]);
}

__global__ void splitBf16Kernel(const float* x, int64_t count, bf16* hi, bf16* lo) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const bf16 h = __float2bfloat16(x[i]);
        hi[i] = h;
        lo[i] = __float2bfloat16(x[i] - __bfloat162float(h));
    }
}

__global__ void toFloatKernel(const bf16* x, int64_t count, float* out) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        out[i] = __bfloat162float(x[i]);
}

__global__ void addKernel(float* x, const float* delta, int64_t count) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        x[i] += delta[i];
}

// gateUp rows: [gate (inner) | up (inner)]
__global__ void swigluKernel(const float* gateUp, int inner, float* out) {
    const float* row = gateUp + static_cast<int64_t>(blockIdx.x) * 2 * inner;
    float* o = out + static_cast<int64_t>(blockIdx.x) * inner;
    for (int i = threadIdx.x; i < inner; i += blockDim.x)
        o[i] = siluf(row[i]) * row[inner + i];
}

__global__ void advanceLengthKernel(int32_t* length, int tokens) {
    *length += tokens;
}

__device__ uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Uniform in [-scale, scale], a pure function of (seed, index).
__global__ void fillRandomKernel(bf16* out, int64_t count, uint64_t seed, float scale) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const uint64_t bits = splitmix(seed ^ splitmix(static_cast<uint64_t>(i)));
        const float u = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
        out[i] = __float2bfloat16((2.0f * u - 1.0f) * scale);
    }
}

__global__ void fillFloatKernel(float* out, int64_t count, float value) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        out[i] = value;
}

unsigned gridFor(int64_t count, int threads) {
    const int64_t blocks = (count + threads - 1) / threads;
    return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65536 ? 65536 : blocks));
}

}  // namespace

void launchEmbed(const bf16* table, const int32_t* ids, int tokens, int hidden, float* out,
                 cudaStream_t stream) {
    embedKernel<<<tokens, 256, 0, stream>>>(table, ids, hidden, out);
}

void launchRmsNorm(const float* x, const float* weight, int rows, int cols, float eps, float* out,
                   cudaStream_t stream) {
    rmsNormKernel<<<rows, 256, 0, stream>>>(x, weight, cols, eps, out);
}

void launchToBf16(const float* x, int64_t count, bf16* out, cudaStream_t stream) {
    toBf16Kernel<<<gridFor(count, 256), 256, 0, stream>>>(x, count, out);
}

void launchSplitBf16(const float* x, int64_t count, bf16* hi, bf16* lo, cudaStream_t stream) {
    splitBf16Kernel<<<gridFor(count, 256), 256, 0, stream>>>(x, count, hi, lo);
}

void launchToFloat(const bf16* x, int64_t count, float* out, cudaStream_t stream) {
    toFloatKernel<<<gridFor(count, 256), 256, 0, stream>>>(x, count, out);
}

void launchAdd(float* x, const float* delta, int64_t count, cudaStream_t stream) {
    addKernel<<<gridFor(count, 256), 256, 0, stream>>>(x, delta, count);
}

void launchSwiglu(const float* gateUp, int rows, int inner, float* out, cudaStream_t stream) {
    swigluKernel<<<rows, 256, 0, stream>>>(gateUp, inner, out);
}

void launchAdvanceLength(int32_t* length, int tokens, cudaStream_t stream) {
    advanceLengthKernel<<<1, 1, 0, stream>>>(length, tokens);
}

void launchFillRandomBf16(bf16* out, int64_t count, uint64_t seed, float scale,
                          cudaStream_t stream) {
    fillRandomKernel<<<gridFor(count, 256), 256, 0, stream>>>(out, count, seed, scale);
}

void launchFillFloat(float* out, int64_t count, float value, cudaStream_t stream) {
    fillFloatKernel<<<gridFor(count, 256), 256, 0, stream>>>(out, count, value);
}

}  // namespace folio::inference::cuda
