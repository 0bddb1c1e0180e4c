// SPDX-License-Identifier: GPL-3.0-or-later
// Plain text and Markdown files as sources. Owns: nothing. Promises: the document holds the whole
// file as numbered lines (numbered_lines.h) under its file name, so citations are
// [name:L1-L2]; text that is not UTF-8 is converted (with a warning) or refused with the reason;
// binary files are refused. Never reads more than `kMaxTextSourceBytes`.
#pragma once

#include <filesystem>

#include "document.h"
#include "inference/result.h"
#include "ingest_settings.h"

namespace folio::ingest {

inline constexpr uint64_t kMaxTextSourceBytes = uint64_t{1} << 30;

Result<Document> ingestTextFile(const std::filesystem::path& path, const IngestSettings& settings);

// Reads a whole file, refusing files over `maxBytes` (the error names the size).
Result<std::string> readFileBytes(const std::filesystem::path& path, uint64_t maxBytes);

}  // namespace folio::ingest
