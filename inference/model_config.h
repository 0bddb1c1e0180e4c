// SPDX-License-Identifier: GPL-3.0-or-later
// The Kimi Linear model configuration, read from a checkpoint's config.json.
// Owns: plain values. Promises: a config that parsed is self-consistent (every size positive,
// layer lists 1-based and covering every layer exactly once, top-k within the expert count, …);
// every rejection names the field. Nothing is assumed about the 48B sizes: every dimension comes
// from the file. Fields that no code path reads (rope_theta under NoPE, …) are still
// type-checked so that a corrupt file is caught early.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace folio::inference {

enum class LayerKind { Kda, Mla };
enum class RouterActivation { Sigmoid, Softmax };

struct ModelConfig {
    // Global sizes.
    int64_t vocabSize = 0;
    int64_t hiddenSize = 0;
    int64_t intermediateSize = 0;  // dense MLP
    int64_t numLayers = 0;
    double rmsNormEps = 1e-5;
    bool tieWordEmbeddings = false;
    int64_t modelMaxLength = 0;
    std::optional<int64_t> bosTokenId, eosTokenId, padTokenId;

    // MLA (full attention) layers.
    int64_t numAttentionHeads = 0;
    std::optional<int64_t> qLoraRank;  // null in Kimi Linear: q is a plain projection
    int64_t kvLoraRank = 0;
    int64_t qkNopeHeadDim = 0;
    int64_t qkRopeHeadDim = 0;
    int64_t vHeadDim = 0;
    bool mlaUseNope = true;
    double latentNormEps = 1e-6;  // kv_a_layernorm / q_a_layernorm use the class default

    // KDA (linear attention) layers.
    int64_t kdaNumHeads = 0;
    int64_t kdaHeadDim = 0;
    int64_t convKernelSize = 0;

    // Mixture of experts.
    int64_t numExperts = 0;  // 0: every layer is dense
    int64_t numExpertsPerToken = 0;
    int64_t moeIntermediateSize = 0;
    int64_t numSharedExperts = 0;
    bool moeRenormalize = true;
    RouterActivation routerActivation = RouterActivation::Sigmoid;
    double routedScalingFactor = 1.0;
    int64_t numExpertGroups = 1;
    int64_t topkGroup = 1;
    bool useGroupedTopk = true;
    int64_t firstKDenseReplace = 0;
    int64_t moeLayerFreq = 1;

    std::vector<LayerKind> layerKinds;  // derived from linear_attn_config (1-based lists)

    LayerKind layerKind(int64_t layer) const { return layerKinds[static_cast<size_t>(layer)]; }
    bool isMoeLayer(int64_t layer) const {
        return numExperts > 0 && layer >= firstKDenseReplace && layer % moeLayerFreq == 0;
    }
    int64_t qkHeadDim() const { return qkNopeHeadDim + qkRopeHeadDim; }
    int64_t kdaProjectionSize() const { return kdaNumHeads * kdaHeadDim; }
    int64_t countLayers(LayerKind kind) const;

    // A stable 64-bit fingerprint of everything that shapes the computation or the state.
    uint64_t fingerprint() const;
};

Result<ModelConfig> parseModelConfig(std::string_view jsonText);
Result<ModelConfig> loadModelConfig(const std::filesystem::path& path);

// Reads a whole (small) text file, bounded to `maxBytes`.
Result<std::string> readTextFile(const std::filesystem::path& path, uint64_t maxBytes);

}  // namespace folio::inference
