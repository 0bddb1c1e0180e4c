// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer.h"

#include <algorithm>

#include "bpe_merge.h"
#include "encode_plan.h"
#include "parallel_for.h"
#include "utf8.h"

namespace folio::tokenizer {

namespace {

// `text` itself when it is valid UTF-8; otherwise the policy decides (`storage` keeps a repair).
Result<std::string_view> validText(std::string_view text, Utf8Policy policy, std::string& storage) {
    // Offsets inside the pre-tokenizer are 32-bit.
    if (text.size() >= UINT32_MAX / 2)
        return makeError(ErrorCode::InvalidArgument, "the text is ", text.size(),
                         " bytes; the tokenizer takes texts below 2 GiB");
    const auto bad = findInvalidUtf8(text);
    if (!bad)
        return text;
    if (policy == Utf8Policy::Reject)
        return makeError(ErrorCode::InvalidArgument, "the text is not valid UTF-8: byte 0x",
                         std::hex, static_cast<int>(static_cast<uint8_t>(text[*bad])), std::dec,
                         " at offset ", *bad, " starts an ill-formed sequence");
    storage = repairUtf8(text);
    return std::string_view(storage);
}

}  // namespace

Result<Tokenizer> Tokenizer::create(BpeVocabulary vocabulary, SpecialTokens specials,
                                    PreTokenizer preTokenizer, ChunkLimits chunkLimits) {
    if (vocabulary.size() == 0)
        return makeError(ErrorCode::InvalidArgument, "the BPE vocabulary is empty");
    int64_t size = static_cast<int64_t>(vocabulary.maxRank()) + 1;
    for (const auto& [id, name] : specials.list()) {
        if (vocabulary.bytes(static_cast<uint32_t>(id)))
            return makeError(ErrorCode::Format, "special token \"", name, "\" has id ", id,
                             ", which is also a BPE token");
        size = std::max<int64_t>(size, int64_t{id} + 1);
    }
    if (size >= INT32_MAX)
        return makeError(ErrorCode::Format, "the vocabulary has 2^31 ids or more");
    Tokenizer t;
    t.vocabulary_ = std::move(vocabulary);
    t.specials_ = std::move(specials);
    t.preTokenizer_ = preTokenizer;
    t.chunkLimits_ = chunkLimits;
    t.vocabularySize_ = static_cast<int32_t>(size);
    return t;
}

void Tokenizer::encodeOrdinary(std::string_view text, std::vector<int32_t>& out) const {
    thread_local std::vector<uint32_t> ends;
    ends.clear();
    preTokenizer_.split(text, ends);
    uint32_t start = 0;
    for (uint32_t end : ends) {
        bpeEncodePiece(vocabulary_, text.substr(start, end - start), out);
        start = end;
    }
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text,
                                               const EncodeOptions& options) const {
    auto batch = encodeBatch(std::span<const std::string_view>(&text, 1), options);
    if (!batch)
        return batch.error();
    return std::move(batch->front());
}

Result<std::vector<std::vector<int32_t>>> Tokenizer::encodeBatch(
    std::span<const std::string_view> texts, const EncodeOptions& options) const {
    const SpecialTokens* specials =
        options.specials == SpecialTokenPolicy::Recognize ? &specials_ : nullptr;
    // Serial and cheap: validate, and cut each text into segments that encode independently.
    std::vector<std::string> storage(texts.size());
    std::vector<std::string_view> segments;
    std::vector<size_t> firstSegment(texts.size() + 1, 0);
    for (size_t d = 0; d < texts.size(); ++d) {
        auto valid = validText(texts[d], options.invalidUtf8, storage[d]);
        if (!valid)
            return texts.size() == 1 ? valid.error() : valid.error().withContext(cat("text ", d));
        firstSegment[d] = segments.size();
        planSegments(*valid, specials, chunkLimits_, kDefaultSegmentBytes, segments);
    }
    firstSegment[texts.size()] = segments.size();

    // The real work, per segment.
    auto encodeSegment = [&](std::string_view segment, std::vector<int32_t>& out) {
        thread_local std::vector<EncodeItem> items;
        items.clear();
        planItems(segment, specials, chunkLimits_, items);
        for (const EncodeItem& item : items) {
            if (item.specialId >= 0)
                out.push_back(item.specialId);
            else
                encodeOrdinary(item.text, out);
        }
    };
    std::vector<std::vector<int32_t>> result(texts.size());
    const int threads = resolveThreadCount(options.threads);
    if (threads <= 1 || segments.size() <= 1) {
        for (size_t d = 0; d < texts.size(); ++d) {
            result[d].reserve(texts[d].size() / 3 + 1);
            for (size_t i = firstSegment[d]; i < firstSegment[d + 1]; ++i)
                encodeSegment(segments[i], result[d]);
        }
        return result;
    }
    std::vector<std::vector<int32_t>> perSegment(segments.size());
    parallelFor(segments.size(), threads, [&](size_t i) {
        perSegment[i].reserve(segments[i].size() / 3 + 1);
        encodeSegment(segments[i], perSegment[i]);
    });
    for (size_t d = 0; d < texts.size(); ++d) {
        size_t total = 0;
        for (size_t i = firstSegment[d]; i < firstSegment[d + 1]; ++i)
            total += perSegment[i].size();
        result[d].reserve(total);
        for (size_t i = firstSegment[d]; i < firstSegment[d + 1]; ++i)
            result[d].insert(result[d].end(), perSegment[i].begin(), perSegment[i].end());
    }
    return result;
}

Result<std::vector<std::string>> Tokenizer::pieces(std::string_view text,
                                                   const EncodeOptions& options) const {
    std::string storage;
    FOLIO_ASSIGN_OR_RETURN(std::string_view valid, validText(text, options.invalidUtf8, storage));
    const SpecialTokens* specials =
        options.specials == SpecialTokenPolicy::Recognize ? &specials_ : nullptr;
    std::vector<std::string_view> segments;
    planSegments(valid, specials, chunkLimits_, kDefaultSegmentBytes, segments);
    std::vector<std::string> out;
    std::vector<EncodeItem> items;
    for (std::string_view segment : segments) {
        items.clear();
        planItems(segment, specials, chunkLimits_, items);
        for (const EncodeItem& item : items) {
            if (item.specialId >= 0) {
                out.emplace_back(item.text);
                continue;
            }
            for (std::string_view piece : preTokenizer_.pieces(item.text))
                out.emplace_back(piece);
        }
    }
    return out;
}

std::optional<std::string_view> Tokenizer::tokenBytes(int32_t id) const {
    if (id < 0)
        return std::nullopt;
    if (auto bytes = vocabulary_.bytes(static_cast<uint32_t>(id)))
        return bytes;
    return specials_.name(id);
}

Result<std::string> Tokenizer::decodeBytes(std::span<const int32_t> ids) const {
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) {
        auto bytes = tokenBytes(ids[i]);
        if (!bytes)
            return makeError(ErrorCode::InvalidArgument, "token id ", ids[i], " (at position ", i,
                             ") is not in the vocabulary of ", vocabularySize_, " ids");
        out.append(*bytes);
    }
    return out;
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids) const {
    FOLIO_ASSIGN_OR_RETURN(std::string bytes, decodeBytes(ids));
    if (!findInvalidUtf8(bytes))
        return bytes;
    return repairUtf8(bytes);
}

}  // namespace folio::tokenizer
