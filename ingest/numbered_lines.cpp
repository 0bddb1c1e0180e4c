// SPDX-License-Identifier: GPL-3.0-or-later
#include "numbered_lines.h"

#include <algorithm>
#include <charconv>

#include "inference/result.h"

namespace folio::ingest {

namespace {

std::string escapeAttribute(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
            case '"':
                out += "&quot;";
                break;
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

}  // namespace

std::vector<std::string_view> splitLines(std::string_view text) {
    std::vector<std::string_view> lines;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        const bool last = end == std::string_view::npos;
        if (last)
            end = text.size();
        std::string_view line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        lines.push_back(line);
        start = end + 1;
    }
    return lines;
}

void appendNumberedFile(Document& document, std::string_view path, std::string_view utf8Text,
                        int linesPerSegment) {
    const std::vector<std::string_view> lines = splitLines(utf8Text);
    const int count = static_cast<int>(lines.size());
    const int perSegment = std::max(1, linesPerSegment);
    std::string& out = document.text;
    const std::string escaped = escapeAttribute(path);

    size_t segmentStart = out.size();
    out += cat("<file path=\"", escaped, "\" lines=\"", count == 0 ? 0 : 1, "-", count, "\">\n");
    if (count == 0) {
        out += "</file>\n";
        document.segments.push_back({Locator::forLines(std::string(path), 0, 0),
                                     segmentStart,
                                     out.size(),
                                     -1,
                                     -1,
                                     {},
                                     true});
        return;
    }
    char number[16];
    for (int first = 1; first <= count; first += perSegment) {
        const int last = std::min(count, first + perSegment - 1);
        for (int line = first; line <= last; ++line) {
            const auto [end, ec] = std::to_chars(number, number + sizeof number, line);
            out.append(number, end);
            out += "| ";
            out += lines[static_cast<size_t>(line - 1)];
            out += '\n';
        }
        if (last == count)
            out += "</file>\n";
        document.segments.push_back({Locator::forLines(std::string(path), first, last),
                                     segmentStart,
                                     out.size(),
                                     -1,
                                     -1,
                                     {},
                                     true});
        segmentStart = out.size();
    }
}

int lineCountOf(const Document& document, std::string_view path) {
    int count = 0;
    for (const Segment& s : document.segments) {
        if (s.locator.kind == Locator::Kind::Lines && s.locator.path == path)
            count = std::max(count, s.locator.lastLine);
    }
    return count;
}

std::string originalLines(const Document& document, std::string_view path, int first, int last) {
    std::string out;
    for (const Segment& s : document.segments) {
        if (s.locator.kind != Locator::Kind::Lines || s.locator.path != path ||
            s.locator.lastLine < first || s.locator.firstLine > last)
            continue;
        for (std::string_view line : splitLines(document.segmentText(s))) {
            int number = 0;
            const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), number);
            const size_t rest = static_cast<size_t>(line.data() + line.size() - end);
            if (ec != std::errc() || rest < 2 || std::string_view(end, 2) != "| ")
                continue;  // the header or the closing tag
            if (number < first || number > last)
                continue;
            if (!out.empty())
                out += '\n';
            out += line.substr(static_cast<size_t>(end - line.data()) + 2);
        }
    }
    return out;
}

}  // namespace folio::ingest
