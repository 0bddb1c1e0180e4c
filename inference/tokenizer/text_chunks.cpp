// SPDX-License-Identifier: GPL-3.0-or-later
#include "text_chunks.h"

#include <cstdint>

#include "unicode_props.h"
#include "utf8.h"

namespace folio::tokenizer {

void sliceByCodePoints(std::string_view text, size_t maxCodePoints,
                       std::vector<std::string_view>& out) {
    if (text.empty())
        return;
    // No slice can be full when the text has fewer bytes than a slice has code points.
    if (maxCodePoints == 0 || text.size() <= maxCodePoints) {
        out.push_back(text);
        return;
    }
    size_t sliceStart = 0;
    size_t count = 0;
    for (size_t pos = 0; pos < text.size(); ++pos) {
        // Every byte but a continuation byte starts a code point.
        if ((static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80)
            continue;
        if (count == maxCodePoints) {
            out.push_back(text.substr(sliceStart, pos - sliceStart));
            sliceStart = pos;
            count = 0;
        }
        ++count;
    }
    out.push_back(text.substr(sliceStart));
}

// As Kimi's _split_whitespaces_or_nonwhitespaces: a run's length counts from its first code
// point; when it would exceed the limit the chunk ends before that code point, which starts a new
// run of length 1.
void splitLongRuns(std::string_view slice, size_t maxRun, std::vector<std::string_view>& out) {
    if (slice.empty())
        return;
    if (maxRun == 0 || slice.size() <= maxRun) {
        out.push_back(slice);
        return;
    }
    const CharFlags* table = bmpCharFlags();
    size_t chunkStart = 0;
    size_t runLength = 0;
    bool runIsSpace = false;
    for (size_t pos = 0; pos < slice.size();) {
        const auto b = static_cast<uint8_t>(slice[pos]);
        bool space = false;
        size_t length = 1;
        if (b < 0x80) {
            space = (table[b] & kPySpace) != 0;
        } else {
            const DecodedChar c = decodeUtf8(slice, pos);
            space = (charFlags(c.cp) & kPySpace) != 0;
            length = c.length;
        }
        if (runLength == 0 || space != runIsSpace) {
            runLength = 1;
            runIsSpace = space;
        } else if (++runLength > maxRun) {
            out.push_back(slice.substr(chunkStart, pos - chunkStart));
            chunkStart = pos;
            runLength = 1;
        }
        pos += length;
    }
    out.push_back(slice.substr(chunkStart));
}

void splitIntoChunks(std::string_view text, ChunkLimits limits,
                     std::vector<std::string_view>& out) {
    std::vector<std::string_view> slices;
    sliceByCodePoints(text, limits.maxChunkCodePoints, slices);
    for (std::string_view slice : slices)
        splitLongRuns(slice, limits.maxRunCodePoints, out);
}

}  // namespace folio::tokenizer
