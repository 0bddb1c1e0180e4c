// SPDX-License-Identifier: GPL-3.0-or-later
// Citations in answers: finding "[name p.N]" and "[path:L1-L2]" (as the system turn asks for) and
// resolving them to the locators ingest recorded, so the viewer can open the exact page or lines.
// Owns: nothing. Promises: findCitations() reports every citation with its byte range in the
// answer, also several in one bracket separated by ';' and the variants models write ("p. 3",
// "pp. 3-4", "path:12-14", "path:L12"); resolveCitation() matches names exactly first, then
// without case or extension (PDF titles too), and paths exactly first, then by a unique suffix;
// pages and lines outside the document are errors, never clamped silently. Never modifies answers.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "document.h"
#include "inference/result.h"
#include "prompt_assembly.h"

namespace folio::ingest {

struct Citation {
    size_t begin = 0;  // byte range in the answer of the whole bracket
    size_t end = 0;
    std::string target;  // the source name (pages) or the file path (lines), as written
    Locator::Kind kind = Locator::Kind::Page;
    int first = 0;  // page or line
    int last = 0;   // page or line (== first for one)
};

std::vector<Citation> findCitations(std::string_view answer);

struct ResolvedCitation {
    size_t sourceIndex = 0;        // index into the sources passed in
    Locator locator;               // Page: the first page cited; Lines: path and range
    int lastPage = 0;              // Page: the last page cited
    std::vector<size_t> segments;  // indices into the document's segments
};

Result<ResolvedCitation> resolveCitation(const Citation& citation,
                                         std::span<const SourceInput> sources);

// The text a locator points at: a page's text, or a file's lines without numbers.
std::string citedText(const Document& document, const Locator& locator);

}  // namespace folio::ingest
