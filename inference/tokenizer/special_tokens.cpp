// SPDX-License-Identifier: GPL-3.0-or-later
#include "special_tokens.h"

#include <algorithm>

namespace folio::tokenizer {

constexpr uint32_t kNoChild = UINT32_MAX;

uint32_t SpecialTokens::child(uint32_t node, uint8_t byte) const {
    const auto& children = trie_[node].children;
    for (const auto& [b, index] : children) {
        if (b == byte)
            return index;
        if (b > byte)
            break;
    }
    return kNoChild;
}

Status SpecialTokens::add(std::string name, int32_t id) {
    if (name.empty())
        return makeError(ErrorCode::InvalidArgument, "special token ", id, " has an empty name");
    if (id < 0)
        return makeError(ErrorCode::InvalidArgument, "special token \"", name,
                         "\" has a negative id");
    if (auto it = ids_.find(name); it != ids_.end())
        return makeError(ErrorCode::InvalidArgument, "special token \"", name,
                         "\" is given twice (ids ", it->second, " and ", id, ")");
    if (auto it = names_.find(id); it != names_.end())
        return makeError(ErrorCode::InvalidArgument, "special id ", id, " is given twice (\"",
                         it->second, "\" and \"", name, "\")");
    uint32_t node = 0;
    for (char c : name) {
        const auto b = static_cast<uint8_t>(c);
        uint32_t next = child(node, b);
        if (next == kNoChild) {
            next = static_cast<uint32_t>(trie_.size());
            trie_.emplace_back();
            auto& children = trie_[node].children;
            children.insert(
                std::upper_bound(children.begin(), children.end(),
                                 std::pair<uint8_t, uint32_t>{b, 0},
                                 [](const auto& x, const auto& y) { return x.first < y.first; }),
                {b, next});
        }
        node = next;
    }
    trie_[node].id = id;
    firstByte_[static_cast<uint8_t>(name[0])] = true;
    maxLength_ = std::max(maxLength_, name.size());
    ids_.emplace(name, id);
    names_.emplace(id, std::move(name));
    return {};
}

std::optional<int32_t> SpecialTokens::id(std::string_view name) const {
    auto it = ids_.find(std::string(name));
    if (it == ids_.end())
        return std::nullopt;
    return it->second;
}

std::optional<std::string_view> SpecialTokens::name(int32_t id) const {
    auto it = names_.find(id);
    if (it == names_.end())
        return std::nullopt;
    return std::string_view(it->second);
}

std::vector<std::pair<int32_t, std::string_view>> SpecialTokens::list() const {
    std::vector<std::pair<int32_t, std::string_view>> out;
    out.reserve(names_.size());
    for (const auto& [id, name] : names_)
        out.emplace_back(id, name);
    std::sort(out.begin(), out.end());
    return out;
}

std::optional<SpecialTokens::Match> SpecialTokens::find(std::string_view text, size_t from) const {
    if (names_.empty())
        return std::nullopt;
    for (size_t pos = from; pos < text.size(); ++pos) {
        if (!firstByte_[static_cast<uint8_t>(text[pos])])
            continue;
        uint32_t node = 0;
        std::optional<Match> best;
        for (size_t i = pos; i < text.size(); ++i) {
            node = child(node, static_cast<uint8_t>(text[i]));
            if (node == kNoChild)
                break;
            if (trie_[node].id >= 0)
                best = Match{pos, i + 1 - pos, trie_[node].id};
        }
        if (best)
            return best;
    }
    return std::nullopt;
}

}  // namespace folio::tokenizer
