// SPDX-License-Identifier: GPL-3.0-or-later
#include "document_codec.h"

#include <charconv>

namespace folio::session {
namespace {

Result<ingest::SourceKind> kindFromName(const std::string& name) {
    for (auto kind :
         {ingest::SourceKind::Pdf, ingest::SourceKind::Repository, ingest::SourceKind::TextFile})
        if (name == ingest::sourceKindName(kind))
            return kind;
    return makeError(ErrorCode::Format, "unknown source kind \"", name, "\"");
}

bool parseInt(std::string_view text, int& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string encodeLocator(const ingest::Locator& locator) {
    if (locator.kind == ingest::Locator::Kind::Page)
        return cat("page:", locator.page);
    return cat("lines:", locator.firstLine, ":", locator.lastLine, ":", locator.path);
}

Result<ingest::Locator> decodeLocator(const std::string& text) {
    auto bad = [&] { return makeError(ErrorCode::Format, "malformed locator \"", text, "\""); };
    if (text.rfind("page:", 0) == 0) {
        int page = 0;
        if (!parseInt(std::string_view(text).substr(5), page))
            return bad();
        return ingest::Locator::forPage(page);
    }
    if (text.rfind("lines:", 0) == 0) {
        const size_t a = text.find(':', 6);
        const size_t b = a == std::string::npos ? a : text.find(':', a + 1);
        int first = 0, last = 0;
        if (b == std::string::npos || !parseInt(std::string_view(text).substr(6, a - 6), first) ||
            !parseInt(std::string_view(text).substr(a + 1, b - a - 1), last))
            return bad();
        return ingest::Locator::forLines(text.substr(b + 1), first, last);
    }
    return bad();
}

DocumentRows rowsFromDocument(const ingest::Document& document,
                              const ingest::IngestSettings& settings) {
    DocumentRows rows;
    rows.source.kind = ingest::sourceKindName(document.kind);
    rows.source.displayName = document.name;
    rows.source.origin = document.originPath;
    rows.source.contentHash = document.contentHash;
    rows.source.tokenCount = document.tokenCount;
    rows.source.ingestSettings = settings.fingerprint();
    rows.source.title = document.title;
    rows.source.pageCount = document.pageCount;
    rows.source.fileCount = document.fileCount;
    rows.text = document.text;
    int64_t ordinal = 0;
    for (const ingest::Segment& s : document.segments)
        rows.segments.push_back({ordinal++, encodeLocator(s.locator),
                                 static_cast<int64_t>(s.textBegin), static_cast<int64_t>(s.textEnd),
                                 s.tokenBegin, s.tokenEnd});
    return rows;
}

Result<ingest::Document> documentFromRows(const storage::SourceRow& source, std::string text,
                                          const std::vector<storage::SegmentRow>& segments) {
    ingest::Document d;
    FOLIO_ASSIGN_OR_RETURN(d.kind, kindFromName(source.kind));
    d.name = source.displayName;
    d.originPath = source.origin;
    d.title = source.title;
    d.contentHash = source.contentHash;
    d.pageCount = static_cast<int>(source.pageCount);
    d.fileCount = static_cast<int>(source.fileCount);
    d.tokenCount = source.tokenCount;
    d.text = std::move(text);
    size_t expected = 0;
    for (const storage::SegmentRow& row : segments) {
        ingest::Segment s;
        FOLIO_ASSIGN_OR_RETURN(s.locator, decodeLocator(row.locator));
        if (row.charBegin < 0 || row.charEnd < row.charBegin ||
            static_cast<size_t>(row.charEnd) > d.text.size() ||
            static_cast<size_t>(row.charBegin) != expected)
            return makeError(ErrorCode::Format, "source ", source.id, " segment ", row.ordinal,
                             " has a byte range that does not continue the text");
        s.textBegin = static_cast<size_t>(row.charBegin);
        s.textEnd = static_cast<size_t>(row.charEnd);
        expected = s.textEnd;
        s.tokenBegin = row.tokenBegin;
        s.tokenEnd = row.tokenEnd;
        d.segments.push_back(std::move(s));
    }
    return d;
}

}  // namespace folio::session
