// SPDX-License-Identifier: GPL-3.0-or-later
// Kimi's chat format and special tokens, on a test folder in Kimi's layout: tiktoken.model holds
// cl100k_base's committed rank subset at 163,584 dense ranks and tokenizer_config.json Kimi's
// special names. The real vocabulary is absent, so the text between special tokens is checked
// against js-tiktoken's cl100k_base ids for the same strings (their pieces are the same under both
// patterns), and the structure against the example: special ids 163587.. in place, no BOS,
// the generation prompt, the stop ids.
#include <QProcess>
#include <QtTest/QtTest>

#include <tuple>

#include "inference/tokenizer/chat_format.h"
#include "inference/tokenizer/kimi_tokenizer_files.h"
#include "tokenizer_test_data.h"

using namespace folio;
using namespace folio::tokenizer;
using namespace folio::tokenizer::testing;

namespace {

constexpr int32_t kBos = 163584, kEos = 163585, kImEnd = 163586, kImUser = 163587,
                  kImAssistant = 163588, kImSystem = 163594, kImMiddle = 163601;

std::vector<int32_t> cl100kIds(const std::string& caseName) {
    static const inference::JsonValue expected = loadJson("expected_cl100k_base.json");
    for (const auto& c : expected.find("cases")->items()) {
        if (c.find("name")->string() == caseName)
            return idsOf(*c.find("ids"));
    }
    qFatal("no case %s", caseName.c_str());
}

std::vector<int32_t> join(std::initializer_list<std::vector<int32_t>> parts) {
    std::vector<int32_t> out;
    for (const auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

}  // namespace

class TokenizerChatTest : public QObject {
    Q_OBJECT

  private:
    std::filesystem::path dir_;
    std::optional<Tokenizer> tok_;
    std::optional<KimiChatFormat> chat_;

#ifdef FOLIO_ENGINE_BINARY
    // Runs folio-engine with `args`; returns its exit code and standard output.
    static std::pair<int, std::string> engine(const QStringList& args) {
        QProcess p;
        p.start(QStringLiteral(FOLIO_ENGINE_BINARY), args);
        if (!p.waitForFinished(120000))
            return {-1, {}};
        const QByteArray out = p.readAllStandardOutput();
        return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, out.toStdString()};
    }
#endif

  private slots:
    void initTestCase() {
        dir_ = makeKimiLayoutFolder("chat");
        auto tok = loadKimiTokenizer(dir_);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.error().message.c_str());
        tok_.emplace(std::move(tok).value());
        auto chat = KimiChatFormat::create(*tok_);
        QVERIFY(chat.ok());
        chat_.emplace(std::move(chat).value());
    }

    // The example, with the test vocabulary's ids for the text parts.
    void singleUserTurnWithGenerationPrompt() {
        const ChatMessage turn[] = {{ChatRole::User, "Tell me about the french revolution."}};
        auto ids = chat_->encode(turn, true);
        QVERIFY(ids.ok());
        const std::vector<int32_t> want = join({{kImUser},
                                                cl100kIds("user"),
                                                {kImMiddle},
                                                cl100kIds("chat_question"),
                                                {kImEnd, kImAssistant},
                                                cl100kIds("assistant"),
                                                {kImMiddle}});
        QCOMPARE(*ids, want);
        // Same shape as the real ids [163587, 2482, 163601, 69211, ..., 13, 163586, 163588, 69702,
        // 163601]: one token each for "user" and "assistant", 7 for the sentence.
        QCOMPARE(ids->size(), size_t{14});
        QCOMPARE(ids->front(), kImUser);
        QVERIFY(std::find(ids->begin(), ids->end(), kBos) == ids->end());
        auto text = tok_->decode(*ids);
        QVERIFY(text.ok());
        QCOMPARE(*text, std::string("<|im_user|>user<|im_middle|>Tell me about the french "
                                    "revolution.<|im_end|><|im_assistant|>assistant<|im_middle|>"));
        QCOMPARE(chat_->render(turn, true), *text);
        // Encoding the rendered text with special tokens recognised gives the same ids.
        auto again = tok_->encode(*text);
        QVERIFY(again.ok());
        QCOMPARE(*again, *ids);
    }

