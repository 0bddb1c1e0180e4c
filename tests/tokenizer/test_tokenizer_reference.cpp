// SPDX-License-Identifier: GPL-3.0-or-later
// The tokenizer against independent implementations: BPE ids of cl100k_base and o200k_base from
// js-tiktoken, and the pieces of Kimi's, cl100k_base's and o200k_base's patterns from Node's
// RegExp (data/*.json, made by generate_expected.mjs). Also: the BPE algorithms agree, text cut
// at safe offsets splits the same, parallel and batch encoding equal serial encoding, and every
// case round-trips.
#include <QtTest/QtTest>

#include "inference/tokenizer/bpe_merge.h"
#include "inference/tokenizer/encode_plan.h"
#include "tokenizer_test_data.h"

using namespace folio;
using namespace folio::tokenizer;
using namespace folio::tokenizer::testing;

class TokenizerReferenceTest : public QObject {
    Q_OBJECT

  private:
    void checkIds(const std::string& encoding) {
        const Tokenizer tok = referenceTokenizer(encoding);
        const inference::JsonValue expected = loadJson("expected_" + encoding + ".json");
        int checked = 0;
        for (const auto& c : expected.find("cases")->items()) {
            const std::string& text = c.find("text")->string();
            const std::string& name = c.find("name")->string();
            auto ids = tok.encode(text, {SpecialTokenPolicy::AsText});
            QVERIFY2(ids.ok(), name.c_str());
            if (*ids != idsOf(*c.find("ids")))
                QFAIL(
                    qPrintable(QString::fromStdString(encoding + ": ids differ for case " + name)));
            auto back = tok.decodeBytes(*ids);
            QVERIFY(back.ok());
            QCOMPARE(bytes(*back), bytes(text));
            ++checked;
        }
        for (const auto& c : expected.find("specialCases")->items()) {
            const std::string& text = c.find("text")->string();
            const std::string& name = c.find("name")->string();
            auto recognised = tok.encode(text);
            QVERIFY(recognised.ok());
            QVERIFY2(*recognised == idsOf(*c.find("ids")), name.c_str());
            auto asText = tok.encode(text, {SpecialTokenPolicy::AsText});
            QVERIFY(asText.ok());
            QVERIFY2(*asText == idsOf(*c.find("idsAsText")), name.c_str());
            ++checked;
        }
        QVERIFY(checked > 90);
    }

    void checkPieces(const std::string& key, PatternKind kind) {
        const inference::JsonValue expected = loadJson("expected_pieces.json");
        const PreTokenizer pre(kind);
        int checked = 0;
        for (const auto& c : expected.find(key)->items()) {
            const std::string& text = c.find("text")->string();
            const std::string& name = c.find("name")->string();
            std::vector<std::string> want;
            for (const auto& p : c.find("pieces")->items())
                want.push_back(p.string());
            std::vector<std::string> got;
            for (auto p : pre.pieces(text))
                got.emplace_back(p);
            if (got != want) {
                QString detail;
                for (const auto& p : got)
                    detail += "[" + QString::fromStdString(p) + "]";
                detail += "  expected  ";
                for (const auto& p : want)
                    detail += "[" + QString::fromStdString(p) + "]";
                QFAIL(qPrintable(QString::fromStdString(key + " pieces differ for " + name + ": ") +
                                 detail));
            }
            ++checked;
        }
        QVERIFY(checked > 250);
    }

  private slots:
    void cl100kIdsMatchJsTiktoken() { checkIds("cl100k_base"); }
    void o200kIdsMatchJsTiktoken() { checkIds("o200k_base"); }

    void kimiPiecesMatchNodeRegExp() { checkPieces("kimi", PatternKind::Kimi); }
    void cl100kPiecesMatchNodeRegExp() { checkPieces("cl100k_base", PatternKind::Cl100k); }
    void o200kPiecesMatchNodeRegExp() { checkPieces("o200k_base", PatternKind::O200k); }

