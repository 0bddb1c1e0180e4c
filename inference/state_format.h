// SPDX-License-Identifier: GPL-3.0-or-later
// The byte format of a sequence's state (Engine::saveState / loadState).
//
//   "FOLIOSEQ" | u32 version | u32 flags (0) | u64 config fingerprint | u64 token count |
//   u32 tensor count | i32 tokens[token count] |
//   per tensor: u16 name length | name | u8 rank | i64 dims[rank] | f32 data[prod(dims)] |
//   u32 CRC-32C of everything before it
// All integers little-endian. Promises: decoding checks the checksum first, then every length
// against the bytes that remain, so a truncated, corrupt or hostile buffer is an error, never an
// out-of-bounds read or an absurd allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend.h"
#include "result.h"

namespace folio::inference {

inline constexpr uint32_t kStateFormatVersion = 1;

struct DecodedState {
    uint64_t fingerprint = 0;
    std::vector<int32_t> tokens;
    std::vector<StateTensor> tensors;
};

std::vector<std::byte> encodeState(uint64_t fingerprint, std::span<const int32_t> tokens,
                                   const std::vector<StateTensor>& tensors);
Result<DecodedState> decodeState(std::span<const std::byte> bytes);

}  // namespace folio::inference
