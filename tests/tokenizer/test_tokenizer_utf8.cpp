// SPDX-License-Identifier: GPL-3.0-or-later
// UTF-8 handling: decoding and the invalid-input policy (maximal subparts become U+FFFD, or the
// text is rejected), streaming decode that never emits part of a character, Kimi's input chunking
// (400,000 code points, runs of 25,000), and the ICU properties the pre-tokenizer relies on.
#include <QtTest/QtTest>

#include "inference/tokenizer/stream_decoder.h"
#include "inference/tokenizer/text_chunks.h"
#include "inference/tokenizer/unicode_props.h"
#include "inference/tokenizer/utf8.h"
#include "tokenizer_test_data.h"

using namespace folio;
using namespace folio::tokenizer;
using namespace folio::tokenizer::testing;

namespace {

const std::string kFffd = "\xEF\xBF\xBD";

std::string repeat(const std::string& s, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i)
        out += s;
    return out;
}

size_t codePoints(std::string_view s) {
    size_t n = 0;
    for (char c : s)
        n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    return n;
}

}  // namespace

class TokenizerUtf8Test : public QObject {
    Q_OBJECT

  private slots:
    // The expected strings are what Python's bytes.decode("utf-8", "replace") gives.
    void repairReplacesMaximalSubparts() {
        struct Case {
            std::string in, out;
        };
        const Case cases[] = {
            {"plain", "plain"},
            {"\xF0\x9F\x98"
             "A",
             kFffd + "A"},                              // truncated 4-byte sequence: one U+FFFD
            {"\xE0\x80\x80", repeat(kFffd, 3)},         // overlong: each byte
            {"\xED\xA0\x80", repeat(kFffd, 3)},         // surrogate
            {"\xF4\x90\x80\x80", repeat(kFffd, 4)},     // above U+10FFFF
            {"\xC0\xAF", repeat(kFffd, 2)},             // overlong '/'
            {"\xE4\xB8", kFffd},                        // truncated at the end
            {"a\x80z\xFF", "a" + kFffd + "z" + kFffd},  // stray continuation, invalid byte
            {"\xE4\xB8\xAD\xE6", "\xE4\xB8\xAD" + kFffd},
        };
        for (const Case& c : cases) {
            QCOMPARE(bytes(repairUtf8(c.in)), bytes(c.out));
            QCOMPARE(findInvalidUtf8(c.in).has_value(), c.in != c.out);
        }
        QCOMPARE(*findInvalidUtf8("ab\xC3"), size_t{2});
    }

    void decodeGivesCodePoints() {
        const std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
        const char32_t want[] = {U'a', U'\u00E9', U'\u4E2D', U'\U0001F600'};
        size_t pos = 0;
        for (char32_t cp : want) {
            const DecodedChar c = decodeUtf8(s, pos);
            QVERIFY(c.valid);
            QCOMPARE(c.cp, cp);
            pos += c.length;
        }
        QCOMPARE(pos, s.size());
        std::string back;
        for (char32_t cp : want)
            appendUtf8(back, cp);
        QCOMPARE(back, s);
    }

    void incompleteTails() {
        QCOMPARE(incompleteUtf8Tail("abc"), size_t{0});
        QCOMPARE(incompleteUtf8Tail("a\xE4"), size_t{1});
        QCOMPARE(incompleteUtf8Tail("a\xE4\xB8"), size_t{2});
        QCOMPARE(incompleteUtf8Tail("a\xE4\xB8\xAD"), size_t{0});
        QCOMPARE(incompleteUtf8Tail("\xF0\x9F\x98"), size_t{3});
        QCOMPARE(incompleteUtf8Tail("\xE0\x80"), size_t{0});  // already ill-formed
        QCOMPARE(incompleteUtf8Tail("\x80\x80\x80"), size_t{0});
        QCOMPARE(incompleteUtf8Tail("\xFF"), size_t{0});
    }

