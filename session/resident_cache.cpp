// SPDX-License-Identifier: GPL-3.0-or-later
#include "resident_cache.h"

namespace folio::session {

bool ResidentCache::put(const std::string& key, inference::Sequence sequence, int64_t bytes) {
    erase(key);
    if (bytes > budget_)
        return false;
    evictUntil(budget_ - bytes);
    lru_.push_front(key);
    entries_.emplace(key, Entry{std::move(sequence), bytes, lru_.begin()});
    used_ += bytes;
    return true;
}

inference::Sequence* ResidentCache::find(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end())
        return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.order);
    return &it->second.sequence;
}

void ResidentCache::erase(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end())
        return;
    used_ -= it->second.bytes;
    lru_.erase(it->second.order);
    entries_.erase(it);
}

void ResidentCache::clear() {
    entries_.clear();
    lru_.clear();
    used_ = 0;
}

void ResidentCache::setBudget(int64_t bytes) {
    budget_ = bytes;
    evictUntil(budget_);
}

void ResidentCache::evictUntil(int64_t budget) {
    while (used_ > budget && !lru_.empty())
        erase(lru_.back());
}

int64_t stateBytes(const inference::ModelConfig& config, int64_t tokens) {
    using inference::LayerKind;
    const int64_t width = config.kdaProjectionSize();
    const int64_t kdaLayer = config.kdaNumHeads * config.kdaHeadDim * config.kdaHeadDim * 4 +
                             3 * (config.convKernelSize - 1) * width * 4;
    const int64_t mlaRow = (config.kvLoraRank + config.qkRopeHeadDim) * 4;
    return config.countLayers(LayerKind::Kda) * kdaLayer +
           config.countLayers(LayerKind::Mla) * mlaRow * tokens;
}

}  // namespace folio::session
