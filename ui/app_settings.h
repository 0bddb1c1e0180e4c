// SPDX-License-Identifier: GPL-3.0-or-later
// AppSettings: the user's choices as QSettings keeps them — model folder (or the demo model),
// backend and CUDA device, sampling, snapshot disk budget, data folder — and the LaunchOptions
// they make. Owns: plain values. Promises: load() of what save() wrote gives the same values;
// missing keys give the defaults (CPU, greedy, 64 GiB, ~/.local/share/folio). Never validates
// the model folder (model_folder_check.h does).
#pragma once

#include <QSettings>
#include <QString>

#include <cstdint>

#include "launch_options.h"

namespace folio::ui {

struct AppSettings {
    QString dataDir;   // empty: the default data folder
    QString modelDir;  // a Kimi Linear checkpoint folder; empty: none chosen yet
    bool useDemoModel = false;
    bool useCuda = false;
    int cudaDevice = 0;
    int cpuThreads = 0;  // 0: one per hardware thread
    double temperature = 0.0;
    int topK = 0;
    double topP = 1.0;
    double repetitionPenalty = 1.0;
    qint64 seed = 0;
    int maxAnswerTokens = 512;
    int diskBudgetGiB = 64;

    static AppSettings load(QSettings& settings);
    void save(QSettings& settings) const;

    // True when a model (a folder or the demo) has been chosen.
    bool hasModel() const { return useDemoModel || !modelDir.isEmpty(); }
    QString effectiveDataDir() const;
    LaunchOptions launchOptions() const;
};

QString defaultDataDir();

}  // namespace folio::ui
