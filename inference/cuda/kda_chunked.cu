// SPDX-License-Identifier: GPL-3.0-or-later
// KDA for prefill in the chunked (WY / UT-transform) form, for head size 128. Four kernels:
//  1. prepare: per token and head, the short convolution with its window (SiLU), L2-normalised
//     q (scaled) and k, v, the forget gate g = -exp(A_log) softplus(f + dt) and β = sigmoid(b);
//     then the window slides to the last W-1 pre-convolution rows;
//  2. chunk: per chunk of 64 tokens and head, independently of every other chunk: the cumulative
//     log-decay Γ, L[r][j] = β_r Σ_d k_r k_j e^{Γ_r-Γ_j} (j < r) and A[r][j] = Σ_d q_r k_j
//     e^{Γ_r-Γ_j} (j ≤ r) with the pairwise decays taken directly (never e^Γ times e^{-Γ}, so
//     strong decay cannot overflow), and the forward substitution (I + L) W = β e^Γ K,
//     (I + L) U = β V;
//  3. state pass: per head and 16 value columns, chunk after chunk: V' = U - W S,
//     O = (Q e^Γ) S + A V', S = e^{Γ_last} S + (K e^{Γ_last - Γ})ᵀ V' — the value columns of the
//     state evolve independently, which is what lets 256 blocks share the sequential part;
//  4. the gated RMSNorm of the output.
// The same algebra as the CPU reference's kdaChunkedHead; fp32 throughout. The state after the
// call is exact for any number of tokens (a last chunk may be short).
#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

constexpr int kD = 128, kC = 64, kCols = 16, kThreads = 256;
constexpr int kMaxWidth = 8;
// Per chunk and head, in this order: W, U, Q e^Γ, K e^{Γ_last-Γ} ([C][D] each), A [C][C],
// e^{Γ_last} [D].
constexpr int64_t kChunkFloats = 4 * kC * kD + kC * kC + kD;

__global__ void __launch_bounds__(kD) prepareKernel(KdaChunkedArgs a) {
    const int t = blockIdx.x, head = blockIdx.y, d = threadIdx.x;
    const int P = a.heads * kD, W = a.convWidth, history = W - 1, ch = head * kD + d;
    auto stream = [&](int part, int e) -> float {
        if (e < history)
            return a.convWindow[(static_cast<int64_t>(part) * history + e) * P + ch];
        return a.proj[static_cast<int64_t>(e - history) * a.projStride + part * P + ch];
    };
    float conv[3];
#pragma unroll
    for (int part = 0; part < 3; ++part) {
        const float* taps = a.convTaps + (static_cast<int64_t>(part) * P + ch) * W;
        float sum = 0.0f;
        for (int j = 0; j < W; ++j)
            sum = fmaf(taps[j], stream(part, t + j), sum);
        conv[part] = siluf(sum);
    }
    __shared__ float reduce[2][kD / 32];
    const float qq = warpSum(conv[0] * conv[0]), kk = warpSum(conv[1] * conv[1]);
    if ((d & 31) == 0) {
        reduce[0][d >> 5] = qq;
        reduce[1][d >> 5] = kk;
    }
    __syncthreads();
    float qNorm = 0.0f, kNorm = 0.0f;
    for (int w = 0; w < kD / 32; ++w) {
        qNorm += reduce[0][w];
        kNorm += reduce[1][w];
    }
    const int64_t at = static_cast<int64_t>(t) * P + ch;
    a.q[at] = conv[0] * (rsqrtf(static_cast<float>(kD)) / sqrtf(qNorm + 1e-6f));
    a.k[at] = conv[1] / sqrtf(kNorm + 1e-6f);
    a.v[at] = conv[2];
    const float f = a.gates[static_cast<int64_t>(t) * a.gatesStride + ch];
    a.g[at] = -a.decayRate[head] * softplusf(f + a.dtBias[ch]);
    if (d == 0)
        a.beta[static_cast<int64_t>(t) * a.heads + head] =
            sigmoidf(a.proj[static_cast<int64_t>(t) * a.projStride + 3 * P + head]);
}

