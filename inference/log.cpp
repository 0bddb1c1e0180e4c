// SPDX-License-Identifier: GPL-3.0-or-later
#include "log.h"

#include <cstdio>
#include <mutex>
#include <string>

namespace folio::inference {
namespace {

std::mutex& sinkMutex() {
    static std::mutex mutex;
    return mutex;
}

LogSink& currentSink() {
    static LogSink sink;
    return sink;
}

const char* levelName(LogLevel level) {
    switch (level) {
        case LogLevel::Debug:
            return "debug";
        case LogLevel::Info:
            return "info";
        case LogLevel::Warn:
            return "warning";
        case LogLevel::Error:
            return "error";
    }
    return "log";
}

}  // namespace

void setLogSink(LogSink sink) {
    std::lock_guard lock(sinkMutex());
    currentSink() = std::move(sink);
}

void log(LogLevel level, std::string_view message) {
    std::lock_guard lock(sinkMutex());
    if (currentSink()) {
        currentSink()(level, message);
        return;
    }
    if (level >= LogLevel::Warn) {
        std::fprintf(stderr, "folio engine %s: %.*s\n", levelName(level),
                     static_cast<int>(message.size()), message.data());
    }
}

}  // namespace folio::inference
