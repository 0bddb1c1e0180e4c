// SPDX-License-Identifier: GPL-3.0-or-later
// Text decoding for files of unknown encoding: binary detection, UTF-8 (with or without a byte
// order mark), UTF-16 with a byte order mark, and Windows-1252 / Latin-1 as the fallback for
// 8-bit text. Owns: nothing. Promises: the result is valid UTF-8 or a reason why the bytes are not
// text; `converted` names the encoding when the bytes were not UTF-8 already. Never guesses
// encodings it cannot check (no CJK legacy code pages): such files come back as not-text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace folio::ingest {

// Git's rule: a NUL byte in the first 8,000 bytes makes a file binary.
bool looksBinary(std::string_view bytes);

struct DecodedText {
    std::string utf8;
    std::string convertedFrom;  // empty when the bytes were UTF-8; else "UTF-16LE", "Windows-1252"
};

struct DecodeOutcome {
    std::optional<DecodedText> text;  // set on success
    std::string failureReason;        // set otherwise
};

// `allowLegacy`: convert 8-bit text that is not UTF-8 from Windows-1252 (else it fails).
DecodeOutcome decodeText(std::string_view bytes, bool allowLegacy);

// Windows-1252 to UTF-8 (bytes 0x80-0x9F that 1252 leaves undefined become U+0080-U+009F, as in
// Latin-1).
std::string windows1252ToUtf8(std::string_view bytes);

}  // namespace folio::ingest
