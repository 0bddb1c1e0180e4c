// SPDX-License-Identifier: GPL-3.0-or-later
// Logging for Folio's Qt-free tools: spdlog to the console and to a rotating file in the data
// folder, with the engine's log sink forwarded to it. Without spdlog (e.g. a minimal GPU build),
// messages go to stderr.
#pragma once

#include <filesystem>
#include <string>

namespace folio::tools {

// $FOLIO_DATA_DIR, else $XDG_DATA_HOME/folio, else ~/.local/share/folio.
std::filesystem::path dataFolder();

// Sets up logging for tool `name`; `verbose` shows debug messages on the console.
void initLogging(const std::string& name, bool verbose);

}  // namespace folio::tools
