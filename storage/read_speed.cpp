// SPDX-License-Identifier: GPL-3.0-or-later
#include "read_speed.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace folio::storage {
namespace {

constexpr size_t kBlock = size_t{16} << 20;

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

Error openError(const std::filesystem::path& path) {
    return makeError(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, "cannot open ",
                     path.string(), ": ", std::strerror(errno));
}

}  // namespace

Status dropFromPageCache(std::span<const std::filesystem::path> files) {
    for (const auto& f : files) {
        Fd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0)
            return openError(f);
        if (::fdatasync(fd.get()) != 0)
            return makeError(ErrorCode::Io, "cannot flush ", f.string(), ": ",
                             std::strerror(errno));
        if (const int err = ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED); err != 0)
            return makeError(ErrorCode::Io, "cannot drop ", f.string(),
                             " from the page cache: ", std::strerror(err));
    }
    return {};
}

Result<double> residentFraction(std::span<const std::filesystem::path> files) {
    const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    uint64_t pages = 0, resident = 0;
    std::vector<unsigned char> flags;
    for (const auto& f : files) {
        Fd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0)
            return openError(f);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0)
            return makeError(ErrorCode::Io, "cannot stat ", f.string(), ": ", std::strerror(errno));
        const auto size = static_cast<uint64_t>(st.st_size);
        if (size == 0)
            continue;
        void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
        if (map == MAP_FAILED)
            return makeError(ErrorCode::Io, "cannot map ", f.string(), ": ", std::strerror(errno));
        flags.assign((size + page - 1) / page, 0);
        const int rc = ::mincore(map, size, flags.data());
        const int err = errno;
        ::munmap(map, size);
        if (rc != 0)
            return makeError(ErrorCode::Io, "cannot query the page cache for ", f.string(), ": ",
                             std::strerror(err));
        pages += flags.size();
        for (unsigned char c : flags)
            resident += c & 1;
    }
    return pages == 0 ? 0.0 : static_cast<double>(resident) / static_cast<double>(pages);
}

Result<ReadTiming> timeSequentialRead(std::span<const std::filesystem::path> files) {
    std::vector<std::byte> buffer(kBlock);
    ReadTiming timing;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& f : files) {
        Fd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0)
            return openError(f);
        ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
        for (;;) {
            const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return makeError(ErrorCode::Io, "cannot read ", f.string(), ": ",
                                 std::strerror(errno));
            }
            if (n == 0)
                break;
            timing.bytes += static_cast<uint64_t>(n);
        }
    }
    timing.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return timing;
}

}  // namespace folio::storage
