// SPDX-License-Identifier: GPL-3.0-or-later
#include "token_counting.h"

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
    FOLIO_ASSIGN_OR_RETURN(auto ids, encodeSegments(document, tokenizer, threads));
    int64_t position = 0;
    for (size_t i = 0; i < document.segments.size(); ++i) {
        document.segments[i].tokenBegin = position;
        position += static_cast<int64_t>(ids[i].size());
        document.segments[i].tokenEnd = position;
    }
    document.tokenCount = position;
    return {};
}

}  // namespace folio::ingest
