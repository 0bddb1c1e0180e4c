// SPDX-License-Identifier: GPL-3.0-or-later
#include "ingest_settings.h"

#include "inference/result.h"

namespace folio::ingest {

namespace {
// Bump when the rendering of documents changes, so old hashes stop matching.
constexpr int kDocumentFormatVersion = 1;

std::string joinGlobs(const std::vector<std::string>& globs) {
    std::string out;
    for (const auto& g : globs) {
        out += g;
        out += '\x1f';
    }
    return out;
}
}  // namespace

std::string IngestSettings::fingerprint() const {
    return cat("folio-ingest v", kDocumentFormatVersion, "|include=", joinGlobs(include),
               "|exclude=", joinGlobs(exclude), "|max=", maxFileBytes,
               "|legacy=", convertLegacyEncodings ? 1 : 0, "|lines=", linesPerSegment);
}

}  // namespace folio::ingest
