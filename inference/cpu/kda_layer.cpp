// SPDX-License-Identifier: GPL-3.0-or-later
// KDA (Kimi Delta Attention) on the CPU, fp32 throughout.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_model.h"
#include "kernels.h"

namespace folio::inference::cpu {

void kdaRecurrentHead(const KdaHeadInputs& in, float* state, float* out) {
    const int64_t K = in.keyDim, V = in.valueDim;
    std::vector<float> pred(static_cast<size_t>(V));
    std::vector<float> update(static_cast<size_t>(V));
    for (int64_t t = 0; t < in.tokens; ++t) {
        const float* q = in.q + t * in.rowStride;
        const float* k = in.k + t * in.rowStride;
        const float* v = in.v + t * in.rowStride;
        const float* g = in.g + t * in.rowStride;
        float* o = out + t * in.rowStride;
        // Decay each key row, and read the state's prediction for this key.
        std::fill(pred.begin(), pred.end(), 0.0f);
        for (int64_t i = 0; i < K; ++i) {
            float* row = state + i * V;
            const float decay = std::exp(g[i]);
            const float ki = k[i];
            for (int64_t j = 0; j < V; ++j) {
                row[j] *= decay;
                pred[static_cast<size_t>(j)] += ki * row[j];
            }
        }
        const float beta = in.beta[t * in.betaStride];
        for (int64_t j = 0; j < V; ++j)
            update[static_cast<size_t>(j)] = beta * (v[j] - pred[static_cast<size_t>(j)]);
        // Rank-1 delta update, then read out with the updated state.
        std::fill(o, o + V, 0.0f);
        for (int64_t i = 0; i < K; ++i) {
            float* row = state + i * V;
            const float ki = k[i];
            const float qi = q[i];
            for (int64_t j = 0; j < V; ++j) {
                row[j] += ki * update[static_cast<size_t>(j)];
                o[j] += qi * row[j];
            }
        }
    }
}

// The chunked (WY / UT-transform) form. Within a chunk of n tokens, with Γ the cumulative
// log-decay per key channel:
//   L[r][j]  = β_r Σ_d k_r[d] k_j[d] e^{Γ_r[d]-Γ_j[d]}         (j < r)
//   A[r][j]  =     Σ_d q_r[d] k_j[d] e^{Γ_r[d]-Γ_j[d]}         (j <= r)
//   (I + L) W = β ⊙ e^{Γ} ⊙ K,   (I + L) U = β ⊙ V             (forward substitution)
//   V' = U - W S,  O = (Q ⊙ e^{Γ}) S + A V',  S <- e^{Γ_n} ⊙ S + (K ⊙ e^{Γ_n - Γ})ᵀ V'
// Pairwise decays are computed as e^{Γ_r-Γ_j} directly, never as a product of e^{Γ_r} and
// e^{-Γ_j}, so long chunks with strong decay cannot overflow.
void kdaChunkedHead(const KdaHeadInputs& in, float* state, float* out, int64_t chunkSize) {
    const int64_t K = in.keyDim, V = in.valueDim;
    const int64_t C = std::max<int64_t>(1, chunkSize);
    std::vector<float> gamma(static_cast<size_t>(C * K));
    std::vector<float> lower(static_cast<size_t>(C * C));
    std::vector<float> attn(static_cast<size_t>(C * C));
    std::vector<float> w(static_cast<size_t>(C * K));
    std::vector<float> u(static_cast<size_t>(C * V));
    std::vector<float> vNew(static_cast<size_t>(C * V));
    for (int64_t start = 0; start < in.tokens; start += C) {
        const int64_t n = std::min(C, in.tokens - start);
        auto q = [&](int64_t r) { return in.q + (start + r) * in.rowStride; };
        auto k = [&](int64_t r) { return in.k + (start + r) * in.rowStride; };
        auto v = [&](int64_t r) { return in.v + (start + r) * in.rowStride; };
        auto beta = [&](int64_t r) { return in.beta[(start + r) * in.betaStride]; };
        for (int64_t r = 0; r < n; ++r) {
            const float* g = in.g + (start + r) * in.rowStride;
            for (int64_t d = 0; d < K; ++d)
                gamma[static_cast<size_t>(r * K + d)] =
                    (r == 0 ? 0.0f : gamma[static_cast<size_t>((r - 1) * K + d)]) + g[d];
        }
        for (int64_t r = 0; r < n; ++r) {
            const float* gr = &gamma[static_cast<size_t>(r * K)];
            for (int64_t j = 0; j <= r; ++j) {
                const float* gj = &gamma[static_cast<size_t>(j * K)];
                const float* kj = k(j);
                float kk = 0.0f, qk = 0.0f;
                for (int64_t d = 0; d < K; ++d) {
                    const float decay = std::exp(gr[d] - gj[d]);
                    kk += k(r)[d] * kj[d] * decay;
                    qk += q(r)[d] * kj[d] * decay;
                }
                lower[static_cast<size_t>(r * C + j)] = j < r ? beta(r) * kk : 0.0f;
                attn[static_cast<size_t>(r * C + j)] = qk;
            }
        }
        // Forward substitution for W and U.
        for (int64_t r = 0; r < n; ++r) {
            float* wr = &w[static_cast<size_t>(r * K)];
            float* ur = &u[static_cast<size_t>(r * V)];
            const float* gr = &gamma[static_cast<size_t>(r * K)];
            for (int64_t d = 0; d < K; ++d)
                wr[d] = beta(r) * std::exp(gr[d]) * k(r)[d];
            for (int64_t c = 0; c < V; ++c)
                ur[c] = beta(r) * v(r)[c];
            for (int64_t j = 0; j < r; ++j) {
                const float l = lower[static_cast<size_t>(r * C + j)];
                const float* wj = &w[static_cast<size_t>(j * K)];
                const float* uj = &u[static_cast<size_t>(j * V)];
                for (int64_t d = 0; d < K; ++d)
                    wr[d] -= l * wj[d];
                for (int64_t c = 0; c < V; ++c)
                    ur[c] -= l * uj[c];
            }
        }
        // V' = U - W S and the inter-chunk part of the output, (Q ⊙ e^Γ) S.
        for (int64_t r = 0; r < n; ++r) {
            float* vr = &vNew[static_cast<size_t>(r * V)];
            float* o = out + (start + r) * in.rowStride;
            const float* wr = &w[static_cast<size_t>(r * K)];
            const float* gr = &gamma[static_cast<size_t>(r * K)];
            std::copy_n(&u[static_cast<size_t>(r * V)], V, vr);
            std::fill(o, o + V, 0.0f);
            for (int64_t d = 0; d < K; ++d) {
                const float* row = state + d * V;
                const float wd = wr[d];
                const float qd = q(r)[d] * std::exp(gr[d]);
                for (int64_t c = 0; c < V; ++c) {
                    vr[c] -= wd * row[c];
                    o[c] += qd * row[c];
                }
            }
        }
        // Intra-chunk part: O += A V'.
        for (int64_t r = 0; r < n; ++r) {
            float* o = out + (start + r) * in.rowStride;
            for (int64_t j = 0; j <= r; ++j) {
                const float a = attn[static_cast<size_t>(r * C + j)];
                const float* vj = &vNew[static_cast<size_t>(j * V)];
                for (int64_t c = 0; c < V; ++c)
                    o[c] += a * vj[c];
            }
        }
        // State pass to the end of the chunk.
        const float* last = &gamma[static_cast<size_t>((n - 1) * K)];
        for (int64_t d = 0; d < K; ++d) {
            float* row = state + d * V;
            const float decay = std::exp(last[d]);
            for (int64_t c = 0; c < V; ++c)
                row[c] *= decay;
            for (int64_t r = 0; r < n; ++r) {
                const float kd =
                    k(r)[d] * std::exp(last[d] - gamma[static_cast<size_t>(r * K + d)]);
                const float* vr = &vNew[static_cast<size_t>(r * V)];
                for (int64_t c = 0; c < V; ++c)
                    row[c] += kd * vr[c];
            }
        }
    }
}

namespace {

// Causal depthwise convolution over [window (W-1 rows); new rows], then SiLU. Updates the window
// to the last W-1 pre-convolution rows.
void shortConvolution(const float* taps, int64_t width, int64_t channels, float* window,
                      const float* input, int64_t tokens, float* output) {
    const int64_t history = width - 1;
    std::vector<float> extended(static_cast<size_t>((history + tokens) * channels));
    std::copy_n(window, history * channels, extended.begin());
    std::copy_n(input, tokens * channels, extended.begin() + history * channels);
    for (int64_t t = 0; t < tokens; ++t) {
        float* y = output + t * channels;
        for (int64_t c = 0; c < channels; ++c) {
            const float* tap = taps + c * width;
            float sum = 0.0f;
            for (int64_t j = 0; j < width; ++j)
                sum += tap[j] * extended[static_cast<size_t>((t + j) * channels + c)];
            y[c] = silu(sum);
        }
    }
    std::copy_n(extended.begin() + tokens * channels, history * channels, window);
}

void l2NormalizeHeads(float* x, int64_t tokens, int64_t heads, int64_t dim, float scale) {
    for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t h = 0; h < heads; ++h) {
            float* v = x + (t * heads + h) * dim;
            float sum = 0.0f;
            for (int64_t d = 0; d < dim; ++d)
                sum += v[d] * v[d];
            const float inv = scale / std::sqrt(sum + 1e-6f);
            for (int64_t d = 0; d < dim; ++d)
                v[d] *= inv;
        }
    }
}

}  // namespace

