// SPDX-License-Identifier: GPL-3.0-or-later
// Repositories and folders: the file set must be exactly git's (checked against
// `git ls-files --cached --others --exclude-standard`) with nested .gitignore files, negations,
// .git/info/exclude and force-added files; a plain folder honours its .gitignore files the same
// way without anything being written into it; binary files, a 50 MB file over the cap, symbolic
// link loops, links out of the source, unreadable files and Latin-1 text are handled with reasons;
// globs; a subfolder of a work tree; and folio-cli ingest --json.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest/QtTest>

#include <unistd.h>

#include <set>

#include "ingest/numbered_lines.h"
#include "ingest/repository_files.h"
#include "ingest/repository_ingest.h"
#include "ingest_test_support.h"

using namespace folio;
using namespace folio::ingest;
using namespace folio::ingest::testing;

namespace {

// The tree both the repository and the plain folder get.
void writeIgnoreTree(const fs::path& root) {
    writeBytes(root / ".gitignore", "*.log\nbuild/\n!keep.log\n!build/keep.txt\n");
    writeBytes(root / "a.txt", "alpha\n");
    writeBytes(root / "debug.log", "ignored\n");
    writeBytes(root / "keep.log", "kept by a negation\n");
    writeBytes(root / "build/out.txt", "ignored folder\n");
    writeBytes(root / "build/keep.txt", "a parent folder is ignored: the negation cannot win\n");
    writeBytes(root / "sub/.gitignore", "*.tmp\n!important.tmp\n");
    writeBytes(root / "sub/x.tmp", "ignored by the nested file\n");
    writeBytes(root / "sub/important.tmp", "re-included by the nested file\n");
    writeBytes(root / "sub/deeper/.gitignore", "!*.log\n");
    writeBytes(root / "sub/deeper/trace.log", "re-included deeper down\n");
    writeBytes(root / "sub/deeper/code.cpp", "int main() {\n    return 0;\n}\n");
}

std::set<std::string> toSet(const std::vector<std::string>& v) {
    return {v.begin(), v.end()};
}

std::string reasonFor(const Document& d, const std::string& item) {
    for (const auto& s : d.skipped) {
        if (s.item == item)
            return s.reason;
    }
    return {};
}

bool holdsFile(const Document& d, const std::string& path) {
    return lineCountOf(d, path) > 0 ||
           std::any_of(d.segments.begin(), d.segments.end(),
                       [&](const Segment& s) { return s.locator.path == path; });
}

}  // namespace

class IngestRepositoryTest : public QObject {
    Q_OBJECT

  private:
    fs::path dir_;
    fs::path repo_;

    ToolRun git(const QStringList& args) { return runTool(QStringLiteral("git"), args, qs(repo_)); }

  private slots:
    void initTestCase() {
        dir_ = freshScratchDir("repository");
        repo_ = dir_ / "repo";
        fs::create_directories(repo_);
        if (runTool(QStringLiteral("git"), {QStringLiteral("--version")}).exitCode != 0)
            QSKIP("git is not installed");
        QCOMPARE(git({"init", "-q"}).exitCode, 0);
        writeIgnoreTree(repo_);
        writeBytes(repo_ / ".git/info/exclude", "secret.txt\n");
        writeBytes(repo_ / "secret.txt", "ignored by info/exclude\n");
        writeBytes(repo_ / "forced.log", "tracked although ignored\n");
        QCOMPARE(git({"add", "."}).exitCode, 0);
        QCOMPARE(git({"add", "-f", "forced.log"}).exitCode, 0);
        QCOMPARE(
            git({"-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init"}).exitCode,
            0);
        writeBytes(repo_ / "untracked.md", "# not yet added\n");
    }

    void workTreeFilesAreExactlyGits() {
        auto listing = listRepositoryFiles(repo_);
        QVERIFY2(listing.ok(), listing.ok() ? "" : listing.error().message.c_str());
        QVERIFY(listing->gitWorkTree);
        const auto run = git({"ls-files", "--cached", "--others", "--exclude-standard"});
        QCOMPARE(run.exitCode, 0);
        std::set<std::string> expected;
        for (const QString& line : run.output.split('\n', Qt::SkipEmptyParts))
            expected.insert(line.toStdString());
        QCOMPARE(toSet(listing->files), expected);
        // and spelled out, so that the test does not depend on git alone
        const std::set<std::string> named = {".gitignore",
                                             "a.txt",
                                             "keep.log",
                                             "forced.log",
                                             "untracked.md",
                                             "sub/.gitignore",
                                             "sub/important.tmp",
                                             "sub/deeper/.gitignore",
                                             "sub/deeper/trace.log",
                                             "sub/deeper/code.cpp"};
        QCOMPARE(toSet(listing->files), named);
    }