    void systemUserAssistantTurns() {
        const ChatMessage turns[] = {{ChatRole::System, "system"},
                                     {ChatRole::User, "user"},
                                     {ChatRole::Assistant, "assistant"}};
        auto ids = chat_->encode(turns, false);
        QVERIFY(ids.ok());
        const auto sys = cl100kIds("system");
        const auto user = cl100kIds("user");
        const auto asst = cl100kIds("assistant");
        const std::vector<int32_t> want = join({{kImSystem},
                                                sys,
                                                {kImMiddle},
                                                sys,
                                                {kImEnd},
                                                {kImUser},
                                                user,
                                                {kImMiddle},
                                                user,
                                                {kImEnd},
                                                {kImAssistant},
                                                asst,
                                                {kImMiddle},
                                                asst,
                                                {kImEnd}});
        QCOMPARE(*ids, want);
        // No generation prompt: the last id closes the assistant turn.
        QCOMPARE(ids->back(), kImEnd);
    }

    void generationPromptAndStopIds() {
        QCOMPARE(chat_->generationPrompt(),
                 join({{kImAssistant}, cl100kIds("assistant"), {kImMiddle}}));
        QCOMPARE(chat_->stopIds(), (std::vector<int32_t>{kImEnd, kEos}));
        QVERIFY(chat_->isStop(kImEnd));
        QVERIFY(chat_->isStop(kEos));
        QVERIFY(!chat_->isStop(kImMiddle));
        QVERIFY(!chat_->isStop(kBos));
        auto empty = chat_->encode({}, true);
        QVERIFY(empty.ok());
        QCOMPARE(*empty, chat_->generationPrompt());
    }

    void emptyContentKeepsTheStructure() {
        const ChatMessage turn[] = {{ChatRole::User, ""}};
        auto ids = chat_->encode(turn, false);
        QVERIFY(ids.ok());
        QCOMPARE(*ids, join({{kImUser}, cl100kIds("user"), {kImMiddle, kImEnd}}));
    }

    // Content that quotes special tokens stays text by default; on request it is recognised.
    void specialTokenTextInContent() {
        const ChatMessage turn[] = {{ChatRole::User, "a<|im_end|>b"}};
        auto asText = chat_->encode(turn, false);
        QVERIFY(asText.ok());
        QCOMPARE(std::count(asText->begin(), asText->end(), kImEnd), 1);
        auto recognised =
            chat_->encode(turn, false, {SpecialTokenPolicy::Recognize, Utf8Policy::Replace, 1});
        QVERIFY(recognised.ok());
        QCOMPARE(std::count(recognised->begin(), recognised->end(), kImEnd), 2);
    }

    void specialTokensInPlainText() {
        auto ids = tok_->encode("[BOS]x<|reserved_token_163589|>[PAD]<|im_middle|>");
        QVERIFY(ids.ok());
        QCOMPARE(ids->front(), kBos);
        QCOMPARE((*ids)[ids->size() - 3], 163589);
        QCOMPARE((*ids)[ids->size() - 2], 163839);
        QCOMPARE(ids->back(), kImMiddle);
        auto asText = tok_->encode("[BOS]", {SpecialTokenPolicy::AsText});
        QVERIFY(asText.ok());
        QVERIFY(asText->size() > 1);
        QVERIFY(std::find(asText->begin(), asText->end(), kBos) == asText->end());
    }

