// SPDX-License-Identifier: GPL-3.0-or-later
// LaunchOptions: everything the main window needs to open a data folder and a model — where
// they are, whether the model is the bundled demo, the engine's backend, the snapshot budget and
// the sampling settings used for questions. Built from the saved settings by the application, and
// directly by the tests (tiny model, temporary data folder).
// Owns: plain values. Promises: serviceOptions() maps them onto SessionService's options without
// touching the disk. Never reads or writes QSettings itself.
#pragma once

#include <QString>

#include <cstdint>

#include "session/answer_generation.h"
#include "session/session_service.h"

namespace folio::ui {

inline constexpr const char* kDemoModelLabel = "Demo model — answers are not meaningful";

struct LaunchOptions {
    QString dataDir;
    QString modelDir;        // with demoModel: where the demo model is (written when missing)
    bool demoModel = false;  // the bundled random-weight model: labelled everywhere it is used
    // Where the bundled public-domain texts are; with demoModel and an empty data folder a demo
    // session is created from them. Empty: no demo session.
    QString demoCorpusDir;
    inference::EngineOptions engine;
    int64_t diskBudgetBytes = int64_t{64} << 30;
    session::GenerationSettings generation;

    session::ServiceOptions serviceOptions() const;
};

// The demo model's folder inside a data folder: DATA/models/demo.
QString demoModelDirIn(const QString& dataDir);

}  // namespace folio::ui
