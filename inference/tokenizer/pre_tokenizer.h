// SPDX-License-Identifier: GPL-3.0-or-later
// The pre-tokenizer: splits text into the pieces that BPE then encodes one by one, exactly as
// tiktoken's regex (Rust's regex/fancy-regex: leftmost-first alternation, backtracking semantics,
// \s = White_Space) splits it. Implemented as a hand-written scanner over code points with ICU
// properties, because PCRE and std::regex cannot express Kimi's class intersections.
// Owns: its pattern configuration and per-thread scratch buffers. Promises: for valid UTF-8 the
// pieces are non-empty and concatenate to the input; safeCut() returns only offsets where every
// supported pattern starts a new piece whether or not the text ends there, so text cut there
// splits into the same pieces. Never accepts an unknown pattern: fromPattern() names the
// supported ones instead.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "inference/result.h"

namespace folio::tokenizer {

enum class PatternKind {
    Kimi,              // Kimi K2 / Kimi Linear (tokenization_kimi.py's pat_str)
    O200k,             // o200k_base
    Cl100k,            // cl100k_base, the form js-tiktoken and older tiktoken use
    Cl100kPossessive,  // cl100k_base as tiktoken >= 0.7 spells it (adds \s++$)
};

class PreTokenizer {
  public:
    explicit PreTokenizer(PatternKind kind = PatternKind::Kimi);

    // Recognises the regex text of a supported pattern (tiktoken's or js-tiktoken's spelling).
    static Result<PreTokenizer> fromPattern(std::string_view pattern);
    // "kimi", "o200k_base", "cl100k_base".
    static Result<PreTokenizer> fromName(std::string_view name);
    // The pattern's regex text, as tiktoken spells it.
    static std::string_view patternText(PatternKind kind);

    PatternKind kind() const { return kind_; }
    std::string_view name() const;

    // Appends the end offset of each piece of `text` to `ends`. `text` should be valid UTF-8
    // (ill-formed bytes are treated as U+FFFD, each forming part of some piece).
    void split(std::string_view text, std::vector<uint32_t>& ends) const;

    std::vector<std::string_view> pieces(std::string_view text) const;

    // The first offset >= `from` (and > 0) where text may be cut without changing its pieces
    // under any supported pattern, or std::string_view::npos. These are the offsets after a letter
    // and before a whitespace character (Python's str.isspace()), and after \r or \n and before
    // a letter. Both also start a new run for Kimi's chunking (text_chunks.h).
    static size_t safeCut(std::string_view text, size_t from);

  private:
    PatternKind kind_;
};

}  // namespace folio::tokenizer
