// SPDX-License-Identifier: GPL-3.0-or-later
// The KDA step: every operation of a KDA layer between its input projections and its output
// projection, in one kernel, for T tokens in sequence. Per token: the short convolution over the
// window (SiLU), the forget gate -exp(A_log) * softplus(f + dt), beta = sigmoid(b),
// L2-normalised q (scaled) and k, the decay, the delta rule, the read-out, and the gated RMSNorm.
//
// Layout. A cluster of four blocks serves one head; each block owns a quarter of the head's
// value columns of the fp32 state (D rows by D/4 columns), read once at the start and written
// once at the end, through shared memory so that both transfers are coalesced. Inside a block a
// warp owns four columns over all D rows (lane l holds rows l, l + 32, ...), so the two sums over
// rows per token, the state's prediction k^T S and the read-out q^T S, are warp shuffles.
// Every block computes the head's whole q, k and decay, one channel per thread (2D threads),
// and the value columns it owns; each of those threads keeps its channel's convolution window in
// registers across tokens and loads its inputs a token ahead.
//
// Per token, two barriers: the block's, after the inputs, and the cluster's, which shares the
// warps' sums of squares of the outputs for the gated RMSNorm through distributed shared memory
// (written before arriving; the last token's state write-back runs while it completes).
#include <cooperative_groups.h>

#include "async_copy.cuh"
#include "dependent_launch.cuh"
#include "device_math.cuh"
#include "kernels.h"

namespace cg = cooperative_groups;

