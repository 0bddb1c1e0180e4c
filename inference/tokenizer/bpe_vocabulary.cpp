// SPDX-License-Identifier: GPL-3.0-or-later
#include "bpe_vocabulary.h"

#include <algorithm>
#include <bit>

namespace folio::tokenizer {

namespace {

std::string where(std::string_view sourceName, const RankedToken& token) {
    if (token.line > 0)
        return cat(sourceName, " line ", token.line);
    return cat(sourceName, " token of rank ", token.rank);
}

}  // namespace

Result<BpeVocabulary> BpeVocabulary::build(std::vector<RankedToken> tokens,
                                           std::string_view sourceName) {
    if (tokens.empty())
        return makeError(ErrorCode::Format, sourceName, " has no tokens");
    BpeVocabulary v;
    uint32_t maxRank = 0;
    size_t totalBytes = 0;
    for (const auto& t : tokens) {
        if (t.rank > kMaxRank)
            return makeError(ErrorCode::Format, where(sourceName, t), ": rank ", t.rank,
                             " is above the limit of ", kMaxRank);
        if (t.bytes.empty())
            return makeError(ErrorCode::Format, where(sourceName, t), ": empty token");
        maxRank = std::max(maxRank, t.rank);
        totalBytes += t.bytes.size();
    }
    if (totalBytes > UINT32_MAX / 2)
        return makeError(ErrorCode::Format, sourceName, ": tokens are implausibly long in total");

    // Ranks: each used once.
    v.byRank_.assign(static_cast<size_t>(maxRank) + 1, Span{});
    std::vector<uint32_t> rankOwner(static_cast<size_t>(maxRank) + 1, UINT32_MAX);
    v.arena_.reserve(totalBytes);
    for (uint32_t i = 0; i < tokens.size(); ++i) {
        const auto& t = tokens[i];
        if (rankOwner[t.rank] != UINT32_MAX)
            return makeError(ErrorCode::Format, where(sourceName, t), ": rank ", t.rank,
                             " is already used by ", where(sourceName, tokens[rankOwner[t.rank]]));
        rankOwner[t.rank] = i;
        v.byRank_[t.rank] = {static_cast<uint32_t>(v.arena_.size()),
                             static_cast<uint32_t>(t.bytes.size())};
        v.arena_ += t.bytes;
    }

    // Byte strings: each used once; the hash index is filled as they are checked.
    const size_t capacity = std::bit_ceil(tokens.size() * 2 + 16);
    v.slots_.assign(capacity, Slot{});
    v.mask_ = capacity - 1;
    for (const auto& t : tokens) {
        const Span span = v.byRank_[t.rank];
        const uint64_t h = hashBytes(t.bytes.data(), t.bytes.size());
        const auto tag = static_cast<uint32_t>(h >> 32);
        for (size_t i = h & v.mask_;; i = (i + 1) & v.mask_) {
            Slot& s = v.slots_[i];
            if (s.rank == kNoRank) {
                s = {t.rank, tag, span.offset, span.length};
                break;
            }
            if (s.tag == tag && s.length == span.length &&
                std::memcmp(v.arena_.data() + s.offset, t.bytes.data(), span.length) == 0)
                return makeError(ErrorCode::Format, where(sourceName, t),
                                 ": duplicate token (the same bytes as ",
                                 where(sourceName, tokens[rankOwner[s.rank]]), ")");
        }
    }
    v.count_ = static_cast<uint32_t>(tokens.size());

    for (int b = 0; b < 256; ++b) {
        const char c = static_cast<char>(b);
        const uint32_t r = v.rank(std::string_view(&c, 1));
        if (r == kNoRank)
            return makeError(ErrorCode::Format, sourceName, " has no token for the single byte 0x",
                             std::hex, b, ": byte-level BPE needs all 256");
        v.byteRanks_[b] = r;
    }
    return v;
}

}  // namespace folio::tokenizer
