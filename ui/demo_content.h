// SPDX-License-Identifier: GPL-3.0-or-later
// The bundled demo: the demo model (random weights, written by Folio's own model builder the first
// time it is needed) and the demo corpus (short public-domain texts in resources/demo-corpus)
// from which a ready-to-ask session is made on first start.
// Owns: nothing. Promises: locateDemoModelFolder() gives a complete model folder (the installed
// or built one, else `fallback`, written there when missing) or an error;
// bundledDemoCorpusDir() finds the corpus next to an installed executable
// (../share/folio/demo-corpus) or in the source tree of an uninstalled build. Never overwrites
// a model folder that already holds a model.
#pragma once

#include <QString>
#include <QStringList>

#include "inference/result.h"

namespace folio::ui {

inline constexpr const char* kDemoSessionName = "Demo: public-domain texts";

Result<QString> locateDemoModelFolder(const QString& fallback);

// Empty when no corpus is found.
QString bundledDemoCorpusDir();

// The corpus's text files (not its README), sorted by name.
QStringList demoCorpusFiles(const QString& corpusDir);

}  // namespace folio::ui
