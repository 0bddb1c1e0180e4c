// SPDX-License-Identifier: GPL-3.0-or-later
// Answering: prefill the question on a fork of the end-of-sources state, then decode token by
// token until a stop token or the token limit, streaming text as it is completed.
// Owns: nothing. Promises: greedy settings give the same tokens for the same state, whatever
// way the state was obtained; text is streamed in whole UTF-8 characters; cancellation stops
// between tokens and keeps what was generated. Never writes to storage.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "inference/sampler.h"
#include "inference/tokenizer/chat_format.h"
#include "inference/tokenizer/tokenizer.h"
#include "run_control.h"

namespace folio::session {

struct GenerationSettings {
    int64_t maxTokens = 512;
    inference::SamplingOptions sampling;  // default: greedy
};

struct Generated {
    std::vector<int32_t> tokens;  // without the stop token
    std::string text;
    double timeToFirstTokenSeconds = 0;  // from `start`
    double decodeTokensPerSecond = 0;
    bool cancelled = false;
};

Result<Generated> generateAnswer(inference::Engine& engine, inference::Sequence& sequence,
                                 std::span<const int32_t> questionTokens,
                                 const tokenizer::KimiChatFormat& chat,
                                 const tokenizer::Tokenizer& tokenizer,
                                 const GenerationSettings& settings, const RunControl& control,
                                 std::chrono::steady_clock::time_point start);

}  // namespace folio::session
