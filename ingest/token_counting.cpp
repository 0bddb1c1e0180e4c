// SPDX-License-Identifier: GPL-3.0-or-later
#include "token_counting.h"

#include <algorithm>

#include "inference/tokenizer/chat_format.h"

namespace folio::ingest {

Result<std::vector<std::vector<int32_t>>> encodeSegments(const Document& document,
                                                         const tokenizer::Tokenizer& tokenizer,
                                                         int threads) {
    std::vector<std::string_view> texts;
    texts.reserve(document.segments.size());
    for (const Segment& s : document.segments)
        texts.push_back(document.segmentText(s));
    tokenizer::EncodeOptions options = tokenizer::kChatContentOptions;
    options.threads = threads;
    return tokenizer.encodeBatch(texts, options);
}

Status countTokens(Document& document, const tokenizer::Tokenizer& tokenizer, int threads) {
    // In batches, so that a repository of 100 M tokens never holds all its ids at once.
    constexpr size_t kBatchSegments = 2048;
    tokenizer::EncodeOptions options = tokenizer::kChatContentOptions;
    options.threads = threads;
    int64_t position = 0;
    std::vector<std::string_view> texts;
    for (size_t first = 0; first < document.segments.size(); first += kBatchSegments) {
        const size_t last = std::min(document.segments.size(), first + kBatchSegments);
        texts.clear();
        for (size_t i = first; i < last; ++i)
            texts.push_back(document.segmentText(document.segments[i]));
        FOLIO_ASSIGN_OR_RETURN(auto ids, tokenizer.encodeBatch(texts, options));
        for (size_t i = first; i < last; ++i) {
            document.segments[i].tokenBegin = position;
            position += static_cast<int64_t>(ids[i - first].size());
            document.segments[i].tokenEnd = position;
        }
    }
    document.tokenCount = position;
    return {};
}

}  // namespace folio::ingest
