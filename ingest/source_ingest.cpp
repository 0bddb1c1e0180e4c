// SPDX-License-Identifier: GPL-3.0-or-later
#include "source_ingest.h"

#include <chrono>
#include <fstream>

#include "pdf_ingest.h"
#include "repository_ingest.h"
#include "text_ingest.h"
#include "token_counting.h"

namespace folio::ingest {

Result<SourceKind> detectSourceKind(const std::filesystem::path& path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status))
        return makeError(ErrorCode::NotFound, path.string(), ": no such file or folder");
    if (std::filesystem::is_directory(status))
        return SourceKind::Repository;
    if (!std::filesystem::is_regular_file(status))
        return makeError(ErrorCode::Unsupported, path.string(), ": not a regular file or folder");
    std::ifstream in(path, std::ios::binary);
    char magic[5] = {};
    in.read(magic, sizeof magic);
    if (std::string_view(magic, static_cast<size_t>(in.gcount())) == "%PDF-")
        return SourceKind::Pdf;
    std::string extension = path.extension().string();
    for (char& c : extension)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return extension == ".pdf" ? SourceKind::Pdf : SourceKind::TextFile;
}

Result<Document> ingestSource(const std::filesystem::path& path, const IngestSettings& settings,
                              const tokenizer::Tokenizer* tokenizer) {
    const auto start = std::chrono::steady_clock::now();
    FOLIO_ASSIGN_OR_RETURN(SourceKind kind, detectSourceKind(path));
    Result<Document> document = makeError(ErrorCode::Unsupported, "unknown source kind");
    switch (kind) {
        case SourceKind::Pdf:
            document = ingestPdf(path, settings);
            break;
        case SourceKind::Repository:
            document = ingestRepository(path, settings);
            break;
        case SourceKind::TextFile:
            document = ingestTextFile(path, settings);
            break;
    }
    if (!document)
        return document.error();
    if (tokenizer)
        FOLIO_TRY(countTokens(*document, *tokenizer, settings.threads));
    document->ingestSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return document;
}

}  // namespace folio::ingest
