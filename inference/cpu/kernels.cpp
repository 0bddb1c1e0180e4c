// SPDX-License-Identifier: GPL-3.0-or-later
#include "kernels.h"

#include <algorithm>
#include <vector>

namespace folio::inference::cpu {
namespace {

typedef float Vec8 __attribute__((vector_size(32)));

constexpr int64_t kRowBlock = 16;

}  // namespace

float dot(const float* a, const float* b, int64_t n) {
    Vec8 acc0 = {0, 0, 0, 0, 0, 0, 0, 0};
    Vec8 acc1 = acc0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        Vec8 a0, b0, a1, b1;
        __builtin_memcpy(&a0, a + i, sizeof a0);
        __builtin_memcpy(&b0, b + i, sizeof b0);
        __builtin_memcpy(&a1, a + i + 8, sizeof a1);
        __builtin_memcpy(&b1, b + i + 8, sizeof b1);
        acc0 += a0 * b0;
        acc1 += a1 * b1;
    }
    Vec8 acc = acc0 + acc1;
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i)
        sum += a[i] * b[i];
    return sum;
}

void linearF32(ThreadPool& pool, const float* weight, int64_t outFeatures, int64_t inFeatures,
               const float* x, int64_t rows, float* y) {
    const int64_t blocks = (outFeatures + kRowBlock - 1) / kRowBlock;
    pool.parallelFor(blocks, 1, [&](int64_t first, int64_t last) {
        for (int64_t blk = first; blk < last; ++blk) {
            const int64_t o0 = blk * kRowBlock;
            const int64_t o1 = std::min(outFeatures, o0 + kRowBlock);
            for (int64_t t = 0; t < rows; ++t) {
                const float* xt = x + t * inFeatures;
                float* yt = y + t * outFeatures;
                for (int64_t o = o0; o < o1; ++o)
                    yt[o] = dot(xt, weight + o * inFeatures, inFeatures);
            }
        }
    });
}

void linear(ThreadPool& pool, const TensorView& weight, const float* x, int64_t rows, float* y) {
    const int64_t outFeatures = weight.dim(0);
    const int64_t inFeatures = static_cast<int64_t>(weight.elements) / outFeatures;
    if (weight.dtype == DType::F32 &&
        reinterpret_cast<uintptr_t>(weight.data) % alignof(float) == 0) {
        linearF32(pool, reinterpret_cast<const float*>(weight.data), outFeatures, inFeatures, x,
                  rows, y);
        return;
    }
    const int64_t blocks = (outFeatures + kRowBlock - 1) / kRowBlock;
    pool.parallelFor(blocks, 1, [&](int64_t first, int64_t last) {
        thread_local std::vector<float> converted;
        converted.resize(static_cast<size_t>(kRowBlock * inFeatures));
        for (int64_t blk = first; blk < last; ++blk) {
            const int64_t o0 = blk * kRowBlock;
            const int64_t o1 = std::min(outFeatures, o0 + kRowBlock);
            convertToFloat(weight, static_cast<uint64_t>(o0 * inFeatures),
                           static_cast<uint64_t>((o1 - o0) * inFeatures), converted.data());
            for (int64_t t = 0; t < rows; ++t) {
                const float* xt = x + t * inFeatures;
                float* yt = y + t * outFeatures;
                for (int64_t o = o0; o < o1; ++o)
                    yt[o] = dot(xt, converted.data() + (o - o0) * inFeatures, inFeatures);
            }
        }
    });
}

void rmsNorm(const float* x, const float* weight, int64_t rows, int64_t width, double eps,
             float* y) {
    for (int64_t t = 0; t < rows; ++t) {
        const float* xt = x + t * width;
        float* yt = y + t * width;
        double sumSquares = 0.0;
        for (int64_t i = 0; i < width; ++i)
            sumSquares += static_cast<double>(xt[i]) * xt[i];
        const float inv =
            static_cast<float>(1.0 / std::sqrt(sumSquares / static_cast<double>(width) + eps));
        for (int64_t i = 0; i < width; ++i)
            yt[i] = weight[i] * (xt[i] * inv);
    }
}

}  // namespace folio::inference::cpu
