// SPDX-License-Identifier: GPL-3.0-or-later
// The KDA step: every operation of a KDA layer between its input projections and its output
// projection, in one kernel. A cluster of four blocks serves one head; each block keeps a
// quarter of the head's value columns of the recurrent state in registers, so the 64 KiB state
// of a head is read and written once per call whatever the number of tokens. Per token:
// the short convolution over the window (SiLU), the forget gate -exp(A_log) * softplus(f + dt),
// beta = sigmoid(b), L2-normalised q (scaled) and k, the decay, the delta rule, the read-out,
// and the gated RMSNorm, whose per-head statistic the four blocks share through distributed
// shared memory.
#include <cooperative_groups.h>

#include "device_math.cuh"
#include "kernels.h"

namespace cg = cooperative_groups;

namespace folio::inference::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kClusterBlocks = 4;
constexpr int kMaxConvWidth = 8;

template <int D>
__global__ void __cluster_dims__(kClusterBlocks, 1, 1) __launch_bounds__(kThreads)
    kdaStepKernel(KdaStepArgs a) {
    constexpr int kCols = D / kClusterBlocks;    // value columns of this block
    constexpr int kGroups = kThreads / kCols;    // row groups
    constexpr int kRowsPerThread = D / kGroups;  // state rows per thread
    static_assert(kGroups * kCols == kThreads && kGroups * kRowsPerThread == D);

    cg::cluster_group cluster = cg::this_cluster();
    const int rank = static_cast<int>(cluster.block_rank());
    const int head = blockIdx.x / kClusterBlocks;
    const int P = a.heads * D, W = a.convWidth, history = W - 1;
    const int tid = threadIdx.x, col = tid % kCols, group = tid / kCols;
    const int firstRow = group * kRowsPerThread;
    const int valueCol = rank * kCols + col;  // column inside the head

    __shared__ float q[D], k[D], g[D], v[kCols];
    __shared__ float partial[kGroups][kCols];
    __shared__ float reduce[32];
    __shared__ float normShare[2];
    __shared__ float beta;

    float* state = a.state + (static_cast<int64_t>(head) * D) * D;
    float s[kRowsPerThread];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i)
        s[i] = state[static_cast<int64_t>(firstRow + i) * D + valueCol];

    const float decayRate = a.decayRate[head];
    // Value of channel c (0..3P) of the pre-convolution stream at extended row e: the window's
    // W-1 rows first, then the new tokens' projections.
    auto stream = [&](int part, int channel, int e) -> float {
        if (e < history)
            return a.convWindow[(static_cast<int64_t>(part) * history + e) * P + channel];
        return a.proj[static_cast<int64_t>(e - history) * a.projStride + part * P + channel];
    };
    auto convolve = [&](int part, int channel, int t) -> float {
        const float* taps = a.convTaps + (static_cast<int64_t>(part) * P + channel) * W;
        float sum = 0.0f;
        for (int j = 0; j < W; ++j)
            sum = fmaf(taps[j], stream(part, channel, t + j), sum);
        return siluf(sum);
    };

    for (int t = 0; t < a.tokens; ++t) {
        const float* gateRow = a.gates + static_cast<int64_t>(t) * a.gatesStride;
        // Inputs of this token: q and k whole (every block needs them), v for our columns; the
        // squares of q and k summed in the same pass.
        float qq = 0.0f, kk = 0.0f;
        if (tid < D) {
            const int ch = head * D + tid;
            const float value = convolve(0, ch, t);
            q[tid] = value;
            qq = value * value;
            g[tid] = -decayRate * softplusf(gateRow[ch] + a.dtBias[ch]);
        } else if (tid < 2 * D) {
            const float value = convolve(1, head * D + tid - D, t);
            k[tid - D] = value;
            kk = value * value;
        }
        if (tid < kCols)
            v[tid] = convolve(2, head * D + valueCol, t);
        if (tid == 0)
            beta = sigmoidf(a.proj[static_cast<int64_t>(t) * a.projStride + 3 * P + head]);
        qq = warpSum(qq);
        kk = warpSum(kk);
        if ((tid & 31) == 0) {
            reduce[tid >> 5] = qq;
            reduce[16 + (tid >> 5)] = kk;
        }
        __syncthreads();
        float qNorm = 0.0f, kNorm = 0.0f;
        for (int w = 0; w < kThreads / 32; ++w) {
            qNorm += reduce[w];
            kNorm += reduce[16 + w];
        }
        const float qScale = rsqrtf(static_cast<float>(D)) / sqrtf(qNorm + 1e-6f);
        const float kScale = 1.0f / sqrtf(kNorm + 1e-6f);

        // Decay, then the state's prediction for this key.
        float pred = 0.0f;
#pragma unroll
        for (int i = 0; i < kRowsPerThread; ++i) {
            const int row = firstRow + i;
            s[i] *= __expf(g[row]);
            pred = fmaf(k[row] * kScale, s[i], pred);
        }
        partial[group][col] = pred;
        __syncthreads();
        float total = 0.0f;
        for (int j = 0; j < kGroups; ++j)
            total += partial[j][col];
        const float update = beta * (v[col] - total);
        __syncthreads();  // partial is reused below
        float out = 0.0f;
#pragma unroll
        for (int i = 0; i < kRowsPerThread; ++i) {
            const int row = firstRow + i;
            s[i] = fmaf(k[row] * kScale, update, s[i]);
            out = fmaf(q[row] * qScale, s[i], out);
        }
        partial[group][col] = out;
        __syncthreads();
        float o = 0.0f;
        if (tid < kCols) {
            for (int j = 0; j < kGroups; ++j)
                o += partial[j][tid];
        }
        // Gated RMSNorm over the head's D outputs, shared across the cluster.
        const float squares = blockSum(tid < kCols ? o * o : 0.0f, reduce);
        if (tid == 0)
            normShare[t & 1] = squares;
        cluster.sync();
        float headSquares = 0.0f;
        for (int r = 0; r < kClusterBlocks; ++r)
            headSquares += *cluster.map_shared_rank(&normShare[t & 1], r);
        if (tid < kCols) {
            const float inv = rsqrtf(headSquares / static_cast<float>(D) + a.eps);
            const int ch = head * D + valueCol;
            a.out[static_cast<int64_t>(t) * P + ch] =
                a.outNorm[valueCol] * (o * inv) * sigmoidf(gateRow[P + ch]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i)
        state[static_cast<int64_t>(firstRow + i) * D + valueCol] = s[i];

    // Slide the convolution window: read the new rows, wait until every block of the head has
    // read the old window, then write. q and k channels belong to rank 0, v to their block.
    float keep[2][kMaxConvWidth];
    const bool ownsQk = rank == 0 && tid < D;
    const bool ownsV = tid < kCols;
    for (int e = 0; e < history; ++e) {
        if (ownsQk) {
            keep[0][e] = stream(0, head * D + tid, a.tokens + e);
            keep[1][e] = stream(1, head * D + tid, a.tokens + e);
        }
    }
    float keepV[kMaxConvWidth];
    for (int e = 0; e < history; ++e)
        keepV[e] = ownsV ? stream(2, head * D + valueCol, a.tokens + e) : 0.0f;
    cluster.sync();
    for (int e = 0; e < history; ++e) {
        if (ownsQk) {
            a.convWindow[(0 * static_cast<int64_t>(history) + e) * P + head * D + tid] = keep[0][e];
            a.convWindow[(1 * static_cast<int64_t>(history) + e) * P + head * D + tid] = keep[1][e];
        }
        if (ownsV)
            a.convWindow[(2 * static_cast<int64_t>(history) + e) * P + head * D + valueCol] =
                keepV[e];
    }
}

}  // namespace

bool kdaHeadDimSupported(int headDim) {
    return headDim == 64 || headDim == 128;
}

void launchKdaSteps(const KdaStepArgs& a, cudaStream_t stream) {
    if (a.tokens <= 0 || a.convWidth < 1 || a.convWidth > kMaxConvWidth + 1)
        return;
    const dim3 grid(a.heads * kClusterBlocks);
    if (a.headDim == 128)
        kdaStepKernel<128><<<grid, kThreads, 0, stream>>>(a);
    else if (a.headDim == 64)
        kdaStepKernel<64><<<grid, kThreads, 0, stream>>>(a);
}

}  // namespace folio::inference::cuda
