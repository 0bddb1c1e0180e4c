// SPDX-License-Identifier: GPL-3.0-or-later
#include "repository_ingest.h"

#include <fcntl.h>
#include <unistd.h>

#include <QCryptographicHash>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "content_hasher.h"
#include "glob_match.h"
#include "inference/tokenizer/parallel_for.h"
#include "numbered_lines.h"
#include "repository_files.h"
#include "text_decoding.h"

namespace folio::ingest {

namespace {

namespace fs = std::filesystem;

struct FileOutcome {
    std::string utf8;
    std::string convertedFrom;
    std::string skipReason;  // non-empty: left out
    QByteArray digest;       // SHA-256 of the bytes read
};

// Why a glob setting leaves `path` out, or empty.
std::string globReason(const IngestSettings& settings, const std::string& path) {
    for (const auto& glob : settings.exclude) {
        if (globMatches(glob, path))
            return cat("excluded by the glob \"", glob, "\"");
    }
    if (settings.include.empty())
        return {};
    for (const auto& glob : settings.include) {
        if (globMatches(glob, path))
            return {};
    }
    return "not matched by any include glob";
}

bool isInside(const fs::path& path, const fs::path& root) {
    const auto relative = path.lexically_relative(root);
    return !relative.empty() && *relative.begin() != "..";
}

// Where `path` really leads, or why it is not followed.
std::string linkProblem(const fs::path& path, const fs::path& root) {
    std::error_code ec;
    const fs::file_status target = fs::status(path, ec);
    if (ec) {
        if (ec.value() == ELOOP)
            return "symbolic link loop";
        if (ec.value() == ENOENT)
            return "broken symbolic link (the target does not exist)";
        return cat("symbolic link cannot be followed: ", ec.message());
    }
    if (fs::is_directory(target))
        return "symbolic link to a folder (not followed)";
    const fs::path resolved = fs::canonical(path, ec);
    if (ec)
        return cat("symbolic link cannot be followed: ", ec.message());
    if (!isInside(resolved, root))
        return "symbolic link pointing outside the source (not followed)";
    return {};
}

FileOutcome readCandidate(const fs::path& root, const std::string& relative,
                          const IngestSettings& settings) {
    FileOutcome outcome;
    const fs::path path = root / relative;
    std::error_code ec;
    const fs::file_status own = fs::symlink_status(path, ec);
    if (ec) {
        outcome.skipReason = cat("unreadable: ", ec.message());
        return outcome;
    }
    if (fs::is_symlink(own)) {
        outcome.skipReason = linkProblem(path, root);
        if (!outcome.skipReason.empty())
            return outcome;
    }
    if (!fs::is_regular_file(fs::status(path, ec))) {
        outcome.skipReason = "not a regular file";
        return outcome;
    }
    const uint64_t size = fs::file_size(path, ec);
    if (ec) {
        outcome.skipReason = cat("unreadable: ", ec.message());
        return outcome;
    }
    if (size > settings.maxFileBytes) {
        outcome.skipReason = cat("over the ", formatBytes(settings.maxFileBytes), " size cap (",
                                 formatBytes(size), ")");
        return outcome;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        outcome.skipReason = cat("unreadable: ", std::strerror(errno));
        return outcome;
    }
    std::string bytes(size, '\0');
    size_t got = 0;
    while (got < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            outcome.skipReason = cat("unreadable: ", std::strerror(errno));
            ::close(fd);
            return outcome;
        }
        if (n == 0)
            break;
        got += static_cast<size_t>(n);
    }
    ::close(fd);
    bytes.resize(got);
    outcome.digest =
        QCryptographicHash::hash(QByteArrayView(bytes.data(), static_cast<qsizetype>(bytes.size())),
                                 QCryptographicHash::Sha256);
    DecodeOutcome decoded = decodeText(bytes, settings.convertLegacyEncodings);
    if (!decoded.text) {
        outcome.skipReason = decoded.failureReason;
        return outcome;
    }
    outcome.utf8 = std::move(decoded.text->utf8);
    outcome.convertedFrom = std::move(decoded.text->convertedFrom);
    return outcome;
}

}  // namespace

Result<Document> ingestRepository(const fs::path& folder, const IngestSettings& settings,
                                  const FileProgress& progress) {
    FOLIO_ASSIGN_OR_RETURN(RepositoryListing listing, listRepositoryFiles(folder));
    Document document;
    document.kind = SourceKind::Repository;
    document.name = listing.root.filename().string();
    document.originPath = listing.root.string();
    document.skipped = std::move(listing.skipped);

    std::vector<std::string> candidates;
    for (auto& path : listing.files) {
        std::string reason = globReason(settings, path);
        if (reason.empty())
            candidates.push_back(std::move(path));
        else
            document.skipped.push_back({std::move(path), std::move(reason)});
    }

    std::vector<FileOutcome> outcomes(candidates.size());
    std::atomic<int> done{0};
    const int total = static_cast<int>(candidates.size());
    tokenizer::parallelFor(candidates.size(), settings.threads, [&](size_t i) {
        outcomes[i] = readCandidate(listing.root, candidates[i], settings);
        const int finished = ++done;
        if (progress)
            progress(finished, total);
    });

    ContentHasher hasher;
    hasher.addField(settings.fingerprint());
    hasher.addField("repository");
    for (size_t i = 0; i < candidates.size(); ++i) {
        FileOutcome& file = outcomes[i];
        if (!file.skipReason.empty()) {
            document.skipped.push_back({candidates[i], std::move(file.skipReason)});
            continue;
        }
        if (!file.convertedFrom.empty())
            document.warnings.push_back(
                cat(candidates[i], ": not UTF-8; converted from ", file.convertedFrom));
        hasher.addField(candidates[i]);
        hasher.addField(
            std::string_view(file.digest.constData(), static_cast<size_t>(file.digest.size())));
        appendNumberedFile(document, candidates[i], file.utf8, settings.linesPerSegment);
        ++document.fileCount;
        file = {};
    }
    document.contentHash = hasher.hexDigest();
    return document;
}

}  // namespace folio::ingest
