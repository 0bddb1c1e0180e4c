// SPDX-License-Identifier: GPL-3.0-or-later
// Resident snapshots: model states at source boundaries kept in the engine's memory (GPU memory
// on the CUDA backend), keyed by prefix key, within a byte budget.
// Owns: the sequences put into it. Promises: the sum of the entries' sizes never exceeds the
// budget (an entry larger than the budget is not kept); when room is needed the least recently
// used entries go first; find() counts as a use. Sizes are the full state's size (KDA and
// convolution state plus every MLA row), an upper bound where forks share cache rows.
// Not thread-safe: used from the engine's thread.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "inference/engine.h"

namespace folio::session {

class ResidentCache {
  public:
    explicit ResidentCache(int64_t budgetBytes) : budget_(budgetBytes) {}

    // Keeps `sequence` under `key` (replacing an older entry); returns false when it does not fit.
    bool put(const std::string& key, inference::Sequence sequence, int64_t bytes);
    inference::Sequence* find(const std::string& key);
    bool contains(const std::string& key) const { return entries_.contains(key); }
    void erase(const std::string& key);
    void clear();

    int64_t usedBytes() const { return used_; }
    int64_t budgetBytes() const { return budget_; }
    void setBudget(int64_t bytes);
    size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        inference::Sequence sequence;
        int64_t bytes = 0;
        std::list<std::string>::iterator order;
    };
    void evictUntil(int64_t budget);

    int64_t budget_;
    int64_t used_ = 0;
    std::list<std::string> lru_;  // front: most recently used
    std::unordered_map<std::string, Entry> entries_;
};

// The size of a complete state of `tokens` tokens under `config`.
int64_t stateBytes(const inference::ModelConfig& config, int64_t tokens);

}  // namespace folio::session