namespace folio::inference::cuda {
namespace {

constexpr int kClusterBlocks = 4;
constexpr int kColumnsPerWarp = 4;  // one float4 of each row
constexpr int kMaxHistory = 8;      // convolution widths up to 9

// Cluster barriers in halves. The first phase, a relaxed arrival at the start, only makes sure
// every block has started before any writes to another's shared memory.
__device__ __forceinline__ void clusterArriveRelaxed() {
    asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void clusterArrive() {
    asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void clusterWait() {
    asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

// One channel of the short convolution: its taps and its last inputs, right-aligned in fixed
// arrays so that every register index is static (slot kMaxHistory - 1 holds the newest input,
// taps[kMaxHistory] multiplies the current one).
struct ConvChannel {
    float taps[kMaxHistory + 1];
    float history[kMaxHistory];
    int firstSlot;

    // channelTaps: the channel's W taps; window: its W - 1 rows, rowStride apart.
    __device__ void load(const float* channelTaps, const float* window, int64_t rowStride,
                         int width) {
        firstSlot = kMaxHistory - (width - 1);
#pragma unroll
        for (int j = 0; j < kMaxHistory; ++j) {
            const bool used = j >= firstSlot;
            taps[j] = used ? channelTaps[j - firstSlot] : 0.0f;
            history[j] = used ? window[(j - firstSlot) * rowStride] : 0.0f;
        }
        taps[kMaxHistory] = channelTaps[width - 1];
    }
    // SiLU of the convolution that ends at input x; x joins the history.
    __device__ float step(float x) {
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < kMaxHistory; ++j)
            if (j >= firstSlot)
                sum = fmaf(taps[j], history[j], sum);
        sum = fmaf(taps[kMaxHistory], x, sum);
#pragma unroll
        for (int j = 0; j + 1 < kMaxHistory; ++j)
            history[j] = history[j + 1];
        history[kMaxHistory - 1] = x;
        return siluf(sum);
    }
    __device__ void store(float* window, int64_t rowStride) const {
#pragma unroll
        for (int j = 0; j < kMaxHistory; ++j)
            if (j >= firstSlot)
                window[(j - firstSlot) * rowStride] = history[j];
    }
};

// One token's inputs of a thread, by its role.
struct TokenInputs {
    float main = 0;       // q or k before the convolution
    float value = 0;      // v before the convolution
    float gate = 0;       // the forget gate's f (q threads) or the output gate (value threads)
    float betaLogit = 0;  // (the beta thread)
};

__device__ __forceinline__ void sumOverWarp(float (&v)[kColumnsPerWarp]) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
#pragma unroll
        for (int c = 0; c < kColumnsPerWarp; ++c)
            v[c] += __shfl_xor_sync(0xffffffffu, v[c], offset);
}

template <int D>
__global__ void __cluster_dims__(kClusterBlocks, 1, 1) __launch_bounds__(2 * D)
    kdaStepKernel(KdaStepArgs a) {
    constexpr int kColumns = D / kClusterBlocks;  // value columns of this block
    constexpr int kWarps = kColumns / kColumnsPerWarp;
    constexpr int kThreads = 32 * kWarps;
    constexpr int kRowsPerLane = D / 32;
    constexpr int kKeyWarps = D / 32;            // warps of q threads, then as many of k
    constexpr int kTileStride = kColumns + 4;    // padded rows: conflict-free float4 reads
    constexpr int kChunksPerRow = kColumns / 4;  // 16-byte pieces
    constexpr int kNormSlots = kClusterBlocks * kWarps;
    static_assert(kThreads == 2 * D && kNormSlots <= 32 && kColumnsPerWarp == 4);

    __shared__ __align__(16) float tile[D * kTileStride];
    __shared__ float query[2][D], key[2][D], decay[2][D];  // by token parity
    __shared__ __align__(16) float value[2][kColumns];
    __shared__ __align__(16) float outScale[2][kColumns];  // outNorm * sigmoid(output gate)
    __shared__ float beta[2];
    __shared__ float inputSquares[2][2 * kKeyWarps];  // per warp: sum of q^2, then of k^2
    __shared__ float outputSquares[2][kNormSlots];    // every block's warps, written by each

    const cg::cluster_group cluster = cg::this_cluster();
    const int rank = static_cast<int>(cluster.block_rank());
    const int head = blockIdx.x / kClusterBlocks;
    const int P = a.heads * D, history = a.convWidth - 1;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int firstColumn = rank * kColumns;

    // A dependent launch: the projections come from the kernels just before this one, and so may
    // the state unless the caller says otherwise.
    if (!a.stateSettled)
        waitForPriorGrid();
    // The state slice, into shared memory; nothing below waits for it until the first barrier.
    float* state = a.state + static_cast<int64_t>(head) * D * D + firstColumn;
    for (int chunk = tid; chunk < D * kChunksPerRow; chunk += kThreads) {
        const int row = chunk / kChunksPerRow, piece = chunk % kChunksPerRow;
        copy16(&tile[row * kTileStride + 4 * piece],
               state + static_cast<int64_t>(row) * D + 4 * piece, true);
    }
    commitCopies();
    if (a.stateSettled)
        waitForPriorGrid();
    clusterArriveRelaxed();

    // Roles: thread r < D convolves q channel r and computes its decay; thread D + r convolves
    // k channel r, and the first kColumns of those also this block's value column r and its
    // output scale, the next one beta.
    const bool isQuery = tid < D;
    const int inHead = isQuery ? tid : tid - D;  // channel (or column) inside the head
    const bool isValue = !isQuery && inHead < kColumns;
    const bool isBeta = !isQuery && inHead == kColumns;
    const int part = isQuery ? 0 : 1;
    const int channel = head * D + inHead;
    const int valueChannel = head * D + firstColumn + inHead;
    const int64_t windowPart = static_cast<int64_t>(history) * P;
    ConvChannel mainConv, valueConv;
    mainConv.load(a.convTaps + (static_cast<int64_t>(part) * P + channel) * a.convWidth,
                  a.convWindow + part * windowPart + channel, P, a.convWidth);
    if (isValue)
        valueConv.load(a.convTaps + (2 * static_cast<int64_t>(P) + valueChannel) * a.convWidth,
                       a.convWindow + 2 * windowPart + valueChannel, P, a.convWidth);
    const float decayRate = a.decayRate[head];
    const float dtBias = isQuery ? a.dtBias[channel] : 0.0f;
    const float outNorm = isValue ? a.outNorm[firstColumn + inHead] : 0.0f;

    auto loadInputs = [&](int t) {
        const float* proj = a.proj + static_cast<int64_t>(t) * a.projStride;
        const float* gates = a.gates + static_cast<int64_t>(t) * a.gatesStride;
        TokenInputs in;
        in.main = proj[part * P + channel];
        if (isQuery)
            in.gate = gates[channel];
        if (isValue) {
            in.value = proj[2 * P + valueChannel];
            in.gate = gates[P + valueChannel];
        }
        if (isBeta)
            in.betaLogit = proj[3 * P + head];
        return in;
    };
    TokenInputs next = loadInputs(0);

    float s[kRowsPerLane][kColumnsPerWarp];  // rows lane + 32 i, columns 4 warp .. + 3
    for (int t = 0; t < a.tokens; ++t) {
        const int buffer = t & 1;
        const TokenInputs in = next;
        if (t + 1 < a.tokens)
            next = loadInputs(t + 1);

        // This token's q, k, decay, v, output scale and beta; the squares of q and k per warp.
        const float x = mainConv.step(in.main);
        if (isQuery) {
            query[buffer][inHead] = x;
            decay[buffer][inHead] = __expf(-decayRate * softplusf(in.gate + dtBias));
        } else {
            key[buffer][inHead] = x;
        }
        if (isValue) {
            value[buffer][inHead] = valueConv.step(in.value);
            outScale[buffer][inHead] = outNorm * sigmoidf(in.gate);
        }
        if (isBeta)
            beta[buffer] = sigmoidf(in.betaLogit);
        const float squares = warpSum(x * x);
        if (lane == 0)
            inputSquares[buffer][warp] = squares;
        if (t == 0)
            waitCopies<0>();
        __syncthreads();

        if (t == 0) {
#pragma unroll
            for (int i = 0; i < kRowsPerLane; ++i) {
                const float4 v4 = *reinterpret_cast<const float4*>(
                    &tile[(lane + 32 * i) * kTileStride + kColumnsPerWarp * warp]);
                s[i][0] = v4.x;
                s[i][1] = v4.y;
                s[i][2] = v4.z;
                s[i][3] = v4.w;
            }
        }
        float qNorm = 0.0f, kNorm = 0.0f;
#pragma unroll
        for (int w = 0; w < kKeyWarps; ++w) {
            qNorm += inputSquares[buffer][w];
            kNorm += inputSquares[buffer][kKeyWarps + w];
        }
        const float qScale = rsqrtf(static_cast<float>(D)) / sqrtf(qNorm + 1e-6f);
        const float kScale = 1.0f / sqrtf(kNorm + 1e-6f);

        // Decay, then the state's prediction for this key (summed over the warp's rows).
        float kRow[kRowsPerLane], qRow[kRowsPerLane];
        float pred[kColumnsPerWarp] = {};
#pragma unroll
        for (int i = 0; i < kRowsPerLane; ++i) {
            const int row = lane + 32 * i;
            kRow[i] = key[buffer][row] * kScale;
            qRow[i] = query[buffer][row] * qScale;
            const float rowDecay = decay[buffer][row];
#pragma unroll
            for (int c = 0; c < kColumnsPerWarp; ++c) {
                s[i][c] *= rowDecay;
                pred[c] = fmaf(kRow[i], s[i][c], pred[c]);
            }
        }
        sumOverWarp(pred);

        // The delta rule, then the read-out with the updated state.
        const float4 v4 = *reinterpret_cast<const float4*>(&value[buffer][kColumnsPerWarp * warp]);
        const float update[kColumnsPerWarp] = {
            beta[buffer] * (v4.x - pred[0]), beta[buffer] * (v4.y - pred[1]),
            beta[buffer] * (v4.z - pred[2]), beta[buffer] * (v4.w - pred[3])};
        float o[kColumnsPerWarp] = {};
#pragma unroll
        for (int i = 0; i < kRowsPerLane; ++i) {
#pragma unroll
            for (int c = 0; c < kColumnsPerWarp; ++c) {
                s[i][c] = fmaf(kRow[i], update[c], s[i][c]);
                o[c] = fmaf(qRow[i], s[i][c], o[c]);
            }
        }
        sumOverWarp(o);

        // Gated RMSNorm over the head's D outputs: every warp's sum of squares, to every block.
        if (t == 0)
            clusterWait();
        if (lane < kClusterBlocks)
            *cluster.map_shared_rank(&outputSquares[buffer][rank * kWarps + warp], lane) =
                o[0] * o[0] + o[1] * o[1] + o[2] * o[2] + o[3] * o[3];
        clusterArrive();
        if (t + 1 == a.tokens) {
            // The final state back to global memory, and this block's value windows.
#pragma unroll
            for (int i = 0; i < kRowsPerLane; ++i)
                *reinterpret_cast<float4*>(
                    &tile[(lane + 32 * i) * kTileStride + kColumnsPerWarp * warp]) =
                    make_float4(s[i][0], s[i][1], s[i][2], s[i][3]);
            __syncthreads();
            for (int chunk = tid; chunk < D * kChunksPerRow; chunk += kThreads) {
                const int row = chunk / kChunksPerRow, piece = chunk % kChunksPerRow;
                *reinterpret_cast<float4*>(state + static_cast<int64_t>(row) * D + 4 * piece) =
                    *reinterpret_cast<const float4*>(&tile[row * kTileStride + 4 * piece]);
            }
            if (isValue)
                valueConv.store(a.convWindow + 2 * windowPart + valueChannel, P);
        }
        clusterWait();
        const float headSquares = warpSum(lane < kNormSlots ? outputSquares[buffer][lane] : 0.0f);
        if (lane == 0) {
            const float inv = rsqrtf(headSquares / static_cast<float>(D) + a.eps);
            const float4 scale =
                *reinterpret_cast<const float4*>(&outScale[buffer][kColumnsPerWarp * warp]);
            *reinterpret_cast<float4*>(a.out + static_cast<int64_t>(t) * P + head * D +
                                       firstColumn + kColumnsPerWarp * warp) =
                make_float4(o[0] * inv * scale.x, o[1] * inv * scale.y, o[2] * inv * scale.z,
                            o[3] * inv * scale.w);
        }
    }

    // The q and k windows, which every block of the head read at its start: rank 0 writes them
    // once all have arrived at the last cluster barrier.
    if (rank == 0)
        mainConv.store(a.convWindow + part * windowPart + channel, P);
    allowDependentLaunch();  // o_proj, launched as a dependent, reads `out` after its wait
}

}  // namespace

bool kdaHeadDimSupported(int headDim) {
    return headDim == 64 || headDim == 128;
}

void launchKdaSteps(const KdaStepArgs& a, cudaStream_t stream) {
    if (a.tokens <= 0 || a.convWidth < 1 || a.convWidth > kMaxHistory + 1)
        return;
    const dim3 grid(a.heads * kClusterBlocks);
    if (a.headDim == 128)
        launchDependent(kdaStepKernel<128>, grid, 2 * 128, 0, stream, a);
    else if (a.headDim == 64)
        launchDependent(kdaStepKernel<64>, grid, 2 * 64, 0, stream, a);
}

}  // namespace folio::inference::cuda
