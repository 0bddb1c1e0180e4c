// SPDX-License-Identifier: GPL-3.0-or-later
// Loading tiktoken.model and tokenizer_config.json: what is accepted, and a clear error, naming the
// line or the field, for each kind of bad input.
#include <QtTest/QtTest>

#include "inference/tokenizer/base64.h"
#include "inference/tokenizer/kimi_tokenizer_files.h"
#include "tokenizer_test_data.h"

using namespace folio;
using namespace folio::tokenizer;
using namespace folio::tokenizer::testing;

namespace {

// The 256 single bytes at ranks 0..255, then `extra` lines.
std::string byteRanks(const std::string& extra = "") {
    std::vector<RankedToken> tokens;
    for (int b = 0; b < 256; ++b)
        tokens.push_back({std::string(1, static_cast<char>(b)), static_cast<uint32_t>(b), 0});
    return formatTiktokenRanks(tokens) + extra;
}

std::string line(std::string_view bytes, uint32_t rank) {
    return encodeBase64(bytes) + " " + std::to_string(rank) + "\n";
}

// The error of loading `model` as a Kimi tokenizer with `config`.
Error kimiError(const std::string& model, const std::string& config) {
    auto tok = makeKimiTokenizer(model, "tiktoken.model", config, "tokenizer_config.json");
    if (tok.ok())
        qFatal("expected an error");
    return tok.error();
}

std::string smallConfig() {
    return kimiTokenizerConfig({{256, "[BOS]"}, {258, "<|im_end|>"}});
}

bool contains(const Error& e, std::string_view what) {
    if (e.message.find(what) != std::string::npos)
        return true;
    qWarning("message \"%s\" lacks \"%.*s\"", e.message.c_str(), static_cast<int>(what.size()),
             what.data());
    return false;
}

}  // namespace

class TokenizerFilesTest : public QObject {
    Q_OBJECT

  private slots:
    void base64IsStrict() {
        QCOMPARE(*decodeBase64("aGVsbG8="), std::string("hello"));
        QCOMPARE(*decodeBase64("IQ=="), std::string("!"));
        QCOMPARE(encodeBase64("hello"), std::string("aGVsbG8="));
        QVERIFY(!decodeBase64("aGVsbG8").ok());   // length
        QVERIFY(!decodeBase64("aGV*bG8=").ok());  // alphabet
        QVERIFY(!decodeBase64("a===").ok());      // padding too long
        QVERIFY(!decodeBase64("IR==").ok());      // non-zero padding bits
        QVERIFY(!decodeBase64("").ok());
    }

    void acceptsCrLfAndBlankLines() {
        std::string model = byteRanks();
        std::string crlf;
        for (char c : model) {
            if (c == '\n')
                crlf += "\r\n";
            else
                crlf += c;
        }
        crlf += "\r\n\r\n" + line("ab", 256) + "\n";
        auto ranks = parseTiktokenRanks(crlf, "m");
        QVERIFY(ranks.ok());
        QCOMPARE(ranks->size(), size_t{257});
        QCOMPARE(ranks->back().line, uint32_t{259});
    }

    void malformedLinesNameTheLine() {
        const std::string base = byteRanks();  // 256 lines
        struct Case {
            std::string extra;
            std::string want;
        };
        const Case cases[] = {
            {"YWI=\n", "line 257: expected \"base64-token rank\", found one field"},
            {"YWI= 256 7\n", "line 257: expected \"base64-token rank\", found more than two"},
            {"YW*= 256\n", "line 257: invalid base64 character"},
            {"YWI 256\n", "line 257: base64 length 3"},
            {"YWI= -3\n", "line 257: rank \"-3\" is not a decimal number"},
            {"YWI= 99999999\n", "line 257: rank 99999999 is above the limit"},
            {"YWI= 25x\n", "line 257: rank \"25x\""},
        };
        for (const Case& c : cases) {
            auto ranks = parseTiktokenRanks(base + c.extra, "tiktoken.model");
            QVERIFY2(!ranks.ok(), c.extra.c_str());
            QCOMPARE(ranks.error().code, ErrorCode::Format);
            QVERIFY(contains(ranks.error(), "tiktoken.model " + c.want));
        }
        QVERIFY(contains(parseTiktokenRanks("\n\n", "t").error(), "t has no tokens"));
    }

    void duplicatesNameBothLines() {
        auto dupBytes = BpeVocabulary::build(
            *parseTiktokenRanks(byteRanks(line("ab", 256) + line("ab", 257)), "m"), "m");
        QVERIFY(!dupBytes.ok());
        QVERIFY(contains(dupBytes.error(), "m line 258: duplicate token"));
        QVERIFY(contains(dupBytes.error(), "m line 257"));
        auto dupRank = BpeVocabulary::build(
            *parseTiktokenRanks(byteRanks(line("ab", 256) + line("cd", 256)), "m"), "m");
        QVERIFY(!dupRank.ok());
        QVERIFY(contains(dupRank.error(), "m line 258: rank 256 is already used by m line 257"));
    }

    void everySingleByteIsRequired() {
        std::vector<RankedToken> tokens;
        for (int b = 0; b < 256; ++b) {
            if (b != 0x41)
                tokens.push_back(
                    {std::string(1, static_cast<char>(b)), static_cast<uint32_t>(b), 0});
        }
        auto v = BpeVocabulary::build(tokens, "m");
        QVERIFY(!v.ok());
        QVERIFY(contains(v.error(), "single byte 0x41"));
    }

