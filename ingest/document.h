// SPDX-License-Identifier: GPL-3.0-or-later
// Document: what ingesting one source produces — the UTF-8 text the model reads, cut into segments
// that each carry a locator (a PDF page with its word boxes, or a file path and line range) and,
// once counted, their token range; the content hash; and every item left out with its reason.
// Owns: plain values only (no Poppler, libgit2 or tokenizer objects). Promises: segments cover
// `text` in order without gaps or overlap; byte ranges index `text`; token ranges (when counted)
// are relative to the document's own token stream, which is the concatenation of its segments
// tokenized one by one. Never refers back to the file it came from after ingest returns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace folio::ingest {

enum class SourceKind { Pdf, Repository, TextFile };

const char* sourceKindName(SourceKind kind);  // "pdf", "repository", "text"

// Where a piece of text came from. Pages and lines are 1-based.
struct Locator {
    enum class Kind { Page, Lines };
    Kind kind = Kind::Page;
    int page = 0;       // Kind::Page
    std::string path;   // Kind::Lines: the file's path relative to the source root ('/'-separated)
    int firstLine = 0;  // Kind::Lines, inclusive
    int lastLine = 0;   // Kind::Lines, inclusive

    static Locator forPage(int pageNumber) { return {Kind::Page, pageNumber, {}, 0, 0}; }
    static Locator forLines(std::string filePath, int first, int last) {
        return {Kind::Lines, 0, std::move(filePath), first, last};
    }
    // "p.3" or "src/a.cpp:L10-L20", the way citations spell it.
    std::string describe() const;
    bool operator==(const Locator&) const = default;
};

// A word on a PDF page, in points (1/72 in) in the page's displayed (rotated) orientation.
struct WordBox {
    double x = 0, y = 0, width = 0, height = 0;
    uint32_t textBegin = 0;   // byte offset into Document::text
    uint32_t textLength = 0;  // bytes
};

struct Segment {
    Locator locator;
    size_t textBegin = 0;  // byte range in Document::text
    size_t textEnd = 0;
    int64_t tokenBegin = -1;  // token range in the document's token stream; -1 until counted
    int64_t tokenEnd = -1;
    std::vector<WordBox> words;  // PDF pages only
    bool hasTextLayer = true;    // false: a PDF page without text (image-only or blank)
};

// Something the source holds that is not in the text, and why.
struct SkippedItem {
    std::string item;    // "page 7", "assets/logo.png"
    std::string reason;  // "binary file", "over the 4 MiB size cap (52,428,800 bytes)", ...
};

struct Document {
    SourceKind kind = SourceKind::TextFile;
    std::string name;        // display name used in citations: file name or folder name
    std::string originPath;  // absolute path the source was read from
    std::string title;       // PDF metadata title, when there is one
    std::string text;        // UTF-8
    std::vector<Segment> segments;
    std::vector<SkippedItem> skipped;
    std::vector<std::string> warnings;  // readable problems: truncation, converted encodings
    std::string contentHash;            // SHA-256 hex of the bytes read and the ingest settings
    int pageCount = 0;                  // PDF: pages in the file
    int fileCount = 0;                  // repository / text: files included
    int64_t tokenCount = -1;            // -1 until counted
    double ingestSeconds = 0;

    bool tokensCounted() const { return tokenCount >= 0; }
    std::string_view segmentText(const Segment& segment) const {
        return std::string_view(text).substr(segment.textBegin,
                                             segment.textEnd - segment.textBegin);
    }
};

// Human-readable byte sizes for reasons and reports: "4 MiB", "312 KiB", "17 bytes".
std::string formatBytes(uint64_t bytes);

}  // namespace folio::ingest
