// SPDX-License-Identifier: GPL-3.0-or-later
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace folio::inference {
namespace {

uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

}  // namespace

Status validate(const SamplingOptions& o) {
    if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature))
        return makeError(ErrorCode::InvalidArgument, "temperature must be 0 or positive");
    if (o.topK < 0)
        return makeError(ErrorCode::InvalidArgument, "top-k must be 0 (off) or positive");
    if (!(o.topP > 0.0f && o.topP <= 1.0f))
        return makeError(ErrorCode::InvalidArgument, "top-p must be in (0, 1]");
    if (!(o.repetitionPenalty > 0.0f) || !std::isfinite(o.repetitionPenalty))
        return makeError(ErrorCode::InvalidArgument, "repetition penalty must be positive");
    return {};
}

int32_t argmax(std::span<const float> logits) {
    int32_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > logits[static_cast<size_t>(best)])
            best = static_cast<int32_t>(i);
    }
    return best;
}

Sampler::Sampler(const SamplingOptions& options) : options_(options) {
    uint64_t seed = options.seed;
    for (uint64_t& s : state_)
        s = splitmix64(seed);
}

double Sampler::nextUniform() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return static_cast<double>(result >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> context) {
    scratch_.assign(logits.begin(), logits.end());
    const auto vocab = static_cast<int64_t>(scratch_.size());
    if (options_.repetitionPenalty != 1.0f) {
        // CTRL-style: shrink positive logits, grow negative ones, once per distinct token.
        std::vector<bool> seen(scratch_.size(), false);
        for (int32_t token : context) {
            if (token < 0 || token >= vocab || seen[static_cast<size_t>(token)])
                continue;
            seen[static_cast<size_t>(token)] = true;
            float& l = scratch_[static_cast<size_t>(token)];
            l = l > 0 ? l / options_.repetitionPenalty : l * options_.repetitionPenalty;
        }
    }
    if (options_.temperature == 0.0f)
        return argmax(scratch_);

    // Candidates by descending logit (ties: lower id first), cut by top-k.
    order_.resize(scratch_.size());
    std::iota(order_.begin(), order_.end(), 0);
    const int64_t keep = options_.topK > 0 ? std::min(options_.topK, vocab) : vocab;
    auto byLogit = [&](int32_t a, int32_t b) {
        const float la = scratch_[static_cast<size_t>(a)], lb = scratch_[static_cast<size_t>(b)];
        return la != lb ? la > lb : a < b;
    };
    std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), byLogit);
    order_.resize(static_cast<size_t>(keep));

    // Softmax at the temperature over the candidates, then the nucleus cut.
    const float top = scratch_[static_cast<size_t>(order_[0])];
    std::vector<double> probs(order_.size());
    double total = 0.0;
    for (size_t i = 0; i < order_.size(); ++i) {
        probs[i] = std::exp((scratch_[static_cast<size_t>(order_[i])] - top) /
                            static_cast<double>(options_.temperature));
        total += probs[i];
    }
    size_t cut = probs.size();
    if (options_.topP < 1.0f) {
        double mass = 0.0;
        for (size_t i = 0; i < probs.size(); ++i) {
            mass += probs[i] / total;
            if (mass >= options_.topP) {
                cut = i + 1;
                break;
            }
        }
        total = std::accumulate(probs.begin(), probs.begin() + static_cast<long>(cut), 0.0);
    }
    double target = nextUniform() * total;
    for (size_t i = 0; i < cut; ++i) {
        target -= probs[i];
        if (target < 0)
            return order_[i];
    }
    return order_[cut - 1];
}

}  // namespace folio::inference
