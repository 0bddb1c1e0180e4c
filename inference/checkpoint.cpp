// SPDX-License-Identifier: GPL-3.0-or-later
#include "checkpoint.h"

#include <map>

#include "json.h"
#include "log.h"
#include "model_config.h"

namespace folio::inference {
namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool isPlainFileName(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

}  // namespace

Result<Checkpoint> Checkpoint::open(const std::filesystem::path& folder) {
    Checkpoint checkpoint;
    const auto indexPath = folder / kIndexFile;
    const auto singlePath = folder / kSingleFile;
    std::error_code ec;

    // Which shard each tensor is listed in (sharded checkpoints only).
    std::map<std::string, std::string> listedShard;
    std::vector<std::string> shardNames;
    if (std::filesystem::exists(indexPath, ec)) {
        FOLIO_ASSIGN_OR_RETURN(std::string text, readTextFile(indexPath, 64 << 20));
        auto parsed = parseJson(text);
        if (!parsed)
            return parsed.error().withContext(indexPath.string());
        const JsonValue* map = parsed->find("weight_map");
        if (map == nullptr || !map->isObject())
            return makeError(ErrorCode::Format, indexPath.string(),
                             ": \"weight_map\" is missing or not an object");
        std::map<std::string, bool> seenShard;
        for (const auto& [tensor, shard] : map->members()) {
            if (!shard.isString() || !isPlainFileName(shard.string()))
                return makeError(ErrorCode::Format, indexPath.string(), ": tensor \"", tensor,
                                 "\" maps to an invalid shard file name");
            listedShard[tensor] = shard.string();
            if (!seenShard[shard.string()]) {
                seenShard[shard.string()] = true;
                shardNames.push_back(shard.string());
            }
        }
        if (shardNames.empty())
            return makeError(ErrorCode::Format, indexPath.string(), ": \"weight_map\" is empty");
    } else if (std::filesystem::exists(singlePath, ec)) {
        shardNames.push_back(kSingleFile);
    } else {
        return makeError(ErrorCode::NotFound, "no weights in ", folder.string(), ": neither ",
                         kSingleFile, " nor ", kIndexFile, " exists");
    }

    for (const std::string& name : shardNames) {
        FOLIO_ASSIGN_OR_RETURN(SafetensorsFile shard, SafetensorsFile::open(folder / name));
        checkpoint.shards_.push_back(std::move(shard));
    }

    size_t total = 0;
    for (const auto& shard : checkpoint.shards_)
        total += shard.header().tensors.size();
    checkpoint.views_.reserve(total);
    for (size_t s = 0; s < checkpoint.shards_.size(); ++s) {
        const SafetensorsFile& shard = checkpoint.shards_[s];
        for (const TensorInfo& info : shard.header().tensors) {
            if (!listedShard.empty()) {
                auto it = listedShard.find(info.name);
                if (it == listedShard.end())
                    return makeError(ErrorCode::Format, "tensor \"", info.name, "\" in ",
                                     shardNames[s], " is not listed in ", kIndexFile);
                if (it->second != shardNames[s])
                    return makeError(ErrorCode::Format, "tensor \"", info.name, "\" is in ",
                                     shardNames[s], " but ", kIndexFile, " places it in ",
                                     it->second);
            }
            TensorView view = shard.view(info);
            if (!checkpoint.byName_.emplace(view.name, checkpoint.views_.size()).second)
                return makeError(ErrorCode::Format, "tensor \"", info.name,
                                 "\" appears in more than one shard");
            checkpoint.views_.push_back(view);
        }
    }
    for (const auto& [tensor, shard] : listedShard) {
        if (checkpoint.byName_.find(tensor) == checkpoint.byName_.end())
            return makeError(ErrorCode::Format, kIndexFile, " lists tensor \"", tensor, "\" in ",
                             shard, " but that shard does not contain it");
    }
    log(LogLevel::Info, cat("mapped ", checkpoint.views_.size(), " tensors from ",
                            checkpoint.shards_.size(), " file(s) in ", folder.string()));
    return checkpoint;
}

const TensorView* Checkpoint::find(std::string_view name) const {
    auto it = byName_.find(name);
    return it == byName_.end() ? nullptr : &views_[it->second];
}

uint64_t Checkpoint::totalBytes() const {
    uint64_t total = 0;
    for (const auto& v : views_)
        total += v.elements * dtypeSize(v.dtype);
    return total;
}

}  // namespace folio::inference
