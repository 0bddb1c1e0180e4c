// SPDX-License-Identifier: GPL-3.0-or-later
// Unicode properties of code points, as the tokenizer's pre-tokenizer patterns need them.
// Owns: a lazily built, process-wide table for the Basic Multilingual Plane (built once, read-only
// afterwards, safe from any thread). Promises: the answers are ICU's (general category, Script,
// White_Space, bidi class), so they follow the Unicode version of the ICU the build links; code
// points outside the BMP are answered by ICU directly. Never allocates per call.
#pragma once

#include <cstdint>

namespace folio::tokenizer {

// Bit flags describing one code point.
enum CharFlag : uint16_t {
    kLetter = 1u << 0,      // \p{L}
    kUpperish = 1u << 1,    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
    kLowerish = 1u << 2,    // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
    kMark = 1u << 3,        // \p{M}
    kNumber = 1u << 4,      // \p{N}
    kHan = 1u << 5,         // \p{Script=Han}
    kWhiteSpace = 1u << 6,  // \p{White_Space}: what Rust's regex crate (tiktoken) means by \s
    kNewline = 1u << 7,     // \r or \n
    kPySpace = 1u << 8,     // Python's str.isspace(): category Zs or bidi class WS, B or S
};

using CharFlags = uint16_t;

// The flags of `cp` (any value; out-of-range values have no flags).
CharFlags charFlags(char32_t cp);

// The table for U+0000..U+FFFF (65,536 entries), for loops that classify many code points.
const CharFlags* bmpCharFlags();

// The same, computed by ICU without the table (used to build it, and by tests).
CharFlags computeCharFlags(char32_t cp);

}  // namespace folio::tokenizer
