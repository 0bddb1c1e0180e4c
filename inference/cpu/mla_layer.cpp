// SPDX-License-Identifier: GPL-3.0-or-later
// MLA (multi-head latent attention, NoPE) on the CPU, fp32, in the absorbed form over the latent
// cache: score = scale * ((W_UKᵀ q_nope) · c + q_pe · k_pe), o = W_UV Σ softmax(score) c.
// Equal to the expanded form of the reference; each (token, head) is computed independently, so
// prefill, decode and any split agree exactly.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_model.h"
#include "kernels.h"

namespace folio::inference::cpu {

void mlaForward(const Context& ctx, const MlaLayer& layer, const float* h, int64_t tokens,
                RowStore& cache, float* out) {
    const ModelConfig& c = ctx.config;
    const MlaWeights& w = *layer.w;
    const int64_t H = c.numAttentionHeads, nope = c.qkNopeHeadDim, rope = c.qkRopeHeadDim;
    const int64_t dv = c.vHeadDim, r = c.kvLoraRank, qkDim = nope + rope;
    const int64_t T = tokens;
    const auto sz = [](int64_t n) { return static_cast<size_t>(n); };

    std::vector<float> q(sz(T * H * qkDim));
    if (w.qProj) {
        linear(ctx.pool, *w.qProj, h, T, q.data());
    } else {
        const int64_t qr = *c.qLoraRank;
        std::vector<float> low(sz(T * qr)), normed(sz(T * qr));
        linear(ctx.pool, *w.qA, h, T, low.data());
        rmsNorm(low.data(), layer.queryNorm.data(), T, qr, c.latentNormEps, normed.data());
        linear(ctx.pool, *w.qB, normed.data(), T, q.data());
    }

    // New cache rows: latent c (normalised) followed by k_pe.
    std::vector<float> rows(sz(T * (r + rope)));
    linear(ctx.pool, w.kvA, h, T, rows.data());
    for (int64_t t = 0; t < T; ++t) {
        float* row = rows.data() + t * (r + rope);
        rmsNorm(row, layer.latentNorm.data(), 1, r, c.latentNormEps, row);
    }
    const int64_t past = cache.rows();
    cache.append(rows.data(), T);

    const float scale = 1.0f / std::sqrt(static_cast<float>(qkDim));
    const float* up = layer.upProjection.data();  // [H*(nope+dv)][r]
    std::vector<float> attended(sz(T * H * dv));
    ctx.pool.parallelFor(T * H, 1, [&](int64_t first, int64_t last) {
        thread_local std::vector<float> scores, qLatent, oLatent;
        qLatent.resize(sz(r));
        oLatent.resize(sz(r));
        for (int64_t item = first; item < last; ++item) {
            const int64_t t = item / H, head = item % H;
            const int64_t visible = past + t + 1;
            const float* qh = q.data() + (t * H + head) * qkDim;
            const float* ukRows = up + head * (nope + dv) * r;  // W_UK_h: [nope][r]
            const float* uvRows = ukRows + nope * r;            // W_UV_h: [dv][r]
            // Absorb W_UK into the query.
            std::fill(qLatent.begin(), qLatent.end(), 0.0f);
            for (int64_t n = 0; n < nope; ++n) {
                const float qn = qh[n];
                const float* ukn = ukRows + n * r;
                for (int64_t j = 0; j < r; ++j)
                    qLatent[sz(j)] += qn * ukn[j];
            }
            scores.resize(sz(visible));
            float maxScore = -INFINITY;
            for (int64_t s = 0; s < visible; ++s) {
                const float* row = cache.row(s);
                const float score =
                    scale * (dot(qLatent.data(), row, r) + dot(qh + nope, row + r, rope));
                scores[sz(s)] = score;
                maxScore = std::max(maxScore, score);
            }
            float total = 0.0f;
            for (int64_t s = 0; s < visible; ++s) {
                scores[sz(s)] = std::exp(scores[sz(s)] - maxScore);
                total += scores[sz(s)];
            }
            std::fill(oLatent.begin(), oLatent.end(), 0.0f);
            for (int64_t s = 0; s < visible; ++s) {
                const float p = scores[sz(s)] / total;
                const float* row = cache.row(s);
                for (int64_t j = 0; j < r; ++j)
                    oLatent[sz(j)] += p * row[j];
            }
            float* o = attended.data() + (t * H + head) * dv;
            for (int64_t i = 0; i < dv; ++i)
                o[i] = dot(uvRows + i * r, oLatent.data(), r);
        }
    });
    linear(ctx.pool, w.oProj, attended.data(), T, out);
}

}  // namespace folio::inference::cpu
