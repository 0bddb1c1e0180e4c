// SPDX-License-Identifier: GPL-3.0-or-later
// Text and Markdown sources, encodings (UTF-8 with and without BOM, UTF-16, Latin-1 and
// Windows-1252, binary), numbered lines and their segments, globs, and content hashes.
#include <QtTest/QtTest>

#include "ingest/glob_match.h"
#include "ingest/numbered_lines.h"
#include "ingest/source_ingest.h"
#include "ingest/text_decoding.h"
#include "ingest/text_ingest.h"
#include "ingest_test_support.h"

using namespace folio;
using namespace folio::ingest;
using namespace folio::ingest::testing;

class IngestTextTest : public QObject {
    Q_OBJECT

  private:
    fs::path dir_;

  private slots:
    void initTestCase() { dir_ = freshDir("text"); }

    void utf8IsKeptAndItsBomDropped() {
        auto plain = decodeText(
            "Gr\xC3\xBC\xC3\x9F"
            "e\n",
            true);
        QVERIFY(plain.text);
        QCOMPARE(plain.text->utf8, std::string("Gr\xC3\xBC\xC3\x9F"
                                               "e\n"));
        QVERIFY(plain.text->convertedFrom.empty());
        auto bom = decodeText("\xEF\xBB\xBFhello", true);
        QVERIFY(bom.text);
        QCOMPARE(bom.text->utf8, std::string("hello"));
    }

    void latin1AndWindows1252AreConverted() {
        // "café – 20 €" in Windows-1252: é = E9, en dash = 96, euro = 80.
        auto decoded = decodeText("caf\xE9 \x96 20 \x80", true);
        QVERIFY(decoded.text);
        QCOMPARE(decoded.text->utf8, std::string("caf\xC3\xA9 \xE2\x80\x93 20 \xE2\x82\xAC"));
        QCOMPARE(decoded.text->convertedFrom, std::string("Windows-1252"));
        auto refused = decodeText("caf\xE9", false);
        QVERIFY(!refused.text);
        QVERIFY(refused.failureReason.find("not UTF-8") != std::string::npos);
    }

    void utf16WithBomIsConverted() {
        const std::string le("\xFF\xFEh\0i\0", 6);
        auto decoded = decodeText(le, true);
        QVERIFY(decoded.text);
        QCOMPARE(decoded.text->utf8, std::string("hi"));
        QCOMPARE(decoded.text->convertedFrom, std::string("UTF-16LE"));
    }

    void binaryIsRefused() {
        const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
        QVERIFY(looksBinary(png));
        auto decoded = decodeText(png, true);
        QVERIFY(!decoded.text);
        QVERIFY(decoded.failureReason.find("binary") != std::string::npos);
        QVERIFY(!looksBinary("plain text\n"));
    }

    void latin1FileBecomesAUtf8DocumentWithAWarning() {
        writeBytes(dir_ / "latin1.txt",
                   "Sch\xF6ne Gr\xFC\xDF"
                   "e\nzweite Zeile\n");
        auto doc = ingestTextFile(dir_ / "latin1.txt", {});
        QVERIFY2(doc.ok(), doc.ok() ? "" : doc.error().message.c_str());
        QCOMPARE(originalLines(*doc, "latin1.txt", 1, 1),
                 std::string("Sch\xC3\xB6ne Gr\xC3\xBC\xC3\x9F"
                             "e"));
        QCOMPARE(doc->warnings.size(), size_t{1});
        QVERIFY(doc->warnings[0].find("Windows-1252") != std::string::npos);
        IngestSettings strict;
        strict.convertLegacyEncodings = false;
        auto refused = ingestTextFile(dir_ / "latin1.txt", strict);
        QVERIFY(!refused.ok());
        QVERIFY(refused.error().message.find("not UTF-8") != std::string::npos);
    }

