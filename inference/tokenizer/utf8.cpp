// SPDX-License-Identifier: GPL-3.0-or-later
#include "utf8.h"

#include <cstring>

namespace folio::tokenizer {

namespace {

// The number of bytes of the sequence `lead` starts (0 when it can start none), and the allowed
// range of the second byte (Unicode Table 3-7).
struct LeadInfo {
    uint8_t length;
    uint8_t secondLow;
    uint8_t secondHigh;
};

constexpr LeadInfo leadInfo(uint8_t lead) {
    if (lead < 0x80)
        return {1, 0, 0};
    if (lead < 0xC2)
        return {0, 0, 0};
    if (lead < 0xE0)
        return {2, 0x80, 0xBF};
    if (lead == 0xE0)
        return {3, 0xA0, 0xBF};
    if (lead == 0xED)
        return {3, 0x80, 0x9F};
    if (lead < 0xF0)
        return {3, 0x80, 0xBF};
    if (lead == 0xF0)
        return {4, 0x90, 0xBF};
    if (lead < 0xF4)
        return {4, 0x80, 0xBF};
    if (lead == 0xF4)
        return {4, 0x80, 0x8F};
    return {0, 0, 0};
}

constexpr bool isContinuation(uint8_t b) {
    return (b & 0xC0) == 0x80;
}

}  // namespace

DecodedChar decodeUtf8(std::string_view text, size_t pos) {
    const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + pos;
    const size_t left = text.size() - pos;
    const uint8_t lead = p[0];
    if (lead < 0x80)
        return {lead, 1, true};
    const LeadInfo info = leadInfo(lead);
    if (info.length == 0)
        return {kReplacementChar, 1, false};
    if (left < 2 || p[1] < info.secondLow || p[1] > info.secondHigh)
        return {kReplacementChar, 1, false};
    if (info.length == 2)
        return {static_cast<char32_t>(((lead & 0x1F) << 6) | (p[1] & 0x3F)), 2, true};
    if (left < 3 || !isContinuation(p[2]))
        return {kReplacementChar, 2, false};
    if (info.length == 3)
        return {static_cast<char32_t>(((lead & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F)),
                3, true};
    if (left < 4 || !isContinuation(p[3]))
        return {kReplacementChar, 3, false};
    return {static_cast<char32_t>(((lead & 0x07) << 18) | ((p[1] & 0x3F) << 12) |
                                  ((p[2] & 0x3F) << 6) | (p[3] & 0x3F)),
            4, true};
}

std::optional<size_t> findInvalidUtf8(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
        // Eight ASCII bytes at a time.
        if (pos + 8 <= text.size()) {
            uint64_t word;
            std::memcpy(&word, text.data() + pos, 8);
            if ((word & 0x8080808080808080ull) == 0) {
                pos += 8;
                continue;
            }
        }
        if (static_cast<uint8_t>(text[pos]) < 0x80) {
            ++pos;
            continue;
        }
        const DecodedChar c = decodeUtf8(text, pos);
        if (!c.valid)
            return pos;
        pos += c.length;
    }
    return std::nullopt;
}

std::string repairUtf8(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 8);
    size_t pos = 0;
    while (pos < text.size()) {
        const DecodedChar c = decodeUtf8(text, pos);
        if (c.valid)
            out.append(text.substr(pos, c.length));
        else
            appendUtf8(out, kReplacementChar);
        pos += c.length;
    }
    return out;
}

size_t incompleteUtf8Tail(std::string_view bytes) {
    // A sequence is at most 4 bytes, so an incomplete one starts within the last 3.
    const size_t n = bytes.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const auto lead = static_cast<uint8_t>(bytes[n - back]);
        if (isContinuation(lead))
            continue;
        const LeadInfo info = leadInfo(lead);
        if (info.length <= back)
            return 0;  // ASCII, an invalid lead, or a sequence that is already complete
        // The bytes after the lead must be a valid prefix of the sequence.
        const DecodedChar c = decodeUtf8(bytes, n - back);
        return (!c.valid && c.length == back) ? back : 0;
    }
    return 0;
}

void appendUtf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

}  // namespace folio::tokenizer
