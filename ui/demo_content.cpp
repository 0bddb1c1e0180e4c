// SPDX-License-Identifier: GPL-3.0-or-later
#include "demo_content.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>

#include "inference/model_builder.h"

namespace folio::ui {

Status ensureDemoModel(const QString& folder) {
    const QDir dir(folder);
    if (QFileInfo::exists(dir.filePath("model.safetensors")) &&
        QFileInfo::exists(dir.filePath("tiktoken.model")) &&
        QFileInfo::exists(dir.filePath("tokenizer_config.json")))
        return {};
    FOLIO_ASSIGN_OR_RETURN(std::string json, inference::presetConfigJson("demo"));
    return inference::writeRandomModel(folder.toStdString(), json, 1234);
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
