// SPDX-License-Identifier: GPL-3.0-or-later
// The sources pane in the real main window: adding files through the API the Add dialog uses
// (with no session yet, one is started for them) and by dropping them on the pane; token counts
// and the context gauge; enabling, reordering and removing; a source opens in the viewer.
#include <QApplication>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QMimeData>
#include <QPushButton>
#include <QSignalSpy>
#include <QTreeWidget>
#include <QtTest>

#include "ui/answer_markdown.h"
#include "ui/chat_pane.h"
#include "ui/code_view.h"
#include "ui/context_gauge.h"
#include "ui/main_window.h"
#include "ui/message_banner.h"
#include "ui/session_list_pane.h"
#include "ui/sources_pane.h"
#include "ui/viewer_pane.h"
#include "ui_test_support.h"

using namespace folio::ui;
using namespace folio::ui::testing;
namespace fs = std::filesystem;

namespace {

QStringList sourceNames(const SourcesPane* pane) {
    QStringList names;
    for (int i = 0; i < pane->tree()->topLevelItemCount(); ++i)
        names << pane->tree()->topLevelItem(i)->text(0);
    return names;
}

int64_t storedTokens(const MainWindow& w, bool enabledOnly) {
    int64_t total = 0;
    for (const auto& s : w.currentView()->sources)
        if (s.enabled || !enabledOnly)
            total += s.tokenCount;
    return total;
}

}  // namespace

class UiSourcesTest : public QObject {
    Q_OBJECT
    fs::path root_ = suiteRoot("ui_sources");
    fs::path model_ = root_ / "tiny-model";

  private slots:
    void initTestCase() {
        isolateSettings("ui_sources");
        QVERIFY(ensureTinyModel(model_).ok());
    }

    void addByDialogApiAndByDrop() {
        const fs::path data = freshDir(root_ / "data");
        const QString alpha = writeTextFile(root_ / "files" / "alpha.txt", sourceText(1, 300));
        const QString beta = writeTextFile(root_ / "files" / "beta.txt", sourceText(2, 200));
        const QString gamma = writeTextFile(root_ / "files" / "gamma.txt", sourceText(3, 100));

        MainWindow w(tinyOptions(data, model_));
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
        QCOMPARE(w.sessionList()->count(), 0);
        QVERIFY(!w.chat()->askButton()->isEnabled());  // nothing to ask about yet

        // The Add files dialog hands its choice to addPaths(); with no session one is started.
        w.sources()->addPaths({alpha});
        QTRY_COMPARE_WITH_TIMEOUT(w.sources()->sourceCount(), 1, kTimeoutMs);
        QCOMPARE(w.sessionList()->count(), 1);
        QCOMPARE(w.sessionList()->currentSessionName(), QStringLiteral("alpha"));
        QVERIFY(w.currentView());
        const int64_t alphaTokens = w.currentView()->sources.front().tokenCount;
        QVERIFY(alphaTokens > 300);
        QCOMPARE(w.sources()->tree()->topLevelItem(0)->text(1), groupedNumber(alphaTokens));
        QCOMPARE(w.sources()->gauge()->usedTokens(), alphaTokens);
        QVERIFY(w.sources()->gauge()->format().contains(QStringLiteral("/ 1,048,576 tokens")));
        QVERIFY(w.chat()->askButton()->isEnabled());

        // Two files dropped on the pane.
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(beta), QUrl::fromLocalFile(gamma)});
        const QPoint at = w.sources()->rect().center();
        QDragEnterEvent enter(at, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(w.sources(), &enter);
        QVERIFY(enter.isAccepted());
        QDropEvent drop(QPointF(at), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(w.sources(), &drop);
        QVERIFY(drop.isAccepted());
        QTRY_COMPARE_WITH_TIMEOUT(w.sources()->sourceCount(), 3, kTimeoutMs);
        QCOMPARE(sourceNames(w.sources()), QStringList({"alpha.txt", "beta.txt", "gamma.txt"}));
        QCOMPARE(w.sources()->gauge()->usedTokens(), storedTokens(w, true));
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_sources-added")));

        // Something that is not a file is not accepted as a drop.
        QMimeData text;
        text.setText(QStringLiteral("just words"));
        QDragEnterEvent refused(at, Qt::CopyAction, &text, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(w.sources(), &refused);
        QVERIFY(!refused.isAccepted());

        // Disable beta: the gauge drops by its tokens, the source stays listed.
        const int64_t before = w.sources()->gauge()->usedTokens();
        const int64_t betaTokens = w.currentView()->sources[1].tokenCount;
        w.sources()->tree()->topLevelItem(1)->setCheckState(0, Qt::Unchecked);
        QTRY_COMPARE_WITH_TIMEOUT(w.sources()->gauge()->usedTokens(), before - betaTokens,
                                  kTimeoutMs);
        QVERIFY(!w.currentView()->sources[1].enabled);
        QCOMPARE(w.sources()->tree()->topLevelItem(1)->checkState(0), Qt::Unchecked);

        // Move gamma up, before beta.
        w.sources()->tree()->setCurrentItem(w.sources()->tree()->topLevelItem(2));
        auto* up = w.sources()->findChild<QPushButton*>();
        QVERIFY(up);
        for (QPushButton* b : w.sources()->findChildren<QPushButton*>())
            if (b->text() == QStringLiteral("Up"))
                up = b;
        QVERIFY(up->isEnabled());
        QTest::mouseClick(up, Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(sourceNames(w.sources()),
                                  QStringList({"alpha.txt", "gamma.txt", "beta.txt"}), kTimeoutMs);
        QCOMPARE(w.currentView()->sources[1].displayName, std::string("gamma.txt"));

        // Selecting a source opens it in the viewer with line numbers.
        w.sources()->tree()->setCurrentItem(w.sources()->tree()->topLevelItem(0));
        QTRY_COMPARE(w.viewer()->mode(), ViewerPane::Mode::Lines);
        QCOMPARE(w.viewer()->currentPath(), QStringLiteral("alpha.txt"));
        QVERIFY(w.viewer()->codeView()->toPlainText().startsWith(
            QString::fromStdString(sourceText(1, 300).substr(0, 40))));

        // Remove alpha.
        for (QPushButton* b : w.sources()->findChildren<QPushButton*>())
            if (b->text() == QStringLiteral("Remove"))
                QTest::mouseClick(b, Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(sourceNames(w.sources()), QStringList({"gamma.txt", "beta.txt"}),
                                  kTimeoutMs);
        QCOMPARE(w.viewer()->mode(), ViewerPane::Mode::Empty);  // its document is gone
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_sources-edited")));
    }

    void unreadableSourceIsAMessage() {
        const fs::path data = freshDir(root_ / "data-missing");
        MainWindow w(tinyOptions(data, model_));
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
        w.newSession();
        QTRY_COMPARE_WITH_TIMEOUT(w.sessionList()->count(), 1, kTimeoutMs);
        QTRY_VERIFY(w.currentView());
        w.sources()->addPaths({QString::fromStdString((root_ / "no-such-file.txt").string())});
        QTRY_VERIFY_WITH_TIMEOUT(w.banner()->isVisible(), kTimeoutMs);
        QVERIFY(w.banner()->text().contains(QStringLiteral("no-such-file.txt")));
        QCOMPARE(w.sources()->sourceCount(), 0);
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_sources-error")));
    }
};

QTEST_MAIN(UiSourcesTest)
#include "test_ui_sources.moc"
