// SPDX-License-Identifier: GPL-3.0-or-later
// Faults across processes (session_fault_helper): a writer killed with SIGKILL at random points
// while saving snapshots leaves a consistent registry and no half file in use; a file size limit
// (what a full disk looks like to a writer) gives a clear warning and keeps the session; a second
// process opening the same data directory gets the lock error.
#include <signal.h>

#include <QProcess>
#include <QRandomGenerator>
#include <QtTest>

#include "session_test_support.h"
#include "storage/storage.h"

using namespace folio;
using namespace folio::session;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = fs::path(FOLIO_TEST_OUTPUT_DIR) / "session_faults";
const fs::path kModel = fs::path(FOLIO_TEST_OUTPUT_DIR) / "session-tiny-model";

QString s(const fs::path& p) {
    return QString::fromStdString(p.string());
}

}  // namespace

class SessionFaultsTest : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase() { QVERIFY(testing::ensureTinyModel(kModel).ok()); }

    void sigkillWhileSavingLeavesAConsistentStore() {
        const fs::path data = kRoot / "kill";
        fs::remove_all(data);
        int rounds = 0;
        for (int attempt = 0; attempt < 4; ++attempt) {
            QProcess writer;
            writer.start(FOLIO_SESSION_HELPER,
                         {"write-loop", s(data), s(kModel), s(kRoot / "kill-sources")});
            QVERIFY(writer.waitForStarted());
            // Let it get through opening and some snapshots, then kill it at a random moment.
            QVERIFY(writer.waitForReadyRead(60000));
            QTest::qWait(static_cast<int>(QRandomGenerator::global()->bounded(50, 700)));
            ::kill(static_cast<pid_t>(writer.processId()), SIGKILL);
            QVERIFY(writer.waitForFinished(10000));
            rounds += QString(writer.readAllStandardOutput()).count("round");
        }
        QVERIFY(rounds > 0);
        // Reopen: recovery removes temporaries and orphans; every registered chain verifies.
        auto storage = storage::Storage::open({data, int64_t{1} << 30});
        QVERIFY2(storage.ok(), storage.ok() ? "" : storage.error().message.c_str());
        storage::SnapshotStore& store = (*storage)->snapshots();
        auto rows = store.all();
        QVERIFY(rows.ok());
        QVERIFY(!rows->empty());
        for (const auto& entry : fs::directory_iterator(store.directory()))
            QVERIFY2(entry.path().filename().string().find(".tmp.") == std::string::npos,
                     entry.path().c_str());
        size_t files = 0;
        for ([[maybe_unused]] const auto& entry : fs::directory_iterator(store.directory()))
            ++files;
        QCOMPARE(files, rows->size());
        for (const auto& row : *rows) {
            auto chain = store.chain(row.prefixKey);
            QVERIFY(chain.ok());
            std::vector<fs::path> paths;
            for (const auto& link : *chain)
                paths.push_back(store.pathOf(link));
            auto state = storage::readSnapshotChain(paths, {row.modelId, row.tokenizerId});
            QVERIFY2(state.ok(), state.ok() ? "" : state.error().message.c_str());
        }
        // And the sessions the writer made are usable.
        storage->reset();
        auto service = SessionService::open(testing::serviceOptions(data, kModel));
        QVERIFY(service.ok());
        auto sessions = (*service)->listSessions();
        QVERIFY(sessions.ok() && !sessions->empty());
        AskOptions o;
        o.generation.maxTokens = 3;
        auto answer = (*service)->ask(sessions->back().id, "Who?", o);
        QVERIFY2(answer.ok(), answer.ok() ? "" : answer.error().message.c_str());
    }

    void fullDiskIsAClearWarningAndKeepsTheSession() {
        const fs::path data = kRoot / "full";
        fs::remove_all(data);
        QProcess helper;
        // 256 KiB: enough for the database, not for the snapshots of a 1,500-word source.
        helper.start(FOLIO_SESSION_HELPER,
                     {"fsize-ask", s(data), s(kModel), s(kRoot / "full-sources"), "262144"});
        QVERIFY(helper.waitForFinished(240000));
        const QString out = helper.readAllStandardOutput();
        QVERIFY2(helper.exitCode() == 0, qPrintable(out));
        QVERIFY2(out.contains("was not saved") && out.contains("file size limit"), qPrintable(out));
        // The session and its answer are kept; no half-written snapshot is registered.
        auto service = SessionService::open(testing::serviceOptions(data, kModel));
        QVERIFY(service.ok());
        auto sessions = (*service)->listSessions();
        QVERIFY(sessions.ok());
        QCOMPARE(sessions->size(), size_t(1));
        auto details = (*service)->details(sessions->front().id);
        QVERIFY(details.ok());
        QCOMPARE(details->sources.size(), size_t(1));
        QCOMPARE(details->messages.size(), size_t(2));
        auto store = (*service)->storage().snapshots().all();
        QVERIFY(store.ok());
        for (const auto& row : *store)
            QVERIFY(
                storage::readSnapshotHeader((*service)->storage().snapshots().pathOf(row)).ok());
    }

    void secondProcessGetsTheLockError() {
        const fs::path data = kRoot / "lock";
        fs::remove_all(data);
        auto mine = storage::Storage::open({data, int64_t{1} << 30});
        QVERIFY(mine.ok());
        QProcess other;
        other.start(FOLIO_SESSION_HELPER, {"open", s(data), s(kModel)});
        QVERIFY(other.waitForFinished(60000));
        const QString out = other.readAllStandardOutput();
        QCOMPARE(other.exitCode(), 3);
        QVERIFY2(out.contains("is in use by another Folio process (pid"), qPrintable(out));
        mine->reset();
        QProcess again;
        again.start(FOLIO_SESSION_HELPER, {"open", s(data), s(kModel)});
        QVERIFY(again.waitForFinished(60000));
        QCOMPARE(again.exitCode(), 0);
    }
};

QTEST_GUILESS_MAIN(SessionFaultsTest)
#include "test_session_faults.moc"
