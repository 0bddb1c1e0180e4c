// SPDX-License-Identifier: GPL-3.0-or-later
// Plans the encoding of a text as independent work: first (serially, cheaply) segments that can be
// encoded on their own and concatenated, then (per segment, in parallel) the items inside each:
// special tokens and stretches of ordinary text.
// Owns: nothing; segments and items are views into the caller's text. Promises: encoding the
// items of all segments in order gives exactly the ids of encoding the text in one go, because
// segments are cut only at Kimi's slice boundaries (text_chunks.h) and at PreTokenizer::safeCut
// offsets that no special-token occurrence spans (those also start a new run, so the run rule is
// unaffected). Never copies text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "special_tokens.h"
#include "text_chunks.h"

namespace folio::tokenizer {

struct EncodeItem {
    int32_t specialId = -1;  // >= 0: this item is that special token
    std::string_view text;   // the special token's text, or ordinary text
};

// Segments aim at this many bytes; they are longer only where no safe cut exists.
inline constexpr size_t kDefaultSegmentBytes = 64 * 1024;

// Appends the segments of `text` (valid UTF-8). `specials` null: special-token text is ordinary.
void planSegments(std::string_view text, const SpecialTokens* specials, ChunkLimits limits,
                  size_t segmentBytes, std::vector<std::string_view>& out);

// Appends the items of one segment: Kimi's run rule, then special tokens.
void planItems(std::string_view segment, const SpecialTokens* specials, ChunkLimits limits,
               std::vector<EncodeItem>& out);

}  // namespace folio::tokenizer
