// SPDX-License-Identifier: GPL-3.0-or-later
// Reader of a Hugging Face tokenizer_config.json, for the one field the tokenizer needs:
// added_tokens_decoder (special token ids and names).
// Owns: nothing; returns what it read. Promises: broken JSON, a missing or mistyped field, an id
// that is not a decimal number, a name given twice, all become ErrorCode::Format errors that name
// the source and the field (e.g. added_tokens_decoder."163586".content). Range checks against
// the vocabulary are the loader's (kimi_tokenizer_files.h). Never throws.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "inference/result.h"

namespace folio::tokenizer {

struct AddedToken {
    int64_t id = 0;
    std::string content;
};

// The entries of added_tokens_decoder, in file order.
Result<std::vector<AddedToken>> parseAddedTokens(std::string_view json,
                                                 std::string_view sourceName);

Result<std::vector<AddedToken>> readAddedTokens(const std::filesystem::path& path);

}  // namespace folio::tokenizer
