// SPDX-License-Identifier: GPL-3.0-or-later
// The disk's side of the restore benchmarks (folio-cli session bench, folio-snapshot-bench):
// taking files out of the page cache and timing a plain sequential read of them.
// Owns nothing. Promises: dropFromPageCache flushes the files (fdatasync) before asking the
// kernel to forget their pages, so that the next read comes from the disk; residentFraction says
// how far that worked (tmpfs, for one, keeps everything); timeSequentialRead reads every byte of
// every file in order with large reads and reports bytes and seconds. Never writes to the files'
// contents, never throws.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "inference/result.h"

namespace folio::storage {

// Flushes each file and drops its pages from the page cache (POSIX_FADV_DONTNEED).
Status dropFromPageCache(std::span<const std::filesystem::path> files);

// The fraction (0..1) of the files' pages that are in the page cache now.
Result<double> residentFraction(std::span<const std::filesystem::path> files);

struct ReadTiming {
    uint64_t bytes = 0;
    double seconds = 0;
    double megabytesPerSecond() const {
        return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0;
    }
};

// Reads the files whole, one after another, in 16 MiB reads (POSIX_FADV_SEQUENTIAL): the disk's
// sequential read speed when they are not cached.
Result<ReadTiming> timeSequentialRead(std::span<const std::filesystem::path> files);

}  // namespace folio::storage