    void kimiRanksMustHaveNoGaps() {
        const Error e = kimiError(byteRanks(line("ab", 300)), smallConfig());
        QVERIFY(contains(e, "tiktoken.model line 257: rank 300 is not below the number of tokens"));
    }

    void kimiSpecialIdsOutOfRange() {
        const std::string model = byteRanks(line("ab", 256));  // 257 tokens: specials 257..512
        QVERIFY(contains(kimiError(model, kimiTokenizerConfig({{5, "[BOS]"}})),
                         "added_tokens_decoder.\"5\" (\"[BOS]\"): id 5 is outside the special "
                         "range 257..512"));
        QVERIFY(contains(kimiError(model, kimiTokenizerConfig({{513, "[PAD]"}})),
                         "added_tokens_decoder.\"513\""));
        auto ok = makeKimiTokenizer(model, "m",
                                    kimiTokenizerConfig({{257, "[BOS]"}, {512, "[PAD]"}}), "c");
        QVERIFY(ok.ok());
        QCOMPARE(ok->vocabularySize(), 513);
        QCOMPARE(*ok->specialId("[PAD]"), 512);
        QCOMPARE(*ok->specialId("<|reserved_token_300|>"), 300);
        QCOMPARE(std::string(*ok->tokenBytes(258)), std::string("<|reserved_token_258|>"));
    }

    void brokenConfigNamesTheField() {
        const std::string model = byteRanks();
        struct Case {
            std::string config;
            std::string want;
        };
        const Case cases[] = {
            {"{\"added_tokens_decoder\": {", "tokenizer_config.json: invalid JSON at byte"},
            {"[1, 2]", "the top level is not a JSON object"},
            {"{}", "tokenizer_config.json: added_tokens_decoder is missing"},
            {"{\"added_tokens_decoder\": []}", "added_tokens_decoder is an array, not an object"},
            {"{\"added_tokens_decoder\": {\"x1\": {\"content\": \"a\"}}}",
             "added_tokens_decoder.\"x1\" is not a token id"},
            {"{\"added_tokens_decoder\": {\"0256\": {\"content\": \"a\"}}}",
             "added_tokens_decoder.\"0256\" is not a token id"},
            {"{\"added_tokens_decoder\": {\"256\": 3}}",
             "added_tokens_decoder.\"256\" is a number"},
            {"{\"added_tokens_decoder\": {\"256\": {}}}",
             "added_tokens_decoder.\"256\".content is missing"},
            {"{\"added_tokens_decoder\": {\"256\": {\"content\": 7}}}",
             "added_tokens_decoder.\"256\".content is a number, not a string"},
            {"{\"added_tokens_decoder\": {\"256\": {\"content\": \"\"}}}",
             "added_tokens_decoder.\"256\".content is empty"},
            {"{\"added_tokens_decoder\": {\"256\": {\"content\": \"a\"}, \"257\": {\"content\": "
             "\"a\"}}}",
             "added_tokens_decoder.\"257\".content names \"a\", which another id already has"},
            {"{\"added_tokens_decoder\": {\"256\": {\"content\": \"a\"}, \"256\": {\"content\": "
             "\"b\"}}}",
             "tokenizer_config.json: invalid JSON"},
        };
        for (const Case& c : cases) {
            const Error e = kimiError(model, c.config);
            QCOMPARE(e.code, ErrorCode::Format);
            QVERIFY2(contains(e, c.want), c.config.c_str());
        }
    }

    void reservedNameCollisionIsAnError() {
        const std::string model = byteRanks();
        const Error e = kimiError(model, kimiTokenizerConfig({{256, "<|reserved_token_300|>"}}));
        QVERIFY(contains(e, "special token \"<|reserved_token_300|>\" is given twice"));
    }

    void missingFilesAreNotFound() {
        const auto dir = outputDir("empty_folder");
        auto tok = loadKimiTokenizer(dir);
        QVERIFY(!tok.ok());
        QCOMPARE(tok.error().code, ErrorCode::NotFound);
        QVERIFY(contains(tok.error(), "tiktoken.model"));
    }

    void loadsAKimiLayoutFolder() {
        const auto dir = makeKimiLayoutFolder("files");
        auto tok = loadKimiTokenizer(dir);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.error().message.c_str());
        QCOMPARE(tok->vocabulary().size(), kKimiBaseTokens);
        QVERIFY(tok->vocabulary().dense());
        QCOMPARE(tok->vocabularySize(), 163840);
        QCOMPARE(tok->specials().size(), size_t{256});
        QCOMPARE(*tok->specialId("[BOS]"), 163584);
        QCOMPARE(*tok->specialId("<|im_middle|>"), 163601);
        QCOMPARE(*tok->specialId("<|reserved_token_163589|>"), 163589);
        QCOMPARE(*tok->specialId("<|reserved_token_163837|>"), 163837);
        QVERIFY(!tok->specialId("<|reserved_token_163838|>"));  // that one is [UNK]
        QCOMPARE(tok->preTokenizer().kind(), PatternKind::Kimi);
        QCOMPARE(tok->chunkLimits().maxChunkCodePoints, size_t{400000});
    }
};

QTEST_APPLESS_MAIN(TokenizerFilesTest)
#include "test_tokenizer_files.moc"
