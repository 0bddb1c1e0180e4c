// SPDX-License-Identifier: GPL-3.0-or-later
#include "text_ingest.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "content_hasher.h"
#include "numbered_lines.h"
#include "text_decoding.h"

namespace folio::ingest {

Result<std::string> readFileBytes(const std::filesystem::path& path, uint64_t maxBytes) {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec)
        return makeError(ErrorCode::Io, path.string(), ": ", ec.message());
    if (size > maxBytes)
        return makeError(ErrorCode::InvalidArgument, path.string(), ": ", formatBytes(size),
                         " is over the ", formatBytes(maxBytes), " limit");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return makeError(ErrorCode::Io, path.string(), ": cannot open: ", std::strerror(errno));
    std::string bytes(size, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    bytes.resize(static_cast<size_t>(in.gcount()));
    if (in.bad())
        return makeError(ErrorCode::Io, path.string(), ": read failed");
    return bytes;
}

Result<Document> ingestTextFile(const std::filesystem::path& path, const IngestSettings& settings) {
    FOLIO_ASSIGN_OR_RETURN(std::string bytes, readFileBytes(path, kMaxTextSourceBytes));
    DecodeOutcome decoded = decodeText(bytes, settings.convertLegacyEncodings);
    if (!decoded.text)
        return makeError(ErrorCode::Unsupported, path.string(), ": ", decoded.failureReason);

    Document document;
    document.kind = SourceKind::TextFile;
    document.name = path.filename().string();
    document.originPath = std::filesystem::absolute(path).lexically_normal().string();
    if (!decoded.text->convertedFrom.empty())
        document.warnings.push_back(
            cat(document.name, ": not UTF-8; converted from ", decoded.text->convertedFrom));
    appendNumberedFile(document, document.name, decoded.text->utf8, settings.linesPerSegment);
    document.fileCount = 1;

    ContentHasher hasher;
    hasher.addField(settings.fingerprint());
    hasher.addField("text");
    hasher.addField(bytes);
    document.contentHash = hasher.hexDigest();
    return document;
}

}  // namespace folio::ingest
