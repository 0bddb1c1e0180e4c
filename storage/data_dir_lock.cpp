// SPDX-License-Identifier: GPL-3.0-or-later
#include "data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace folio::storage {

Result<std::unique_ptr<DataDirLock>> DataDirLock::acquire(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return makeError(ErrorCode::Io, "cannot create the data directory ", dir.string(), ": ",
                         ec.message());
    const auto path = dir / "folio.lock";
    // A new open file description per acquire, so two locks in one process also exclude.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return makeError(ErrorCode::Io, "cannot open ", path.string(), ": ", std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char buffer[32] = {};
        const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
        ::close(fd);
        if (err != EWOULDBLOCK)
            return makeError(ErrorCode::Io, "cannot lock ", path.string(), ": ",
                             std::strerror(err));
        std::string owner = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
        while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' '))
            owner.pop_back();
        return makeError(ErrorCode::Io, "the data directory ", dir.string(),
                         " is in use by another Folio process",
                         owner.empty() ? std::string() : " (pid " + owner + ")",
                         "; close it or choose another data directory");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        // The lock holds without the pid; the pid is only for the message above.
    }
    return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() {
    if (fd_ >= 0)
        ::close(fd_);  // releases the flock
}

}  // namespace folio::storage