    void plainFolderHonoursItsIgnoreFiles() {
        const fs::path plain = dir_ / "plain";
        writeIgnoreTree(plain);
        auto listing = listRepositoryFiles(plain);
        QVERIFY2(listing.ok(), listing.ok() ? "" : listing.error().message.c_str());
        QVERIFY(!listing->gitWorkTree);
        const std::set<std::string> named = {".gitignore",
                                             "a.txt",
                                             "keep.log",
                                             "sub/.gitignore",
                                             "sub/important.tmp",
                                             "sub/deeper/.gitignore",
                                             "sub/deeper/trace.log",
                                             "sub/deeper/code.cpp"};
        QCOMPARE(toSet(listing->files), named);
        QVERIFY(!fs::exists(plain / ".git"));  // nothing written into the folder
    }

    void subfolderOfAWorkTree() {
        auto listing = listRepositoryFiles(repo_ / "sub");
        QVERIFY(listing.ok());
        QVERIFY(listing->gitWorkTree);
        const std::set<std::string> named = {".gitignore", "important.tmp", "deeper/.gitignore",
                                             "deeper/trace.log", "deeper/code.cpp"};
        QCOMPARE(toSet(listing->files), named);
    }

    void ignoredSubfolderIsReadAsAPlainFolder() {
        auto listing = listRepositoryFiles(repo_ / "build");
        QVERIFY(listing.ok());
        QVERIFY(!listing->gitWorkTree);
        QCOMPARE(toSet(listing->files), (std::set<std::string>{"keep.txt", "out.txt"}));
    }

