// SPDX-License-Identifier: GPL-3.0-or-later
// Shared by the GUI suites: the tiny generated model (one per suite, so suites can run in
// parallel), a fresh data folder, launch options that keep the CPU engine fast, settings kept
// apart from the user's, screenshots, and clicking a link in a text browser.
// Owns: nothing. Promises: everything a suite writes is under FOLIO_TEST_OUTPUT_DIR/<suite>;
// screenshots go to FOLIO_SCREENSHOT_DIR. Never sleeps to synchronise.
#pragma once

#include <QCoreApplication>
#include <QDir>
#include <QStandardPaths>
#include <QTest>
#include <QTextBlock>
#include <QTextBrowser>
#include <QWidget>

#include <filesystem>
#include <fstream>
#include <string>

#include "../session/session_test_support.h"
#include "inference/model_builder.h"
#include "ui/launch_options.h"

namespace folio::ui::testing {

// The tiny model and the deterministic source texts of the session suites.
using session::testing::ensureTinyModel;
using session::testing::sourceText;

inline constexpr int kTimeoutMs = 120'000;  // generous: CI has two slow cores

inline std::filesystem::path suiteRoot(const char* suite) {
    return std::filesystem::path(FOLIO_TEST_OUTPUT_DIR) / suite;
}

// QSettings and standard paths of the tests, apart from the user's.
inline void isolateSettings(const char* suite) {
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(QStringLiteral("folio-tests"));
    QCoreApplication::setApplicationName(QString::fromLatin1(suite));
}

inline std::filesystem::path freshDir(const std::filesystem::path& dir) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

inline LaunchOptions tinyOptions(const std::filesystem::path& data,
                                 const std::filesystem::path& model) {
    LaunchOptions o;
    o.dataDir = QString::fromStdString(data.string());
    o.modelDir = QString::fromStdString(model.string());
    o.engine.threads = 2;
    o.engine.kdaAlgorithm = inference::KdaAlgorithm::Recurrent;
    o.engine.prefillChunkTokens = 128;
    o.generation.maxTokens = 40;
    return o;
}

inline QString writeTextFile(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return QString::fromStdString(path.string());
}

// Saves what the window shows as FOLIO_SCREENSHOT_DIR/<name>.png; false when it could not.
inline bool saveScreenshot(QWidget* window, const QString& name) {
    QDir().mkpath(QStringLiteral(FOLIO_SCREENSHOT_DIR));
    const QString path = QDir(QStringLiteral(FOLIO_SCREENSHOT_DIR)).filePath(name + ".png");
    return window->grab().save(path);
}

// Clicks, with the mouse, the first link in `browser` whose target starts with `hrefPrefix`.
inline bool clickLink(QTextBrowser* browser, const QString& hrefPrefix) {
    for (QTextBlock block = browser->document()->begin(); block.isValid(); block = block.next()) {
        for (auto it = block.begin(); !it.atEnd(); ++it) {
            const QTextFragment f = it.fragment();
            if (!f.charFormat().isAnchor() || !f.charFormat().anchorHref().startsWith(hrefPrefix))
                continue;
            QTextCursor cursor(browser->document());
            cursor.setPosition(f.position() + f.length() / 2);
            browser->setTextCursor(cursor);
            browser->ensureCursorVisible();
            const QPoint at = browser->cursorRect(cursor).center();
            QTest::mouseMove(browser->viewport(), at);
            QTest::mouseClick(browser->viewport(), Qt::LeftButton, Qt::NoModifier, at);
            return true;
        }
    }
    return false;
}

}  // namespace folio::ui::testing
