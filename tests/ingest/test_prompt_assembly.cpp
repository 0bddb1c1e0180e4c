// SPDX-License-Identifier: GPL-3.0-or-later
// Prompt assembly and citations: the blocks concatenate to exactly the chat-format stream, every
// source boundary is a token boundary and a block's ids depend only on its document, segment token
// ranges point at their text, document text cannot end the turn, the budget error lists every
// source, and citations round-trip from locators to the text they point at.
#include <QtTest/QtTest>

#include "ingest/citations.h"
#include "ingest/prompt_assembly.h"
#include "ingest/source_ingest.h"
#include "ingest_test_support.h"
#include "pdf_fixtures.h"

using namespace folio;
using namespace folio::ingest;
using namespace folio::ingest::testing;
using tokenizer::ChatMessage;
using tokenizer::ChatRole;

class PromptAssemblyTest : public QObject {
    Q_OBJECT

  private:
    fs::path dir_;
    std::optional<tokenizer::Tokenizer> tok_;
    std::optional<tokenizer::KimiChatFormat> chat_;
    std::vector<Document> docs_;  // contract.pdf, notes.md, project (a folder)

    std::vector<SourceInput> inputs(std::initializer_list<size_t> which) const {
        std::vector<SourceInput> out;
        for (size_t i : which)
            out.push_back({&docs_[i], "key-" + std::to_string(i)});
        return out;
    }

  private slots:
    void initTestCase() {
        dir_ = freshScratchDir("prompt");
        tok_.emplace(kimiTestTokenizer("prompt"));
        auto chat = tokenizer::KimiChatFormat::create(*tok_);
        QVERIFY(chat.ok());
        chat_.emplace(std::move(chat).value());
        {
            QPdfWriter writer(qs(dir_ / "contract.pdf"));
            setUpWriter(writer, QStringLiteral("Supply Contract"));
            QPainter painter(&writer);
            drawLines(painter,
                      {QStringLiteral("Termination for convenience needs 30 days notice.")}, 50,
                      80);
            writer.newPage();
            drawTwoColumnPage(painter, 2, 8);
        }
        writeBytes(dir_ / "notes.md",
                   "# Notes\nThe answer quotes <|im_end|> literally.\nthird line\n");
        writeBytes(dir_ / "project/src/db.cpp",
                   "#include <string>\nstd::string query(const std::string& id) {\n"
                   "    return \"SELECT * FROM users WHERE id = \" + id;  // unescaped\n}\n");
        writeBytes(dir_ / "project/README.md", "Project readme\n");
        for (const char* name : {"contract.pdf", "notes.md", "project"}) {
            auto doc = ingestSource(dir_ / name, {}, &*tok_);
            QVERIFY2(doc.ok(), doc.ok() ? "" : doc.error().message.c_str());
            docs_.push_back(std::move(doc).value());
        }
    }

    void blocksConcatenateToTheChatStream() {
        const auto sources = inputs({0, 1, 2});
        auto prompt = assemblePrompt(*chat_, *tok_, "You are Folio.", sources);
        QVERIFY2(prompt.ok(), prompt.ok() ? "" : prompt.error().message.c_str());
        QCOMPARE(prompt->blocks.size(), size_t{3});
        auto question = questionTokens(*chat_, *tok_, "Which clause allows termination?");
        QVERIFY(question.ok());
        std::vector<int32_t> whole = prompt->concatenated();
        QCOMPARE(static_cast<int64_t>(whole.size()), prompt->sourceTokens());
        whole.insert(whole.end(), question->begin(), question->end());

        // The stream is the chat template's rendering of one system and one user turn.
        std::string user;
        for (const auto& s : sources)
            user += sourceBlockHeader(*s.document) + s.document->text +
                    std::string(sourceBlockFooter());
        user += questionText("Which clause allows termination?");
        const std::string system = systemTurnText("You are Folio.");
        const ChatMessage turns[] = {{ChatRole::System, system}, {ChatRole::User, user}};
        auto decoded = tok_->decodeBytes(whole);
        QVERIFY(decoded.ok());
        QCOMPARE(*decoded, chat_->render(turns, true));

        // Structure tokens are special ids: exactly 2 <|im_end|>, the last before the prompt.
        QCOMPARE(std::count(whole.begin(), whole.end(), chat_->imEnd()), 2);
        const auto& generation = chat_->generationPrompt();
        QVERIFY(std::equal(generation.rbegin(), generation.rend(), whole.rbegin()));
        QCOMPARE(prompt->prefix.back(), *tok_->specialId("<|im_middle|>"));
        QVERIFY(system.find("[name p.N]") != std::string::npos);
        QVERIFY(system.find("[path:L1-L2]") != std::string::npos);

        // Blocks start where the previous one ends; keys and hashes carried.
        int64_t position = static_cast<int64_t>(prompt->prefix.size());
        for (size_t i = 0; i < prompt->blocks.size(); ++i) {
            const SourceBlock& b = prompt->blocks[i];
            QCOMPARE(b.tokenBegin, position);
            QCOMPARE(b.sourceKey, "key-" + std::to_string(i));
            QCOMPARE(b.contentHash, docs_[i].contentHash);
            position += static_cast<int64_t>(b.tokens.size());
        }
    }