    void problemFilesAreSkippedWithReasons() {
        const fs::path root = dir_ / "problems";
        writeBytes(root / "ok.cpp", "// fine\nint x = 1;\n");
        writeBytes(root / "image.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
        writeBytes(root / "latin1.txt", "Na\xEFve caf\xE9\n");
        {
            std::ofstream huge(root / "huge.txt", std::ios::binary);
            const std::string line(1023, 'x');
            for (int i = 0; i < 50 * 1024; ++i)
                huge << line << '\n';  // 50 MiB of text
        }
        fs::create_symlink("loop_b", root / "loop_a");
        fs::create_symlink("loop_a", root / "loop_b");
        fs::create_symlink(".", root / "self");
        fs::create_symlink("ok.cpp", root / "alias.cpp");
        fs::create_symlink("/etc/hostname", root / "outside.txt");
        fs::create_symlink("missing.txt", root / "dangling.txt");
        writeBytes(root / "locked.txt", "no access\n");
        fs::permissions(root / "locked.txt", fs::perms::none);

        auto doc = ingestRepository(root, {});
        QVERIFY2(doc.ok(), doc.ok() ? "" : doc.error().message.c_str());
        QVERIFY(holdsFile(*doc, "ok.cpp"));
        QVERIFY(holdsFile(*doc, "alias.cpp"));  // a link to a file inside the source
        QVERIFY(reasonFor(*doc, "image.png").find("binary") != std::string::npos);
        QVERIFY2(reasonFor(*doc, "huge.txt").find("over the 4 MiB size cap (50 MiB)") !=
                     std::string::npos,
                 reasonFor(*doc, "huge.txt").c_str());
        QVERIFY(reasonFor(*doc, "loop_a").find("symbolic link loop") != std::string::npos);
        QVERIFY(reasonFor(*doc, "loop_b").find("symbolic link loop") != std::string::npos);
        QVERIFY(reasonFor(*doc, "self").find("folder (not followed)") != std::string::npos);
        QVERIFY(reasonFor(*doc, "outside.txt").find("outside the source") != std::string::npos);
        QVERIFY(reasonFor(*doc, "dangling.txt").find("broken symbolic link") != std::string::npos);
        if (::geteuid() != 0)
            QVERIFY(reasonFor(*doc, "locked.txt").find("unreadable") != std::string::npos);
        else
            QVERIFY(holdsFile(*doc, "locked.txt"));  // root reads everything
        // Latin-1 converted, with a warning naming the file
        QCOMPARE(originalLines(*doc, "latin1.txt", 1, 1), std::string("Na\xC3\xAFve caf\xC3\xA9"));
        QVERIFY(std::any_of(doc->warnings.begin(), doc->warnings.end(), [](const std::string& w) {
            return w.starts_with("latin1.txt: not UTF-8; converted from Windows-1252");
        }));
        // a larger cap lets the big file in
        IngestSettings roomy;
        roomy.maxFileBytes = uint64_t{64} << 20;
        roomy.exclude = {"loop_*", "self"};
        auto big = ingestRepository(root, roomy);
        QVERIFY(big.ok());
        QVERIFY(holdsFile(*big, "huge.txt"));
        QCOMPARE(lineCountOf(*big, "huge.txt"), 50 * 1024);
        QVERIFY(reasonFor(*big, "loop_a").find("excluded by the glob \"loop_*\"") !=
                std::string::npos);
        fs::permissions(root / "locked.txt", fs::perms::owner_all);
        fs::remove(root / "huge.txt");
    }

    void filesGetHeadersAndNumberedLinesInPathOrder() {
        IngestSettings only;
        only.include = {"sub/**"};
        auto doc = ingestRepository(repo_, only);
        QVERIFY(doc.ok());
        QCOMPARE(doc->kind, SourceKind::Repository);
        QCOMPARE(doc->name, std::string("repo"));
        QCOMPARE(doc->fileCount, 5);
        QVERIFY(
            doc->text.find("<file path=\"sub/deeper/code.cpp\" lines=\"1-3\">\n1| int main() {\n"
                           "2|     return 0;\n3| }\n</file>\n") != std::string::npos);
        QCOMPARE(reasonFor(*doc, "a.txt"), std::string("not matched by any include glob"));
        QVERIFY(doc->text.find("sub/.gitignore") < doc->text.find("sub/deeper/code.cpp"));
        auto again = ingestRepository(repo_, only);
        QCOMPARE(again->contentHash, doc->contentHash);
        writeBytes(repo_ / "sub/deeper/code.cpp", "int main() {\n    return 1;\n}\n");
        auto changed = ingestRepository(repo_, only);
        QVERIFY(changed->contentHash != doc->contentHash);
    }

    void cliReportsSourcesAsJson() {
#ifndef FOLIO_CLI_BINARY
        QSKIP("folio-cli is not built");
#else
        const auto tokDir = kimiTestTokenizerDir("repository");
        writeBytes(dir_ / "note.txt", "a short note\n");
        const auto run = runTool(QStringLiteral(FOLIO_CLI_BINARY),
                                 {"ingest", "--json", "--tokenizer", qs(tokDir), qs(repo_),
                                  qs(dir_ / "note.txt"), qs(dir_ / "missing.pdf")});
        QCOMPARE(run.exitCode, 1);  // one source failed
        const QJsonObject root = QJsonDocument::fromJson(run.output.toUtf8()).object();
        const QJsonArray sources = root[QStringLiteral("sources")].toArray();
        QCOMPARE(sources.size(), 3);
        const QJsonObject repo = sources[0].toObject();
        QCOMPARE(repo[QStringLiteral("kind")].toString(), QStringLiteral("repository"));
        QCOMPARE(repo[QStringLiteral("files")].toInt(), 10);
        QVERIFY(repo[QStringLiteral("tokens")].toInteger() > 50);
        QVERIFY(repo[QStringLiteral("seconds")].toDouble() > 0);
        const QJsonObject note = sources[1].toObject();
        QCOMPARE(note[QStringLiteral("kind")].toString(), QStringLiteral("text"));
        QVERIFY(!sources[2].toObject()[QStringLiteral("ok")].toBool());
        QCOMPARE(root[QStringLiteral("totalTokens")].toInteger(),
                 repo[QStringLiteral("tokens")].toInteger() +
                     note[QStringLiteral("tokens")].toInteger());

        const auto plain =
            runTool(QStringLiteral(FOLIO_CLI_BINARY), {"ingest", qs(repo_), "--exclude", "*.log"});
        QCOMPARE(plain.exitCode, 0);
        QVERIFY2(plain.output.contains("tokens not counted"), qPrintable(plain.output));
        QVERIFY2(plain.output.contains("keep.log: excluded by the glob \"*.log\""),
                 qPrintable(plain.output));
#endif
    }
};

QTEST_MAIN(IngestRepositoryTest)
#include "test_ingest_repository.moc"
