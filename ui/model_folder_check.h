// SPDX-License-Identifier: GPL-3.0-or-later
// Checks that a folder holds a Kimi Linear checkpoint Folio can open, with the engine's own
// parsers: config.json (loadModelConfig), the weights (Checkpoint::open: model.safetensors or the
// shards of model.safetensors.index.json) and the tokenizer files (tiktoken.model,
// tokenizer_config.json). Owns: nothing. Promises: every problem found is listed, each naming the
// file and what is wrong, so the user knows what to download; an empty list means it will open.
// Never loads the weights into memory (headers only) and never writes.
#pragma once

#include <QString>
#include <QStringList>

namespace folio::ui {

QStringList modelFolderProblems(const QString& folder);

// One message for a dialog: "The folder … is not a Kimi Linear checkpoint:\n• …".
QString describeModelFolderProblems(const QString& folder, const QStringList& problems);

}  // namespace folio::ui
