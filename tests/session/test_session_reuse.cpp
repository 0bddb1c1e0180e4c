// SPDX-License-Identifier: GPL-3.0-or-later
// Prefix reuse on the tiny generated model: greedy answers after a restore (from memory, from
// disk, after a restart) are token for token the answers computed without any snapshot; a
// question prefills only itself; disabling or reordering a source reuses everything before it;
// a damaged snapshot is dropped and recomputed.
#include <QtTest>

#include <fstream>

#include "session_test_support.h"

using namespace folio;
using namespace folio::session;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = fs::path(FOLIO_TEST_OUTPUT_DIR) / "session_reuse";

fs::path fresh(const char* name) {
    fs::remove_all(kRoot / name);
    return kRoot / name;
}

AskOptions greedy() {
    AskOptions o;
    o.generation.maxTokens = 12;
    return o;
}

}  // namespace

class SessionReuseTest : public QObject {
    Q_OBJECT

    fs::path model_ = fs::path(FOLIO_TEST_OUTPUT_DIR) / "session-tiny-model";
    std::vector<fs::path> sources_;

    std::unique_ptr<SessionService> open(const fs::path& data, bool snapshots = true) {
        ServiceOptions o = testing::serviceOptions(data, model_);
        o.writeSnapshots = snapshots;
        if (!snapshots)
            o.memoryBudgetBytes = 0;
        auto s = SessionService::open(o);
        if (!s)
            qWarning("%s", s.error().message.c_str());
        return s ? std::move(s).value() : nullptr;
    }

    // A session with the given sources, in order.
    int64_t makeSession(SessionService& service, const std::vector<int>& which) {
        auto s = service.createSession("papers");
        if (!s)
            return -1;
        for (int i : which)
            if (!service.addSource(s->id, sources_[static_cast<size_t>(i)]))
                return -1;
        return s->id;
    }

    // The answer with no snapshot anywhere: a fresh data directory, nothing written or kept.
    std::vector<int32_t> baseline(const std::vector<int>& which, const std::string& question) {
        static int counter = 0;
        auto service = open(fresh(qPrintable(QString("baseline-%1").arg(counter++))), false);
        if (!service)
            return {};
        const int64_t id = makeSession(*service, which);
        auto answer = service->ask(id, question, greedy());
        if (!answer) {
            qWarning("%s", answer.error().message.c_str());
            return {};
        }
        if (answer->stats.reusedTokens != 0)
            qWarning("baseline reused tokens");
        return answer->answerTokens;
    }

  private slots:
    void initTestCase() {
        QVERIFY(testing::ensureTinyModel(model_).ok());
        for (int i = 0; i < 3; ++i) {
            auto p = testing::writeSource(kRoot / "sources", cat("doc", i, ".txt"), i + 1, 90);
            QVERIFY(p.ok());
            sources_.push_back(*p);
        }
    }

    void answersAfterRestoreEqualAnswersWithout() {
        const std::string question = "Which party may terminate the agreement?";
        const std::vector<int32_t> expected = baseline({0, 1, 2}, question);
        QVERIFY(!expected.empty());

        const fs::path data = fresh("restore");
        int64_t sessionId = 0;
        {
            auto service = open(data);
            QVERIFY(service);
            sessionId = makeSession(*service, {0, 1, 2});
            // First question: everything prefilled, a snapshot written at every boundary.
            auto first = service->ask(sessionId, question, greedy());
            QVERIFY2(first.ok(), first.ok() ? "" : first.error().message.c_str());
            QCOMPARE(first->answerTokens, expected);
            QCOMPARE(first->stats.reusedTokens, int64_t(0));
            QCOMPARE(first->reusedFrom, std::string("none"));
            QCOMPARE(service->storage().snapshots().all().value().size(), size_t(4));

            // Second question: from memory, only the question is prefilled.
            auto second = service->ask(sessionId, question, greedy());
            QVERIFY(second.ok());
            QCOMPARE(second->reusedFrom, std::string("memory"));
            QCOMPARE(second->answerTokens, expected);
            const int64_t sourceTokens = second->stats.reusedTokens;
            QCOMPARE(second->stats.prefilledTokens, second->stats.promptTokens - sourceTokens);
            QVERIFY(second->stats.prefilledTokens < 40);

            // Third: memory dropped, restored from disk.
            service->dropResident();
            auto third = service->ask(sessionId, question, greedy());
            QVERIFY(third.ok());
            QCOMPARE(third->reusedFrom, std::string("disk"));
            QCOMPARE(third->stats.reusedTokens, sourceTokens);
            QCOMPARE(third->answerTokens, expected);
        }
        // After a restart: from disk.
        auto service = open(data);
        QVERIFY(service);
        auto after = service->ask(sessionId, question, greedy());
        QVERIFY(after.ok());
        QCOMPARE(after->reusedFrom, std::string("disk"));
        QCOMPARE(after->answerTokens, expected);
        auto details = service->details(sessionId);
        QVERIFY(details.ok());
        QCOMPARE(details->messages.size(), size_t(8));
        QCOMPARE(details->messages.back().stats.reusedTokens, after->stats.reusedTokens);
    }

