// SPDX-License-Identifier: GPL-3.0-or-later
// PDF files as sources, through Poppler's Qt 6 binding. Owns: the Poppler documents it opens
// (one per worker thread: a Poppler::Document must not be used from two threads at once, so each
// worker opens its own and pages are handed out one at a time). Promises: every page becomes a
// segment "<page n="N"> ... </page>" with its word boxes, in Poppler's reading order (columns,
// then lines); pages without a text layer are marked in the text and listed as skipped, never
// silently empty; an encrypted file without its password, or with a wrong one, is a clear error
// (checkPdfAccess() tells which, for a password prompt); a damaged file is an error, and a
// truncated one that Poppler can still partly read gives its readable pages plus a warning.
// Pages are processed one at a time per worker, so memory holds one page's layout per thread.
// Never renders pages or runs JavaScript.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "document.h"
#include "inference/result.h"
#include "ingest_settings.h"

namespace folio::ingest {

enum class PdfAccess { Open, NeedsPassword, WrongPassword };

// Whether the file opens with `password` (empty: none). Errors: missing, damaged, not a PDF.
Result<PdfAccess> checkPdfAccess(const std::filesystem::path& path, const std::string& password);

// Called from worker threads after each page.
using PageProgress = std::function<void(int pagesDone, int pageCount)>;

Result<Document> ingestPdf(const std::filesystem::path& path, const IngestSettings& settings,
                           const PageProgress& progress = {});

}  // namespace folio::ingest