void kdaForward(const Context& ctx, const KdaLayer& layer, const float* h, int64_t tokens,
                KdaState& state, float* out) {
    const ModelConfig& c = ctx.config;
    const KdaWeights& w = *layer.w;
    const int64_t H = c.kdaNumHeads, d = c.kdaHeadDim, P = H * d, W = c.convKernelSize;
    const auto T = tokens;
    const auto sz = [](int64_t n) { return static_cast<size_t>(n); };

    std::vector<float> raw(sz(T * P)), q(sz(T * P)), k(sz(T * P)), v(sz(T * P));
    float* convOut[3] = {q.data(), k.data(), v.data()};
    const TensorView* projections[3] = {&w.qProj, &w.kProj, &w.vProj};
    for (int p = 0; p < 3; ++p) {
        linear(ctx.pool, *projections[p], h, T, raw.data());
        shortConvolution(layer.convTaps.data() + p * P * W, W, P,
                         state.conv.data() + p * (W - 1) * P, raw.data(), T, convOut[p]);
    }

    // Forget gate g = -exp(A_log) * softplus(f_b(f_a(h)) + dt_bias), per key channel.
    std::vector<float> low(sz(T * d)), g(sz(T * P));
    linear(ctx.pool, w.fA, h, T, low.data());
    linear(ctx.pool, w.fB, low.data(), T, g.data());
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < P; ++i) {
            float& x = g[sz(t * P + i)];
            x = -layer.decayRate[sz(i / d)] * softplus(x + layer.dtBias[sz(i)]);
        }
    }
    std::vector<float> beta(sz(T * H));
    linear(ctx.pool, w.bProj, h, T, beta.data());
    for (float& b : beta)
        b = sigmoid(b);

    l2NormalizeHeads(q.data(), T, H, d, 1.0f / std::sqrt(static_cast<float>(d)));
    l2NormalizeHeads(k.data(), T, H, d, 1.0f);

    std::vector<float> o(sz(T * P));
    const bool chunked = ctx.options.kdaAlgorithm == KdaAlgorithm::Chunked;
    ctx.pool.parallelFor(H, 1, [&](int64_t first, int64_t last) {
        for (int64_t head = first; head < last; ++head) {
            KdaHeadInputs in;
            in.tokens = T;
            in.keyDim = d;
            in.valueDim = d;
            in.rowStride = P;
            in.betaStride = H;
            in.q = q.data() + head * d;
            in.k = k.data() + head * d;
            in.v = v.data() + head * d;
            in.g = g.data() + head * d;
            in.beta = beta.data() + head;
            float* s = state.recurrent.data() + head * d * d;
            if (chunked)
                kdaChunkedHead(in, s, o.data() + head * d);
            else
                kdaRecurrentHead(in, s, o.data() + head * d);
        }
    });

    // Output gate and gated RMSNorm per head: o * rsqrt(mean(o^2) + eps) * w * sigmoid(gate).
    std::vector<float> gate(sz(T * P));
    linear(ctx.pool, w.gA, h, T, low.data());
    linear(ctx.pool, w.gB, low.data(), T, gate.data());
    const double eps = c.rmsNormEps;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t head = 0; head < H; ++head) {
            float* x = o.data() + t * P + head * d;
            const float* gt = gate.data() + t * P + head * d;
            float sum = 0.0f;
            for (int64_t i = 0; i < d; ++i)
                sum += x[i] * x[i];
            const float inv =
                1.0f / std::sqrt(sum / static_cast<float>(d) + static_cast<float>(eps));
            for (int64_t i = 0; i < d; ++i)
                x[i] = layer.outNorm[sz(i)] * (x[i] * inv) * sigmoid(gt[i]);
        }
    }
    linear(ctx.pool, w.oProj, o.data(), T, out);
}

}  // namespace folio::inference::cpu
