// SPDX-License-Identifier: GPL-3.0-or-later
#include "demo_content.h"

#include <filesystem>

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>

#include "inference/model_builder.h"

namespace folio::ui {

Result<QString> locateDemoModelFolder(const QString& fallback) {
    FOLIO_ASSIGN_OR_RETURN(std::filesystem::path found,
                           inference::locateDemoModel(fallback.toStdString()));
    return QString::fromStdString(found.string());
}

QString bundledDemoCorpusDir() {
    const QString installed = QDir(QCoreApplication::applicationDirPath())
                                  .absoluteFilePath(QStringLiteral("../share/folio/demo-corpus"));
    if (QFileInfo(installed).isDir())
        return QDir::cleanPath(installed);
#ifdef FOLIO_SOURCE_DEMO_CORPUS
    if (QFileInfo(QStringLiteral(FOLIO_SOURCE_DEMO_CORPUS)).isDir())
        return QStringLiteral(FOLIO_SOURCE_DEMO_CORPUS);
#endif
    return {};
}

QStringList demoCorpusFiles(const QString& corpusDir) {
    if (corpusDir.isEmpty())
        return {};
    const QDir dir(corpusDir);
    QStringList files;
    for (const QString& name : dir.entryList({QStringLiteral("*.txt")}, QDir::Files, QDir::Name))
        files << dir.absoluteFilePath(name);
    return files;
}

}  // namespace folio::ui
