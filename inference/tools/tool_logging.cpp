// SPDX-License-Identifier: GPL-3.0-or-later
#include "tool_logging.h"

#include <cstdlib>
#include <string_view>

#include "inference/log.h"

#if FOLIO_HAVE_SPDLOG
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#endif

namespace folio::tools {

std::filesystem::path dataFolder() {
    if (const char* explicitDir = std::getenv("FOLIO_DATA_DIR"); explicitDir && *explicitDir)
        return explicitDir;
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
        return std::filesystem::path(xdg) / "folio";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::filesystem::path(home) / ".local/share/folio";
    return std::filesystem::temp_directory_path() / "folio";
}

void initLogging(const std::string& name, bool verbose) {
#if FOLIO_HAVE_SPDLOG
    std::vector<spdlog::sink_ptr> sinks;
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    console->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
    sinks.push_back(console);
    std::error_code ec;
    const auto logDir = dataFolder() / "logs";
    std::filesystem::create_directories(logDir, ec);
    if (!ec) {
        try {
            auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
                (logDir / (name + ".log")).string(), 5 * 1024 * 1024, 3);
            file->set_level(spdlog::level::debug);
            sinks.push_back(file);
        } catch (const spdlog::spdlog_ex&) {
            // The log file is a convenience: without a writable data folder, log to the console.
        }
    }
    auto logger = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::debug);
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
    inference::setLogSink([](inference::LogLevel level, std::string_view message) {
        switch (level) {
            case inference::LogLevel::Debug:
                spdlog::debug("{}", message);
                break;
            case inference::LogLevel::Info:
                spdlog::info("{}", message);
                break;
            case inference::LogLevel::Warn:
                spdlog::warn("{}", message);
                break;
            case inference::LogLevel::Error:
                spdlog::error("{}", message);
                break;
        }
    });
#else
    (void)name;
    (void)verbose;
#endif
}

}  // namespace folio::tools
