// SPDX-License-Identifier: GPL-3.0-or-later
// Chunked KDA prefill, stage 1 ("local"): one block of 256 threads per (head, chunk of 64
// tokens), independent of every other block and of the recurrent state. It reads the layer's
// projections and gates and the convolution window (never writes them), and writes the record of
// kda_chunked.cuh for its (chunk, head) and nothing else. Steps, with Γ_r the cumulative
// log-decay of row r within the chunk and B_i = Γ at row 16 i (B_4 = Γ_63, the last row):
//  A. the short convolution and SiLU of q, k (64 rows of this head) from the window and the
//     projections; g = -exp(A_log) softplus(f + dt) and its prefix sums Γ; β = sigmoid(b);
//  B. L2 norms of the q and k rows (q scaled by 1/sqrt(128)); the sub-chunk boundaries B_i (the
//     factors e^{B_i - B_{j+1}}, e^{B_i} and e^{B_4 - B_{j+1}} are taken from them where used); a
//     channel is "steep" in sub-chunk i when B_i - B_{i+1} > kStrongSpan;
//  C. for the steep channels only, the diagonal sub-chunk blocks of L and A summed directly with
//     e^{Γ_r - Γ_j} (j <= r, so never above 1);
//  D. factors that never exceed 1: Kf_r = k_r e^{Γ_r - B_i}, Qf_r = q_r e^{Γ_r - B_i} (row r in
//     sub-chunk i), Kc_j = k_j e^{B_{i+1} - Γ_j} (row j in sub-chunk i); exports Q e^Γ and
//     K̃ = K e^{Γ_last - Γ} to the record;
//  E. on tensor cores (TF32), per row block i and column block j <= i:
//       L_ij = β ⊙ Kf_i (Kc_j ⊙ e^{B_i - B_{j+1}})ᵀ,  A_ij = Qf_i (Kc_j ⊙ e^{B_i - B_{j+1}})ᵀ,
//     which is Σ_d k_r k_j e^{Γ_r - Γ_j} with every factor at most 1 for j < i; for j = i the
//     column factor e^{B_i - Γ_j} lies in [1, e^40] (steep channels excluded, taken from C);
//     then L strictly lower, A lower with its diagonal; A goes to the record, L (which lands where
//     Qf was) waits in registers until every warp is done with Qf;
//  F. T = (I + L)^-1 by blocks of 16 in fp32 on CUDA cores, while the other warps convolve v;
//  G. on tensor cores (TF32): W = T (β e^Γ K), U = T (β V), to the record.
// Every product takes TF32 operands rounded to nearest, whether it feeds the state (L, W, U) or
// only the outputs (A); q, k, v, Γ and all the factors are fp32 in shared memory, and everything
// exported is fp32 (the operands TF32-rounded).
#include "device_math.cuh"
#include "device_query.h"
#include "kda_chunked.cuh"

