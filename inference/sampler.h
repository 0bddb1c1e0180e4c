// SPDX-License-Identifier: GPL-3.0-or-later
// Choosing the next token from logits: greedy, or sampled with temperature, top-k, top-p and a
// repetition penalty, from a seeded generator of our own (so a seed gives the same tokens on
// every platform and standard library).
// Owns: its generator state. Promises: greedy (temperature 0) is the argmax with ties to the
// lowest id; the same seed, settings and logits give the same choices. Never allocates per call
// beyond a vocabulary-sized scratch buffer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "result.h"

namespace folio::inference {

struct SamplingOptions {
    float temperature = 0.0f;        // 0: greedy
    int64_t topK = 0;                // 0: no limit
    float topP = 1.0f;               // nucleus mass kept, in (0, 1]
    float repetitionPenalty = 1.0f;  // > 1 discourages tokens already in the context
    uint64_t seed = 0;
};

Status validate(const SamplingOptions& options);

class Sampler {
  public:
    explicit Sampler(const SamplingOptions& options);

    // `context` holds the tokens the repetition penalty applies to.
    int32_t sample(std::span<const float> logits, std::span<const int32_t> context);

    const SamplingOptions& options() const { return options_; }

    // A uniform double in [0, 1) from the generator (xoshiro256**).
    double nextUniform();

  private:
    SamplingOptions options_;
    uint64_t state_[4];
    std::vector<float> scratch_;
    std::vector<int32_t> order_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace folio::inference
