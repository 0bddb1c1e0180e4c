// SPDX-License-Identifier: GPL-3.0-or-later
#include "encode_plan.h"

#include "pre_tokenizer.h"

namespace folio::tokenizer {

namespace {

// True when some occurrence of a special token starts before `cut` and ends after it. Every
// occurrence counts, overlapping ones included, since which of them the encoder takes depends on
// the text before.
bool specialSpans(std::string_view text, size_t cut, const SpecialTokens& specials) {
    const size_t longest = specials.maxLength();
    size_t from = cut >= longest ? cut - longest + 1 : 0;
    while (auto match = specials.find(text.substr(0, cut + longest), from)) {
        if (match->offset >= cut)
            return false;
        if (match->offset + match->length > cut)
            return true;
        from = match->offset + 1;
    }
    return false;
}

size_t nextCut(std::string_view slice, size_t from, const SpecialTokens* specials) {
    for (;;) {
        const size_t cut = PreTokenizer::safeCut(slice, from);
        if (cut == std::string_view::npos || specials == nullptr || specials->empty() ||
            !specialSpans(slice, cut, *specials))
            return cut;
        from = cut + 1;
    }
}

}  // namespace

void planSegments(std::string_view text, const SpecialTokens* specials, ChunkLimits limits,
                  size_t segmentBytes, std::vector<std::string_view>& out) {
    std::vector<std::string_view> slices;
    sliceByCodePoints(text, limits.maxChunkCodePoints, slices);
    for (std::string_view slice : slices) {
        while (slice.size() > segmentBytes) {
            const size_t cut = nextCut(slice, segmentBytes, specials);
            if (cut == std::string_view::npos)
                break;
            out.push_back(slice.substr(0, cut));
            slice.remove_prefix(cut);
        }
        if (!slice.empty())
            out.push_back(slice);
    }
}

void planItems(std::string_view segment, const SpecialTokens* specials, ChunkLimits limits,
               std::vector<EncodeItem>& out) {
    std::vector<std::string_view> chunks;
    splitLongRuns(segment, limits.maxRunCodePoints, chunks);
    for (std::string_view chunk : chunks) {
        size_t start = 0;
        if (specials != nullptr && !specials->empty()) {
            while (auto match = specials->find(chunk, start)) {
                if (match->offset > start)
                    out.push_back({-1, chunk.substr(start, match->offset - start)});
                out.push_back({match->id, chunk.substr(match->offset, match->length)});
                start = match->offset + match->length;
            }
        }
        if (start < chunk.size())
            out.push_back({-1, chunk.substr(start)});
    }
}

}  // namespace folio::tokenizer