    void markdownIsNumberedLineByLine() {
        std::string md = "# Title\r\n\r\nSome *text*.\r\n";
        for (int i = 4; i <= 450; ++i)
            md += "line " + std::to_string(i) + "\n";
        writeBytes(dir_ / "notes.md", md);
        auto doc = ingestSource(dir_ / "notes.md", {}, nullptr);
        QVERIFY(doc.ok());
        QCOMPARE(doc->kind, SourceKind::TextFile);
        QCOMPARE(doc->name, std::string("notes.md"));
        QVERIFY(
            doc->text.starts_with("<file path=\"notes.md\" lines=\"1-450\">\n1| # Title\n2| \n"
                                  "3| Some *text*.\n4| line 4\n"));
        QVERIFY(doc->text.ends_with("450| line 450\n</file>\n"));
        // 450 lines in segments of 200: 1-200, 201-400, 401-450, covering the text exactly.
        QCOMPARE(doc->segments.size(), size_t{3});
        QCOMPARE(doc->segments[1].locator, Locator::forLines("notes.md", 201, 400));
        QCOMPARE(doc->segments[2].locator, Locator::forLines("notes.md", 401, 450));
        QCOMPARE(doc->segments[0].textBegin, size_t{0});
        for (size_t i = 1; i < doc->segments.size(); ++i)
            QCOMPARE(doc->segments[i].textBegin, doc->segments[i - 1].textEnd);
        QCOMPARE(doc->segments.back().textEnd, doc->text.size());
        QCOMPARE(originalLines(*doc, "notes.md", 199, 202),
                 std::string("line 199\nline 200\nline 201\nline 202"));
        QCOMPARE(lineCountOf(*doc, "notes.md"), 450);
        QVERIFY(!doc->tokensCounted());
    }

    void binaryTextSourceIsAnError() {
        writeBytes(dir_ / "data.txt", std::string("abc\0def", 7));
        auto doc = ingestSource(dir_ / "data.txt", {}, nullptr);
        QVERIFY(!doc.ok());
        QVERIFY(doc.error().message.find("binary") != std::string::npos);
    }

    void contentHashCoversBytesAndSettings() {
        writeBytes(dir_ / "a.txt", "one\ntwo\n");
        auto first = ingestTextFile(dir_ / "a.txt", {});
        auto again = ingestTextFile(dir_ / "a.txt", {});
        IngestSettings other;
        other.linesPerSegment = 1;
        auto otherSettings = ingestTextFile(dir_ / "a.txt", other);
        writeBytes(dir_ / "a.txt", "one\ntwo!\n");
        auto changed = ingestTextFile(dir_ / "a.txt", {});
        QVERIFY(first.ok() && again.ok() && otherSettings.ok() && changed.ok());
        QCOMPARE(first->contentHash.size(), size_t{64});
        QCOMPARE(first->contentHash, again->contentHash);
        QVERIFY(first->contentHash != otherSettings->contentHash);
        QVERIFY(first->contentHash != changed->contentHash);
    }

    void tokenCountsAreSegmentRanges() {
        const auto tok = kimiTestTokenizer("text");
        auto doc = ingestSource(dir_ / "notes.md", {}, &tok);
        QVERIFY(doc.ok());
        QVERIFY(doc->tokenCount > 450);
        int64_t expected = 0;
        for (const auto& s : doc->segments) {
            QCOMPARE(s.tokenBegin, expected);
            auto ids = tok.encode(doc->segmentText(s), tokenizer::kChatContentOptions);
            QVERIFY(ids.ok());
            expected += static_cast<int64_t>(ids->size());
            QCOMPARE(s.tokenEnd, expected);
        }
        QCOMPARE(doc->tokenCount, expected);
    }

    void globs_data() {
        QTest::addColumn<QString>("glob");
        QTest::addColumn<QString>("path");
        QTest::addColumn<bool>("matches");
        QTest::newRow("name anywhere") << "*.md"
                                       << "docs/guide/intro.md" << true;
        QTest::newRow("name not path") << "*.md"
                                       << "docs/guide/intro.mdx" << false;
        QTest::newRow("folder name") << "build"
                                     << "src/build/out.o" << true;
        QTest::newRow("anchored") << "src/*.cpp"
                                  << "src/a.cpp" << true;
        QTest::newRow("star stays in folder") << "src/*.cpp"
                                              << "src/sub/a.cpp" << false;
        QTest::newRow("double star") << "src/**/*.cpp"
                                     << "src/sub/deep/a.cpp" << true;
        QTest::newRow("double star zero") << "src/**/*.cpp"
                                          << "src/a.cpp" << true;
        QTest::newRow("anchored folder") << "third_party/lib"
                                         << "third_party/lib/x/y.c" << true;
        QTest::newRow("class") << "file[0-9].txt"
                               << "file7.txt" << true;
        QTest::newRow("negated class") << "file[!0-9].txt"
                                       << "file7.txt" << false;
        QTest::newRow("question") << "?.h"
                                  << "a.h" << true;
        QTest::newRow("leading slash") << "/README*"
                                       << "README.md" << true;
    }
    void globs() {
        QFETCH(QString, glob);
        QFETCH(QString, path);
        QFETCH(bool, matches);
        QCOMPARE(globMatches(glob.toStdString(), path.toStdString()), matches);
    }
};

QTEST_MAIN(IngestTextTest)
#include "test_ingest_text.moc"
