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
//  3. state pass: per head and 32 value columns, chunk after chunk: V' = U - W S,
//     O = (Q e^Γ) S + A V', S = e^{Γ_last} S + (K e^{Γ_last - Γ})ᵀ V' — the value columns of the
//     state evolve independently, which is what lets 128 blocks share the sequential part;
//  4. the gated RMSNorm of the output.
// The same algebra as the CPU reference's kdaChunkedHead; fp32 throughout. The state after the
// call is exact for any number of tokens (a last chunk may be short).
#include "device_math.cuh"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

constexpr int kD = 128, kC = 64, kCols = 32, kThreads = 256;
constexpr int kMaxWidth = 8;
constexpr int kRowPitch = kD + 1;  // the chunk kernel's shared rows
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
    // Rows padded to kRowPitch floats: the pair loop reads 8 rows at once, in distinct banks.
    float* K = smem;                // [C][kRowPitch]
    float* Q = K + kC * kRowPitch;  // [C][kRowPitch]
    float* G = Q + kC * kRowPitch;  // [C][kRowPitch] cumulative log-decay
    float* L = G + kC * kRowPitch;  // [C][C]
    float* A = L + kC * kC;         // [C][C]
    __shared__ float betas[kC];
    const int chunk = blockIdx.x, head = blockIdx.y, tid = threadIdx.x;
    const int P = a.heads * kD, t0 = chunk * kC, n = min(kC, a.tokens - t0);
    for (int i = tid; i < kC * kD; i += kThreads) {
        const int r = i / kD, d = i % kD;
        const int64_t at = static_cast<int64_t>(t0 + r) * P + head * kD + d;
        const bool valid = r < n;
        K[r * kRowPitch + d] = valid ? a.k[at] : 0.0f;
        Q[r * kRowPitch + d] = valid ? a.q[at] : 0.0f;
        G[r * kRowPitch + d] = valid ? a.g[at] : 0.0f;
    }
    if (tid < kC)
        betas[tid] = tid < n ? a.beta[static_cast<int64_t>(t0 + tid) * a.heads + head] : 0.0f;
    __syncthreads();
    if (tid < kD) {  // Γ: prefix sums over the chunk, one channel per thread
        float sum = 0.0f;
        for (int r = 0; r < kC; ++r) {
            sum += G[r * kRowPitch + tid];
            G[r * kRowPitch + tid] = sum;
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
            const float kr = K[r * kRowPitch + d], qr = Q[r * kRowPitch + d],
                        gr = G[r * kRowPitch + d];
#pragma unroll
            for (int m = 0; m < kC / 4; ++m) {
                const int j = j0 + 4 * m;
                if (j <= r) {
                    const float kd = K[j * kRowPitch + d] * __expf(gr - G[j * kRowPitch + d]);
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
                rhs = betas[r] * __expf(G[r * kRowPitch + c]) * K[r * kRowPitch + c];
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
    const float* last = G + (kC - 1) * kRowPitch;  // padded rows have g = 0: the last token's Γ
    for (int i = tid; i < kC * kD; i += kThreads) {
        const int r = i / kD, d = i % kD, at = r * kRowPitch + d;
        Qout[i] = Q[at] * __expf(G[at]);
        Kout[i] = K[at] * __expf(last[d] - G[at]);
    }
    for (int i = tid; i < kC * kC; i += kThreads)
        Aout[i] = A[i];
    if (tid < kD)
        decayOut[tid] = __expf(last[tid]);
}

// Thread roles in the state pass: value columns (cg, cg + 16) of the block's 32; rows
// rg + 16 i (i < 4) of the chunk's outputs, state rows 8 rg .. 8 rg + 7. Tiles are padded to a
// pitch of 132 floats so that float4 reads of neighbouring rows fall in distinct banks.
constexpr int kPitch = kD + 4;

__global__ void __launch_bounds__(kThreads) statePassKernel(KdaChunkedArgs a) {
    extern __shared__ float4 smem4[];
    float* Wc = reinterpret_cast<float*>(smem4);  // [C][kPitch]
    float* Qc = Wc + kC * kPitch;                 // [C][kPitch]
    float* Kc = Qc + kC * kPitch;                 // [C][kPitch]
    float* Ac = Kc + kC * kPitch;                 // [C][C]
    float* S = Ac + kC * kC;                      // [D][kCols]
    float* Vn = S + kD * kCols;                   // [C][kCols]: V'
    float* decay = Vn + kC * kCols;               // [D]
    const int head = blockIdx.x, c0 = blockIdx.y * kCols, tid = threadIdx.x;
    const int P = a.heads * kD;
    const int cg = tid % 16, rg = tid / 16;
    float* state = a.state + static_cast<int64_t>(head) * kD * kD;
    for (int i = tid; i < kD * kCols; i += kThreads)
        S[i] = state[(i / kCols) * kD + c0 + i % kCols];
    const int chunks = (a.tokens + kC - 1) / kC;
    for (int chunk = 0; chunk < chunks; ++chunk) {
        const float* in = a.chunks + (static_cast<int64_t>(chunk) * a.heads + head) * kChunkFloats;
        const float* U = in + kC * kD;
        __syncthreads();  // the previous chunk is done with the shared tiles
        for (int i = tid; i < kC * kD / 4; i += kThreads) {
            const int r = i / (kD / 4), q = i % (kD / 4);
            reinterpret_cast<float4*>(Wc + r * kPitch)[q] = reinterpret_cast<const float4*>(in)[i];
            reinterpret_cast<float4*>(Qc + r * kPitch)[q] =
                reinterpret_cast<const float4*>(in + 2 * kC * kD)[i];
            reinterpret_cast<float4*>(Kc + r * kPitch)[q] =
                reinterpret_cast<const float4*>(in + 3 * kC * kD)[i];
        }
        for (int i = tid; i < kC * kC; i += kThreads)
            Ac[i] = in[4 * kC * kD + i];
        if (tid < kD)
            decay[tid] = in[4 * kC * kD + kC * kC + tid];
        __syncthreads();
        // V' = U - W S and the inter-chunk output (Q e^Γ) S: 4 rows × 2 columns per thread.
        float ws[4][2] = {}, qs[4][2] = {};
        for (int d = 0; d < kD; d += 4) {
            float sv[4][2];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                sv[e][0] = S[(d + e) * kCols + cg];
                sv[e][1] = S[(d + e) * kCols + cg + 16];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int r = rg + 16 * i;
                const float4 w4 = *reinterpret_cast<const float4*>(Wc + r * kPitch + d);
                const float4 q4 = *reinterpret_cast<const float4*>(Qc + r * kPitch + d);
                const float wv[4] = {w4.x, w4.y, w4.z, w4.w}, qv[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
                for (int e = 0; e < 4; ++e)
#pragma unroll
                    for (int k = 0; k < 2; ++k) {
                        ws[i][k] = fmaf(wv[e], sv[e][k], ws[i][k]);
                        qs[i][k] = fmaf(qv[e], sv[e][k], qs[i][k]);
                    }
            }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int r = rg + 16 * i;
#pragma unroll
            for (int k = 0; k < 2; ++k)
                Vn[r * kCols + cg + 16 * k] = U[r * kD + c0 + cg + 16 * k] - ws[i][k];
        }
        __syncthreads();
        // Intra-chunk output A V', written out.
        const int t0 = chunk * kC;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int r = rg + 16 * i;
            float acc0 = qs[i][0], acc1 = qs[i][1];
            for (int j = 0; j <= r; ++j) {
                const float aj = Ac[r * kC + j];
                acc0 = fmaf(aj, Vn[j * kCols + cg], acc0);
                acc1 = fmaf(aj, Vn[j * kCols + cg + 16], acc1);
            }
            if (t0 + r < a.tokens) {
                float* o = a.o + static_cast<int64_t>(t0 + r) * P + head * kD + c0 + cg;
                o[0] = acc0;
                o[16] = acc1;
            }
        }
        // S = e^{Γ_last} S + (K e^{Γ_last-Γ})ᵀ V': state rows 8 rg .. 8 rg + 7, 2 columns.
        float sn[8][2];
        const int d0 = 8 * rg;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            sn[e][0] = S[(d0 + e) * kCols + cg] * decay[d0 + e];
            sn[e][1] = S[(d0 + e) * kCols + cg + 16] * decay[d0 + e];
        }
        for (int r = 0; r < kC; ++r) {
            const float4 k0 = *reinterpret_cast<const float4*>(Kc + r * kPitch + d0);
            const float4 k1 = *reinterpret_cast<const float4*>(Kc + r * kPitch + d0 + 4);
            const float kv[8] = {k0.x, k0.y, k0.z, k0.w, k1.x, k1.y, k1.z, k1.w};
            const float v0 = Vn[r * kCols + cg], v1 = Vn[r * kCols + cg + 16];
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                sn[e][0] = fmaf(kv[e], v0, sn[e][0]);
                sn[e][1] = fmaf(kv[e], v1, sn[e][1]);
            }
        }
        __syncthreads();  // every thread has read S before it is overwritten
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            S[(d0 + e) * kCols + cg] = sn[e][0];
            S[(d0 + e) * kCols + cg + 16] = sn[e][1];
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

constexpr size_t kChunkShared = sizeof(float) * (3 * kC * kRowPitch + 2 * kC * kC);
constexpr size_t kPassShared =
    sizeof(float) * (3 * kC * kPitch + kC * kC + kD * kCols + kC * kCols + kD);

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
