// SPDX-License-Identifier: GPL-3.0-or-later
#include "answer_generation.h"

#include "inference/tokenizer/stream_decoder.h"

namespace folio::session {

const char* phaseName(Progress::Phase phase) {
    switch (phase) {
        case Progress::Phase::Restoring:
            return "restoring";
        case Progress::Phase::Prefilling:
            return "prefilling";
        case Progress::Phase::Generating:
            return "generating";
    }
    return "?";
}

Result<Generated> generateAnswer(inference::Engine& engine, inference::Sequence& sequence,
                                 std::span<const int32_t> questionTokens,
                                 const tokenizer::KimiChatFormat& chat,
                                 const tokenizer::Tokenizer& tokenizer,
                                 const GenerationSettings& settings, const RunControl& control,
                                 std::chrono::steady_clock::time_point start) {
    using Clock = std::chrono::steady_clock;
    FOLIO_TRY(inference::validate(settings.sampling));
    inference::PrefillOptions options;
    options.logits = inference::LogitsWanted::Last;
    options.cancel = control.cancel;
    FOLIO_ASSIGN_OR_RETURN(inference::Logits logits,
                           engine.prefill(sequence, questionTokens, options));
    inference::Sampler sampler(settings.sampling);
    tokenizer::StreamDecoder decoder(tokenizer);
    Generated out;
    Clock::time_point firstToken{};
    for (int64_t i = 0; i < settings.maxTokens; ++i) {
        const int32_t token = sampler.sample(logits.last(), sequence.tokens());
        if (i == 0) {
            firstToken = Clock::now();
            out.timeToFirstTokenSeconds = std::chrono::duration<double>(firstToken - start).count();
        }
        if (chat.isStop(token))
            break;
        out.tokens.push_back(token);
        FOLIO_ASSIGN_OR_RETURN(std::string piece, decoder.push(token));
        if (!piece.empty()) {
            out.text += piece;
            if (control.onText)
                control.onText(piece);
        }
        if (control.onProgress) {
            const double elapsed = std::chrono::duration<double>(Clock::now() - firstToken).count();
            const double rate = elapsed > 0 ? static_cast<double>(i) / elapsed : 0;
            control.onProgress({Progress::Phase::Generating, i + 1, settings.maxTokens, rate, -1});
        }
        if (control.cancelled()) {
            out.cancelled = true;
            break;
        }
        if (i + 1 == settings.maxTokens)
            break;
        FOLIO_ASSIGN_OR_RETURN(logits, engine.decode(sequence, token));
    }
    const std::string rest = decoder.finish();
    if (!rest.empty()) {
        out.text += rest;
        if (control.onText)
            control.onText(rest);
    }
    if (out.tokens.size() > 1) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - firstToken).count();
        out.decodeTokensPerSecond =
            elapsed > 0 ? static_cast<double>(out.tokens.size() - 1) / elapsed : 0;
    }
    return out;
}

}  // namespace folio::session
