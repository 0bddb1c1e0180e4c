// SPDX-License-Identifier: GPL-3.0-or-later
// Asking in the real main window on the tiny model: Ctrl+Enter asks, the answer streams into the
// chat pane while it is generated, its statistics follow, and it is stored; Cancel stops a
// prefill of a large source, the app stays usable and nothing half-done is stored.
#include <QFile>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTextBrowser>
#include <QtTest>

#include <algorithm>

#include "ui/chat_pane.h"
#include "ui/main_window.h"
#include "ui/message_banner.h"
#include "ui/run_progress_bar.h"
#include "ui/session_list_pane.h"
#include "ui/sources_pane.h"
#include "ui_test_support.h"

using namespace folio::ui;
using namespace folio::ui::testing;
namespace fs = std::filesystem;

namespace {

// Waits for the window's session to show `sources` sources.
bool waitForSources(MainWindow& w, int sources) {
    QElapsedTimer timer;
    timer.start();
    while (w.sources()->sourceCount() != sources || w.client()->isBusy()) {
        if (timer.elapsed() > kTimeoutMs)
            return false;
        QTest::qWait(20);
    }
    return true;
}

}  // namespace

class UiAskTest : public QObject {
    Q_OBJECT
    fs::path root_ = suiteRoot("ui_ask");
    fs::path model_ = root_ / "tiny-model";

  private slots:
    void initTestCase() {
        isolateSettings("ui_ask");
        QVERIFY(ensureTinyModel(model_).ok());
    }

    void answerStreamsIntoTheChat() {
        const fs::path data = freshDir(root_ / "data-stream");
        const QString source = writeTextFile(root_ / "files" / "terms.txt", sourceText(5, 200));
        MainWindow w(tinyOptions(data, model_));
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
        w.sources()->addPaths({source});
        QVERIFY(waitForSources(w, 1));

        // Every rendering of the transcript while the answer is being generated.
        QStringList whileStreaming;
        connect(w.chat(), &ChatPane::transcriptRendered, this, [&] {
            if (w.chat()->isAnswering())
                whileStreaming << w.chat()->transcriptText();
        });
        QSignalSpy chunks(w.client(), &SessionClient::answerText);
        QSignalSpy finished(w.client(), &SessionClient::answerFinished);

        const QString question = QStringLiteral("Which party shall terminate the agreement?");
        w.chat()->questionEdit()->setPlainText(question);
        w.chat()->questionEdit()->setFocus();
        QTest::keyClick(w.chat()->questionEdit(), Qt::Key_Return, Qt::ControlModifier);
        QTRY_VERIFY_WITH_TIMEOUT(w.chat()->isAnswering(), kTimeoutMs);
        QVERIFY(w.chat()->stopButton()->isEnabled());
        QVERIFY(!w.chat()->askButton()->isEnabled());
        QVERIFY(finished.wait(kTimeoutMs));
        const AnswerOutcome outcome = finished.front().front().value<AnswerOutcome>();
        QVERIFY2(outcome.error.isEmpty(), qPrintable(outcome.error));
        QVERIFY(!outcome.cancelled);
        QVERIFY(!outcome.answer.isEmpty());

        // The text arrived in pieces and the pane showed it growing while it was generated.
        QVERIFY2(chunks.size() >= 2, qPrintable(QString::number(chunks.size())));
        QString streamed;
        for (const auto& args : chunks)
            streamed += args.front().toString();
        QCOMPARE(streamed, outcome.answer);
        QVERIFY(!whileStreaming.isEmpty());
        QVERIFY(whileStreaming.front().contains(question));
        QVERIFY(whileStreaming.back().size() >= whileStreaming.front().size());
        QVERIFY2(std::any_of(whileStreaming.begin(), whileStreaming.end(),
                             [&](const QString& shown) { return shown != whileStreaming.front(); }),
                 "no text was shown before the answer was complete");

        // Statistics of the answer under it and in the stats line.
        QVERIFY(!w.chat()->isAnswering());
        QVERIFY(w.chat()->askButton()->isEnabled());
        QVERIFY(outcome.stats.prefilledTokens > 0);
        QVERIFY(outcome.stats.generatedTokens > 0);
        QVERIFY(w.chat()->transcriptText().contains(QStringLiteral("prefilled")));
        QVERIFY(w.chat()->transcriptText().contains(QStringLiteral("first token after")));
        QCOMPARE(w.chat()->lastAnswer(), outcome.answer);
        QTRY_VERIFY(!w.progress()->isVisible());  // hidden once the worker is idle
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_ask-answered")));

        // A second question reuses the sources' state: only the question is prefilled.
        QSignalSpy second(w.client(), &SessionClient::answerFinished);
        w.chat()->questionEdit()->setPlainText(QStringLiteral("And the notice period?"));
        QTest::mouseClick(w.chat()->askButton(), Qt::LeftButton);
        QVERIFY(second.wait(kTimeoutMs));
        const AnswerOutcome again = second.front().front().value<AnswerOutcome>();
        QVERIFY2(again.error.isEmpty(), qPrintable(again.error));
        QVERIFY(again.stats.reusedTokens > 0);
        QVERIFY(again.stats.prefilledTokens < again.stats.reusedTokens);

        // Regenerate asks the last question again.
        QSignalSpy third(w.client(), &SessionClient::answerFinished);
        for (QPushButton* b : w.chat()->findChildren<QPushButton*>())
            if (b->text() == QStringLiteral("Regenerate"))
                QTest::mouseClick(b, Qt::LeftButton);
        QVERIFY(third.wait(kTimeoutMs));
        QCOMPARE(third.front().front().value<AnswerOutcome>().question,
                 QStringLiteral("And the notice period?"));

        // All three exchanges are stored with the session.
        w.client()->loadSession(w.currentSessionId());
        QSignalSpy shown(&w, &MainWindow::sessionShown);
        QVERIFY(shown.wait(kTimeoutMs));
        QCOMPARE(w.currentView()->messages.size(), size_t{6});
        QCOMPARE(QString::fromStdString(w.currentView()->messages[1].content), outcome.answer);

        // Export as Markdown: the file holds the questions.
        const QString exportPath = QString::fromStdString((root_ / "export.md").string());
        QFile::remove(exportPath);
        QSignalSpy exported(w.client(), &SessionClient::exported);
        w.client()->exportSession(w.currentSessionId(), exportPath);
        QVERIFY(exported.wait(kTimeoutMs));
        QFile file(exportPath);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QString markdown = QString::fromUtf8(file.readAll());
        QVERIFY(markdown.contains(question));
        QVERIFY(markdown.contains(QStringLiteral("And the notice period?")));
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_ask-two-answers")));
    }

