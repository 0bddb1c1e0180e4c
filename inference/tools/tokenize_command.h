// SPDX-License-Identifier: GPL-3.0-or-later
// folio-engine's `tokenize` command:
//   folio-engine tokenize --tokenizer DIR (--text S | --text-file F) [--chat] [--pieces]
// Owns: nothing. Promises: the result is one JSON array on one line: the token ids, or with
// pieces the pre-tokenizer's pieces as JSON strings; with chat the text is one user turn of Kimi's
// chat format followed by the generation prompt (its special-token text stays text, see
// chat_format.h). Plain text is encoded as Kimi's encode() does (special-token text recognised).
// Invalid UTF-8 is replaced by U+FFFD, with a warning in the log.
// Never prints; main() does.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "inference/result.h"

namespace folio::tools {

struct TokenizeRequest {
    std::filesystem::path tokenizerDir;
    std::optional<std::string> text;
    std::optional<std::filesystem::path> textFile;
    bool chat = false;
    bool pieces = false;
};

Result<std::string> runTokenize(const TokenizeRequest& request);

// `s` as a JSON string literal (s must be valid UTF-8).
std::string jsonString(std::string_view s);

}  // namespace folio::tools
