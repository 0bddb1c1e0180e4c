// SPDX-License-Identifier: GPL-3.0-or-later
#include "unicode_props.h"

#include <unicode/uchar.h>
#include <unicode/uscript.h>

#include <array>
#include <memory>

namespace folio::tokenizer {

CharFlags computeCharFlags(char32_t cp) {
    if (cp > 0x10FFFF)
        return 0;
    const auto c = static_cast<UChar32>(cp);
    CharFlags flags = 0;
    switch (u_charType(c)) {
        case U_UPPERCASE_LETTER:
        case U_TITLECASE_LETTER:
            flags |= kLetter | kUpperish;
            break;
        case U_LOWERCASE_LETTER:
            flags |= kLetter | kLowerish;
            break;
        case U_MODIFIER_LETTER:
        case U_OTHER_LETTER:
            flags |= kLetter | kUpperish | kLowerish;
            break;
        case U_NON_SPACING_MARK:
        case U_ENCLOSING_MARK:
        case U_COMBINING_SPACING_MARK:
            flags |= kMark | kUpperish | kLowerish;
            break;
        case U_DECIMAL_DIGIT_NUMBER:
        case U_LETTER_NUMBER:
        case U_OTHER_NUMBER:
            flags |= kNumber;
            break;
        case U_SPACE_SEPARATOR:
            flags |= kPySpace;
            break;
        default:
            break;
    }
    UErrorCode status = U_ZERO_ERROR;
    if (uscript_getScript(c, &status) == USCRIPT_HAN && U_SUCCESS(status))
        flags |= kHan;
    if (u_hasBinaryProperty(c, UCHAR_WHITE_SPACE))
        flags |= kWhiteSpace;
    if (cp == '\r' || cp == '\n')
        flags |= kNewline;
    switch (u_charDirection(c)) {
        case U_WHITE_SPACE_NEUTRAL:
        case U_BLOCK_SEPARATOR:
        case U_SEGMENT_SEPARATOR:
            flags |= kPySpace;
            break;
        default:
            break;
    }
    return flags;
}

namespace {

using BmpTable = std::array<CharFlags, 0x10000>;

const BmpTable& bmpTable() {
    // Built on first use; C++ guarantees thread-safe initialisation of function-local statics.
    static const std::unique_ptr<BmpTable> table = [] {
        auto t = std::make_unique<BmpTable>();
        for (char32_t cp = 0; cp < 0x10000; ++cp)
            (*t)[cp] = computeCharFlags(cp);
        return t;
    }();
    return *table;
}

}  // namespace

const CharFlags* bmpCharFlags() {
    return bmpTable().data();
}

CharFlags charFlags(char32_t cp) {
    if (cp < 0x10000)
        return bmpTable()[cp];
    return computeCharFlags(cp);
}

}  // namespace folio::tokenizer
