// SPDX-License-Identifier: GPL-3.0-or-later
// The CPU backend's fp32 building blocks: linear layers over stored (BF16/F16/F32) weights,
// norms and activations. Every output element is computed by the same code with the same
// summation order whatever the number of rows or threads, so results do not depend on how a
// prompt is split. Pure functions of their inputs; the thread pool only distributes work.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "../safetensors.h"
#include "thread_pool.h"

namespace folio::inference::cpu {

// y[t, o] = sum_i x[t, i] * W[o, i] for W = [out, in] (PyTorch nn.Linear layout).
void linear(ThreadPool& pool, const TensorView& weight, const float* x, int64_t rows, float* y);

// The same over an fp32 weight matrix already in memory.
void linearF32(ThreadPool& pool, const float* weight, int64_t outFeatures, int64_t inFeatures,
               const float* x, int64_t rows, float* y);

// Dot product with a fixed summation order.
float dot(const float* a, const float* b, int64_t n);

// y = x * rsqrt(mean(x^2) + eps) * weight, per row of `width`.
void rmsNorm(const float* x, const float* weight, int64_t rows, int64_t width, double eps,
             float* y);

inline float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}
inline float silu(float x) {
    return x / (1.0f + std::exp(-x));
}
// PyTorch's softplus with beta = 1 and threshold = 20.
inline float softplus(float x) {
    return x > 20.0f ? x : std::log1p(std::exp(x));
}

}  // namespace folio::inference::cpu
