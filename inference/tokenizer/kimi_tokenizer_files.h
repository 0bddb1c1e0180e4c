// SPDX-License-Identifier: GPL-3.0-or-later
// Loads Kimi's tokenizer from a Hugging Face model folder: tiktoken.model (the BPE ranks) and
// tokenizer_config.json (added_tokens_decoder: names of special ids), the way the checkpoint's
// tokenization_kimi.py builds it.
// Owns: nothing; returns a Tokenizer. Promises: the BPE ranks are exactly 0..N-1 (N lines); the
// 256 special ids are N..N+255, named from added_tokens_decoder or else <|reserved_token_ID|>;
// the pre-tokenizer is Kimi's pattern and the chunking Kimi's encode() chunking. Every problem is
// an error naming the file and the line or field: malformed or duplicate lines, a special id
// outside N..N+255, broken JSON, a name used twice. Never reads other files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "inference/result.h"
#include "special_tokens.h"
#include "tokenizer.h"
#include "tokenizer_config.h"

namespace folio::tokenizer {

inline constexpr uint32_t kKimiReservedSpecialTokens = 256;

// The special tokens for a vocabulary of `numBaseTokens` BPE tokens.
Result<SpecialTokens> kimiSpecialTokens(uint32_t numBaseTokens,
                                        const std::vector<AddedToken>& added,
                                        std::string_view configName);

// From file contents; the names are used in error messages.
Result<Tokenizer> makeKimiTokenizer(std::string_view tiktokenModel, std::string_view modelName,
                                    std::string_view tokenizerConfig, std::string_view configName);

// From DIR/tiktoken.model and DIR/tokenizer_config.json.
Result<Tokenizer> loadKimiTokenizer(const std::filesystem::path& dir);

}  // namespace folio::tokenizer
