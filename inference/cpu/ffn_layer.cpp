// SPDX-License-Identifier: GPL-3.0-or-later
// Channel mixers on the CPU: the dense SwiGLU MLP and the mixture of experts (sigmoid or softmax
// router, bias-corrected group-limited top-k selection, renormalised and scaled weights, shared
// experts). Each token's result is combined in a fixed order, independent of the batch.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "cpu_model.h"
#include "kernels.h"

namespace folio::inference::cpu {
namespace {

const auto sz = [](int64_t n) { return static_cast<size_t>(n); };

void swiglu(const Context& ctx, const MlpWeights& w, const float* h, int64_t tokens, float* out) {
    const int64_t inner = w.gate.dim(0);
    std::vector<float> gate(sz(tokens * inner)), up(sz(tokens * inner));
    linear(ctx.pool, w.gate, h, tokens, gate.data());
    linear(ctx.pool, w.up, h, tokens, up.data());
    for (size_t i = 0; i < gate.size(); ++i)
        gate[i] = silu(gate[i]) * up[i];
    linear(ctx.pool, w.down, gate.data(), tokens, out);
}

struct Routing {
    std::vector<int32_t> experts;  // [T][k], in order of selection
    std::vector<float> weights;    // [T][k]
};

// Indices of the `count` largest values, largest first; ties go to the lower index.
std::vector<int32_t> topIndices(const float* values, int64_t n, int64_t count) {
    std::vector<int32_t> order(sz(n));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + count, order.end(), [&](int32_t a, int32_t b) {
        return values[a] != values[b] ? values[a] > values[b] : a < b;
    });
    order.resize(sz(count));
    return order;
}

Routing route(const Context& ctx, const FfnLayer& layer, const float* h, int64_t T) {
    const ModelConfig& c = ctx.config;
    const int64_t E = c.numExperts, K = c.numExpertsPerToken;
    std::vector<float> logits(sz(T * E));
    linear(ctx.pool, layer.experts->router, h, T, logits.data());

    Routing routing;
    routing.experts.resize(sz(T * K));
    routing.weights.resize(sz(T * K));
    std::vector<float> scores(sz(E)), choice(sz(E));
    for (int64_t t = 0; t < T; ++t) {
        const float* l = logits.data() + t * E;
        if (c.routerActivation == RouterActivation::Sigmoid) {
            for (int64_t e = 0; e < E; ++e)
                scores[sz(e)] = sigmoid(l[e]);
        } else {
            const float m = *std::max_element(l, l + E);
            float total = 0.0f;
            for (int64_t e = 0; e < E; ++e)
                total += scores[sz(e)] = std::exp(l[e] - m);
            for (float& s : scores)
                s /= total;
        }
        for (int64_t e = 0; e < E; ++e)
            choice[sz(e)] = scores[sz(e)] + layer.correctionBias[sz(e)];

        if (c.useGroupedTopk && c.numExpertGroups > 1) {
            // A group scores the sum of its two best experts; only the best groups stay eligible.
            const int64_t G = c.numExpertGroups, perGroup = E / G;
            std::vector<float> groupScore(sz(G));
            for (int64_t gi = 0; gi < G; ++gi) {
                auto best = topIndices(choice.data() + gi * perGroup, perGroup, 2);
                groupScore[sz(gi)] =
                    choice[sz(gi * perGroup + best[0])] + choice[sz(gi * perGroup + best[1])];
            }
            auto keep = topIndices(groupScore.data(), G, c.topkGroup);
            std::vector<bool> kept(sz(G), false);
            for (int32_t gi : keep)
                kept[sz(gi)] = true;
            for (int64_t e = 0; e < E; ++e) {
                if (!kept[sz(e / perGroup)])
                    choice[sz(e)] = -INFINITY;
            }
        }

        auto chosen = topIndices(choice.data(), E, K);
        const bool biased = ctx.options.router == RouterWeighting::BiasCorrected;
        float sum = 0.0f;
        for (int64_t j = 0; j < K; ++j) {
            const int32_t e = chosen[sz(j)];
            const float weight =
                biased ? scores[sz(e)] + layer.correctionBias[sz(e)] : scores[sz(e)];
            routing.experts[sz(t * K + j)] = e;
            routing.weights[sz(t * K + j)] = weight;
            sum += weight;
        }
        for (int64_t j = 0; j < K; ++j) {
            float& weight = routing.weights[sz(t * K + j)];
            if (c.moeRenormalize)
                weight /= sum + 1e-20f;
            weight *= static_cast<float>(c.routedScalingFactor);
        }
    }
    return routing;
}

void mixtureOfExperts(const Context& ctx, const FfnLayer& layer, const float* h, int64_t T,
                      float* out) {
    const ModelConfig& c = ctx.config;
    const int64_t D = c.hiddenSize, E = c.numExperts, K = c.numExpertsPerToken;
    Routing routing = route(ctx, layer, h, T);

    // Group the (token, slot) pairs by expert, run each expert once over its tokens.
    std::vector<std::vector<int64_t>> assigned(sz(E));
    for (int64_t i = 0; i < T * K; ++i)
        assigned[sz(routing.experts[sz(i)])].push_back(i);
    std::vector<float> perSlot(sz(T * K * D));
    std::vector<float> gathered, result;
    for (int64_t e = 0; e < E; ++e) {
        const auto& slots = assigned[sz(e)];
        if (slots.empty())
            continue;
        const auto n = static_cast<int64_t>(slots.size());
        gathered.resize(sz(n * D));
        result.resize(sz(n * D));
        for (int64_t i = 0; i < n; ++i)
            std::copy_n(h + (slots[sz(i)] / K) * D, D, gathered.begin() + i * D);
        swiglu(ctx, layer.experts->experts[sz(e)], gathered.data(), n, result.data());
        for (int64_t i = 0; i < n; ++i)
            std::copy_n(result.begin() + i * D, D, perSlot.begin() + slots[sz(i)] * D);
    }

    std::vector<float> shared;
    if (layer.experts->shared) {
        shared.resize(sz(T * D));
        swiglu(ctx, *layer.experts->shared, h, T, shared.data());
    }
    for (int64_t t = 0; t < T; ++t) {
        float* o = out + t * D;
        std::fill(o, o + D, 0.0f);
        for (int64_t j = 0; j < K; ++j) {
            const float weight = routing.weights[sz(t * K + j)];
            const float* y = perSlot.data() + (t * K + j) * D;
            for (int64_t i = 0; i < D; ++i)
                o[i] += weight * y[i];
        }
        if (!shared.empty()) {
            for (int64_t i = 0; i < D; ++i)
                o[i] += shared[sz(t * D + i)];
        }
    }
}

}  // namespace

void ffnForward(const Context& ctx, const FfnLayer& layer, const float* h, int64_t tokens,
                float* out) {
    if (layer.moe)
        mixtureOfExperts(ctx, layer, h, tokens, out);
    else
        swiglu(ctx, *layer.dense, h, tokens, out);
}

}  // namespace folio::inference::cpu
