// SPDX-License-Identifier: GPL-3.0-or-later
#include "base64.h"

#include <array>
#include <cstdint>

namespace folio::tokenizer {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> makeDecodeTable() {
    std::array<int8_t, 256> table{};
    for (auto& v : table)
        v = -1;
    for (int i = 0; i < 64; ++i)
        table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
    return table;
}

constexpr std::array<int8_t, 256> kDecode = makeDecodeTable();

}  // namespace

Result<std::string> decodeBase64(std::string_view text) {
    if (text.empty())
        return makeError(ErrorCode::Format, "empty base64 token");
    if (text.size() % 4 != 0)
        return makeError(ErrorCode::Format, "base64 length ", text.size(),
                         " is not a multiple of 4");
    size_t padding = 0;
    if (text.back() == '=')
        padding = text[text.size() - 2] == '=' ? 2 : 1;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        uint32_t group = 0;
        for (size_t j = 0; j < 4; ++j) {
            const char c = text[i + j];
            int8_t v = kDecode[static_cast<uint8_t>(c)];
            if (c == '=' && last && j >= 4 - padding) {
                v = 0;
            } else if (v < 0) {
                return makeError(
                    ErrorCode::Format, "invalid base64 character ",
                    c == '=' ? std::string("'=' before the end")
                             : cat("0x", std::hex, static_cast<int>(static_cast<uint8_t>(c))),
                    " at offset ", std::dec, i + j);
            }
            group = (group << 6) | static_cast<uint32_t>(v);
        }
        const size_t bytes = last ? 3 - padding : 3;
        if (last && padding > 0 && (group & ((1u << (8 * padding)) - 1)) != 0)
            return makeError(ErrorCode::Format, "base64 padding leaves non-zero bits");
        for (size_t b = 0; b < bytes; ++b)
            out.push_back(static_cast<char>((group >> (16 - 8 * b)) & 0xFF));
    }
    return out;
}

std::string encodeBase64(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t g = (static_cast<uint8_t>(bytes[i]) << 16) |
                           (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                           static_cast<uint8_t>(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6)
            out.push_back(kAlphabet[(g >> s) & 0x3F]);
    }
    const size_t rest = bytes.size() - i;
    if (rest > 0) {
        uint32_t g = static_cast<uint8_t>(bytes[i]) << 16;
        if (rest == 2)
            g |= static_cast<uint8_t>(bytes[i + 1]) << 8;
        out.push_back(kAlphabet[(g >> 18) & 0x3F]);
        out.push_back(kAlphabet[(g >> 12) & 0x3F]);
        out.push_back(rest == 2 ? kAlphabet[(g >> 6) & 0x3F] : '=');
        out.push_back('=');
    }
    return out;
}

}  // namespace folio::tokenizer
