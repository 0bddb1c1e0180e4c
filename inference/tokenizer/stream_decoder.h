// SPDX-License-Identifier: GPL-3.0-or-later
// Streaming decode: turns token ids, as a model produces them one by one, into text that can be
// shown at once, without ever emitting part of a UTF-8 sequence.
// Owns: the bytes held back (at most 3: an incomplete sequence at the end of what came so far).
// Promises: everything returned is valid UTF-8; the concatenation of all push() results and
// finish() equals Tokenizer::decode() of all the ids (ill-formed bytes become U+FFFD as soon as
// they are known to be ill-formed; an incomplete sequence left at finish() becomes one U+FFFD).
// Never holds back a complete character. Not thread-safe: one decoder per stream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "inference/result.h"
#include "tokenizer.h"

namespace folio::tokenizer {

class StreamDecoder {
  public:
    explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

    // Adds one token; returns the text completed by it (possibly empty). Unknown ids are errors
    // and leave the decoder unchanged.
    Result<std::string> push(int32_t id);
    // Adds raw bytes; returns the text completed by them.
    std::string pushBytes(std::string_view bytes);
    // Ends the stream and returns what was held back (as U+FFFD); the decoder can then be reused.
    std::string finish();

    size_t pendingBytes() const { return pending_.size(); }

  private:
    const Tokenizer* tokenizer_;
    std::string pending_;
};

}  // namespace folio::tokenizer
