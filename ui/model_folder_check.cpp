// SPDX-License-Identifier: GPL-3.0-or-later
#include "model_folder_check.h"

#include <QDir>
#include <QFileInfo>

#include "inference/checkpoint.h"
#include "inference/model_config.h"

namespace folio::ui {

QStringList modelFolderProblems(const QString& folder) {
    QStringList problems;
    const QDir dir(folder);
    if (folder.isEmpty() || !dir.exists())
        return {QStringLiteral("the folder does not exist")};
    const auto path = [&](const char* name) { return dir.filePath(QString::fromLatin1(name)); };

    if (!QFileInfo::exists(path("config.json"))) {
        problems << QStringLiteral("config.json is missing (the model's configuration)");
    } else if (auto config = inference::loadModelConfig(path("config.json").toStdString());
               !config) {
        problems << QStringLiteral("config.json: %1")
                        .arg(QString::fromStdString(config.error().message));
    }

    const bool single = QFileInfo::exists(path("model.safetensors"));
    const bool sharded = QFileInfo::exists(path("model.safetensors.index.json"));
    if (!single && !sharded) {
        problems << QStringLiteral(
            "the weights are missing: neither model.safetensors nor "
            "model.safetensors.index.json with its model-*.safetensors shards");
    } else if (auto weights = inference::Checkpoint::open(folder.toStdString()); !weights) {
        problems
            << QStringLiteral("weights: %1").arg(QString::fromStdString(weights.error().message));
    }

    if (!QFileInfo::exists(path("tiktoken.model")))
        problems << QStringLiteral("tiktoken.model is missing (the tokenizer's vocabulary)");
    if (!QFileInfo::exists(path("tokenizer_config.json")))
        problems << QStringLiteral(
            "tokenizer_config.json is missing (the tokenizer's special tokens)");
    return problems;
}

QString describeModelFolderProblems(const QString& folder, const QStringList& problems) {
    QString text =
        QStringLiteral("The folder %1 is not a Kimi Linear checkpoint Folio can open:").arg(folder);
    for (const QString& p : problems)
        text += QStringLiteral("\n• ") + p;
    text += QStringLiteral(
        "\n\nDownload moonshotai/Kimi-Linear-48B-A3B-Instruct (all files) into one folder and "
        "choose that folder.");
    return text;
}

}  // namespace folio::ui