    void cancelStopsAPrefill() {
        const fs::path data = freshDir(root_ / "data-cancel");
        // Large enough that reading it into the model takes many prefill chunks.
        const QString big = writeTextFile(root_ / "files" / "long.txt", sourceText(9, 40000));
        MainWindow w(tinyOptions(data, model_));
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
        w.sources()->addPaths({big});
        QVERIFY(waitForSources(w, 1));
        const int64_t sourceTokens = w.currentView()->sources.front().tokenCount;
        QVERIFY(sourceTokens > 20 * 128);

        bool cancelled = false;
        int64_t cancelledAt = 0;
        connect(w.client(), &SessionClient::progress, this, [&](const RunProgress& p) {
            if (cancelled || p.kind != RunProgress::Kind::Prefilling || p.done == 0)
                return;
            QVERIFY(w.progress()->isVisible());
            QVERIFY(w.progress()->text().contains(QStringLiteral("tokens/s")));
            saveScreenshot(&w, QStringLiteral("ui_ask-prefilling"));
            cancelled = true;
            cancelledAt = p.done;
            QTest::mouseClick(w.progress()->cancelButton(), Qt::LeftButton);
        });
        QSignalSpy finished(w.client(), &SessionClient::answerFinished);
        w.chat()->questionEdit()->setPlainText(QStringLiteral("Summarise the document."));
        QTest::mouseClick(w.chat()->askButton(), Qt::LeftButton);
        QVERIFY(finished.wait(kTimeoutMs));
        QVERIFY(cancelled);
        const AnswerOutcome outcome = finished.front().front().value<AnswerOutcome>();
        QVERIFY(outcome.cancelled);
        QVERIFY2(outcome.error.isEmpty(), qPrintable(outcome.error));
        QVERIFY(outcome.answer.isEmpty());
        QVERIFY(cancelledAt < sourceTokens);

        // The window is usable again, says what happened, and stored nothing.
        QTRY_VERIFY_WITH_TIMEOUT(!w.client()->isBusy(), kTimeoutMs);
        QVERIFY(!w.progress()->isVisible());
        QVERIFY(w.chat()->askButton()->isEnabled());
        QVERIFY(w.chat()->transcriptText().contains(QStringLiteral("Stopped")));
        QVERIFY(!w.banner()->isVisible() || w.banner()->level() != MessageBanner::Level::Error);
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_ask-cancelled")));
        w.client()->loadSession(w.currentSessionId());
        QSignalSpy shown(&w, &MainWindow::sessionShown);
        QVERIFY(shown.wait(kTimeoutMs));
        QCOMPARE(w.currentView()->messages.size(), size_t{0});

        // Esc stops it too.
        bool escaped = false;
        connect(w.client(), &SessionClient::progress, this, [&](const RunProgress& p) {
            if (escaped || p.kind != RunProgress::Kind::Prefilling || p.done == 0)
                return;
            escaped = true;
            QTest::keyClick(&w, Qt::Key_Escape);
        });
        QSignalSpy again(w.client(), &SessionClient::answerFinished);
        w.chat()->questionEdit()->setPlainText(QStringLiteral("Summarise it again."));
        QTest::mouseClick(w.chat()->askButton(), Qt::LeftButton);
        QVERIFY(again.wait(kTimeoutMs));
        QVERIFY(escaped);
        QVERIFY(again.front().front().value<AnswerOutcome>().cancelled);
    }
};

QTEST_MAIN(UiAskTest)
#include "test_ui_ask.moc"
