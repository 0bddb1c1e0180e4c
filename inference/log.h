// SPDX-License-Identifier: GPL-3.0-or-later
// The engine's logging seam. The engine never writes to the console or to files itself: it hands
// each message to one process-wide sink. Applications install a sink that forwards to spdlog
// (console + rotating file); without one, messages at Warn and above go to stderr.
#pragma once

#include <functional>
#include <string_view>

namespace folio::inference {

enum class LogLevel { Debug, Info, Warn, Error };

using LogSink = std::function<void(LogLevel, std::string_view)>;

// Installs the sink (thread-safe). An empty sink restores the stderr default.
void setLogSink(LogSink sink);

// Sends one message to the sink (thread-safe).
void log(LogLevel level, std::string_view message);

}  // namespace folio::inference
