// SPDX-License-Identifier: GPL-3.0-or-later
// UTF-8 decoding and repair for the tokenizer, and the tokenizer's policy for invalid input.
// Owns: nothing. Promises: decoding follows the Unicode standard's well-formed byte sequences
// (Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF); an ill-formed sequence is
// reported as one "maximal subpart" at a time, which is exactly how the Unicode standard, the
// WHATWG decoder, ICU and Python's errors="replace" substitute U+FFFD. Never reads outside the
// view.
//
// Invalid UTF-8 policy of the tokenizer (see EncodeOptions): by default each maximal ill-formed
// subpart of the input is replaced by U+FFFD (EF BF BD) before pre-tokenization, so the ids
// describe the text a UTF-8 decoder would show; with Utf8Policy::Reject encoding fails with the
// byte offset of the first bad byte instead. Decoding ids to text replaces in the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace folio::tokenizer {

inline constexpr char32_t kReplacementChar = 0xFFFD;

struct DecodedChar {
    char32_t cp = 0;      // the code point, or U+FFFD when !valid
    uint32_t length = 0;  // bytes consumed (>= 1)
    bool valid = false;   // false: `length` bytes form one maximal ill-formed subpart
};

// Decodes the character at text[pos] (pos < text.size()).
DecodedChar decodeUtf8(std::string_view text, size_t pos);

// The offset of the first byte of the first ill-formed subpart, or nullopt when valid.
std::optional<size_t> findInvalidUtf8(std::string_view text);

// `text` with each maximal ill-formed subpart replaced by U+FFFD.
std::string repairUtf8(std::string_view text);

// How many bytes at the end of `bytes` start a well-formed sequence that is not complete yet (0-3):
// a streaming decoder keeps them back until more bytes arrive.
size_t incompleteUtf8Tail(std::string_view bytes);

void appendUtf8(std::string& out, char32_t cp);

}  // namespace folio::tokenizer
