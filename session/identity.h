// SPDX-License-Identifier: GPL-3.0-or-later
// Identities and prefix keys: what makes a stored state valid for a prompt.
// Owns: nothing. Promises: the model identity changes when config.json or the weights change
// (it hashes config.json, and each safetensors file's name, size, first and last MiB); the
// tokenizer identity changes when tiktoken.model or tokenizer_config.json change; a prefix key
// (SHA-256, hex) depends on both identities, the prefix tokens and, for each source before the
// boundary in order, its content hash and its tokens — so equal keys mean equal token streams
// under the same model. Never reads more than a few MiB per file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "inference/result.h"
#include "storage/snapshot_file.h"

namespace folio::session {

Result<std::string> modelIdentity(const std::filesystem::path& modelDir);
Result<std::string> tokenizerIdentity(const std::filesystem::path& tokenizerDir);

// The key of the boundary after the prefix (system turn and start of the user turn).
std::string rootPrefixKey(const storage::SnapshotIdentity& identity,
                          std::span<const int32_t> prefixTokens);
// The key of the boundary after one more source.
std::string nextPrefixKey(const std::string& parentKey, const std::string& contentHash,
                          std::span<const int32_t> sourceTokens);

std::string sha256Hex(std::string_view bytes);

}  // namespace folio::session
