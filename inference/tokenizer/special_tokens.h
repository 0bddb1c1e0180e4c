// SPDX-License-Identifier: GPL-3.0-or-later
// The special tokens of a tokenizer ([BOS], <|im_end|>, reserved slots...): name <-> id, and
// finding them in text.
// Owns: the names and a byte trie over them (immutable after construction, thread-safe to read).
// Promises: names and ids are unique (add() refuses duplicates); find() returns the leftmost
// occurrence and, of the names that start there, the longest. Never matches across the view.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "inference/result.h"

namespace folio::tokenizer {

class SpecialTokens {
  public:
    struct Match {
        size_t offset = 0;
        size_t length = 0;
        int32_t id = 0;
    };

    Status add(std::string name, int32_t id);

    std::optional<int32_t> id(std::string_view name) const;
    std::optional<std::string_view> name(int32_t id) const;
    size_t size() const { return names_.size(); }
    // The length in bytes of the longest name.
    size_t maxLength() const { return maxLength_; }
    // All (id, name) pairs, by increasing id.
    std::vector<std::pair<int32_t, std::string_view>> list() const;
    bool empty() const { return names_.empty(); }

    // The first special token in text[from..], if any.
    std::optional<Match> find(std::string_view text, size_t from = 0) const;

  private:
    struct Node {
        std::vector<std::pair<uint8_t, uint32_t>> children;  // sorted by byte
        int32_t id = -1;                                     // a name ends here
    };
    uint32_t child(uint32_t node, uint8_t byte) const;

    std::unordered_map<std::string, int32_t> ids_;
    std::unordered_map<int32_t, std::string> names_;
    std::vector<Node> trie_{Node{}};
    bool firstByte_[256] = {};
    size_t maxLength_ = 0;
};

}  // namespace folio::tokenizer
