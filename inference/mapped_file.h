// SPDX-License-Identifier: GPL-3.0-or-later
// A read-only memory mapping of a whole file.
// Owns: the mapping (unmapped on destruction; movable, not copyable). Promises: data() is valid
// for size() bytes for the object's lifetime; an empty file maps to an empty span. Never writes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

#include "result.h"

namespace folio::inference {

class MappedFile {
  public:
    static Result<MappedFile> open(const std::filesystem::path& path);

    MappedFile() = default;
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }

  private:
    void release();
    const std::byte* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace folio::inference
