// SPDX-License-Identifier: GPL-3.0-or-later
// How a code or text file appears in a document: a header with its path and line count, then every
// line prefixed with its 1-based number ("12| text"), then a closing tag:
//   <file path="src/a.cpp" lines="1-120">
//   1| #include <cstdio>
//   ...
//   </file>
// Owns: nothing. Promises: the file becomes segments of at most `linesPerSegment` lines whose
// locators name the path and exact line range (the header joins the first segment, the closing
// tag the last); line numbers are those an editor shows (LF or CRLF line ends). Never alters line
// content other than dropping a line's trailing CR.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "document.h"

namespace folio::ingest {

// Appends `utf8Text` as the file `path` to `document` (text and segments).
void appendNumberedFile(Document& document, std::string_view path, std::string_view utf8Text,
                        int linesPerSegment);

// The lines [first, last] of `path` as they were in the file (numbers and markup removed),
// joined with '\n'; empty when the document has no such lines.
std::string originalLines(const Document& document, std::string_view path, int first, int last);

// Lines in the file `path` of `document` (0 when the document does not hold it).
int lineCountOf(const Document& document, std::string_view path);

// `text` split into lines: a final newline does not start another line; CR before LF dropped.
std::vector<std::string_view> splitLines(std::string_view text);

}  // namespace folio::ingest