// The window keeps the last W-1 pre-convolution rows (of the old window and the new tokens).
__global__ void slideWindowKernel(KdaChunkedArgs a) {
    const int P = a.heads * kD, history = a.convWidth - 1;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;  // over 3P channels
    if (c >= 3 * P)
        return;
    const int part = c / P, ch = c % P;
    float keep[kMaxWidth];
    for (int e = 0; e < history; ++e) {
        const int x = a.tokens + e;
        keep[e] = x < history
                      ? a.convWindow[(static_cast<int64_t>(part) * history + x) * P + ch]
                      : a.proj[static_cast<int64_t>(x - history) * a.projStride + part * P + ch];
    }
    for (int e = 0; e < history; ++e)
        a.convWindow[(static_cast<int64_t>(part) * history + e) * P + ch] = keep[e];
}

__global__ void __launch_bounds__(kThreads) chunkKernel(KdaChunkedArgs a) {
    extern __shared__ float smem[];
    float* K = smem;         // [C][D]
    float* Q = K + kC * kD;  // [C][D]
    float* G = Q + kC * kD;  // [C][D] cumulative log-decay
    float* L = G + kC * kD;  // [C][C]
    float* A = L + kC * kC;  // [C][C]
    __shared__ float betas[kC];
    const int chunk = blockIdx.x, head = blockIdx.y, tid = threadIdx.x;
    const int P = a.heads * kD, t0 = chunk * kC, n = min(kC, a.tokens - t0);
    for (int i = tid; i < kC * kD; i += kThreads) {
        const int r = i / kD, d = i % kD;
        const int64_t at = static_cast<int64_t>(t0 + r) * P + head * kD + d;
        const bool valid = r < n;
        K[i] = valid ? a.k[at] : 0.0f;
        Q[i] = valid ? a.q[at] : 0.0f;
        G[i] = valid ? a.g[at] : 0.0f;
    }
    if (tid < kC)
        betas[tid] = tid < n ? a.beta[static_cast<int64_t>(t0 + tid) * a.heads + head] : 0.0f;
    __syncthreads();
    if (tid < kD) {  // Γ: prefix sums over the chunk, one channel per thread
        float sum = 0.0f;
        for (int r = 0; r < kC; ++r) {
            sum += G[r * kD + tid];
            G[r * kD + tid] = sum;
        }
    }
    __syncthreads();
    // L and A: thread (r = tid / 4) takes the pairs (r, j) with j ≡ tid (mod 4), j ≤ r.
    {
        const int r = tid >> 2, j0 = tid & 3;
        float accL[kC / 4], accA[kC / 4];
#pragma unroll
        for (int m = 0; m < kC / 4; ++m)
            accL[m] = accA[m] = 0.0f;
        for (int d = 0; d < kD; ++d) {
            const float kr = K[r * kD + d], qr = Q[r * kD + d], gr = G[r * kD + d];
#pragma unroll
            for (int m = 0; m < kC / 4; ++m) {
                const int j = j0 + 4 * m;
                if (j <= r) {
                    const float kd = K[j * kD + d] * __expf(gr - G[j * kD + d]);
                    accL[m] = fmaf(kr, kd, accL[m]);
                    accA[m] = fmaf(qr, kd, accA[m]);
                }
            }
        }
#pragma unroll
        for (int m = 0; m < kC / 4; ++m) {
            const int j = j0 + 4 * m;
            L[r * kC + j] = j < r ? betas[r] * accL[m] : 0.0f;
            A[r * kC + j] = j <= r ? accA[m] : 0.0f;
        }
    }
    __syncthreads();
    float* out = a.chunks + (static_cast<int64_t>(chunk) * a.heads + head) * kChunkFloats;
    float* Wout = out;
    float* Uout = Wout + kC * kD;
    float* Qout = Uout + kC * kD;
    float* Kout = Qout + kC * kD;
    float* Aout = Kout + kC * kD;
    float* decayOut = Aout + kC * kC;
    // Forward substitution, one column per thread: W (threads 0..127), U (128..255).
    {
        const int c = tid % kD;
        const bool isW = tid < kD;
        float col[kC];
#pragma unroll
        for (int r = 0; r < kC; ++r) {
            float rhs;
            if (isW) {
                rhs = betas[r] * __expf(G[r * kD + c]) * K[r * kD + c];
            } else {
                rhs =
                    r < n ? betas[r] * a.v[static_cast<int64_t>(t0 + r) * P + head * kD + c] : 0.0f;
            }
#pragma unroll
            for (int j = 0; j < r; ++j)
                rhs = fmaf(-L[r * kC + j], col[j], rhs);
            col[r] = rhs;
        }
        float* dst = isW ? Wout : Uout;
#pragma unroll
        for (int r = 0; r < kC; ++r)
            dst[r * kD + c] = col[r];
    }
    const float* last = G + (kC - 1) * kD;  // padded rows have g = 0: Γ_last is the last token's
    for (int i = tid; i < kC * kD; i += kThreads) {
        const int d = i % kD;
        Qout[i] = Q[i] * __expf(G[i]);
        Kout[i] = K[i] * __expf(last[d] - G[i]);
    }
    for (int i = tid; i < kC * kC; i += kThreads)
        Aout[i] = A[i];
    if (tid < kD)
        decayOut[tid] = __expf(last[tid]);
}

