// SPDX-License-Identifier: GPL-3.0-or-later
// PDF ingest on files the suite draws itself: reading order on two-column pages, a rotated page,
// Unicode and right-to-left text, metadata title, word boxes, an image-only page, an encrypted
// file (no, wrong and right password), a truncated file, a file that is no PDF, and parallel page
// extraction giving the same document as one thread.
#include <QtTest/QtTest>

#include "ingest/pdf_ingest.h"
#include "ingest/source_ingest.h"
#include "ingest_test_support.h"
#include "pdf_fixtures.h"

using namespace folio;
using namespace folio::ingest;
using namespace folio::ingest::testing;

namespace {

// Where `needle` starts in `hay`, or -1.
qsizetype at(const std::string& hay, const QString& needle) {
    const size_t pos = hay.find(needle.toStdString());
    return pos == std::string::npos ? -1 : static_cast<qsizetype>(pos);
}

std::string pageText(const Document& d, int page) {
    for (const auto& s : d.segments) {
        if (s.locator.kind == Locator::Kind::Page && s.locator.page == page)
            return std::string(d.segmentText(s));
    }
    return {};
}

}  // namespace

class IngestPdfTest : public QObject {
    Q_OBJECT

  private:
    fs::path dir_;
    fs::path mixed_;  // page 1: two columns, page 2: image only, page 3: Unicode and RTL

    bool haveQpdf() const { return runTool(QStringLiteral("qpdf"), {"--version"}).exitCode == 0; }

  private slots:
    void initTestCase() {
        dir_ = freshDir("pdf");
        mixed_ = dir_ / "mixed.pdf";
        QPdfWriter writer(qs(mixed_));
        setUpWriter(writer, QStringLiteral("Master Services Agreement"));
        QPainter painter(&writer);
        drawTwoColumnPage(painter, 1);
        writer.newPage();
        drawImageOnlyPage(painter);
        writer.newPage();
        drawLines(painter,
                  {QStringLiteral("Grüße aus Köln, naïve café, Καλημέρα κόσμε"),
                   QString::fromUtf8("שלום עולם יפה"), QString::fromUtf8("مرحبا بالعالم")},
                  50, 80);
        painter.end();
        QVERIFY(fs::file_size(mixed_) > 1000);
    }

    void twoColumnPageReadsLeftColumnThenRight() {
        auto doc = ingestPdf(mixed_, {});
        QVERIFY2(doc.ok(), doc.ok() ? "" : doc.error().message.c_str());
        QCOMPARE(doc->pageCount, 3);
        QCOMPARE(doc->segments.size(), size_t{3});
        const std::string text = pageText(*doc, 1);
        const auto heading = at(text, QStringLiteral("Heading of page 1"));
        const auto left1 = at(text, QStringLiteral("Left line 1 p1"));
        const auto left40 = at(text, QStringLiteral("Left line 40 p1"));
        const auto right1 = at(text, QStringLiteral("Right line 1 p1"));
        const auto right40 = at(text, QStringLiteral("Right line 40 p1"));
        QVERIFY2(heading >= 0 && left1 >= 0 && left40 >= 0 && right1 >= 0 && right40 >= 0,
                 text.c_str());
        QVERIFY2(heading < left1, text.c_str());
        QVERIFY2(left40 < right1, text.c_str());  // the whole left column first
        QVERIFY(right1 < right40);
        // lines are whole: no left/right interleaving inside a line
        QVERIFY(at(text, QStringLiteral("Left line 7 p1 payment is due\n")) >= 0);
    }

    void metadataTitleAndWordBoxes() {
        auto doc = ingestPdf(mixed_, {});
        QVERIFY(doc.ok());
        QCOMPARE(doc->title, std::string("Master Services Agreement"));
        const Segment& page1 = doc->segments[0];
        QVERIFY(page1.words.size() > 200);
        // Every box covers its word's text; the right column's words sit right of x = 300.
        for (const WordBox& w : page1.words) {
            QVERIFY(w.textBegin + w.textLength <= page1.textEnd);
            QVERIFY(w.width > 0 && w.height > 0);
            QVERIFY(w.x >= 0 && w.x + w.width <= kPageWidth + 1);
        }
        bool foundRight = false;
        for (const WordBox& w : page1.words) {
            if (doc->text.substr(w.textBegin, w.textLength) == "Right") {
                foundRight = true;
                QVERIFY2(w.x > 300, qPrintable(QString::number(w.x)));
            }
        }
        QVERIFY(foundRight);
    }

