// SPDX-License-Identifier: GPL-3.0-or-later
#include "launch_options.h"

#include <QDir>

namespace folio::ui {

session::ServiceOptions LaunchOptions::serviceOptions() const {
    session::ServiceOptions options;
    options.dataDir = dataDir.toStdString();
    options.modelDir = modelDir.toStdString();
    options.engine = engine;
    options.diskBudgetBytes = diskBudgetBytes;
    return options;
}

QString demoModelDirIn(const QString& dataDir) {
    return QDir(dataDir).filePath(QStringLiteral("models/demo"));
}

}  // namespace folio::ui