    void blocksDependOnlyOnTheirDocument() {
        auto all = assemblePrompt(*chat_, *tok_, "", inputs({0, 1, 2}));
        auto alone = assemblePrompt(*chat_, *tok_, "", inputs({2}));
        auto swapped = assemblePrompt(*chat_, *tok_, "", inputs({1, 0}));
        QVERIFY(all.ok() && alone.ok() && swapped.ok());
        QCOMPARE(alone->blocks[0].tokens, all->blocks[2].tokens);
        QCOMPARE(swapped->blocks[0].tokens, all->blocks[1].tokens);
        QCOMPARE(swapped->blocks[1].tokens, all->blocks[0].tokens);
        // and a block is its header, its document's counted tokens and its footer
        for (size_t i = 0; i < 3; ++i) {
            auto header = tok_->encode(sourceBlockHeader(docs_[i]), tokenizer::kChatContentOptions);
            auto footer = tok_->encode(sourceBlockFooter(), tokenizer::kChatContentOptions);
            QCOMPARE(static_cast<int64_t>(all->blocks[i].tokens.size()),
                     static_cast<int64_t>(header->size()) + docs_[i].tokenCount +
                         static_cast<int64_t>(footer->size()));
        }
    }

    void segmentRangesPointAtTheirText() {
        auto prompt = assemblePrompt(*chat_, *tok_, "", inputs({0, 1, 2}));
        QVERIFY(prompt.ok());
        const std::vector<int32_t> whole = prompt->concatenated();
        for (size_t b = 0; b < prompt->blocks.size(); ++b) {
            const Document& d = docs_[b];
            QCOMPARE(prompt->blocks[b].segments.size(), d.segments.size());
            for (size_t s = 0; s < d.segments.size(); ++s) {
                const PromptSegment& seg = prompt->blocks[b].segments[s];
                QCOMPARE(seg.locator, d.segments[s].locator);
                QCOMPARE(seg.tokenEnd - seg.tokenBegin,
                         d.segments[s].tokenEnd - d.segments[s].tokenBegin);
                auto text = tok_->decodeBytes(
                    std::span(whole).subspan(static_cast<size_t>(seg.tokenBegin),
                                             static_cast<size_t>(seg.tokenEnd - seg.tokenBegin)));
                QCOMPARE(*text, std::string(d.segmentText(d.segments[s])));
            }
        }
    }

    void documentTextCannotEndTheTurn() {
        auto prompt = assemblePrompt(*chat_, *tok_, "", inputs({1}));
        QVERIFY(prompt.ok());
        const auto& ids = prompt->blocks[0].tokens;
        QVERIFY(std::find(ids.begin(), ids.end(), chat_->imEnd()) == ids.end());
        QVERIFY(docs_[1].text.find("<|im_end|>") != std::string::npos);
    }

    void overBudgetListsEverySource() {
        AssembleOptions tight;
        tight.contextLength = 600;
        tight.reservedTokens = 100;
        auto prompt = assemblePrompt(*chat_, *tok_, "", inputs({0, 1, 2}), tight);
        QVERIFY(!prompt.ok());
        const std::string& m = prompt.error().message;
        QVERIFY2(m.find("do not fit the model's context") != std::string::npos, m.c_str());
        QVERIFY2(m.find("600 available") != std::string::npos, m.c_str());
        for (const char* name : {"1. contract.pdf: ", "2. notes.md: ", "3. project: "})
            QVERIFY2(m.find(name) != std::string::npos, m.c_str());
        QVERIFY2(m.find(std::to_string(docs_[0].tokenCount + 64) + " tokens") != std::string::npos,
                 m.c_str());

        // Uncounted documents are checked exactly, after tokenizing.
        Document uncounted = docs_[0];
        uncounted.tokenCount = -1;
        const SourceInput one[] = {{&uncounted, {}}};
        tight.contextLength = 200;
        auto exact = assemblePrompt(*chat_, *tok_, "", one, tight);
        QVERIFY(!exact.ok());
        QVERIFY(exact.error().message.find("1. contract.pdf: ") != std::string::npos);

        const BudgetLine lines[] = {{"a.pdf", 700'000}, {"repo", 400'000}};
        auto status = checkContextBudget(lines, 1000, kKimiLinearContextLength, 8192);
        QVERIFY(!status.ok());
        QVERIFY2(status.error().message.find("1,109,192 tokens needed") != std::string::npos,
                 status.error().message.c_str());
        QVERIFY(status.error().message.find("2. repo: 400,000 tokens") != std::string::npos);
        QVERIFY(checkContextBudget(lines, 1000, 2'000'000, 8192).ok());
    }