    // Kimi's encode() cuts text into 400,000-code-point slices before looking for special tokens,
    // so one that straddles a cut stays text.
    void specialTokensAcrossKimiSlices() {
        std::string prefix;
        for (int i = 0; i < 133330; ++i)
            prefix += "ab ";  // 399,990 code points: <|im_end|> fills 399,990..399,999
        auto inside = tok_->encode(prefix + "<|im_end|>");
        QVERIFY(inside.ok());
        QCOMPARE(std::count(inside->begin(), inside->end(), kImEnd), 1);
        auto straddling = tok_->encode(prefix + "cd<|im_end|>");  // 399,992..400,001
        QVERIFY(straddling.ok());
        QCOMPARE(std::count(straddling->begin(), straddling->end(), kImEnd), 0);
        auto parallel = tok_->encode(prefix + "cd<|im_end|>",
                                     {SpecialTokenPolicy::Recognize, Utf8Policy::Replace, 4});
        QVERIFY(parallel.ok());
        QCOMPARE(*parallel, *straddling);
    }

    void chatPieces() {
        const ChatMessage turn[] = {{ChatRole::User, "Tell me about the french revolution."}};
        auto pieces = chat_->pieces(turn, true);
        QVERIFY(pieces.ok());
        const std::vector<std::string> want = {"<|im_user|>", "user",         "<|im_middle|>",
                                               "Tell",        " me",          " about",
                                               " the",        " french",      " revolution",
                                               ".",           "<|im_end|>",   "<|im_assistant|>",
                                               "assistant",   "<|im_middle|>"};
        QCOMPARE(*pieces, want);
    }

    // folio-engine tokenize prints the same ids and pieces, as one JSON array.
    void tokenizeCommand() {
#ifndef FOLIO_ENGINE_BINARY
        QSKIP("folio-engine is not built");
#else
        const QString dir = QString::fromStdString(dir_.string());
        const std::string question = "Tell me about the french revolution.";
        auto [code, out] = engine(
            {"tokenize", "--tokenizer", dir, "--text", QString::fromStdString(question), "--chat"});
        QCOMPARE(code, 0);
        auto json = inference::parseJson(out);
        QVERIFY(json.ok());
        const ChatMessage turn[] = {{ChatRole::User, question}};
        QCOMPARE(idsOf(*json), *chat_->encode(turn, true));

        const std::string text = "Say \"hi\"\n\tto <|im_end|> 中文 \x01 back\\slash";
        std::tie(code, out) = engine(
            {"tokenize", "--tokenizer", dir, "--text", QString::fromStdString(text), "--pieces"});
        QCOMPARE(code, 0);
        json = inference::parseJson(out);
        QVERIFY2(json.ok(), out.c_str());
        std::vector<std::string> pieces;
        for (const auto& p : json->items())
            pieces.push_back(p.string());
        QCOMPARE(pieces, *tok_->pieces(text));
        QVERIFY(std::find(pieces.begin(), pieces.end(), "<|im_end|>") != pieces.end());

        const auto file = outputDir("chat") / "input.txt";
        writeFile(file, text);
        std::tie(code, out) = engine(
            {"tokenize", "--tokenizer", dir, "--text-file", QString::fromStdString(file.string())});
        QCOMPARE(code, 0);
        json = inference::parseJson(out);
        QVERIFY(json.ok());
        QCOMPARE(idsOf(*json), *tok_->encode(text));

        QCOMPARE(engine({"tokenize", "--text", "x"}).first, 2);
        QCOMPARE(engine({"tokenize", "--tokenizer", dir}).first, 2);
        QCOMPARE(engine({"tokenize", "--tokenizer", dir + "/missing", "--text", "x"}).first, 1);
#endif
    }

    void chatNeedsItsSpecialTokens() {
        auto bare = makeKimiTokenizer(kimiLayoutTiktokenModel(), "m",
                                      kimiTokenizerConfig({{163584, "[BOS]"}}), "c");
        QVERIFY(bare.ok());
        auto chat = KimiChatFormat::create(*bare);
        QVERIFY(!chat.ok());
        QVERIFY(chat.error().message.find("<|im_system|>") != std::string::npos);
    }
};

QTEST_APPLESS_MAIN(TokenizerChatTest)
#include "test_tokenizer_chat.moc"
