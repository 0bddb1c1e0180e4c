// SPDX-License-Identifier: GPL-3.0-or-later
// Include / exclude globs on repository paths (see IngestSettings for the syntax). Owns: nothing.
// Promises: a glob without '/' matches any single path component (so "*.md" matches every
// Markdown file and "build" everything under any folder named build); a glob with '/' is anchored
// at the source root and also matches everything below a folder it matches. Never touches the
// file system.
#pragma once

#include <string_view>

namespace folio::ingest {

bool globMatches(std::string_view glob, std::string_view relativePath);

}  // namespace folio::ingest