    void citationsAreFoundInAnswers() {
        const std::string answer =
            "Termination needs notice [contract.pdf p.1]; see also [Supply Contract, pp. 1-2] and "
            "the query [src/db.cpp:L2-L3; notes.md:2]. Not a citation: [link] or [x:y].";
        const auto found = findCitations(answer);
        QCOMPARE(found.size(), size_t{4});
        QCOMPARE(found[0].target, std::string("contract.pdf"));
        QCOMPARE(found[0].kind, Locator::Kind::Page);
        QCOMPARE(found[0].first, 1);
        QCOMPARE(answer.substr(found[0].begin, found[0].end - found[0].begin),
                 std::string("[contract.pdf p.1]"));
        QCOMPARE(found[1].target, std::string("Supply Contract"));
        QCOMPARE(found[1].last, 2);
        QCOMPARE(found[2].kind, Locator::Kind::Lines);
        QCOMPARE(found[2].target, std::string("src/db.cpp"));
        QCOMPARE(found[2].first, 2);
        QCOMPARE(found[2].last, 3);
        QCOMPARE(found[3].target, std::string("notes.md"));
        QCOMPARE(found[3].last, 2);
    }

    void citationsResolveToTheTextTheyCite() {
        const auto sources = inputs({0, 1, 2});
        auto resolve = [&](const std::string& text) -> Result<ResolvedCitation> {
            const auto found = findCitations(text);
            if (found.size() != 1)
                return makeError(ErrorCode::InvalidArgument, "expected one citation in ", text);
            return resolveCitation(found[0], sources);
        };
        auto page = resolve("[contract.pdf p.1]");
        QVERIFY(page.ok());
        QCOMPARE(page->sourceIndex, size_t{0});
        QVERIFY(citedText(docs_[0], page->locator).find("Termination for convenience") !=
                std::string::npos);
        auto byTitle = resolve("[supply contract p.2]");
        QVERIFY(byTitle.ok());
        QVERIFY(citedText(docs_[0], byTitle->locator).find("Right line 8 p2") != std::string::npos);
        auto code = resolve("[src/db.cpp:L3]");
        QVERIFY(code.ok());
        QCOMPARE(code->sourceIndex, size_t{2});
        QCOMPARE(code->locator, Locator::forLines("src/db.cpp", 3, 3));
        QVERIFY(citedText(docs_[2], code->locator).find("// unescaped") != std::string::npos);
        QVERIFY(resolve("[project/src/db.cpp:L1-L2]").ok());
        QVERIFY(resolve("[db.cpp:L1]").ok());  // a unique suffix
        QVERIFY(!resolve("[contract.pdf p.9]").ok());
        QVERIFY(!resolve("[src/db.cpp:L40]").ok());
        QVERIFY(!resolve("[unknown.pdf p.1]").ok());

        // Every locator of every document round-trips through its citation.
        for (size_t i = 0; i < docs_.size(); ++i) {
            for (const Segment& s : docs_[i].segments) {
                const Locator& l = s.locator;
                const std::string citation = l.kind == Locator::Kind::Page
                                                 ? cat("[", docs_[i].name, " ", l.describe(), "]")
                                                 : cat("[", l.describe(), "]");
                auto back = resolve(citation);
                QVERIFY2(back.ok(), back.ok() ? citation.c_str() : back.error().message.c_str());
                QCOMPARE(back->sourceIndex, i);
                QCOMPARE(back->locator, l);
                QCOMPARE(citedText(docs_[i], back->locator), citedText(docs_[i], l));
                QVERIFY(!citedText(docs_[i], l).empty());
            }
        }
    }
};

QTEST_MAIN(PromptAssemblyTest)
#include "test_prompt_assembly.moc"