    void imageOnlyPageIsReported() {
        auto doc = ingestPdf(mixed_, {});
        QVERIFY(doc.ok());
        QVERIFY(!doc->segments[1].hasTextLayer);
        QVERIFY(doc->segments[0].hasTextLayer);
        QVERIFY(pageText(*doc, 2).find("no text layer") != std::string::npos);
        bool listed = false;
        for (const auto& s : doc->skipped)
            listed = listed ||
                     (s.item == "page 2" && s.reason.find("no text layer") != std::string::npos);
        QVERIFY(listed);
        QVERIFY(!doc->warnings.empty());
    }

    void unicodeAndRightToLeftText() {
        auto doc = ingestPdf(mixed_, {});
        QVERIFY(doc.ok());
        const std::string text = pageText(*doc, 3);
        QVERIFY2(at(text, QStringLiteral("Grüße aus Köln, naïve café, Καλημέρα κόσμε")) >= 0,
                 text.c_str());
        // Right-to-left lines come out in logical (reading) order.
        QVERIFY2(at(text, QString::fromUtf8("שלום עולם יפה")) >= 0, text.c_str());
        QVERIFY2(at(text, QString::fromUtf8("مرحبا بالعالم")) >= 0, text.c_str());
    }

    void rotatedPageKeepsItsText() {
        if (!haveQpdf())
            QSKIP("qpdf is not installed (scripts/install-deps.sh installs it)");
        const fs::path rotated = dir_ / "rotated.pdf";
        const auto run = runTool(QStringLiteral("qpdf"),
                                 {qs(mixed_), QStringLiteral("--rotate=+90:1"), qs(rotated)});
        QVERIFY2(run.exitCode == 0, qPrintable(run.output));
        auto doc = ingestPdf(rotated, {});
        QVERIFY(doc.ok());
        const std::string text = pageText(*doc, 1);
        const auto left40 = at(text, QStringLiteral("Left line 40 p1"));
        const auto right1 = at(text, QStringLiteral("Right line 1 p1"));
        QVERIFY2(left40 >= 0 && right1 > left40, text.c_str());
        // Boxes follow the displayed orientation: the page is now wider than tall.
        double maxX = 0;
        for (const WordBox& w : doc->segments[0].words)
            maxX = std::max(maxX, w.x + w.width);
        QVERIFY2(maxX > kPageWidth, qPrintable(QString::number(maxX)));
        QVERIFY(doc->contentHash != ingestPdf(mixed_, {})->contentHash);
    }

    void encryptedNeedsTheRightPassword() {
        if (!haveQpdf())
            QSKIP("qpdf is not installed (scripts/install-deps.sh installs it)");
        const fs::path locked = dir_ / "locked.pdf";
        const auto run = runTool(QStringLiteral("qpdf"),
                                 {QStringLiteral("--encrypt"), QStringLiteral("open-sesame"),
                                  QStringLiteral("owner-secret"), QStringLiteral("256"),
                                  QStringLiteral("--"), qs(mixed_), qs(locked)});
        QVERIFY2(run.exitCode == 0, qPrintable(run.output));

        auto none = ingestPdf(locked, {});
        QVERIFY(!none.ok());
        QVERIFY2(none.error().message.find("encrypted; a password is needed") != std::string::npos,
                 none.error().message.c_str());
        QCOMPARE(checkPdfAccess(locked, "").value(), PdfAccess::NeedsPassword);

        IngestSettings wrong;
        wrong.pdfPassword = "guess";
        auto bad = ingestPdf(locked, wrong);
        QVERIFY(!bad.ok());
        QVERIFY2(bad.error().message.find("wrong password") != std::string::npos,
                 bad.error().message.c_str());
        QCOMPARE(checkPdfAccess(locked, "guess").value(), PdfAccess::WrongPassword);

        IngestSettings right;
        right.pdfPassword = "open-sesame";
        auto good = ingestPdf(locked, right);
        QVERIFY2(good.ok(), good.ok() ? "" : good.error().message.c_str());
        QVERIFY(at(pageText(*good, 1), QStringLiteral("Right line 40 p1")) >= 0);
        QCOMPARE(checkPdfAccess(locked, "open-sesame").value(), PdfAccess::Open);
    }

