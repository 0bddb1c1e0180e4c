// SPDX-License-Identifier: GPL-3.0-or-later
#include "stream_decoder.h"

#include "utf8.h"

namespace folio::tokenizer {

Result<std::string> StreamDecoder::push(int32_t id) {
    auto bytes = tokenizer_->tokenBytes(id);
    if (!bytes)
        return makeError(ErrorCode::InvalidArgument, "token id ", id,
                         " is not in the vocabulary of ", tokenizer_->vocabularySize(), " ids");
    return pushBytes(*bytes);
}

std::string StreamDecoder::pushBytes(std::string_view bytes) {
    pending_.append(bytes);
    // Whatever precedes an incomplete final sequence is settled: a lead byte always starts a new
    // unit, so no later byte can change how the bytes before it decode.
    const size_t keep = incompleteUtf8Tail(pending_);
    const std::string_view ready(pending_.data(), pending_.size() - keep);
    std::string out = findInvalidUtf8(ready) ? repairUtf8(ready) : std::string(ready);
    pending_.erase(0, ready.size());
    return out;
}

std::string StreamDecoder::finish() {
    std::string out = repairUtf8(pending_);
    pending_.clear();
    return out;
}

}  // namespace folio::tokenizer
