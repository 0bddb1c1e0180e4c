// SPDX-License-Identifier: GPL-3.0-or-later
#include "document.h"

#include "inference/result.h"

namespace folio::ingest {

const char* sourceKindName(SourceKind kind) {
    switch (kind) {
        case SourceKind::Pdf:
            return "pdf";
        case SourceKind::Repository:
            return "repository";
        case SourceKind::TextFile:
            return "text";
    }
    return "unknown";
}

std::string Locator::describe() const {
    if (kind == Kind::Page)
        return cat("p.", page);
    if (firstLine == lastLine)
        return cat(path, ":L", firstLine);
    return cat(path, ":L", firstLine, "-L", lastLine);
}

std::string formatBytes(uint64_t bytes) {
    constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
    auto scaled = [](uint64_t value, uint64_t unit, const char* name) {
        if (value % unit == 0)
            return cat(value / unit, " ", name);
        const double v = static_cast<double>(value) / static_cast<double>(unit);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f %s", v, name);
        return std::string(buf);
    };
    if (bytes >= kGiB)
        return scaled(bytes, kGiB, "GiB");
    if (bytes >= kMiB)
        return scaled(bytes, kMiB, "MiB");
    if (bytes >= kKiB)
        return scaled(bytes, kKiB, "KiB");
    return cat(bytes, bytes == 1 ? " byte" : " bytes");
}

}  // namespace folio::ingest