    void encodePolicyForInvalidInput() {
        const Tokenizer tok = referenceTokenizer("cl100k_base");
        const std::string bad = "caf\xC3 ok \xF0\x9F\x98 end\xFF";
        auto replaced = tok.encode(bad);
        QVERIFY(replaced.ok());
        auto repaired = tok.encode(repairUtf8(bad));
        QVERIFY(repaired.ok());
        QCOMPARE(*replaced, *repaired);
        auto text = tok.decode(*replaced);
        QVERIFY(text.ok());
        QCOMPARE(bytes(*text), bytes(repairUtf8(bad)));
        auto rejected = tok.encode(bad, {SpecialTokenPolicy::Recognize, Utf8Policy::Reject, 1});
        QVERIFY(!rejected.ok());
        QCOMPARE(rejected.error().code, ErrorCode::InvalidArgument);
        QVERIFY(rejected.error().message.find("offset 3") != std::string::npos);
        auto pieces = tok.pieces(bad);
        QVERIFY(pieces.ok());
        std::string joined;
        for (const auto& p : *pieces)
            joined += p;
        QCOMPARE(bytes(joined), bytes(repairUtf8(bad)));
    }

    // Emoji and rare CJK characters are split across byte-level tokens; the stream must hold
    // their first bytes back and never emit a partial character.
    void streamingDecodeHoldsBackPartialCharacters() {
        const Tokenizer tok = referenceTokenizer("cl100k_base");
        const std::string text =
            "Emoji: 😀👍🏽 👨‍👩‍👧‍👦 🇫🇷 and 天地玄黄 done👋";
        auto ids = tok.encode(text);
        QVERIFY(ids.ok());
        StreamDecoder stream(tok);
        std::string out;
        int heldBack = 0;
        for (int32_t id : *ids) {
            auto piece = stream.push(id);
            QVERIFY(piece.ok());
            QVERIFY(!findInvalidUtf8(*piece).has_value());
            if (stream.pendingBytes() > 0)
                ++heldBack;
            QVERIFY(stream.pendingBytes() <= 3);
            out += *piece;
        }
        out += stream.finish();
        QCOMPARE(bytes(out), bytes(text));
        QVERIFY(heldBack > 0);  // the test really splits characters across tokens
        QVERIFY(!stream.push(-5).ok());
    }

    void streamingDecodeByteByByte() {
        const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80z";
        const Tokenizer tok = referenceTokenizer("cl100k_base");
        StreamDecoder stream(tok);
        std::string out;
        std::vector<size_t> sizes;
        for (char c : text) {
            const std::string piece = stream.pushBytes(std::string_view(&c, 1));
            sizes.push_back(piece.size());
            out += piece;
        }
        out += stream.finish();
        QCOMPARE(out, text);
        QCOMPARE(sizes, (std::vector<size_t>{1, 0, 2, 0, 0, 3, 0, 0, 0, 4, 1}));
    }

    void streamingDecodeOfInvalidBytes() {
        const Tokenizer tok = referenceTokenizer("cl100k_base");
        StreamDecoder stream(tok);
        QCOMPARE(stream.pushBytes("\xE4\xB8"), std::string());
        QCOMPARE(bytes(stream.pushBytes("A")), bytes(kFffd + "A"));
        QCOMPARE(bytes(stream.pushBytes("\xFF")), bytes(kFffd));
        QCOMPARE(stream.pushBytes("\xF0\x9F"), std::string());
        QCOMPARE(bytes(stream.finish()), bytes(kFffd));
        QCOMPARE(stream.pendingBytes(), size_t{0});
        // Any split of any byte string streams to the same text as decoding it whole.
        const std::string messy = "x\xE4\xB8\xAD\xE4\xB8\xF0\x9F\x98\x80\x80\xC3(\xED\xA0\x80y";
        for (size_t cut1 = 0; cut1 <= messy.size(); ++cut1) {
            for (size_t cut2 = cut1; cut2 <= messy.size(); ++cut2) {
                StreamDecoder s(tok);
                std::string out = s.pushBytes(messy.substr(0, cut1));
                out += s.pushBytes(messy.substr(cut1, cut2 - cut1));
                out += s.pushBytes(messy.substr(cut2));
                out += s.finish();
                QCOMPARE(bytes(out), bytes(repairUtf8(messy)));
            }
        }
    }

