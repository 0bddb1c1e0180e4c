// SPDX-License-Identifier: GPL-3.0-or-later
// Shared helpers of the ingest suites: fresh output folders, running tools (qpdf, git), and a Kimi
// tokenizer built from the tokenizer suites' committed data. Owns: nothing beyond the values it
// returns. Promises: each suite works in its own folder under FOLIO_TEST_OUTPUT_DIR/ingest. Never
// writes elsewhere.
#pragma once

#include <QDir>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <string>

#include "../tokenizer/tokenizer_test_data.h"
#include "inference/tokenizer/chat_format.h"
#include "inference/tokenizer/kimi_tokenizer_files.h"

namespace folio::ingest::testing {

namespace fs = std::filesystem;

// An empty folder FOLIO_TEST_OUTPUT_DIR/ingest/<name>.
inline fs::path freshDir(const std::string& name) {
    const fs::path dir = fs::path(FOLIO_TEST_OUTPUT_DIR) / "ingest" / name;
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    return dir;
}

inline void writeBytes(const fs::path& path, std::string_view bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// An empty folder outside any git work tree (the build tree may sit inside the project's own
// repository, whose ignore rules would then apply): a temporary folder removed at exit.
inline fs::path freshScratchDir(const std::string& name) {
    static QTemporaryDir root(QDir::tempPath() + QStringLiteral("/folio-ingest-test-XXXXXX"));
    const fs::path dir = fs::path(root.path().toStdString()) / name;
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    return dir;
}

struct ToolRun {
    int exitCode = -1;
    QString output;
};

// Runs a program and waits for it (2 minutes at most); stdout and stderr together.
inline ToolRun runTool(const QString& program, const QStringList& args,
                       const QString& workingDir = {}) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    if (!workingDir.isEmpty())
        p.setWorkingDirectory(workingDir);
    p.start(program, args);
    if (!p.waitForFinished(120000))
        return {-1, QStringLiteral("did not finish")};
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1,
            QString::fromUtf8(p.readAll())};
}

inline QString qs(const fs::path& p) {
    return QString::fromStdString(p.string());
}

// Kimi's layout with the cl100k_base subset (see tests/tokenizer/tokenizer_test_data.h).
inline tokenizer::Tokenizer kimiTestTokenizer(const std::string& suite) {
    const auto dir = tokenizer::testing::makeKimiLayoutFolder("ingest_" + suite);
    auto tok = tokenizer::loadKimiTokenizer(dir);
    if (!tok)
        qFatal("%s", tok.error().message.c_str());
    return std::move(tok).value();
}

inline std::filesystem::path kimiTestTokenizerDir(const std::string& suite) {
    return tokenizer::testing::makeKimiLayoutFolder("ingest_" + suite);
}

}  // namespace folio::ingest::testing
