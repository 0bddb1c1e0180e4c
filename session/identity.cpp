// SPDX-License-Identifier: GPL-3.0-or-later
#include "identity.h"

#include <QCryptographicHash>

#include <algorithm>
#include <fstream>
#include <vector>

namespace folio::session {
namespace {

constexpr std::streamoff kEdgeBytes = std::streamoff{1} << 20;

void addBytes(QCryptographicHash& hash, std::string_view bytes) {
    hash.addData(QByteArrayView(bytes.data(), static_cast<qsizetype>(bytes.size())));
}

void addField(QCryptographicHash& hash, std::string_view bytes) {
    const uint64_t size = bytes.size();
    addBytes(hash, std::string_view(reinterpret_cast<const char*>(&size), sizeof size));
    addBytes(hash, bytes);
}

void addTokens(QCryptographicHash& hash, std::span<const int32_t> tokens) {
    addField(hash,
             std::string_view(reinterpret_cast<const char*>(tokens.data()), tokens.size_bytes()));
}

std::string hex(const QByteArray& digest) {
    return digest.toHex().toStdString();
}

// Adds a file's size and its first and last MiB (the whole file when it is small).
Status addFileEdges(QCryptographicHash& hash, const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return makeError(ErrorCode::NotFound, "cannot read ", path.string());
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    addField(hash, path.filename().string());
    addField(hash, std::to_string(size));
    std::string buffer;
    auto readAt = [&](std::streamoff at, std::streamoff n) {
        buffer.resize(static_cast<size_t>(n));
        in.seekg(at);
        in.read(buffer.data(), n);
        addField(hash, buffer);
    };
    if (size <= 2 * kEdgeBytes) {
        readAt(0, size);
    } else {
        readAt(0, kEdgeBytes);
        readAt(size - kEdgeBytes, kEdgeBytes);
    }
    if (!in)
        return makeError(ErrorCode::Io, "cannot read ", path.string());
    return {};
}

}  // namespace

std::string sha256Hex(std::string_view bytes) {
    QCryptographicHash hash(QCryptographicHash::Sha256);
    addBytes(hash, bytes);
    return hex(hash.result());
}

Result<std::string> modelIdentity(const std::filesystem::path& modelDir) {
    QCryptographicHash hash(QCryptographicHash::Sha256);
    addField(hash, "folio-model-identity-v1");
    FOLIO_TRY(addFileEdges(hash, modelDir / "config.json"));
    std::vector<std::filesystem::path> weights;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(modelDir, ec))
        if (entry.path().extension() == ".safetensors")
            weights.push_back(entry.path());
    if (ec)
        return makeError(ErrorCode::Io, "cannot list ", modelDir.string(), ": ", ec.message());
    if (weights.empty())
        return makeError(ErrorCode::NotFound, modelDir.string(), " has no .safetensors files");
    std::sort(weights.begin(), weights.end());
    for (const auto& file : weights)
        FOLIO_TRY(addFileEdges(hash, file));
    return hex(hash.result());
}

Result<std::string> tokenizerIdentity(const std::filesystem::path& tokenizerDir) {
    QCryptographicHash hash(QCryptographicHash::Sha256);
    addField(hash, "folio-tokenizer-identity-v1");
    for (const char* name : {"tiktoken.model", "tokenizer_config.json"}) {
        std::ifstream in(tokenizerDir / name, std::ios::binary);
        if (!in)
            return makeError(ErrorCode::NotFound, "cannot read ", (tokenizerDir / name).string());
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        addField(hash, name);
        addField(hash, bytes);
    }
    return hex(hash.result());
}

std::string rootPrefixKey(const storage::SnapshotIdentity& identity,
                          std::span<const int32_t> prefixTokens) {
    QCryptographicHash hash(QCryptographicHash::Sha256);
    addField(hash, "folio-prefix-v1");
    addField(hash, identity.modelId);
    addField(hash, identity.tokenizerId);
    addTokens(hash, prefixTokens);
    return hex(hash.result());
}

std::string nextPrefixKey(const std::string& parentKey, const std::string& contentHash,
                          std::span<const int32_t> sourceTokens) {
    QCryptographicHash hash(QCryptographicHash::Sha256);
    addField(hash, "folio-source-v1");
    addField(hash, parentKey);
    addField(hash, contentHash);
    addTokens(hash, sourceTokens);
    return hex(hash.result());
}

}  // namespace folio::session
