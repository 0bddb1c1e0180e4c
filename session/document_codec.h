// SPDX-License-Identifier: GPL-3.0-or-later
// Converts between an ingested Document and its rows in the catalog, so a session's prompt can be
// assembled again from the database alone (after a restart, with the original files gone).
// Owns: nothing. Promises: documentFromRows(rowsFromDocument(d)) assembles to the same tokens as
// d (kind, name, title, counts, text, segments with locators and byte ranges, content hash);
// locators are stored as "page:N" or "lines:FIRST:LAST:PATH". Word boxes are not stored (the
// viewer reads them from the file). A malformed stored locator is a Format error.
#pragma once

#include <string>
#include <vector>

#include "inference/result.h"
#include "ingest/document.h"
#include "ingest/ingest_settings.h"
#include "storage/catalog.h"

namespace folio::session {

struct DocumentRows {
    storage::SourceRow source;  // id, session and position left for the catalog
    std::string text;
    std::vector<storage::SegmentRow> segments;
};

DocumentRows rowsFromDocument(const ingest::Document& document,
                              const ingest::IngestSettings& settings);
Result<ingest::Document> documentFromRows(const storage::SourceRow& source, std::string text,
                                          const std::vector<storage::SegmentRow>& segments);

std::string encodeLocator(const ingest::Locator& locator);
Result<ingest::Locator> decodeLocator(const std::string& text);

}  // namespace folio::session
