// SPDX-License-Identifier: GPL-3.0-or-later
// A checkpoint folder's tensors: `model.safetensors`, or shards listed by
// `model.safetensors.index.json`, all memory-mapped.
// Owns: the mapped shard files. Promises: every tensor name resolves to exactly one validated
// tensor; the index and the shards agree (no tensor listed but absent, none present but
// unlisted, none in two shards, no shard path leaving the folder). Never copies weight data.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "result.h"
#include "safetensors.h"

namespace folio::inference {

class Checkpoint {
  public:
    static Result<Checkpoint> open(const std::filesystem::path& folder);

    const TensorView* find(std::string_view name) const;
    const std::vector<TensorView>& tensors() const { return views_; }
    size_t shardCount() const { return shards_.size(); }
    uint64_t totalBytes() const;

  private:
    std::vector<SafetensorsFile> shards_;
    std::vector<TensorView> views_;
    std::unordered_map<std::string_view, size_t> byName_;
};

}  // namespace folio::inference