__global__ void __launch_bounds__(kThreads) statePassKernel(KdaChunkedArgs a) {
    extern __shared__ float smem[];
    float* Wc = smem;                // [C][D]
    float* Qc = Wc + kC * kD;        // [C][D]
    float* Kc = Qc + kC * kD;        // [C][D]
    float* Ac = Kc + kC * kD;        // [C][C]
    float* S = Ac + kC * kC;         // [D][kCols]
    float* Vn = S + kD * kCols;      // [C][kCols]: V'
    float* decay = Vn + kC * kCols;  // [D]
    const int head = blockIdx.x, c0 = blockIdx.y * kCols, tid = threadIdx.x;
    const int P = a.heads * kD;
    float* state = a.state + static_cast<int64_t>(head) * kD * kD;
    for (int i = tid; i < kD * kCols; i += kThreads)
        S[i] = state[(i / kCols) * kD + c0 + i % kCols];
    const int chunks = (a.tokens + kC - 1) / kC;
    // Thread roles: outputs (r, c) for r = tid / 16 + 16 m (m < 4), c = tid % 16; state rows
    // d = tid / 16 + 16 m (m < 8), column c.
    const int c = tid % kCols, rowBase = tid / kCols;
    for (int chunk = 0; chunk < chunks; ++chunk) {
        const float* in = a.chunks + (static_cast<int64_t>(chunk) * a.heads + head) * kChunkFloats;
        const float* U = in + kC * kD;
        __syncthreads();  // the previous chunk is done with the shared tiles
        for (int i = tid; i < kC * kD; i += kThreads) {
            Wc[i] = in[i];
            Qc[i] = in[2 * kC * kD + i];
            Kc[i] = in[3 * kC * kD + i];
        }
        for (int i = tid; i < kC * kC; i += kThreads)
            Ac[i] = in[4 * kC * kD + i];
        if (tid < kD)
            decay[tid] = in[4 * kC * kD + kC * kC + tid];
        __syncthreads();
        // V' = U - W S and the inter-chunk output (Q e^Γ) S.
        float vn[4], o[4];
#pragma unroll
        for (int m = 0; m < 4; ++m) {
            const int r = rowBase + 16 * m;
            float ws = 0.0f, qs = 0.0f;
            for (int d = 0; d < kD; ++d) {
                const float s = S[d * kCols + c];
                ws = fmaf(Wc[r * kD + d], s, ws);
                qs = fmaf(Qc[r * kD + d], s, qs);
            }
            vn[m] = U[r * kD + c0 + c] - ws;
            o[m] = qs;
        }
#pragma unroll
        for (int m = 0; m < 4; ++m)
            Vn[(rowBase + 16 * m) * kCols + c] = vn[m];
        __syncthreads();
        // Intra-chunk output A V', written out.
        const int t0 = chunk * kC;
#pragma unroll
        for (int m = 0; m < 4; ++m) {
            const int r = rowBase + 16 * m;
            float acc = o[m];
            for (int j = 0; j <= r; ++j)
                acc = fmaf(Ac[r * kC + j], Vn[j * kCols + c], acc);
            if (t0 + r < a.tokens)
                a.o[static_cast<int64_t>(t0 + r) * P + head * kD + c0 + c] = acc;
        }
        // S = e^{Γ_last} S + (K e^{Γ_last-Γ})ᵀ V'.
#pragma unroll
        for (int m = 0; m < kD / 16; ++m) {
            const int d = rowBase + 16 * m;
            float s = S[d * kCols + c] * decay[d];
            for (int r = 0; r < kC; ++r)
                s = fmaf(Kc[r * kD + d], Vn[r * kCols + c], s);
            S[d * kCols + c] = s;
        }
    }
    __syncthreads();
    for (int i = tid; i < kD * kCols; i += kThreads)
        state[(i / kCols) * kD + c0 + i % kCols] = S[i];
}

