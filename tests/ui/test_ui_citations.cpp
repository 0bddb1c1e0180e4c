// SPDX-License-Identifier: GPL-3.0-or-later
// Citations in an answer are links: clicking one with the mouse opens the viewer at the cited PDF
// page; next/previous citation moves between them, also to a text file's highlighted lines; find
// works in the PDF; a citation of something not in the session is a message, not a crash.
#include <QLineEdit>
#include <QPainter>
#include <QPdfWriter>
#include <QTextBrowser>
#include <QtTest>

#include "../ingest/pdf_fixtures.h"
#include "ui/chat_pane.h"
#include "ui/code_view.h"
#include "ui/main_window.h"
#include "ui/message_banner.h"
#include "ui/pdf_page_view.h"
#include "ui/sources_pane.h"
#include "ui/viewer_pane.h"
#include "ui_test_support.h"

using namespace folio::ui;
using namespace folio::ui::testing;
namespace fs = std::filesystem;

namespace {

// A three-page report; page N says "This is page N of the report" and names a topic.
QString writeReport(const fs::path& path) {
    fs::create_directories(path.parent_path());
    QPdfWriter writer(QString::fromStdString(path.string()));
    folio::ingest::testing::setUpWriter(writer, QStringLiteral("Quarterly report"));
    QPainter painter(&writer);
    const char* topics[] = {"revenue grew", "termination for convenience", "zebra crossing"};
    for (int page = 1; page <= 3; ++page) {
        if (page > 1)
            writer.newPage();
        folio::ingest::testing::drawLines(
            painter,
            {QStringLiteral("This is page %1 of the report.").arg(page),
             QStringLiteral("Topic: %1.").arg(QLatin1String(topics[page - 1]))},
            60, 80);
    }
    painter.end();
    return QString::fromStdString(path.string());
}

folio::storage::MessageRow message(const char* role, const std::string& content) {
    folio::storage::MessageRow m;
    m.role = role;
    m.content = content;
    return m;
}

}  // namespace

class UiCitationsTest : public QObject {
    Q_OBJECT
    fs::path root_ = suiteRoot("ui_citations");
    fs::path model_ = root_ / "tiny-model";

  private slots:
    void initTestCase() {
        isolateSettings("ui_citations");
        QVERIFY(ensureTinyModel(model_).ok());
    }

    void citationLinksOpenTheViewer() {
        const fs::path data = freshDir(root_ / "data");
        const QString report = writeReport(root_ / "files" / "report.pdf");
        std::string notes;
        for (int i = 1; i <= 30; ++i)
            notes += "note line " + std::to_string(i) + "\n";
        const QString notesPath = writeTextFile(root_ / "files" / "notes.txt", notes);

        MainWindow w(tinyOptions(data, model_));
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
        w.sources()->addPaths({report, notesPath});
        QTRY_COMPARE_WITH_TIMEOUT(w.sources()->sourceCount(), 2, kTimeoutMs);
        QTRY_VERIFY_WITH_TIMEOUT(!w.client()->isBusy(), kTimeoutMs);
        QCOMPARE(w.currentView()->sources.front().pageCount, 3);

        // An answer as the model would write it, citing a page and a line range.
        w.chat()->setMessages(
            {message("user", "Where is termination discussed?"),
             message("assistant",
                     "Termination for convenience is on [report.pdf p.2]; see also "
                     "[notes.txt:L5-L7] and [missing.pdf p.1].")});
        QCOMPARE(w.chat()->citationCount(), 3);

        QVERIFY(clickLink(w.chat()->transcript(), QStringLiteral("folio-cite:1-0")));
        QTRY_COMPARE(w.viewer()->mode(), ViewerPane::Mode::PdfPages);
        QCOMPARE(w.viewer()->currentPage(), 2);
        QCOMPARE(w.viewer()->pdfView()->pageCount(), 3);
        QVERIFY(w.viewer()->pdfView()->path().endsWith(QStringLiteral("report.pdf")));
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_citations-pdf-page")));

        // Next citation (F8): the text file's lines 5-7, highlighted.
        w.activateWindow();
        QTest::keyClick(&w, Qt::Key_F8);
        QTRY_COMPARE(w.viewer()->mode(), ViewerPane::Mode::Lines);
        QCOMPARE(w.viewer()->currentPath(), QStringLiteral("notes.txt"));
        QCOMPARE(w.viewer()->codeView()->highlightedFirst(), 5);
        QCOMPARE(w.viewer()->codeView()->highlightedLast(), 7);
        QCOMPARE(w.viewer()->codeView()->document()->findBlockByNumber(4).text(),
                 QStringLiteral("note line 5"));
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_citations-lines")));

        // Next again: a source the session does not have is a message in the window.
        QVERIFY(w.chat()->nextCitation());
        QTRY_VERIFY(w.banner()->isVisible());
        QVERIFY(w.banner()->text().contains(QStringLiteral("missing.pdf")));
        QCOMPARE(w.viewer()->mode(), ViewerPane::Mode::Lines);  // unchanged

        // Previous twice (Shift+F8): back on the PDF page; then find (Ctrl+F, type, Enter) moves
        // to the page with the words.
        QTest::keyClick(&w, Qt::Key_F8, Qt::ShiftModifier);
        QVERIFY(w.chat()->previousCitation());
        QTRY_COMPARE(w.viewer()->mode(), ViewerPane::Mode::PdfPages);
        QCOMPARE(w.viewer()->currentPage(), 2);
        QTest::keyClick(&w, Qt::Key_F, Qt::ControlModifier);
        QTRY_VERIFY(w.viewer()->findEdit()->hasFocus());
        QTest::keyClicks(w.viewer()->findEdit(), QStringLiteral("zebra"));
        QTest::keyClick(w.viewer()->findEdit(), Qt::Key_Return);
        QCOMPARE(w.viewer()->currentPage(), 3);
        QVERIFY(!w.viewer()->pdfView()->matches().isEmpty());
        const double zoom = w.viewer()->pdfView()->zoom();
        w.viewer()->zoomIn();
        QVERIFY(w.viewer()->pdfView()->zoom() > zoom);
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_citations-find")));
    }
};

QTEST_MAIN(UiCitationsTest)
#include "test_ui_citations.moc"
