// SPDX-License-Identifier: GPL-3.0-or-later
// Checksums and hashes for state files and identities.
// crc32c: CRC-32C (Castagnoli), streaming; on the CPU's CRC instructions (x86-64 SSE4.2, three
// interleaved streams; ARMv8 CRC32 when compiled for it), chosen once at first use, else
// table-driven slicing-by-8 — the same results either way (checksum_detail.h exposes the
// portable path for tests). fnv1a64: a short-string identity hash.
// Pure functions; no allocation after first use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace folio::inference {

// Continues a CRC-32C over `bytes`; start with crc = 0.
uint32_t crc32c(uint32_t crc, std::span<const std::byte> bytes);

uint64_t fnv1a64(std::string_view text, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace folio::inference
