// SPDX-License-Identifier: GPL-3.0-or-later
#include "text_decoding.h"

#include <QStringDecoder>

#include <array>
#include <cstdint>

#include "inference/tokenizer/utf8.h"

namespace folio::ingest {

namespace {

constexpr size_t kBinaryProbeBytes = 8000;

// Windows-1252's assignments for 0x80-0x9F (0 = undefined).
constexpr std::array<char32_t, 32> kCp1252High = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

bool startsWith(std::string_view bytes, std::string_view prefix) {
    return bytes.substr(0, prefix.size()) == prefix;
}

// Control characters other than tab, newline, form feed and carriage return, as a share of bytes.
double controlShare(std::string_view bytes) {
    if (bytes.empty())
        return 0;
    size_t controls = 0;
    for (unsigned char c : bytes) {
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f')
            ++controls;
    }
    return static_cast<double>(controls) / static_cast<double>(bytes.size());
}

std::optional<std::string> decodeUtf16(std::string_view bytes, QStringConverter::Encoding enc) {
    QStringDecoder decoder(enc, QStringConverter::Flag::Stateless);
    const QString text =
        decoder.decode(QByteArrayView(bytes.data(), static_cast<qsizetype>(bytes.size())));
    if (decoder.hasError())
        return std::nullopt;
    return text.toStdString();
}

}  // namespace

bool looksBinary(std::string_view bytes) {
    return bytes.substr(0, kBinaryProbeBytes).find('\0') != std::string_view::npos;
}

std::string windows1252ToUtf8(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() + bytes.size() / 8);
    for (unsigned char c : bytes) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0xA0 && kCp1252High[c - 0x80] != 0) {
            tokenizer::appendUtf8(out, kCp1252High[c - 0x80]);
        } else {
            tokenizer::appendUtf8(out, c);
        }
    }
    return out;
}

DecodeOutcome decodeText(std::string_view bytes, bool allowLegacy) {
    if (startsWith(bytes, "\xFF\xFE") || startsWith(bytes, "\xFE\xFF")) {
        const bool little = startsWith(bytes, "\xFF\xFE");
        auto text = decodeUtf16(bytes.substr(2),
                                little ? QStringConverter::Utf16LE : QStringConverter::Utf16BE);
        if (!text)
            return {std::nullopt, "malformed UTF-16 text"};
        return {DecodedText{std::move(*text), little ? "UTF-16LE" : "UTF-16BE"}, {}};
    }
    if (looksBinary(bytes))
        return {std::nullopt, "binary file (NUL bytes in the first 8,000 bytes)"};
    if (startsWith(bytes, "\xEF\xBB\xBF"))
        bytes.remove_prefix(3);
    if (controlShare(bytes.substr(0, 64 * 1024)) > 0.02)
        return {std::nullopt, "binary file (control characters)"};
    if (!tokenizer::findInvalidUtf8(bytes))
        return {DecodedText{std::string(bytes), {}}, {}};
    if (!allowLegacy)
        return {std::nullopt, "not UTF-8 text (conversion from legacy encodings is off)"};
    return {DecodedText{windows1252ToUtf8(bytes), "Windows-1252"}, {}};
}

}  // namespace folio::ingest
