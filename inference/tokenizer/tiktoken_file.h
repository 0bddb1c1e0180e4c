// SPDX-License-Identifier: GPL-3.0-or-later
// Reader of tiktoken's BPE rank files (tiktoken.model): one "base64-token rank" pair per line.
// Owns: nothing; returns the tokens it read. Promises: every malformed line (wrong field count,
// bad base64, a rank that is not a decimal number in range) is an ErrorCode::Format error that
// names the source and the 1-based line; empty lines and a final "\r" are accepted, as tiktoken's
// own loader accepts them. Duplicates are checked by BpeVocabulary::build, which also names lines.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "inference/result.h"

namespace folio::tokenizer {

// Ranks above this are refused: they would make the id tables implausibly large.
inline constexpr uint32_t kMaxRank = (1u << 24) - 1;

struct RankedToken {
    std::string bytes;
    uint32_t rank = 0;
    uint32_t line = 0;  // 1-based line in the source file; 0 when not read from a file
};

Result<std::vector<RankedToken>> parseTiktokenRanks(std::string_view text,
                                                    std::string_view sourceName);

Result<std::vector<RankedToken>> readTiktokenFile(const std::filesystem::path& path);

// The file format for `tokens` (used by tests and tools that write test vocabularies).
std::string formatTiktokenRanks(const std::vector<RankedToken>& tokens);

}  // namespace folio::tokenizer
