// SPDX-License-Identifier: GPL-3.0-or-later
// Restarting the app: a main window destroyed and made again on the same data folder shows the
// session, its sources and its messages, with the splitters where the user left them. First
// start with the demo model: the demo model is written, a demo session of the bundled texts is
// ready to ask, and the demo model is labelled in the title, the chat and every answer.
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSplitter>
#include <QtTest>

#include "ui/chat_pane.h"
#include "ui/demo_content.h"
#include "ui/main_window.h"
#include "ui/run_progress_bar.h"
#include "ui/session_list_pane.h"
#include "ui/sources_pane.h"
#include "ui_test_support.h"

using namespace folio::ui;
using namespace folio::ui::testing;
namespace fs = std::filesystem;

class UiRestartTest : public QObject {
    Q_OBJECT
    fs::path root_ = suiteRoot("ui_restart");
    fs::path model_ = root_ / "tiny-model";

  private slots:
    void initTestCase() {
        isolateSettings("ui_restart");
        QVERIFY(ensureTinyModel(model_).ok());
    }

    void sessionAndMessagesSurviveARestart() {
        const fs::path data = freshDir(root_ / "data");
        const QString source = writeTextFile(root_ / "files" / "minutes.txt", sourceText(7, 150));
        const QString question = QStringLiteral("What was agreed at the meeting?");
        QString answer;
        QList<int> sizes;
        {
            MainWindow w(tinyOptions(data, model_));
            w.show();
            QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
            w.sources()->addPaths({source});
            QTRY_COMPARE_WITH_TIMEOUT(w.sources()->sourceCount(), 1, kTimeoutMs);
            QSignalSpy finished(w.client(), &SessionClient::answerFinished);
            w.chat()->questionEdit()->setPlainText(question);
            QTest::mouseClick(w.chat()->askButton(), Qt::LeftButton);
            QVERIFY(finished.wait(kTimeoutMs));
            answer = finished.front().front().value<AnswerOutcome>().answer;
            QVERIFY(!answer.isEmpty());
            auto* splitter = w.findChild<QSplitter*>(QStringLiteral("mainSplitter"));
            QVERIFY(splitter);
            splitter->setSizes({250, 500, 600});
            sizes = splitter->sizes();
            QVERIFY(saveScreenshot(&w, QStringLiteral("ui_restart-before")));
            w.close();
        }

        MainWindow again(tinyOptions(data, model_));
        again.show();
        QTRY_COMPARE_WITH_TIMEOUT(again.sessionList()->count(), 1, kTimeoutMs);
        QCOMPARE(again.sessionList()->currentSessionName(), QStringLiteral("minutes"));
        QTRY_VERIFY_WITH_TIMEOUT(again.currentView() != nullptr, kTimeoutMs);
        QTRY_COMPARE_WITH_TIMEOUT(again.sources()->sourceCount(), 1, kTimeoutMs);
        QCOMPARE(again.currentView()->messages.size(), size_t{2});
        QCOMPARE(again.chat()->lastQuestion(), question);
        QCOMPARE(again.chat()->lastAnswer(), answer);
        QVERIFY(again.chat()->transcriptText().contains(question));
        QVERIFY(again.chat()->transcriptText().contains(QStringLiteral("prefilled")));
        auto* splitter = again.findChild<QSplitter*>(QStringLiteral("mainSplitter"));
        QCOMPARE(splitter->sizes(), sizes);
        QVERIFY(saveScreenshot(&again, QStringLiteral("ui_restart-after")));
    }

    void firstStartWithTheDemoModel() {
        const QString corpus = bundledDemoCorpusDir();
        QVERIFY2(!corpus.isEmpty(), "the demo corpus is not found");
        const QStringList files = demoCorpusFiles(corpus);
        QVERIFY(files.size() >= 3);

        const fs::path data = freshDir(root_ / "data-demo");
        LaunchOptions o = tinyOptions(data, {});
        o.demoModel = true;
        o.modelDir = demoModelDirIn(o.dataDir);
        o.demoCorpusDir = corpus;
        o.generation.maxTokens = 16;
        MainWindow w(o);
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
        QTRY_COMPARE_WITH_TIMEOUT(w.sessionList()->count(), 1, kTimeoutMs);
        QCOMPARE(w.sessionList()->currentSessionName(), QString::fromUtf8(kDemoSessionName));
        QTRY_COMPARE_WITH_TIMEOUT(w.sources()->sourceCount(), static_cast<int>(files.size()),
                                  kTimeoutMs);
        QVERIFY(w.windowTitle().contains(QString::fromUtf8(kDemoModelLabel)));
        auto* label = w.chat()->findChild<QLabel*>(QStringLiteral("demoLabel"));
        QVERIFY(label && label->isVisible());

        QSignalSpy finished(w.client(), &SessionClient::answerFinished);
        w.chat()->questionEdit()->setPlainText(QStringLiteral("Who is the woman?"));
        QTest::mouseClick(w.chat()->askButton(), Qt::LeftButton);
        QVERIFY(finished.wait(kTimeoutMs));
        const AnswerOutcome outcome = finished.front().front().value<AnswerOutcome>();
        QVERIFY2(outcome.error.isEmpty(), qPrintable(outcome.error));
        QVERIFY(w.chat()->transcriptText().contains(QString::fromUtf8(kDemoModelLabel)));
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_restart-demo-session")));
    }
};

QTEST_MAIN(UiRestartTest)
#include "test_ui_restart.moc"
