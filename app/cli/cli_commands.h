// SPDX-License-Identifier: GPL-3.0-or-later
// The subcommands of folio-cli. Each takes the arguments after its name and returns the process
// exit code (0 success, 1 failure, 2 usage error); each prints its own help for --help. Owns:
// nothing. Promises: output goes to stdout, diagnostics to stderr. Never calls exit().
#pragma once

#include <QStringList>

namespace folio::cli {

// folio-cli ingest PATH... [--json] [--tokenizer DIR] ... (ingest_command.cpp)
int runIngestCommand(const QStringList& args);

// folio-cli session ... (session_command.cpp, present when the session library is built)
int runSessionCommand(const QStringList& args);

}  // namespace folio::cli