    void kimiChunksOfRuns() {
        std::vector<std::string_view> chunks;
        const std::string letters(60000, 'a');
        splitIntoChunks(letters, kKimiChunkLimits, chunks);
        QCOMPARE(chunks.size(), size_t{3});
        QCOMPARE(chunks[0].size(), size_t{25000});
        QCOMPARE(chunks[1].size(), size_t{25000});
        QCOMPARE(chunks[2].size(), size_t{10000});

        // A run restarts at each change between whitespace and not.
        chunks.clear();
        const std::string mixed = std::string(20000, 'a') + " " + std::string(30000, 'b');
        splitIntoChunks(mixed, kKimiChunkLimits, chunks);
        QCOMPARE(chunks.size(), size_t{2});
        QCOMPARE(chunks[0].size(), size_t{20001 + 25000});

        // Python's isspace() counts U+001C..U+001F as whitespace (regex \s does not).
        chunks.clear();
        const std::string separators = std::string(25001, '\x1c');
        splitIntoChunks(separators, kKimiChunkLimits, chunks);
        QCOMPARE(chunks.size(), size_t{2});

        // Runs count code points, not bytes.
        chunks.clear();
        const std::string han = repeat("中", 25001);
        splitIntoChunks(han, kKimiChunkLimits, chunks);
        QCOMPARE(chunks.size(), size_t{2});
        QCOMPARE(codePoints(chunks[0]), size_t{25000});

        chunks.clear();
        splitIntoChunks("short", kKimiChunkLimits, chunks);
        QCOMPARE(chunks.size(), size_t{1});
        chunks.clear();
        splitIntoChunks("", kKimiChunkLimits, chunks);
        QVERIFY(chunks.empty());
    }

    void kimiChunksOf400kCodePoints() {
        // "é " has two code points; 200,001 copies are 400,002 code points: the first slice ends
        // after exactly 400,000 of them, in the middle of no character.
        const std::string text = repeat("\xC3\xA9 ", 200001);
        std::vector<std::string_view> chunks;
        splitIntoChunks(text, kKimiChunkLimits, chunks);
        QCOMPARE(chunks.size(), size_t{2});
        QCOMPARE(codePoints(chunks[0]), size_t{400000});
        QCOMPARE(chunks[1], std::string_view("\xC3\xA9 "));
        std::vector<std::string_view> none;
        splitIntoChunks(text, ChunkLimits{}, none);
        QCOMPARE(none.size(), size_t{1});
    }

    void unicodePropertiesFromIcu() {
        QCOMPARE(charFlags(U'A') & (kLetter | kUpperish | kLowerish), kLetter | kUpperish);
        QCOMPARE(charFlags(U'a') & (kLetter | kUpperish | kLowerish), kLetter | kLowerish);
        QCOMPARE(charFlags(U'\u01C5') & (kUpperish | kLowerish), +kUpperish);             // ǅ Lt
        QCOMPARE(charFlags(U'\u02B0') & (kUpperish | kLowerish), kUpperish | kLowerish);  // ʰ Lm
        QVERIFY(charFlags(U'\u4E2D') & kHan);
        QVERIFY(charFlags(U'\u4E2D') & kLetter);
        QVERIFY((charFlags(U'\u3007') & (kHan | kNumber)) == (kHan | kNumber));       // 〇 Nl
        QVERIFY((charFlags(U'\u2E80') & kHan) && !(charFlags(U'\u2E80') & kLetter));  // ⺀ So
        QVERIFY(charFlags(U'\U00020000') & kHan);
        QVERIFY(charFlags(U'\u30FC') & kLowerish);  // ー Lm, not Han
        QVERIFY(!(charFlags(U'\u30FC') & kHan));
        QVERIFY(charFlags(U'\u0301') & kMark);
        QVERIFY(charFlags(U'\u0085') & kWhiteSpace);
        QVERIFY(!(charFlags(U'\uFEFF') & kWhiteSpace));
        QVERIFY(charFlags(U'\u3000') & kWhiteSpace);
        QVERIFY((charFlags(U'\x1C') & (kWhiteSpace | kPySpace)) == kPySpace);
        QVERIFY(charFlags(U'\r') & kNewline);
        QVERIFY(!(charFlags(U'\u2028') & kNewline));
        for (char32_t cp = 0; cp < 0x10000; ++cp)
            QCOMPARE(charFlags(cp), computeCharFlags(cp));
    }
};

QTEST_APPLESS_MAIN(TokenizerUtf8Test)
#include "test_tokenizer_utf8.moc"
