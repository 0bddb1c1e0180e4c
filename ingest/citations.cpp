// SPDX-License-Identifier: GPL-3.0-or-later
#include "citations.h"

#include <QString>

#include <regex>

#include "numbered_lines.h"

namespace folio::ingest {

namespace {

constexpr size_t kMaxBracket = 512;

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return std::string(s);
}

bool parsePart(const std::string& part, Citation& out) {
    static const std::regex page(R"(^(.+?),?\s+pp?\.\s*(\d+)(?:\s*(?:-|–|—)\s*(\d+))?$)");
    static const std::regex lines(R"(^([^\s:][^:]*?):L?(\d+)(?:\s*(?:-|–|—)\s*L?(\d+))?$)");
    std::smatch m;
    if (std::regex_match(part, m, page)) {
        out.kind = Locator::Kind::Page;
    } else if (std::regex_match(part, m, lines)) {
        out.kind = Locator::Kind::Lines;
    } else {
        return false;
    }
    out.target = trim(m[1].str());
    if (m[2].length() > 9 || m[3].length() > 9)
        return false;
    out.first = std::stoi(m[2].str());
    out.last = m[3].matched ? std::stoi(m[3].str()) : out.first;
    return out.first > 0 && out.last >= out.first;
}

std::string folded(std::string_view s) {
    return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()))
        .toCaseFolded()
        .toStdString();
}

std::string withoutExtension(const std::string& name) {
    const size_t dot = name.rfind('.');
    return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

bool nameMatches(const Document& d, const std::string& target, bool loose) {
    if (!loose)
        return d.name == target;
    const std::string t = folded(target);
    return folded(d.name) == t || folded(withoutExtension(d.name)) == t ||
           (!d.title.empty() && folded(d.title) == t);
}

std::vector<std::string> filePaths(const Document& d) {
    std::vector<std::string> paths;
    for (const Segment& s : d.segments) {
        if (s.locator.kind == Locator::Kind::Lines &&
            (paths.empty() || paths.back() != s.locator.path))
            paths.push_back(s.locator.path);
    }
    return paths;
}

Result<ResolvedCitation> resolvePage(const Citation& c, std::span<const SourceInput> sources) {
    for (bool loose : {false, true}) {
        for (size_t i = 0; i < sources.size(); ++i) {
            const Document& d = *sources[i].document;
            if (d.kind != SourceKind::Pdf || !nameMatches(d, c.target, loose))
                continue;
            if (c.last > d.pageCount)
                return makeError(ErrorCode::NotFound, "\"", d.name, "\" has ", d.pageCount,
                                 " pages; the citation names page ", c.last);
            ResolvedCitation r{i, Locator::forPage(c.first), c.last, {}};
            for (size_t k = 0; k < d.segments.size(); ++k) {
                const int page = d.segments[k].locator.page;
                if (d.segments[k].locator.kind == Locator::Kind::Page && page >= c.first &&
                    page <= c.last)
                    r.segments.push_back(k);
            }
            return r;
        }
    }
    return makeError(ErrorCode::NotFound, "no PDF source is named \"", c.target, "\"");
}

Result<ResolvedCitation> resolveLines(const Citation& c, std::span<const SourceInput> sources) {
    struct Match {
        size_t source;
        std::string path;
    };
    std::vector<Match> exact, suffix;
    for (size_t i = 0; i < sources.size(); ++i) {
        const Document& d = *sources[i].document;
        if (d.kind == SourceKind::Pdf)
            continue;
        // A repository's files may be cited with the repository's name in front.
        std::string target = c.target;
        if (d.kind == SourceKind::Repository && target.starts_with(d.name + "/"))
            target = target.substr(d.name.size() + 1);
        if (target.starts_with("./"))
            target = target.substr(2);
        for (const std::string& path : filePaths(d)) {
            if (path == target)
                exact.push_back({i, path});
            else if (path.ends_with("/" + target))
                suffix.push_back({i, path});
        }
    }
    const std::vector<Match>& matches = exact.empty() ? suffix : exact;
    if (matches.empty())
        return makeError(ErrorCode::NotFound, "no source has a file \"", c.target, "\"");
    if (matches.size() > 1)
        return makeError(ErrorCode::InvalidArgument, "\"", c.target, "\" names ", matches.size(),
                         " files (", matches[0].path, ", ", matches[1].path, ", ...)");
    const Document& d = *sources[matches[0].source].document;
    const int lineCount = lineCountOf(d, matches[0].path);
    if (c.last > lineCount)
        return makeError(ErrorCode::NotFound, matches[0].path, " has ", lineCount,
                         " lines; the citation names line ", c.last);
    ResolvedCitation r{
        matches[0].source, Locator::forLines(matches[0].path, c.first, c.last), 0, {}};
    for (size_t k = 0; k < d.segments.size(); ++k) {
        const Locator& l = d.segments[k].locator;
        if (l.kind == Locator::Kind::Lines && l.path == matches[0].path && l.lastLine >= c.first &&
            l.firstLine <= c.last)
            r.segments.push_back(k);
    }
    return r;
}

}  // namespace

std::vector<Citation> findCitations(std::string_view answer) {
    std::vector<Citation> citations;
    size_t open = answer.find('[');
    while (open != std::string_view::npos) {
        const size_t close = answer.find_first_of("[]\n", open + 1);
        if (close == std::string_view::npos)
            break;
        if (answer[close] != ']' || close - open > kMaxBracket) {
            open = answer.find('[', answer[close] == '[' ? close : close + 1);
            continue;
        }
        const std::string_view inside = answer.substr(open + 1, close - open - 1);
        size_t start = 0;
        while (start <= inside.size()) {
            size_t stop = inside.find(';', start);
            if (stop == std::string_view::npos)
                stop = inside.size();
            Citation c;
            if (parsePart(trim(inside.substr(start, stop - start)), c)) {
                c.begin = open;
                c.end = close + 1;
                citations.push_back(std::move(c));
            }
            start = stop + 1;
        }
        open = answer.find('[', close + 1);
    }
    return citations;
}

Result<ResolvedCitation> resolveCitation(const Citation& citation,
                                         std::span<const SourceInput> sources) {
    for (const auto& s : sources) {
        if (!s.document)
            return makeError(ErrorCode::InvalidArgument, "a source has no document");
    }
    if (citation.kind == Locator::Kind::Page)
        return resolvePage(citation, sources);
    return resolveLines(citation, sources);
}

std::string citedText(const Document& document, const Locator& locator) {
    if (locator.kind == Locator::Kind::Lines)
        return originalLines(document, locator.path, locator.firstLine, locator.lastLine);
    for (const Segment& s : document.segments) {
        if (s.locator.kind == Locator::Kind::Page && s.locator.page == locator.page)
            return std::string(document.segmentText(s));
    }
    return {};
}

}  // namespace folio::ingest
