// SPDX-License-Identifier: GPL-3.0-or-later
#include "pdf_page_text.h"

#include <algorithm>

namespace folio::ingest {

namespace {

bool isPresentationForm(char32_t c) {
    return c >= 0xFB00 && c <= 0xFEFF && c != 0xFEFF;
}

QString foldPresentationForms(const QString& word) {
    bool any = false;
    for (QChar c : word) {
        if (isPresentationForm(c.unicode())) {
            any = true;
            break;
        }
    }
    if (!any)
        return word;
    QString out;
    for (QChar c : word) {
        if (isPresentationForm(c.unicode()))
            out += QString(c).normalized(QString::NormalizationForm_KC);
        else
            out += c;
    }
    return out;
}

// Strong right-to-left letters minus strong left-to-right ones.
int rtlBalance(const QString& text) {
    int balance = 0;
    for (QChar c : text) {
        const auto dir = c.direction();
        if (dir == QChar::DirR || dir == QChar::DirAL)
            ++balance;
        else if (dir == QChar::DirL)
            --balance;
    }
    return balance;
}

struct Line {
    std::vector<const PdfWord*> words;
    QRectF box;
};

std::vector<Line> groupLines(const std::vector<PdfWord>& words) {
    std::vector<Line> lines;
    Line current;
    for (const PdfWord& w : words) {
        current.words.push_back(&w);
        current.box = current.box.isNull() ? w.box : current.box.united(w.box);
        if (w.lastOnLine) {
            lines.push_back(std::move(current));
            current = {};
        }
    }
    if (!current.words.empty())
        lines.push_back(std::move(current));
    return lines;
}

// A right-to-left line whose words arrive left to right (visual order) is put in reading order.
// Puts a right-to-left line in reading order; returns whether the line is right to left.
bool orderRightToLeft(Line& line) {
    QString all;
    for (const PdfWord* w : line.words)
        all += w->text;
    if (rtlBalance(all) <= 0)
        return false;
    const bool visualOrder = line.words.size() > 1 && line.words.front()->box.center().x() <
                                                          line.words.back()->box.center().x();
    if (visualOrder)
        std::reverse(line.words.begin(), line.words.end());
    return true;
}

// In right-to-left runs PDF producers often place every glyph on its own, so Poppler's spacing
// flags are unreliable there; the gap to the next word (to its left) decides instead.
bool rightToLeftSpace(const PdfWord& word, const PdfWord& next) {
    const double gap = word.box.left() - next.box.right();
    const double height = std::max(word.box.height(), next.box.height());
    return gap > 0.15 * height;
}

bool startsNewBlock(const Line& previous, const Line& next) {
    const double height = std::max(1.0, previous.box.height());
    const double gap = next.box.top() - previous.box.bottom();
    const bool jumpedUp = next.box.top() < previous.box.top() - height * 0.5;
    return jumpedUp || gap > height * 0.8;
}

}  // namespace

PageText buildPageText(const std::vector<PdfWord>& words) {
    PageText page;
    std::vector<Line> lines = groupLines(words);
    for (size_t i = 0; i < lines.size(); ++i) {
        Line& line = lines[i];
        const bool rightToLeft = orderRightToLeft(line);
        if (i > 0 && startsNewBlock(lines[i - 1], line))
            page.text += '\n';
        for (size_t k = 0; k < line.words.size(); ++k) {
            const PdfWord& w = *line.words[k];
            const std::string utf8 = foldPresentationForms(w.text).toStdString();
            const QRectF& b = w.box;
            page.words.push_back({b.x(), b.y(), b.width(), b.height(),
                                  static_cast<uint32_t>(page.text.size()),
                                  static_cast<uint32_t>(utf8.size())});
            page.text += utf8;
            if (k + 1 < line.words.size()) {
                const bool space =
                    rightToLeft ? rightToLeftSpace(w, *line.words[k + 1]) : w.spaceAfter;
                if (space)
                    page.text += ' ';
            }
        }
        page.text += '\n';
    }
    return page;
}

}  // namespace folio::ingest
