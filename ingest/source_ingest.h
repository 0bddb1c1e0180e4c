// SPDX-License-Identifier: GPL-3.0-or-later
// The one entry point for turning a path into a Document: a folder is a repository (or plain
// folder), a file starting with "%PDF-" or named *.pdf is a PDF, anything else is a text file.
// Owns: nothing. Promises: the document's ingestSeconds is the wall time of the whole call; with a
// tokenizer the token counts are filled in, without one they stay -1 (tokensCounted() false) and
// nothing is estimated. Never blocks on anything but the file system and its own worker threads.
#pragma once

#include <filesystem>

#include "document.h"
#include "inference/result.h"
#include "inference/tokenizer/tokenizer.h"
#include "ingest_settings.h"

namespace folio::ingest {

Result<SourceKind> detectSourceKind(const std::filesystem::path& path);

// `tokenizer` may be null.
Result<Document> ingestSource(const std::filesystem::path& path, const IngestSettings& settings,
                              const tokenizer::Tokenizer* tokenizer);

}  // namespace folio::ingest