namespace folio::inference::cuda::kdachunk {
namespace {

constexpr int kThreads = 256;
// Row pitches: fp32 rows of Qs, Ks and Gs are 136 floats (≡ 8 mod 32 banks: 64-bit fragment loads
// of 8 rows × 4 column pairs hit distinct banks); fp32 rows of Ls and Ts 68 floats.
constexpr int kPitch = 136;
constexpr int kLPitch = 68;

// Shared memory, bytes. Qs (q, then Qf) becomes L [64][68] and T [64][68] after step E; Gs (Γ,
// then Kc) becomes V in step F; the steep sums of step C become the inverse's scratch.
constexpr int kRowsBytes = kC * kPitch * 4;
constexpr int kLsBytes = kC * kLPitch * 4;
static_assert(2 * kLsBytes == kRowsBytes, "L and T [64][68] fp32 reuse q's rows");
constexpr int kQsAt = 0;
constexpr int kKsAt = kQsAt + kRowsBytes;
constexpr int kGsAt = kKsAt + kRowsBytes;
constexpr int kBAt = kGsAt + kRowsBytes;                // [5][128]: B_i
constexpr int kInvAt = kBAt + 5 * kD * 4;               // [2][64]: 1 / |q_r| (scaled), 1 / |k_r|
constexpr int kDiagAt = kInvAt + 2 * kC * 4;            // [4][16][16]: steep sums of step C
constexpr int kBetaAt = kDiagAt + 4 * kSub * kSub * 4;  // [64]
constexpr int kMaskAt = kBetaAt + kC * 4;       // [4][4] words: steep channels per sub-chunk
constexpr int kLocalShared = kMaskAt + 16 * 4;  // 111,936 bytes: two blocks per SM
static_assert(2 * (kLocalShared + 1024) <= 228 * 1024, "two blocks per multiprocessor");
static_assert(4 * kSub * kSub >= (kC / kSub - 1) * kSub * kSub, "the inverse's scratch fits");

// The factor of column channel d in block (row sub-chunk i, column sub-chunk j <= i) of L and A:
// e^{B_i - B_{j+1}} with span = B_i - B_{j+1}, at most 1 off the diagonal; on the diagonal (span
// >= 0) 0 for the steep channels, which step C sums directly (NaN counts as steep).
__device__ __forceinline__ float columnFactor(float span, bool diagonal) {
    return diagonal && !(span <= kStrongSpan) ? 0.0f : __expf(span);
}

// store(r, silu(conv)) for `rows` consecutive tokens from `first` (call-relative) of one channel
// of one part (0 q, 1 k, 2 v); rows at or past `valid` get 0. Tap slot s multiplies token
// t - 3 + s; the window holds the W - 1 tokens before the call.
template <int kRows, typename Store>
__device__ __forceinline__ void convolveRows(const KdaChunkedArgs& a, int part, int ch, int first,
                                             int valid, Store store) {
    const int P = a.heads * kD, W = a.convWidth, history = W - 1;
    float taps[kMaxConvWidth];
#pragma unroll
    for (int s = 0; s < kMaxConvWidth; ++s) {
        const int j = s - (kMaxConvWidth - W);
        taps[s] = j >= 0 ? a.convTaps[(static_cast<int64_t>(part) * P + ch) * W + j] : 0.0f;
    }
    float x[kRows + kMaxConvWidth - 1];
#pragma unroll
    for (int i = 0; i < kRows + kMaxConvWidth - 1; ++i) {
        const int token = first - (kMaxConvWidth - 1) + i;
        float v = 0.0f;
        if (token < first + valid) {
            if (token >= 0)
                v = a.proj[static_cast<int64_t>(token) * a.projStride + part * P + ch];
            else if (token >= -history)
                v = a.convWindow[(static_cast<int64_t>(part) * history + token + history) * P + ch];
        }
        x[i] = v;
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
        float sum = 0.0f;
#pragma unroll
        for (int s = 0; s < kMaxConvWidth; ++s)
            sum = fmaf(taps[s], x[r + s], sum);
        store(r, r < valid ? siluf(sum) : 0.0f);
    }
}

__device__ __forceinline__ float2 load2(const float* p) {
    return *reinterpret_cast<const float2*>(p);
}

// T = (I + L)^-1 for the strictly lower L in Ls (its diagonal and upper cells are ignored), by
// the 128 threads of warps 0..3: the diagonal 16 × 16 blocks by forward substitution, then
// T_ij = -T_ii Σ_{k=j}^{i-1} L_ik T_kj block diagonal by block diagonal. Blocks above the
// diagonal of T are never written (step G does not read them).
__device__ void invertUnitLower(const float* Ls, float* Ts, float* tmp, int tid) {
    auto sync = [] { asm volatile("bar.sync 1, 128;" ::: "memory"); };
    if (tid < 64) {
        const int base = kSub * (tid >> 4), c = tid & 15;
        float x[kSub];
#pragma unroll
        for (int r = 0; r < kSub; ++r) {
            float v = r == c ? 1.0f : 0.0f;
#pragma unroll
            for (int m = 0; m < r; ++m)
                v = fmaf(-Ls[(base + r) * kLPitch + base + m], x[m], v);
            x[r] = v;  // 0 above the diagonal: every x[m], m < c, is 0
        }
#pragma unroll
        for (int r = 0; r < kSub; ++r)
            Ts[(base + r) * kLPitch + base + c] = x[r];
    }
    sync();
    // Block (I = J + delta, J): a task is row r and columns 4 c4 .. 4 c4 + 3.
    for (int delta = 1; delta < kC / kSub; ++delta) {
        const int count = (kC / kSub - delta) * kSub * (kSub / 4);
        for (int e = tid; e < count; e += 128) {
            const int J = e >> 6, I = J + delta, r = (e >> 2) & 15, c = 4 * (e & 3);
            float4 y = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int K = J; K < I; ++K)
#pragma unroll
                for (int m = 0; m < kSub; ++m) {
                    const float l = Ls[(kSub * I + r) * kLPitch + kSub * K + m];
                    const float4 t = *reinterpret_cast<const float4*>(
                        Ts + (kSub * K + m) * kLPitch + kSub * J + c);
                    y.x = fmaf(l, t.x, y.x);
                    y.y = fmaf(l, t.y, y.y);
                    y.z = fmaf(l, t.z, y.z);
                    y.w = fmaf(l, t.w, y.w);
                }
            *reinterpret_cast<float4*>(tmp + (J << 8) + (r << 4) + c) = y;
        }
        sync();
        for (int e = tid; e < count; e += 128) {
            const int J = e >> 6, I = J + delta, r = (e >> 2) & 15, c = 4 * (e & 3);
            float4 t = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
            for (int m = 0; m < kSub; ++m) {
                const float l = -Ts[(kSub * I + r) * kLPitch + kSub * I + m];
                const float4 y = *reinterpret_cast<const float4*>(tmp + (J << 8) + (m << 4) + c);
                t.x = fmaf(l, y.x, t.x);
                t.y = fmaf(l, y.y, t.y);
                t.z = fmaf(l, y.z, t.z);
                t.w = fmaf(l, y.w, t.w);
            }
            *reinterpret_cast<float4*>(Ts + (kSub * I + r) * kLPitch + kSub * J + c) = t;
        }
        sync();
    }
}

__global__ void __launch_bounds__(kThreads, 2) localKernel(KdaChunkedArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ __align__(16) unsigned char smem[];
    float* Qs = reinterpret_cast<float*>(smem + kQsAt);
    float* Ks = reinterpret_cast<float*>(smem + kKsAt);
    float* Gs = reinterpret_cast<float*>(smem + kGsAt);
    float* Bs = reinterpret_cast<float*>(smem + kBAt);
    float* qInvs = reinterpret_cast<float*>(smem + kInvAt);
    float* kInvs = qInvs + kC;
    float* diag = reinterpret_cast<float*>(smem + kDiagAt);
    float* beta = reinterpret_cast<float*>(smem + kBetaAt);
    unsigned* steep = reinterpret_cast<unsigned*>(smem + kMaskAt);

    const int head = blockIdx.x, chunk = blockIdx.y, tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, tg = lane & 3;
    const int H = a.heads, P = H * kD, t0 = chunk * kC, n = min(kC, a.tokens - t0);
    float* record = a.chunks + (static_cast<int64_t>(chunk) * H + head) * kRecordFloats;

    // ---- A: convolutions of q and k, the gate's prefix sums (each half of the rows), β ----
    if (tid < 16)
        steep[tid] = 0;
    {
        const int d = tid & (kD - 1), r0 = (tid >> 7) * 32, ch = head * kD + d;
#pragma unroll 1
        for (int rb = r0; rb < r0 + 32; rb += kSub) {
            convolveRows<kSub>(a, 0, ch, t0 + rb, n - rb,
                               [&](int r, float x) { Qs[(rb + r) * kPitch + d] = x; });
            convolveRows<kSub>(a, 1, ch, t0 + rb, n - rb,
                               [&](int r, float x) { Ks[(rb + r) * kPitch + d] = x; });
        }
        float v[32];
#pragma unroll
        for (int r = 0; r < 32; ++r)
            v[r] =
                r0 + r < n ? a.gates[static_cast<int64_t>(t0 + r0 + r) * a.gatesStride + ch] : 0.0f;
        const float rate = a.decayRate[head], dt = a.dtBias[ch];
        float sum = 0.0f;
#pragma unroll
        for (int r = 0; r < 32; ++r) {
            if (r0 + r < n)
                sum += -rate * softplusf(v[r] + dt);
            Gs[(r0 + r) * kPitch + d] = sum;
        }
    }
    if (tid < kC)
        beta[tid] =
            tid < n ? sigmoidf(a.proj[static_cast<int64_t>(t0 + tid) * a.projStride + 3 * P + head])
                    : 0.0f;
    __syncthreads();

    // ---- B: Γ of the second half, row norms ----
    if (tid >= kD) {
        const int d = tid - kD;
        const float base = Gs[31 * kPitch + d];
        for (int r = 32; r < kC; ++r)
            Gs[r * kPitch + d] += base;
    }
    for (int i = 0; i < kC / 8; ++i) {
        const int r = warp * (kC / 8) + i;
        const float4 k4 = *reinterpret_cast<const float4*>(Ks + r * kPitch + 4 * lane);
        const float4 q4 = *reinterpret_cast<const float4*>(Qs + r * kPitch + 4 * lane);
        const float kk = warpSum(k4.x * k4.x + k4.y * k4.y + k4.z * k4.z + k4.w * k4.w);
        const float qq = warpSum(q4.x * q4.x + q4.y * q4.y + q4.z * q4.z + q4.w * q4.w);
        if (lane == 0) {
            qInvs[r] = rsqrtf(static_cast<float>(kD)) / sqrtf(qq + 1e-6f);
            kInvs[r] = 1.0f / sqrtf(kk + 1e-6f);
        }
    }
    __syncthreads();

    // ---- B: boundaries, steep channels, the record's decay ----
    if (tid < kD) {
        const int d = tid;
        float B[5];
#pragma unroll
        for (int i = 0; i < 4; ++i)
            B[i] = Gs[kSub * i * kPitch + d];
        B[4] = Gs[(kC - 1) * kPitch + d];
#pragma unroll
        for (int i = 0; i < 5; ++i)
            Bs[i * kD + d] = B[i];
#pragma unroll
        for (int i = 0; i < 4; ++i)
            if (!(B[i] - B[i + 1] <= kStrongSpan))  // NaN counts as steep
                atomicOr(&steep[i * 4 + (d >> 5)], 1u << (d & 31));
    } else {
        const int d = tid - kD;
        record[kDecayAt + d] = __expf(Gs[(kC - 1) * kPitch + d]);
    }
    __syncthreads();

    // ---- C: steep channels of the diagonal blocks, summed directly ----
    // Task (i, p): pair p = rr (rr + 1) / 2 + jj (jj <= rr) of sub-chunk i. The sums land in
    // diag [i][16][16]: L's at (rr, jj) below the diagonal, A's transposed at (jj, rr).
    for (int task = tid; task < 4 * (kSub * (kSub + 1) / 2); task += kThreads) {
        const int i = task / (kSub * (kSub + 1) / 2);
        int p = task % (kSub * (kSub + 1) / 2), rr = 0;
        while (p > rr) {
            p -= rr + 1;
            ++rr;
        }
        const int r = kSub * i + rr, j = kSub * i + p;
        const float qInv = qInvs[r], kInvR = kInvs[r], kInvJ = kInvs[j];
        float sumL = 0.0f, sumA = 0.0f;
        for (int w = 0; w < 4; ++w) {
            unsigned bits = steep[i * 4 + w];
            while (bits != 0) {
                const int d = 32 * w + __ffs(bits) - 1;
                bits &= bits - 1;
                const float e = __expf(Gs[r * kPitch + d] - Gs[j * kPitch + d]);
                const float kj = Ks[j * kPitch + d] * kInvJ * e;
                sumL = fmaf(Ks[r * kPitch + d] * kInvR, kj, sumL);
                sumA = fmaf(Qs[r * kPitch + d] * qInv, kj, sumA);
            }
        }
        float* block = diag + i * kSub * kSub;
        if (p < rr)
            block[rr * kSub + p] = sumL;
        block[p * kSub + rr] = sumA;
    }
    __syncthreads();

    // ---- D: factors in place, exports of Q e^Γ and K̃ᵀ ----
    // Task: rows r0 + {0, 1, 8, 9} × channels d0 + {0, 1, 8, 9}, which are four fragment-order
    // lane groups of Q e^Γ and four of K̃ᵀ. Consecutive tasks fill the lanes of the same tiles.
    {
        constexpr int kOff[4] = {0, 1, 8, 9};
        float4* qgOut = reinterpret_cast<float4*>(record + kQgAt);
        float4* ktOut = reinterpret_cast<float4*>(record + kKtAt);
#pragma unroll 1
        for (int task = tid; task < 512; task += kThreads) {
            const int b = (task >> 2) & 3, e = task & 3, i = task >> 7, c = (task >> 4) & 7;
            const int r0 = kSub * i + 2 * b, d0 = 16 * c + 2 * e;
            float qg[4][4], kt[4][4], qInv[4], kInv[4];
#pragma unroll
            for (int ri = 0; ri < 4; ++ri) {
                qInv[ri] = qInvs[r0 + kOff[ri]];
                kInv[ri] = kInvs[r0 + kOff[ri]];
            }
#pragma unroll
            for (int di = 0; di < 4; ++di) {
                const int d = d0 + kOff[di];
                const float bFirst = Bs[i * kD + d], bNext = Bs[(i + 1) * kD + d];
                const float toGamma = __expf(bFirst), toLast = __expf(Bs[4 * kD + d] - bNext);
#pragma unroll
                for (int ri = 0; ri < 4; ++ri) {
                    const int r = r0 + kOff[ri];
                    const float gamma = Gs[r * kPitch + d];
                    const float q = Qs[r * kPitch + d] * qInv[ri];
                    const float k = Ks[r * kPitch + d] * kInv[ri];
                    const float rowFactor = __expf(gamma - bFirst);
                    const float colFactor = __expf(bNext - gamma);
                    Qs[r * kPitch + d] = q * rowFactor;
                    Ks[r * kPitch + d] = k * rowFactor;
                    Gs[r * kPitch + d] = k * colFactor;
                    qg[ri][di] = roundTf32(q * rowFactor * toGamma);
                    kt[ri][di] = roundTf32(k * colFactor * toLast);
                }
            }
#pragma unroll
            for (int rp = 0; rp < 2; ++rp)
#pragma unroll
                for (int cp = 0; cp < 2; ++cp)
                    qgOut[(i * 16 + 2 * c + cp) * 32 + 4 * (2 * b + rp) + e] =
                        make_float4(qg[rp][2 * cp], qg[rp + 2][2 * cp], qg[rp][2 * cp + 1],
                                    qg[rp + 2][2 * cp + 1]);
#pragma unroll
            for (int tp = 0; tp < 2; ++tp)
#pragma unroll
                for (int dp = 0; dp < 2; ++dp)
                    ktOut[(c * 8 + 2 * i + tp) * 32 + 4 * (2 * e + dp) + b] =
                        make_float4(kt[2 * tp][dp], kt[2 * tp][dp + 2], kt[2 * tp + 1][dp],
                                    kt[2 * tp + 1][dp + 2]);
        }
    }
    __syncthreads();

    // ---- E: L and A on tensor cores ----
    // Tiles (row block i, column tile nt < 2 (i + 1)), 20 in all (A's tile aTile(i, nt) of the
    // record), three or two per warp. L lands on Qf's rows: its values wait in registers until
    // every warp is done with Qf.
    float* Ls = Qs;
    float* Ts = Qs + kC * kLPitch;
    {
        float4* aOut = reinterpret_cast<float4*>(record + kAAt);
        float keepL[3][4];
#pragma unroll
        for (int tt = 0; tt < 3; ++tt) {
            const int t = warp + 8 * tt;
            if (t >= kATiles)
                break;
            const int i = tileRowBlock(t), nt = t - i * (i + 1), jBlock = nt >> 1;
            const bool diagonal = jBlock == i;
            const float* bRow = Bs + i * kD;
            const float* bCol = Bs + (jBlock + 1) * kD;
            const int ra = kSub * i + g, jb = 8 * nt + g;
            float accL[4] = {0.0f, 0.0f, 0.0f, 0.0f}, accA[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 4
            for (int ks = 0; ks < kD / 8; ++ks) {
                const int kc = 8 * ks + 2 * tg;
                const float2 k0 = load2(Ks + ra * kPitch + kc),
                             k1 = load2(Ks + (ra + 8) * kPitch + kc);
                const uint32_t ak[4] = {tf32(k0.x), tf32(k1.x), tf32(k0.y), tf32(k1.y)};
                const float2 q0 = load2(Qs + ra * kPitch + kc),
                             q1 = load2(Qs + (ra + 8) * kPitch + kc);
                const uint32_t aq[4] = {tf32(q0.x), tf32(q1.x), tf32(q0.y), tf32(q1.y)};
                const float2 kcol = load2(Gs + jb * kPitch + kc);
                const float2 bi = load2(bRow + kc), bj = load2(bCol + kc);
                const uint32_t b0 = tf32(kcol.x * columnFactor(bi.x - bj.x, diagonal));
                const uint32_t b1 = tf32(kcol.y * columnFactor(bi.y - bj.y, diagonal));
                mmaTf32(accL, ak, b0, b1);
                mmaTf32(accA, aq, b0, b1);
            }
            const float* block = diag + i * kSub * kSub;
            float outA[4];
#pragma unroll
            for (int ci = 0; ci < 4; ++ci) {
                const int r = ra + 8 * (ci >> 1), j = 8 * nt + 2 * tg + (ci & 1);
                float l = accL[ci], av = accA[ci];
                if (diagonal) {
                    const int rr = r - kSub * i, jj = j - kSub * i;
                    if (j < r)
                        l += block[rr * kSub + jj];
                    if (j <= r)
                        av += block[jj * kSub + rr];
                }
                keepL[tt][ci] = beta[r] * l;
                outA[ci] = j <= r ? av : 0.0f;
            }
            aOut[aTile(i, nt) * 32 + lane] = make_float4(roundTf32(outA[0]), roundTf32(outA[2]),
                                                         roundTf32(outA[1]), roundTf32(outA[3]));
        }
        __syncthreads();  // every read of Qf (and of the steep sums) done
#pragma unroll
        for (int tt = 0; tt < 3; ++tt) {
            const int t = warp + 8 * tt;
            if (t >= kATiles)
                break;
            const int i = tileRowBlock(t), nt = t - i * (i + 1);
#pragma unroll
            for (int ci = 0; ci < 4; ++ci) {
                const int r = kSub * i + g + 8 * (ci >> 1), j = 8 * nt + 2 * tg + (ci & 1);
                if (j < r)
                    Ls[r * kLPitch + j] = keepL[tt][ci];
            }
        }
    }
    __syncthreads();

    // ---- F: T = (I + L)^-1 (warps 0..3) while warps 4..7 convolve v into Gs ----
    float* Vs = Gs;
    if (tid < 128) {
        invertUnitLower(Ls, Ts, diag, tid);
    } else {
        const int d = tid - 128, ch = head * kD + d;
#pragma unroll 1
        for (int rb = 0; rb < kC / kSub; ++rb) {
            convolveRows<kSub>(a, 2, ch, t0 + kSub * rb, n - kSub * rb,
                               [&](int r, float x) { Vs[(kSub * rb + r) * kPitch + d] = x; });
        }
    }
    __syncthreads();

    // ---- G: W = T (β e^Γ K) and U = T (β V) on tensor cores ----
    // Warp: 32 output columns (n tiles 4 nq .. 4 nq + 3) of row tiles mg and 3 - mg, whose
    // reductions (tokens 0 .. 16 (m + 1) - 1, T being lower triangular) balance the warps.
    {
        const int nq = warp & 3, mg = warp >> 2;
        const int mts[2] = {mg, 3 - mg};
        const int ksEnd = 2 * (mts[1] + 1);
        float4* wOut = reinterpret_cast<float4*>(record + kWAt);
        float4* uOut = reinterpret_cast<float4*>(record + kUAt);
#pragma unroll 1
        for (int pass = 0; pass < 2; ++pass) {
            float acc[2][4][4];
#pragma unroll
            for (int m = 0; m < 2; ++m)
#pragma unroll
                for (int q = 0; q < 4; ++q)
#pragma unroll
                    for (int c = 0; c < 4; ++c)
                        acc[m][q][c] = 0.0f;
#pragma unroll 1
            for (int ks = 0; ks < ksEnd; ++ks) {
                const int j0 = 8 * ks + 2 * tg;
                const float beta0 = beta[j0], beta1 = beta[j0 + 1];
                uint32_t bfrag[4][2];
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const int col = 8 * (4 * nq + q) + g;
                    float x0, x1;
                    if (pass == 0) {
                        const float e = __expf(Bs[(ks >> 1) * kD + col]);  // e^{B_i}, row j0's i
                        x0 = Ks[j0 * kPitch + col] * beta0 * e;
                        x1 = Ks[(j0 + 1) * kPitch + col] * beta1 * e;
                    } else {
                        x0 = Vs[j0 * kPitch + col] * beta0;
                        x1 = Vs[(j0 + 1) * kPitch + col] * beta1;
                    }
                    bfrag[q][0] = tf32(x0);
                    bfrag[q][1] = tf32(x1);
                }
#pragma unroll
                for (int m = 0; m < 2; ++m) {
                    const int mt = mts[m];
                    if (ks < 2 * (mt + 1)) {
                        const float2 ta = load2(Ts + (kSub * mt + g) * kLPitch + j0);
                        const float2 tb = load2(Ts + (kSub * mt + g + 8) * kLPitch + j0);
                        const uint32_t at[4] = {tf32(ta.x), tf32(tb.x), tf32(ta.y), tf32(tb.y)};
#pragma unroll
                        for (int q = 0; q < 4; ++q)
                            mmaTf32(acc[m][q], at, bfrag[q][0], bfrag[q][1]);
                    }
                }
            }
#pragma unroll
            for (int m = 0; m < 2; ++m)
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const int at = (mts[m] * 16 + 4 * nq + q) * 32 + lane;
                    const float* c = acc[m][q];
                    if (pass == 0)
                        wOut[at] = make_float4(roundTf32(c[0]), roundTf32(c[2]), roundTf32(c[1]),
                                               roundTf32(c[3]));
                    else
                        uOut[at] = make_float4(c[0], c[1], c[2], c[3]);
                }
        }
    }
#endif
}

}  // namespace

bool localKernelRuns() {
    cudaFuncAttributes attributes{};
    if (currentComputeCapability() < 90 ||
        cudaFuncGetAttributes(&attributes, localKernel) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return attributes.binaryVersion >= 90;
}

cudaError_t configureLocal() {
    const cudaError_t e = cudaFuncSetAttribute(
        localKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kLocalShared);
    if (e != cudaSuccess)
        return e;
    return cudaFuncSetAttribute(localKernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                cudaSharedmemCarveoutMaxShared);
}

void launchLocal(const KdaChunkedArgs& a, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(a.heads),
                    static_cast<unsigned>((a.tokens + kC - 1) / kC));
    localKernel<<<grid, kThreads, kLocalShared, stream>>>(a);
}

}  // namespace folio::inference::cuda::kdachunk
