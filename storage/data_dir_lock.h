// SPDX-License-Identifier: GPL-3.0-or-later
// The data directory lock: one Folio process at a time owns a data directory.
// Owns: an open file descriptor on DIR/folio.lock holding an exclusive flock(2) lock, released
// when the object dies or the process ends (also on SIGKILL: the kernel drops it).
// Promises: a second process (or a second lock in the same process) gets an ErrorCode::Io error
// that names the directory and the pid of the owner, at once, without waiting. Never deletes
// or breaks another process's lock.
#pragma once

#include <filesystem>
#include <memory>

#include "inference/result.h"

namespace folio::storage {

class DataDirLock {
  public:
    static Result<std::unique_ptr<DataDirLock>> acquire(const std::filesystem::path& dir);
    ~DataDirLock();
    DataDirLock(const DataDirLock&) = delete;
    DataDirLock& operator=(const DataDirLock&) = delete;

  private:
    explicit DataDirLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace folio::storage
