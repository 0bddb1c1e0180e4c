// SPDX-License-Identifier: GPL-3.0-or-later
// The implementations behind crc32c (checksum.h), exposed for tests that compare them.
// Owns nothing. Promises: crc32cPortable is the table-driven slicing-by-8 CRC-32C, which every
// CPU runs and whose results crc32c equals bit for bit whichever path it takes. Never used by
// production code, which calls crc32c.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace folio::inference::detail {

// Continues a CRC-32C over `bytes` without the CPU's CRC instructions; start with crc = 0.
uint32_t crc32cPortable(uint32_t crc, std::span<const std::byte> bytes);

// Whether crc32c runs on the CPU's CRC instructions (SSE4.2 or ARMv8 CRC32) on this machine.
bool crc32cUsesHardware();

}  // namespace folio::inference::detail
