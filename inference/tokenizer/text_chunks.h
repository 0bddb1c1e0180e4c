// SPDX-License-Identifier: GPL-3.0-or-later
// The input splitting that Kimi's TikTokenTokenizer.encode does before tiktoken sees the text:
// cut into slices of at most 400,000 code points, then cut each slice wherever a run of
// consecutive whitespace or non-whitespace code points (Python's str.isspace()) would exceed
// 25,000. Each chunk is then encoded on its own, so pieces and special tokens never span chunks.
// Owns: nothing. Promises: the chunks are non-empty views into the input, in order, covering it
// exactly, cut only at code point boundaries, and identical to the Python slicing. The run rule
// is local: a stretch of text that starts where whitespace and non-whitespace alternate can be
// run through splitLongRuns() on its own with the same result. Never copies.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace folio::tokenizer {

struct ChunkLimits {
    size_t maxChunkCodePoints = 0;  // 0: no limit (tiktoken itself); Kimi: 400,000
    size_t maxRunCodePoints = 0;    // 0: no limit; Kimi: 25,000
};

inline constexpr ChunkLimits kKimiChunkLimits{400'000, 25'000};

// Step 1: slices of at most `maxCodePoints` code points (0: the whole text). Appends nothing for
// an empty text.
void sliceByCodePoints(std::string_view text, size_t maxCodePoints,
                       std::vector<std::string_view>& out);

// Step 2: cuts `slice` where a run would exceed `maxRun` code points (0: no cut).
void splitLongRuns(std::string_view slice, size_t maxRun, std::vector<std::string_view>& out);

// Both steps. `text` must be valid UTF-8.
void splitIntoChunks(std::string_view text, ChunkLimits limits, std::vector<std::string_view>& out);

}  // namespace folio::tokenizer
