// SPDX-License-Identifier: GPL-3.0-or-later
// IngestSettings: every choice that changes what a source's document contains, plus how much
// parallelism to use. Owns: plain values. Promises: fingerprint() covers exactly the settings that
// change the document (not the thread count, not the password), so equal fingerprints and equal
// file bytes mean equal documents. Never touches the file system.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace folio::ingest {

inline constexpr uint64_t kDefaultMaxFileBytes = uint64_t{4} << 20;  // 4 MiB per file
inline constexpr int kDefaultLinesPerSegment = 200;

struct IngestSettings {
    // Repositories and folders: globs on the path relative to the source root ('/'-separated).
    // A glob without '/' matches the file name in any folder; '*' and '?' stay within one path
    // component, '**' spans components, [abc] / [!abc] are character classes. When `include` is
    // not empty a file must match one of its globs; a file matching any `exclude` glob is left out.
    std::vector<std::string> include;
    std::vector<std::string> exclude;
    uint64_t maxFileBytes = kDefaultMaxFileBytes;  // larger files are skipped with the reason
    // Text that is not UTF-8: convert it from Windows-1252 (a superset of Latin-1's printable
    // characters) and say so in the warnings, or skip it with the reason.
    bool convertLegacyEncodings = true;
    // Code and text files are cut into segments of at most this many lines (citations resolve to
    // a segment, the viewer scrolls to the line).
    int linesPerSegment = kDefaultLinesPerSegment;
    // PDF: the password for an encrypted file (tried as the user and the owner password).
    std::string pdfPassword;
    // Worker threads for pages of a PDF and files of a repository; <= 0: one per hardware thread.
    int threads = 0;

    // A stable text describing the settings that shape the document (hashed into contentHash).
    std::string fingerprint() const;
};

}  // namespace folio::ingest
