// SPDX-License-Identifier: GPL-3.0-or-later
// The mergeable tokens of a byte-level BPE vocabulary: byte string <-> rank (rank == token id).
// Owns: the token bytes and an open-addressing hash index over them (immutable after build, so it
// may be read from any number of threads). Promises: build() rejects duplicate byte strings,
// duplicate ranks, ranks above kMaxRank and vocabularies that lack one of the 256 single bytes
// (byte-level BPE must be able to spell any input), naming the offending lines. Ranks may have
// gaps (test vocabularies are subsets of real ones). Never allocates on look-up.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inference/result.h"
#include "tiktoken_file.h"

namespace folio::tokenizer {

inline constexpr uint32_t kNoRank = UINT32_MAX;

class BpeVocabulary {
  public:
    static Result<BpeVocabulary> build(std::vector<RankedToken> tokens,
                                       std::string_view sourceName);

    BpeVocabulary() = default;

    // The rank of `bytes`, or kNoRank when it is not a token.
    uint32_t rank(std::string_view bytes) const {
        if (slots_.empty())
            return kNoRank;
        const uint64_t h = hashBytes(bytes.data(), bytes.size());
        const auto tag = static_cast<uint32_t>(h >> 32);
        const auto length = static_cast<uint32_t>(bytes.size());
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.rank == kNoRank)
                return kNoRank;
            if (s.tag == tag && s.length == length &&
                std::memcmp(arena_.data() + s.offset, bytes.data(), length) == 0)
                return s.rank;
        }
    }

    // The rank of a single byte (always present).
    uint32_t byteRank(uint8_t byte) const { return byteRanks_[byte]; }

    // The bytes of token `rank`; nullopt when no token has that rank.
    std::optional<std::string_view> bytes(uint32_t rank) const {
        if (rank >= byRank_.size() || byRank_[rank].length == kNoRank)
            return std::nullopt;
        return std::string_view(arena_.data() + byRank_[rank].offset, byRank_[rank].length);
    }

    uint32_t size() const { return count_; }
    uint32_t maxRank() const {
        return byRank_.empty() ? 0 : static_cast<uint32_t>(byRank_.size() - 1);
    }
    // True when the ranks are exactly 0..size()-1.
    bool dense() const { return byRank_.size() == count_; }

    static uint64_t hashBytes(const char* data, size_t length) {
        uint64_t h = 0x9E3779B97F4A7C15ull ^ (length * 0xC2B2AE3D27D4EB4Full);
        while (length >= 8) {
            uint64_t word;
            std::memcpy(&word, data, 8);
            h = mix(h ^ word);
            data += 8;
            length -= 8;
        }
        uint64_t tail = 0;
        for (size_t i = 0; i < length; ++i)
            tail |= static_cast<uint64_t>(static_cast<uint8_t>(data[i])) << (8 * i);
        return mix(h ^ tail);
    }

  private:
    static uint64_t mix(uint64_t x) {
        x ^= x >> 32;
        x *= 0xD6E8FEB86659FD93ull;
        x ^= x >> 32;
        x *= 0xD6E8FEB86659FD93ull;
        x ^= x >> 32;
        return x;
    }

    struct Slot {
        uint32_t rank = kNoRank;
        uint32_t tag = 0;
        uint32_t offset = 0;
        uint32_t length = 0;
    };
    struct Span {
        uint32_t offset = 0;
        uint32_t length = kNoRank;
    };

    std::string arena_;
    std::vector<Slot> slots_;
    std::vector<Span> byRank_;
    std::array<uint32_t, 256> byteRanks_{};
    size_t mask_ = 0;
    uint32_t count_ = 0;
};

}  // namespace folio::tokenizer
