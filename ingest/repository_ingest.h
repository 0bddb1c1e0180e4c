// SPDX-License-Identifier: GPL-3.0-or-later
// Code repositories and folders as sources: the files repository_files.h selects, filtered by the
// include / exclude globs, read in parallel, each rendered as numbered lines under a header with
// its path (numbered_lines.h). Owns: nothing it keeps. Promises: every file that is left out is in
// `skipped` with its reason — excluded by a glob, binary, over the size cap, a symbolic link loop,
// a link to a folder or outside the source, unreadable, not text; non-UTF-8 text is converted from
// Windows-1252 with a warning naming the file (or skipped when conversion is off); files appear in
// path order, so the same tree always gives the same document and hash. Never follows a symbolic
// link out of the source or into a folder, so no link can make it loop.
#pragma once

#include <filesystem>
#include <functional>

#include "document.h"
#include "inference/result.h"
#include "ingest_settings.h"

namespace folio::ingest {

// Called from worker threads after each file.
using FileProgress = std::function<void(int filesDone, int fileCount)>;

Result<Document> ingestRepository(const std::filesystem::path& folder,
                                  const IngestSettings& settings,
                                  const FileProgress& progress = {});

}  // namespace folio::ingest