    void patternsAreRecognised() {
        for (PatternKind kind : {PatternKind::Kimi, PatternKind::O200k, PatternKind::Cl100k,
                                 PatternKind::Cl100kPossessive}) {
            auto pre = PreTokenizer::fromPattern(PreTokenizer::patternText(kind));
            QVERIFY(pre.ok());
            QCOMPARE(pre->kind(), kind);
        }
        auto unknown = PreTokenizer::fromPattern(R"(\w+|\s+)");
        QVERIFY(!unknown.ok());
        QCOMPARE(unknown.error().code, ErrorCode::Unsupported);
        QVERIFY(PreTokenizer::fromName("kimi").ok());
        QVERIFY(!PreTokenizer::fromName("gpt2").ok());
    }

    // tiktoken >= 0.7 spells cl100k_base with \s++$, which keeps trailing whitespace whole.
    void possessiveCl100kKeepsTrailingWhitespace() {
        const PreTokenizer older(PatternKind::Cl100k);
        const PreTokenizer possessive(PatternKind::Cl100kPossessive);
        const std::string text = "word\n   ";
        QCOMPARE(older.pieces(text).size(), size_t{3});
        const auto p = possessive.pieces(text);
        QCOMPARE(p.size(), size_t{2});
        QCOMPARE(std::string(p[1]), std::string("\n   "));
        QCOMPARE(possessive.pieces("a  b\n\nc").size(), older.pieces("a  b\n\nc").size());
    }

    // The linear scan and the heap must merge identically, on every piece of every case.
    void bpeAlgorithmsAgree() {
        for (const std::string encoding : {"cl100k_base", "o200k_base"}) {
            const Tokenizer tok = referenceTokenizer(encoding);
            const inference::JsonValue expected = loadJson("expected_pieces.json");
            int pieces = 0;
            for (const auto& c : expected.find(encoding)->items()) {
                for (const auto& p : c.find("pieces")->items()) {
                    std::vector<int32_t> linear, heap;
                    bpeEncodePiece(tok.vocabulary(), p.string(), linear, BpeAlgorithm::Linear);
                    bpeEncodePiece(tok.vocabulary(), p.string(), heap, BpeAlgorithm::Heap);
                    QVERIFY2(linear == heap, p.string().c_str());
                    ++pieces;
                }
            }
            QVERIFY(pieces > 1000);
        }
    }

    // Cutting text into the smallest segments must not change its pieces, for every pattern,
    // with and without special tokens and Kimi's run rule.
    void segmentsSplitLikeTheWholeText() {
        const inference::JsonValue expected = loadJson("expected_pieces.json");
        SpecialTokens specials;
        QVERIFY(specials.add("<|endoftext|>", 100257).ok());
        QVERIFY(specials.add("a b", 100258).ok());  // a special token that spans a safe cut
        const ChunkLimits runs{0, 3};
        for (PatternKind kind : {PatternKind::Kimi, PatternKind::O200k, PatternKind::Cl100k,
                                 PatternKind::Cl100kPossessive}) {
            const PreTokenizer pre(kind);
            auto piecesOf = [&](std::string_view text, const SpecialTokens* sp, ChunkLimits limits,
                                size_t segmentBytes) {
                std::vector<std::string_view> segments;
                planSegments(text, sp, limits, segmentBytes, segments);
                std::vector<std::string_view> out;
                for (std::string_view segment : segments) {
                    std::vector<EncodeItem> items;
                    planItems(segment, sp, limits, items);
                    for (const auto& item : items) {
                        if (item.specialId >= 0) {
                            out.push_back(item.text);
                            continue;
                        }
                        for (auto p : pre.pieces(item.text))
                            out.push_back(p);
                    }
                }
                return out;
            };
            int cuts = 0;
            for (const auto& c : expected.find("kimi")->items()) {
                const std::string text = c.find("text")->string() + " a b<|endoftext|> x";
                const char* name = c.find("name")->string().c_str();
                for (const SpecialTokens* sp : {static_cast<const SpecialTokens*>(nullptr),
                                                static_cast<const SpecialTokens*>(&specials)}) {
                    for (ChunkLimits limits : {ChunkLimits{}, runs}) {
                        const auto whole = piecesOf(text, sp, limits, SIZE_MAX);
                        QVERIFY2(piecesOf(text, sp, limits, 1) == whole, name);
                    }
                }
                std::vector<std::string_view> segments;
                planSegments(text, nullptr, {}, 1, segments);
                cuts += static_cast<int>(segments.size()) - 1;
            }
            QVERIFY(cuts > 500);
        }
        // The special token "a b" keeps its safe cut ("a|| b") from being used.
        std::vector<std::string_view> segments;
        planSegments("xa bx", &specials, {}, 1, segments);
        QCOMPARE(segments.size(), size_t{1});
        segments.clear();
        planSegments("xa bx", nullptr, {}, 1, segments);
        QCOMPARE(segments.size(), size_t{2});
    }

