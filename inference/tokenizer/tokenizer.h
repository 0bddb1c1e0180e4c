// SPDX-License-Identifier: GPL-3.0-or-later
// The tokenizer: text <-> token ids for tiktoken-style byte-level BPE models (Kimi Linear's, and
// cl100k_base / o200k_base for testing against independent implementations).
// Owns: the BPE vocabulary, the special tokens, the pre-tokenizer and the chunking rule; it is
// immutable after creation, so one instance may encode and decode from any number of threads.
// Promises: encode() gives the ids tiktoken gives for the same vocabulary and pattern (special
// tokens recognised in text unless the options say otherwise); decodeBytes(encode(t)) == t for
// valid UTF-8 t; invalid UTF-8 follows the documented policy (utf8.h); large inputs and batches
// are split at boundaries that cannot change the result and encoded in parallel when asked.
// Never aborts on bad input; unknown ids are errors.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpe_vocabulary.h"
#include "inference/result.h"
#include "pre_tokenizer.h"
#include "special_tokens.h"
#include "text_chunks.h"

namespace folio::tokenizer {

enum class SpecialTokenPolicy {
    Recognize,  // special-token text in the input becomes the special id (tiktoken allowed="all")
    AsText,     // special-token text is encoded like any other text (tiktoken encode_ordinary)
};

enum class Utf8Policy {
    Replace,  // each maximal ill-formed subpart becomes U+FFFD, then the text is encoded
    Reject,   // ill-formed input is an ErrorCode::InvalidArgument error naming the byte offset
};

struct EncodeOptions {
    SpecialTokenPolicy specials = SpecialTokenPolicy::Recognize;
    Utf8Policy invalidUtf8 = Utf8Policy::Replace;
    int threads = 1;  // worker threads for large inputs and batches; <= 0: all hardware threads
};

class Tokenizer {
  public:
    // Checks that no special id is also a BPE rank.
    static Result<Tokenizer> create(BpeVocabulary vocabulary, SpecialTokens specials,
                                    PreTokenizer preTokenizer, ChunkLimits chunkLimits = {});

    Result<std::vector<int32_t>> encode(std::string_view text,
                                        const EncodeOptions& options = {}) const;
    // Encodes each text on its own, in parallel across texts and their large blocks.
    Result<std::vector<std::vector<int32_t>>> encodeBatch(std::span<const std::string_view> texts,
                                                          const EncodeOptions& options = {}) const;
    // The pre-tokenizer's pieces, as encode() would see them (special tokens as their own pieces).
    Result<std::vector<std::string>> pieces(std::string_view text,
                                            const EncodeOptions& options = {}) const;

    // The bytes of the tokens, concatenated (may end in the middle of a UTF-8 sequence).
    Result<std::string> decodeBytes(std::span<const int32_t> ids) const;
    // The text of the tokens, ill-formed UTF-8 replaced by U+FFFD (as Python's errors="replace").
    Result<std::string> decode(std::span<const int32_t> ids) const;

    // A token's bytes (special tokens: their name); nullopt for an unknown id.
    std::optional<std::string_view> tokenBytes(int32_t id) const;
    std::optional<int32_t> specialId(std::string_view name) const { return specials_.id(name); }
    bool isSpecial(int32_t id) const { return specials_.name(id).has_value(); }
    // One more than the largest id.
    int32_t vocabularySize() const { return vocabularySize_; }

    const BpeVocabulary& vocabulary() const { return vocabulary_; }
    const SpecialTokens& specials() const { return specials_; }
    const PreTokenizer& preTokenizer() const { return preTokenizer_; }
    ChunkLimits chunkLimits() const { return chunkLimits_; }

  private:
    Tokenizer() = default;
    // Encodes ordinary text (no special tokens in it) and appends the ids.
    void encodeOrdinary(std::string_view text, std::vector<int32_t>& out) const;

    BpeVocabulary vocabulary_;
    SpecialTokens specials_;
    PreTokenizer preTokenizer_;
    ChunkLimits chunkLimits_;
    int32_t vocabularySize_ = 0;
};

}  // namespace folio::tokenizer
