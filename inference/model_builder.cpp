// SPDX-License-Identifier: GPL-3.0-or-later
#include "model_builder.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "model_config.h"
#include "model_weights.h"
#include "safetensors.h"
#include "sampler.h"

namespace folio::inference {
namespace {

std::string configJson(int hidden, int layers, const std::string& kdaLayers,
                       const std::string& fullLayers, int kdaHeads, int kdaHeadDim, int vocab,
                       int mlaHeads, int nope, int rope, int v, int latent, int experts,
                       int perToken, int moeInner, int denseInner) {
    return cat(R"({
  "architectures": ["KimiLinearForCausalLM"],
  "model_type": "kimi_linear",
  "dtype": "bfloat16",
  "vocab_size": )",
               vocab, R"(,
  "hidden_size": )",
               hidden, R"(,
  "intermediate_size": )",
               denseInner, R"(,
  "num_hidden_layers": )",
               layers, R"(,
  "num_attention_heads": )",
               mlaHeads, R"(,
  "num_key_value_heads": )",
               mlaHeads, R"(,
  "head_dim": )",
               hidden / mlaHeads, R"(,
  "q_lora_rank": null,
  "kv_lora_rank": )",
               latent, R"(,
  "qk_nope_head_dim": )",
               nope, R"(,
  "qk_rope_head_dim": )",
               rope, R"(,
  "v_head_dim": )",
               v, R"(,
  "mla_use_nope": true,
  "rope_theta": 10000.0,
  "rope_scaling": null,
  "hidden_act": "silu",
  "rms_norm_eps": 1e-05,
  "tie_word_embeddings": false,
  "model_max_length": 1048576,
  "bos_token_id": )",
               vocab - 4, R"(,
  "eos_token_id": )",
               vocab - 3, R"(,
  "pad_token_id": )",
               vocab - 1, R"(,
  "linear_attn_config": {
    "full_attn_layers": [)",
               fullLayers, R"(],
    "kda_layers": [)",
               kdaLayers, R"(],
    "num_heads": )",
               kdaHeads, R"(,
    "head_dim": )",
               kdaHeadDim, R"(,
    "short_conv_kernel_size": 4
  },
  "num_experts": )",
               experts, R"(,
  "num_experts_per_token": )",
               perToken, R"(,
  "moe_intermediate_size": )",
               moeInner, R"(,
  "num_shared_experts": 1,
  "moe_renormalize": true,
  "moe_router_activation_func": "sigmoid",
  "routed_scaling_factor": 2.446,
  "num_expert_group": 1,
  "topk_group": 1,
  "use_grouped_topk": true,
  "first_k_dense_replace": 1,
  "moe_layer_freq": 1,
  "num_nextn_predict_layers": 0,
  "use_cache": true
}
)");
}

// Deterministic normal samples from the project's own generator (Box-Muller).
class Noise {
  public:
    explicit Noise(uint64_t seed) : sampler_(SamplingOptions{.seed = seed}) {}
    float normal() {
        const double u1 = std::max(sampler_.nextUniform(), 1e-300);
        const double u2 = sampler_.nextUniform();
        return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) *
                                  std::cos(6.283185307179586 * u2));
    }
    float uniform(float lo, float hi) {
        return lo + (hi - lo) * static_cast<float>(sampler_.nextUniform());
    }

  private:
    Sampler sampler_;
};

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<std::string> presetConfigJson(const std::string& preset) {
    if (preset == "demo")
        return configJson(256, 6, "1, 2, 3, 5", "4, 6", 2, 64, 1024, 2, 64, 32, 64, 128, 16, 4, 96,
                          512);
    if (preset == "tiny")
        return configJson(64, 4, "1, 2, 3", "4", 2, 32, 256, 2, 16, 8, 16, 32, 8, 2, 32, 128);
    return makeError(ErrorCode::InvalidArgument, "unknown model preset \"", preset,
                     "\" (known: demo, tiny)");
}

Status writeRandomModel(const std::filesystem::path& folder, const std::string& json,
                        uint64_t seed) {
    FOLIO_ASSIGN_OR_RETURN(ModelConfig config, parseModelConfig(json));
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec)
        return makeError(ErrorCode::Io, "cannot create ", folder.string(), ": ", ec.message());

    Noise noise(seed);
    const float scale = 0.02f * std::sqrt(2304.0f / static_cast<float>(config.hiddenSize));
    std::vector<std::vector<std::byte>> storage;
    std::vector<TensorRecord> records;
    for (const ExpectedTensor& t : expectedTensors(config)) {
        uint64_t n = 1;
        for (int64_t d : t.shape)
            n *= static_cast<uint64_t>(d);
        const bool fp32 = endsWith(t.name, "A_log") || endsWith(t.name, "dt_bias");
        std::vector<float> values(n);
        if (endsWith(t.name, "A_log")) {
            for (float& x : values)
                x = std::log(noise.uniform(1.0f, 16.0f));
        } else if (endsWith(t.name, "dt_bias")) {
            for (float& x : values)
                x = noise.uniform(-2.0f, 0.5f);
        } else if (endsWith(t.name, "norm.weight") || endsWith(t.name, "layernorm.weight")) {
            for (float& x : values)
                x = 1.0f + 0.1f * noise.normal();
        } else if (endsWith(t.name, "e_score_correction_bias")) {
            for (float& x : values)
                x = 0.05f * noise.normal();
        } else if (endsWith(t.name, "conv1d.weight")) {
            for (float& x : values)
                x = 0.3f * noise.normal();
        } else {
            for (float& x : values)
                x = scale * noise.normal();
        }
        std::vector<std::byte> bytes;
        if (fp32) {
            bytes.resize(n * 4);
            std::memcpy(bytes.data(), values.data(), n * 4);
        } else {
            bytes.resize(n * 2);
            for (uint64_t i = 0; i < n; ++i) {
                const uint16_t b = floatToBf16(values[i]);
                std::memcpy(bytes.data() + i * 2, &b, 2);
            }
        }
        storage.push_back(std::move(bytes));
        records.push_back({t.name, fp32 ? DType::F32 : DType::BF16, t.shape, storage.back()});
    }
    FOLIO_TRY(writeSafetensors(
        folder / "model.safetensors", records,
        {{"format", "pt"}, {"folio_note", "random weights: answers are not meaningful"}}));
    std::ofstream out(folder / "config.json", std::ios::binary | std::ios::trunc);
    out << json;
    out.close();
    if (!out)
        return makeError(ErrorCode::Io, "cannot write ", (folder / "config.json").string());
    return {};
}

}  // namespace folio::inference