    void parallelAndBatchEncodingEqualSerial() {
        const Tokenizer tok = referenceTokenizer("o200k_base");
        const inference::JsonValue expected = loadJson("expected_o200k_base.json");
        std::string big;
        std::vector<std::string> texts;
        for (const auto& c : expected.find("cases")->items())
            texts.push_back(c.find("text")->string());
        while (big.size() < 600 * 1024) {
            for (const auto& t : texts)
                big += t + "\n";
        }
        auto serial = tok.encode(big, {SpecialTokenPolicy::AsText, Utf8Policy::Replace, 1});
        auto parallel = tok.encode(big, {SpecialTokenPolicy::AsText, Utf8Policy::Replace, 4});
        QVERIFY(serial.ok() && parallel.ok());
        QVERIFY(*serial == *parallel);
        auto back = tok.decodeBytes(*serial);
        QVERIFY(back.ok());
        QVERIFY(*back == big);

        std::vector<std::string_view> views(texts.begin(), texts.end());
        views.push_back(big);
        auto batch = tok.encodeBatch(views, {SpecialTokenPolicy::AsText, Utf8Policy::Replace, 3});
        QVERIFY(batch.ok());
        QCOMPARE(batch->size(), views.size());
        for (size_t i = 0; i < views.size(); ++i) {
            auto one = tok.encode(views[i], {SpecialTokenPolicy::AsText});
            QVERIFY(one.ok());
            QVERIFY((*batch)[i] == *one);
        }
    }

    void specialTokensAreFoundLeftmost() {
        const Tokenizer tok = referenceTokenizer("cl100k_base");
        auto ids = tok.encode("<|endoftext|><|fim_prefix|>x<|endofprompt|>");
        QVERIFY(ids.ok());
        QCOMPARE(ids->front(), 100257);
        QCOMPARE((*ids)[1], 100258);
        QCOMPARE(ids->back(), 100276);
        auto pieces = tok.pieces("a<|endoftext|>b");
        QVERIFY(pieces.ok());
        QCOMPARE(pieces->size(), size_t{3});
        QCOMPARE((*pieces)[1], std::string("<|endoftext|>"));
        auto text = tok.decode(*ids);
        QVERIFY(text.ok());
        QCOMPARE(*text, std::string("<|endoftext|><|fim_prefix|>x<|endofprompt|>"));
    }

    void unknownIdsAreErrors() {
        const Tokenizer tok = referenceTokenizer("cl100k_base");
        const int32_t ids[] = {0, 99999999};
        auto text = tok.decode(ids);
        QVERIFY(!text.ok());
        QVERIFY(text.error().message.find("99999999") != std::string::npos);
        const int32_t negative[] = {-1};
        QVERIFY(!tok.decode(negative).ok());
    }
};

QTEST_APPLESS_MAIN(TokenizerReferenceTest)
#include "test_tokenizer_reference.moc"