    void disablingOrReorderingReusesThePrefixBeforeIt() {
        const std::string question = "What is the price?";
        auto service = open(fresh("reorder"));
        QVERIFY(service);
        const int64_t id = makeSession(*service, {0, 1, 2});
        auto full = service->ask(id, question, greedy());
        QVERIFY(full.ok());
        auto d = service->details(id);
        QVERIFY(d.ok());
        const auto& rows = d->sources;

        // Disable the last source: the state after the first two is reused whole.
        QVERIFY(service->setSourceEnabled(rows[2].id, false).ok());
        auto disabled = service->ask(id, question, greedy());
        QVERIFY(disabled.ok());
        QCOMPARE(disabled->reusedFrom, std::string("memory"));
        QCOMPARE(disabled->stats.prefilledTokens,
                 disabled->stats.promptTokens - disabled->stats.reusedTokens);
        QVERIFY(disabled->stats.prefilledTokens < 40);  // the question only
        QCOMPARE(disabled->answerTokens, baseline({0, 1}, question));

        // Re-enable and move the first source to the end: only the prefix is reused, then the
        // new order is prefilled; its answer equals the one computed without snapshots.
        QVERIFY(service->setSourceEnabled(rows[2].id, true).ok());
        QVERIFY(service->moveSource(rows[0].id, 2).ok());
        service->dropResident();
        auto moved = service->ask(id, question, greedy());
        QVERIFY(moved.ok());
        QVERIFY(moved->stats.reusedTokens > 0);
        QVERIFY(moved->stats.reusedTokens < disabled->stats.reusedTokens);
        QCOMPARE(moved->reusedFrom, std::string("disk"));
        QCOMPARE(moved->answerTokens, baseline({1, 2, 0}, question));
    }

    void damagedSnapshotIsDroppedAndRecomputed() {
        const std::string question = "Who delivers the goods?";
        const std::vector<int32_t> expected = baseline({0, 1}, question);
        auto service = open(fresh("damage"));
        QVERIFY(service);
        const int64_t id = makeSession(*service, {0, 1});
        QVERIFY(service->ask(id, question, greedy()).ok());
        service->dropResident();
        // Flip a byte in the middle of the last link's data.
        auto all = service->storage().snapshots().all();
        QVERIFY(all.ok());
        auto last = std::max_element(all->begin(), all->end(), [](const auto& a, const auto& b) {
            return a.tokenEnd < b.tokenEnd;
        });
        const fs::path file = service->storage().snapshots().pathOf(*last);
        {
            std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(static_cast<std::streamoff>(fs::file_size(file) - 100));
            char c = 0;
            f.read(&c, 1);
            c = static_cast<char>(c ^ 0x01);
            f.seekp(static_cast<std::streamoff>(fs::file_size(file) - 100));
            f.write(&c, 1);
        }
        auto answer = service->ask(id, question, greedy());
        QVERIFY(answer.ok());
        QCOMPARE(answer->answerTokens, expected);
        QVERIFY(!answer->warnings.empty());
        QVERIFY2(answer->warnings.front().find("checksum") != std::string::npos,
                 answer->warnings.front().c_str());
        QCOMPARE(answer->reusedFrom, std::string("disk"));  // the parent was still good
        // Recomputed and stored again, and now it verifies.
        service->dropResident();
        auto again = service->ask(id, question, greedy());
        QVERIFY(again.ok());
        QVERIFY(again->warnings.empty());
        QCOMPARE(again->answerTokens, expected);
        QCOMPARE(again->reusedFrom, std::string("disk"));
        QVERIFY(again->stats.prefilledTokens < 40);  // the question only
    }

    void exportAndCancel() {
        auto service = open(fresh("export"));
        QVERIFY(service);
        const int64_t id = makeSession(*service, {0});
        std::atomic<bool> cancel{true};
        RunControl control;
        control.cancel = &cancel;
        auto cancelled = service->ask(id, "anything", greedy(), control);
        QVERIFY(!cancelled.ok());
        QCOMPARE(cancelled.error().code, ErrorCode::Cancelled);
        std::vector<Progress> seen;
        control.cancel = nullptr;
        control.onProgress = [&](const Progress& p) { seen.push_back(p); };
        std::string streamed;
        control.onText = [&](std::string_view t) { streamed += t; };
        auto answer = service->ask(id, "What is the period?", greedy(), control);
        QVERIFY(answer.ok());
        QCOMPARE(streamed, answer->answer);
        QVERIFY(!seen.empty());
        auto md = service->exportSession(id, "markdown");
        QVERIFY(md.ok());
        QVERIFY(md->find("What is the period?") != std::string::npos);
        auto json = service->exportSession(id, "json");
        QVERIFY(json.ok());
        QVERIFY(json->find("\"reused_tokens\"") != std::string::npos);
        QVERIFY(!service->exportSession(id, "pdf").ok());
    }
};

QTEST_GUILESS_MAIN(SessionReuseTest)
#include "test_session_reuse.moc"
