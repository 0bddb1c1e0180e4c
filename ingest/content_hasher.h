// SPDX-License-Identifier: GPL-3.0-or-later
// ContentHasher: the SHA-256 behind Document::contentHash, fed incrementally so that large files
// are hashed while they stream. Owns: the hash state. Promises: the same sequence of add() calls
// gives the same hex digest; labelled fields are length-prefixed so "ab"+"c" != "a"+"bc". Never
// reads files by itself except in addFile(), which streams in 1 MiB pieces.
#pragma once

#include <QCryptographicHash>

#include <filesystem>
#include <string>
#include <string_view>

#include "inference/result.h"

namespace folio::ingest {

class ContentHasher {
  public:
    ContentHasher();
    void addField(std::string_view bytes);              // length-prefixed
    Status addFile(const std::filesystem::path& path);  // length-prefixed file contents
    std::string hexDigest() const;

  private:
    QCryptographicHash hash_;
};

}  // namespace folio::ingest