    void truncatedFileGivesReadablePagesAndAWarningOrAClearError() {
        const fs::path whole = dir_ / "ten.pdf";
        {
            QPdfWriter writer(qs(whole));
            setUpWriter(writer, QStringLiteral("Ten pages"));
            QPainter painter(&writer);
            for (int p = 1; p <= 10; ++p) {
                if (p > 1)
                    writer.newPage();
                drawTwoColumnPage(painter, p, 10);
            }
        }
        std::ifstream in(whole, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        const fs::path cut = dir_ / "truncated.pdf";
        writeBytes(cut, std::string_view(bytes).substr(0, bytes.size() * 6 / 10));

        auto doc = ingestPdf(cut, {});
        if (!doc.ok()) {
            QVERIFY2(doc.error().message.find("damaged") != std::string::npos,
                     doc.error().message.c_str());
            return;
        }
        bool warned = false;
        for (const auto& w : doc->warnings)
            warned = warned || w.find("truncated") != std::string::npos;
        QVERIFY2(warned, "a truncated file must carry a warning");
        QVERIFY(at(pageText(*doc, 1), QStringLiteral("Left line 3 p1")) >= 0);
    }

    void notAPdfIsAClearError() {
        const fs::path fake = dir_ / "fake.pdf";
        writeBytes(fake, "this is not a PDF at all\n");
        auto doc = ingestPdf(fake, {});
        QVERIFY(!doc.ok());
        QVERIFY2(doc.error().message.find("damaged or not a PDF") != std::string::npos,
                 doc.error().message.c_str());
        auto missing = ingestPdf(dir_ / "missing.pdf", {});
        QVERIFY(!missing.ok());
        QCOMPARE(missing.error().code, ErrorCode::NotFound);
    }

    void parallelPagesGiveTheSameDocument() {
        const fs::path many = dir_ / "many.pdf";
        {
            QPdfWriter writer(qs(many));
            setUpWriter(writer, QStringLiteral("Many"));
            QPainter painter(&writer);
            for (int p = 1; p <= 24; ++p) {
                if (p > 1)
                    writer.newPage();
                drawTwoColumnPage(painter, p, 12);
            }
        }
        IngestSettings one, four;
        one.threads = 1;
        four.threads = 4;
        std::atomic<int> calls{0};
        auto a = ingestPdf(many, one);
        auto b = ingestPdf(many, four, [&](int, int total) {
            ++calls;
            QCOMPARE(total, 24);
        });
        QVERIFY(a.ok() && b.ok());
        QCOMPARE(calls.load(), 24);
        QCOMPARE(a->text, b->text);
        QCOMPARE(a->contentHash, b->contentHash);
        for (int p = 1; p <= 24; ++p)
            QVERIFY(at(pageText(*b, p), QStringLiteral("Right line 12 p%1").arg(p)) >= 0);
    }

    void ingestSourceDetectsPdfsAndCountsTokens() {
        const auto tok = kimiTestTokenizer("pdf");
        auto doc = ingestSource(mixed_, {}, &tok);
        QVERIFY(doc.ok());
        QCOMPARE(doc->kind, SourceKind::Pdf);
        QVERIFY(doc->tokenCount > 500);
        QCOMPARE(doc->segments.front().tokenBegin, int64_t{0});
        QCOMPARE(doc->segments.back().tokenEnd, doc->tokenCount);
        for (size_t i = 1; i < doc->segments.size(); ++i)
            QCOMPARE(doc->segments[i].tokenBegin, doc->segments[i - 1].tokenEnd);
        QVERIFY(doc->ingestSeconds > 0);
    }
};

QTEST_MAIN(IngestPdfTest)
#include "test_ingest_pdf.moc"
