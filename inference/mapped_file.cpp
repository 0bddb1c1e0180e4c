// SPDX-License-Identifier: GPL-3.0-or-later
#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace folio::inference {

Result<MappedFile> MappedFile::open(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return makeError(err == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, "cannot open ",
                         path.string(), ": ", std::strerror(err));
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        int err = errno;
        ::close(fd);
        return makeError(ErrorCode::Io, "cannot stat ", path.string(), ": ", std::strerror(err));
    }
    if (!S_ISREG(info.st_mode)) {
        ::close(fd);
        return makeError(ErrorCode::Io, path.string(), " is not a regular file");
    }
    MappedFile file;
    file.size_ = static_cast<size_t>(info.st_size);
    if (file.size_ > 0) {
        void* mapping = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapping == MAP_FAILED) {
            int err = errno;
            ::close(fd);
            return makeError(ErrorCode::Io, "cannot map ", path.string(), ": ", std::strerror(err));
        }
        file.data_ = static_cast<const std::byte*>(mapping);
    }
    ::close(fd);
    return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

MappedFile::~MappedFile() {
    release();
}

void MappedFile::release() {
    if (data_ != nullptr)
        ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

}  // namespace folio::inference