__global__ void __launch_bounds__(kD) gatedNormKernel(KdaChunkedArgs a) {
    const int t = blockIdx.x, head = blockIdx.y, d = threadIdx.x;
    const int P = a.heads * kD, ch = head * kD + d;
    const float x = a.o[static_cast<int64_t>(t) * P + ch];
    __shared__ float reduce[kD / 32];
    const float sq = warpSum(x * x);
    if ((d & 31) == 0)
        reduce[d >> 5] = sq;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < kD / 32; ++w)
        total += reduce[w];
    const float inv = rsqrtf(total / static_cast<float>(kD) + a.eps);
    const float gate = a.gates[static_cast<int64_t>(t) * a.gatesStride + P + ch];
    a.out[static_cast<int64_t>(t) * P + ch] = a.outNorm[d] * (x * inv) * sigmoidf(gate);
}

constexpr size_t kChunkShared = sizeof(float) * (3 * kC * kD + 2 * kC * kC);
constexpr size_t kPassShared =
    sizeof(float) * (3 * kC * kD + kC * kC + kD * kCols + kC * kCols + kD);

}  // namespace

bool kdaChunkedSupported(int headDim, int convWidth) {
    return headDim == kD && convWidth >= 1 && convWidth <= kMaxWidth + 1;
}

int64_t kdaChunkedScratchFloats(int tokens, int heads) {
    return static_cast<int64_t>((tokens + kC - 1) / kC) * heads * kChunkFloats;
}

cudaError_t configureKdaChunked() {
    cudaError_t e = cudaFuncSetAttribute(chunkKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(kChunkShared));
    if (e != cudaSuccess)
        return e;
    return cudaFuncSetAttribute(statePassKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(kPassShared));
}

void launchKdaChunked(const KdaChunkedArgs& a, cudaStream_t stream) {
    if (a.tokens <= 0)
        return;
    prepareKernel<<<dim3(a.tokens, a.heads), kD, 0, stream>>>(a);
    if (a.convWidth > 1)
        slideWindowKernel<<<(3 * a.heads * kD + 255) / 256, 256, 0, stream>>>(a);
    const int chunks = (a.tokens + kC - 1) / kC;
    chunkKernel<<<dim3(chunks, a.heads), kThreads, kChunkShared, stream>>>(a);
    statePassKernel<<<dim3(a.heads, kD / kCols), kThreads, kPassShared, stream>>>(a);
    gatedNormKernel<<<dim3(a.tokens, a.heads), kD, 0, stream>>>(a);
}

}  // namespace folio::inference::cuda
