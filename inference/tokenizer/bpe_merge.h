// SPDX-License-Identifier: GPL-3.0-or-later
// Byte-level BPE of one pre-tokenized piece, as tiktoken does it.
// Owns: nothing (scratch space is per call or per thread). Promises: the ids tiktoken gives: a
// piece that is itself a token becomes that token; otherwise, starting from single bytes, the
// adjacent pair whose concatenation has the lowest rank is merged, the leftmost on ties, until no
// adjacent pair is a token. Short pieces use a linear scan, long ones a heap (O(n log n)); both
// give identical results. Never fails: every byte has a token (BpeVocabulary guarantees it).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "bpe_vocabulary.h"

namespace folio::tokenizer {

enum class BpeAlgorithm { Auto, Linear, Heap };

// Appends the ids of `piece` (non-empty) to `out`.
void bpeEncodePiece(const BpeVocabulary& vocab, std::string_view piece, std::vector<int32_t>& out,
                    BpeAlgorithm algorithm = BpeAlgorithm::Auto);

}  // namespace folio::tokenizer
