// SPDX-License-Identifier: GPL-3.0-or-later
#include "glob_match.h"

namespace folio::ingest {

namespace {

// Matches a character class at glob[0] == '['; advances `consumed` past it. Returns whether `c`
// is in the class; `valid` is false when the class has no closing bracket.
bool classMatches(std::string_view glob, char c, size_t& consumed, bool& valid) {
    size_t i = 1;
    bool negate = false;
    if (i < glob.size() && (glob[i] == '!' || glob[i] == '^')) {
        negate = true;
        ++i;
    }
    bool matched = false;
    bool first = true;
    for (; i < glob.size(); ++i) {
        if (glob[i] == ']' && !first)
            break;
        first = false;
        if (i + 2 < glob.size() && glob[i + 1] == '-' && glob[i + 2] != ']') {
            if (c >= glob[i] && c <= glob[i + 2])
                matched = true;
            i += 2;
        } else if (glob[i] == c) {
            matched = true;
        }
    }
    valid = i < glob.size();
    consumed = i + 1;
    return matched != negate;
}

bool matchFrom(std::string_view glob, std::string_view path) {
    while (!glob.empty()) {
        if (glob.substr(0, 2) == "**") {
            size_t stars = 0;
            while (stars < glob.size() && glob[stars] == '*')
                ++stars;
            std::string_view rest = glob.substr(stars);
            if (rest.empty())
                return true;
            if (rest.front() == '/') {
                rest.remove_prefix(1);
                // zero or more whole folders
                if (matchFrom(rest, path))
                    return true;
                for (size_t i = 0; i < path.size(); ++i) {
                    if (path[i] == '/' && matchFrom(rest, path.substr(i + 1)))
                        return true;
                }
                return false;
            }
            for (size_t i = 0; i <= path.size(); ++i) {
                if (matchFrom(rest, path.substr(i)))
                    return true;
            }
            return false;
        }
        const char g = glob.front();
        if (g == '*') {
            std::string_view rest = glob.substr(1);
            for (size_t i = 0; i <= path.size(); ++i) {
                if (matchFrom(rest, path.substr(i)))
                    return true;
                if (i < path.size() && path[i] == '/')
                    return false;
            }
            return false;
        }
        if (path.empty())
            return false;
        if (g == '?') {
            if (path.front() == '/')
                return false;
        } else if (g == '[') {
            size_t consumed = 0;
            bool valid = false;
            const bool in = classMatches(glob, path.front(), consumed, valid);
            if (valid) {
                if (!in || path.front() == '/')
                    return false;
                glob.remove_prefix(consumed);
                path.remove_prefix(1);
                continue;
            }
            if (path.front() != '[')
                return false;
        } else if (g == '\\' && glob.size() > 1) {
            glob.remove_prefix(1);
            if (glob.front() != path.front())
                return false;
        } else if (g != path.front()) {
            return false;
        }
        glob.remove_prefix(1);
        path.remove_prefix(1);
    }
    return path.empty();
}

}  // namespace

bool globMatches(std::string_view glob, std::string_view relativePath) {
    if (glob.empty())
        return false;
    while (!glob.empty() && glob.back() == '/')
        glob.remove_suffix(1);
    if (glob.starts_with("/"))
        glob.remove_prefix(1);
    const bool anchored = glob.find('/') != std::string_view::npos;
    if (!anchored) {
        size_t start = 0;
        while (start <= relativePath.size()) {
            size_t end = relativePath.find('/', start);
            if (end == std::string_view::npos)
                end = relativePath.size();
            if (matchFrom(glob, relativePath.substr(start, end - start)))
                return true;
            start = end + 1;
        }
        return false;
    }
    if (matchFrom(glob, relativePath))
        return true;
    for (size_t i = 0; i < relativePath.size(); ++i) {
        if (relativePath[i] == '/' && matchFrom(glob, relativePath.substr(0, i)))
            return true;
    }
    return false;
}

}  // namespace folio::ingest
