// SPDX-License-Identifier: GPL-3.0-or-later
#include "bpe_merge.h"

#include <algorithm>
#include <queue>

namespace folio::tokenizer {

namespace {

// Pieces up to this many bytes use the linear scan; above it the heap wins.
constexpr size_t kLinearLimit = 96;

// Linear scan over the current parts. bounds[k] is where part k starts (bounds[count] == n);
// pairRank[k] is the rank of parts k and k+1 joined, kNoRank when that is no token.
void mergeLinear(const BpeVocabulary& vocab, std::string_view piece, std::vector<int32_t>& out) {
    const size_t n = piece.size();
    uint32_t boundsBuf[kLinearLimit + 1];
    uint32_t pairBuf[kLinearLimit];
    uint32_t partBuf[kLinearLimit];
    std::vector<uint32_t> boundsHeap, pairHeap, partHeap;
    uint32_t* bounds = boundsBuf;
    uint32_t* pairRank = pairBuf;
    uint32_t* partRank = partBuf;
    if (n > kLinearLimit) {
        boundsHeap.resize(n + 1);
        pairHeap.resize(n);
        partHeap.resize(n);
        bounds = boundsHeap.data();
        pairRank = pairHeap.data();
        partRank = partHeap.data();
    }
    size_t count = n;
    for (size_t i = 0; i <= n; ++i)
        bounds[i] = static_cast<uint32_t>(i);
    for (size_t i = 0; i < n; ++i)
        partRank[i] = vocab.byteRank(static_cast<uint8_t>(piece[i]));
    auto joinedRank = [&](size_t k) {  // parts k and k+1
        return vocab.rank(piece.substr(bounds[k], bounds[k + 2] - bounds[k]));
    };
    for (size_t k = 0; k + 1 < count; ++k)
        pairRank[k] = joinedRank(k);
    while (count > 1) {
        uint32_t best = kNoRank;
        size_t at = 0;
        for (size_t k = 0; k + 1 < count; ++k) {
            if (pairRank[k] < best) {
                best = pairRank[k];
                at = k;
            }
        }
        if (best == kNoRank)
            break;
        // Parts `at` and `at+1` become one part with rank `best`.
        partRank[at] = best;
        std::copy(bounds + at + 2, bounds + count + 1, bounds + at + 1);
        std::copy(partRank + at + 2, partRank + count, partRank + at + 1);
        if (at + 2 < count - 1)
            std::copy(pairRank + at + 2, pairRank + count - 1, pairRank + at + 1);
        --count;
        if (at + 1 < count)
            pairRank[at] = joinedRank(at);
        if (at > 0)
            pairRank[at - 1] = joinedRank(at - 1);
    }
    for (size_t k = 0; k < count; ++k)
        out.push_back(static_cast<int32_t>(partRank[k]));
}

// Heap of candidate pairs over a linked list of parts; stale heap entries are skipped.
void mergeHeap(const BpeVocabulary& vocab, std::string_view piece, std::vector<int32_t>& out) {
    const auto n = static_cast<uint32_t>(piece.size());
    constexpr uint32_t kNone = UINT32_MAX;
    struct Part {
        uint32_t end;       // one past the last byte; the part starts at its own index
        uint32_t next;      // index of the next part (== its start), kNone at the end
        uint32_t prev;      // index of the previous part, kNone at the start
        uint32_t rank;      // this part's token
        uint32_t pairRank;  // rank of this part joined with the next, kNoRank if none
    };
    std::vector<Part> parts(n);
    for (uint32_t i = 0; i < n; ++i)
        parts[i] = {i + 1, i + 1 < n ? i + 1 : kNone, i > 0 ? i - 1 : kNone,
                    vocab.byteRank(static_cast<uint8_t>(piece[i])), kNoRank};
    // (rank, start): smallest rank first, then leftmost.
    using Entry = std::pair<uint32_t, uint32_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    auto refresh = [&](uint32_t i) {
        Part& p = parts[i];
        if (p.next == kNone) {
            p.pairRank = kNoRank;
            return;
        }
        p.pairRank = vocab.rank(piece.substr(i, parts[p.next].end - i));
        if (p.pairRank != kNoRank)
            heap.emplace(p.pairRank, i);
    };
    for (uint32_t i = 0; i < n; ++i)
        refresh(i);
    while (!heap.empty()) {
        const auto [rank, i] = heap.top();
        heap.pop();
        Part& p = parts[i];
        if (p.end == 0 || p.pairRank != rank)
            continue;  // merged away, or its pair changed since this entry was pushed
        const uint32_t j = p.next;
        p.end = parts[j].end;
        p.next = parts[j].next;
        p.rank = rank;
        if (p.next != kNone)
            parts[p.next].prev = i;
        parts[j].end = 0;
        refresh(i);
        if (p.prev != kNone)
            refresh(p.prev);
    }
    for (uint32_t i = 0; i != kNone; i = parts[i].next)
        out.push_back(static_cast<int32_t>(parts[i].rank));
}

}  // namespace

void bpeEncodePiece(const BpeVocabulary& vocab, std::string_view piece, std::vector<int32_t>& out,
                    BpeAlgorithm algorithm) {
    if (piece.size() == 1) {
        out.push_back(static_cast<int32_t>(vocab.byteRank(static_cast<uint8_t>(piece[0]))));
        return;
    }
    if (const uint32_t whole = vocab.rank(piece); whole != kNoRank) {
        out.push_back(static_cast<int32_t>(whole));
        return;
    }
    if (algorithm == BpeAlgorithm::Heap ||
        (algorithm == BpeAlgorithm::Auto && piece.size() > kLinearLimit))
        mergeHeap(vocab, piece, out);
    else
        mergeLinear(vocab, piece, out);
}

}  // namespace folio::tokenizer
