// SPDX-License-Identifier: GPL-3.0-or-later
// Matrix-vector products for the decode step, where the weights stream from memory once: each
// warp reads whole rows with 16-byte loads, the input vector sits in shared memory (normalised
// there when asked), several rows per warp keep enough loads in flight.
#include "dependent_launch.cuh"
#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;

template <int kRowsPerWarp, bool kSwiglu>
__global__ void __launch_bounds__(kThreads) gemvKernel(GemvArgs a) {
    extern __shared__ float xs[];
    __shared__ float scratch[32];
    const int item = blockIdx.y;
    // Launched as a dependent of the kernel before it: everything below reads its results.
    waitForPriorGrid();
    // The matrix of this item (an expert's, through the routing's ids and the table) is looked
    // up before the input is staged, so the two lookups' latency overlaps the staging.
    const int expert = a.ids != nullptr ? a.ids[item] : item;
    const bf16* W = a.table != nullptr ? a.table[expert] : a.matrix;
    const bf16* U = nullptr;
    if constexpr (kSwiglu)
        U = a.upTable != nullptr ? a.upTable[expert] : a.up;
    const float* x = a.x + item * a.xItemStride;
    for (int i = threadIdx.x; i < a.cols; i += kThreads)
        xs[i] = x[i];
    if (a.normWeight != nullptr) {
        float sum = 0.0f;
        for (int i = threadIdx.x; i < a.cols; i += kThreads)
            sum += xs[i] * xs[i];
        const float inv = rsqrtf(blockSum(sum, scratch) / static_cast<float>(a.cols) + a.normEps);
        for (int i = threadIdx.x; i < a.cols; i += kThreads)
            xs[i] = a.normWeight[i] * (xs[i] * inv);
    }
    __syncthreads();

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = (blockIdx.x * kWarps + warp) * kRowsPerWarp;
    if (row0 >= a.rows)
        return;
    float acc[kRowsPerWarp] = {}, accUp[kRowsPerWarp] = {};
    for (int k = lane * 8; k < a.cols; k += 32 * 8) {
        float xv[8];
        const float4 lo = *reinterpret_cast<const float4*>(xs + k);
        const float4 hi = *reinterpret_cast<const float4*>(xs + k + 4);
        xv[0] = lo.x, xv[1] = lo.y, xv[2] = lo.z, xv[3] = lo.w;
        xv[4] = hi.x, xv[5] = hi.y, xv[6] = hi.z, xv[7] = hi.w;
        uint4 w[kRowsPerWarp], u[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            const int row = min(row0 + r, a.rows - 1);
            w[r] =
                __ldg(reinterpret_cast<const uint4*>(W + static_cast<int64_t>(row) * a.cols + k));
            if constexpr (kSwiglu)
                u[r] = __ldg(
                    reinterpret_cast<const uint4*>(U + static_cast<int64_t>(row) * a.cols + k));
        }
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            accumulate8(w[r], xv, acc[r]);
            if constexpr (kSwiglu)
                accumulate8(u[r], xv, accUp[r]);
        }
    }
    float* y = a.y + item * a.yItemStride;
    const float* residual = a.residual != nullptr ? a.residual + item * a.yItemStride : nullptr;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        float value = warpSum(acc[r]);
        if constexpr (kSwiglu)
            value = siluf(value) * warpSum(accUp[r]);
        if (lane == 0 && row0 + r < a.rows)
            y[row0 + r] = residual != nullptr ? residual[row0 + r] + value : value;
    }
    allowDependentLaunch();
}

template <int kRowsPerWarp>
void launchWith(const GemvArgs& a, cudaStream_t stream) {
    const unsigned blocks = (a.rows + kWarps * kRowsPerWarp - 1) / (kWarps * kRowsPerWarp);
    const dim3 grid(blocks, a.items);
    const size_t shared = static_cast<size_t>(a.cols) * sizeof(float);
    // Dependent launches: a product's blocks are set up while the kernel before it drains.
    if (a.up != nullptr || a.upTable != nullptr)
        launchDependent(gemvKernel<kRowsPerWarp, true>, grid, kThreads, shared, stream, a);
    else
        launchDependent(gemvKernel<kRowsPerWarp, false>, grid, kThreads, shared, stream, a);
}

}  // namespace

void launchGemv(const GemvArgs& a, cudaStream_t stream) {
    // Enough blocks to cover every SM a few times; more rows per warp when there are plenty.
    // From 16,384 rows, four per warp: the MoE down products (9 × 2,304 rows) then fit in one
    // wave of blocks instead of 1.6 (2.672 against 2.688 ms per token at 4K on one H200).
    const int64_t rowsTotal = static_cast<int64_t>(a.rows) * a.items;
    if (rowsTotal >= 2 * kWarps * 1024)
        launchWith<4>(a, stream);
    else if (rowsTotal >= 2 * kWarps * 512)
        launchWith<2>(a, stream);
    else
        launchWith<1>(a, stream);
}

}  // namespace folio::inference::cuda
