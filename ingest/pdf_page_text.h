// SPDX-License-Identifier: GPL-3.0-or-later
// Turns the words Poppler found on one page (already in its reading order: columns, then blocks,
// then lines) into the page's text and word boxes. Owns: nothing. Promises: words on one line are
// joined with a space where the PDF had one; lines end with '\n'; a paragraph or column change
// (a vertical gap, or a jump back up the page) adds a blank line; lines written right to left are
// given in logical order; Arabic presentation forms and Latin ligatures (U+FB00-U+FEFF) are folded
// to their plain letters (NFKC) so the text is searchable. Never depends on Poppler types.
#pragma once

#include <QRectF>
#include <QString>

#include <string>
#include <vector>

#include "document.h"

namespace folio::ingest {

struct PdfWord {
    QString text;
    QRectF box;  // points, displayed orientation
    bool spaceAfter = false;
    bool lastOnLine = false;  // no next word on the same line
};

struct PageText {
    std::string text;            // UTF-8, ends with '\n' unless empty
    std::vector<WordBox> words;  // textBegin relative to `text`
};

PageText buildPageText(const std::vector<PdfWord>& words);

}  // namespace folio::ingest
