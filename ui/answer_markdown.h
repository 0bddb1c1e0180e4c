// SPDX-License-Identifier: GPL-3.0-or-later
// Turns an answer into the Markdown the chat pane shows: every citation the model wrote
// ("[contract.pdf p.3]", "[src/a.cpp:L10-L20]", found by ingest::findCitations) becomes a link
// "folio-cite:ENTRY-INDEX" the pane resolves when clicked; and formats an answer's statistics.
// Owns: nothing. Promises: the answer's text is kept as the model wrote it, apart from the
// citations becoming links; citations are numbered in the order they appear. Never resolves a
// citation (the main window does, against the session's documents).
#pragma once

#include <QString>
#include <QUrl>

#include <optional>
#include <string>
#include <vector>

#include "ingest/citations.h"
#include "storage/catalog.h"

namespace folio::ui {

struct LinkedAnswer {
    QString markdown;
    std::vector<ingest::Citation> citations;  // in order; link i is citations[i]
};

LinkedAnswer linkCitations(const std::string& answer, int entry);

QUrl citationUrl(int entry, int index);
struct CitationRef {
    int entry = 0;
    int index = 0;
};
std::optional<CitationRef> parseCitationUrl(const QUrl& url);

// "1,024 tokens reused (memory) · 38 prefilled · first token after 120 ms · 64 tokens at 45.2/s"
QString formatAnswerStats(const storage::AnswerStats& stats, const QString& reusedFrom);

// 1048576 -> "1,048,576"
QString groupedNumber(int64_t value);

}  // namespace folio::ui
