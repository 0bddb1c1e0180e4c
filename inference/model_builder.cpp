// SPDX-License-Identifier: GPL-3.0-or-later
#include "model_builder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
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
               vocab - 256, R"(,
  "eos_token_id": )",
               vocab - 254, R"(,
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

// The text the byte tokenizer's merges are learned from: fixed, so the merges are deterministic.
constexpr const char* kMergeCorpus =
    "The parties agree that either party may terminate this agreement for convenience on thirty "
    "days written notice. The researcher reads the papers and the engineer reads the code; the "
    "question is answered from the documents in the session, with citations to the page and the "
    "line. Where does user input reach the database without being escaped? The contract states "
    "that the supplier shall deliver the goods and that the buyer shall pay the price within "
    "the period stated in the order. This section describes the state of the model after each "
    "document, which is stored so that the next question does not read the documents again.";

// Kimi's special tokens by offset from the first special id (tokenizer_config.json of the
// official checkpoint); the other offsets are reserved names the loader fills in.
const std::vector<std::pair<int, const char*>>& kimiSpecialNames() {
    static const std::vector<std::pair<int, const char*>> names = {
        {0, "[BOS]"},
        {1, "[EOS]"},
        {2, "<|im_end|>"},
        {3, "<|im_user|>"},
        {4, "<|im_assistant|>"},
        {6, "<|start_header_id|>"},
        {7, "<|end_header_id|>"},
        {9, "[EOT]"},
        {10, "<|im_system|>"},
        {11, "<|tool_calls_section_begin|>"},
        {12, "<|tool_calls_section_end|>"},
        {13, "<|tool_call_begin|>"},
        {14, "<|tool_call_argument_begin|>"},
        {15, "<|tool_call_end|>"},
        {17, "<|im_middle|>"},
        {254, "[UNK]"},
        {255, "[PAD]"},
    };
    return names;
}

std::string base64(const std::string& bytes) {
    static const char* alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                           (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6)
            out += alphabet[(v >> s) & 63];
    }
    if (i + 1 == bytes.size()) {
        const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        const uint32_t v =
            (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

// Byte-pair merges learned from kMergeCorpus: each step merges the most frequent adjacent pair
// within words (ties: the smallest pair by bytes); when the text has no pairs left, pairs of
// lowercase letters follow in alphabetical order. Every merge's parts have lower ranks.
std::vector<std::string> learnMerges(size_t count) {
    std::vector<std::vector<std::string>> words;
    const std::string text = kMergeCorpus;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(' ', start + 1);
        if (end == std::string::npos)
            end = text.size();
        std::vector<std::string> word;
        for (size_t i = start; i < end; ++i)
            word.emplace_back(1, text[i]);
        words.push_back(std::move(word));
        start = end;
    }
    std::set<std::string> known;
    std::vector<std::string> merges;
    while (merges.size() < count) {
        std::map<std::pair<std::string, std::string>, int> counts;
        for (const auto& word : words)
            for (size_t i = 0; i + 1 < word.size(); ++i)
                ++counts[{word[i], word[i + 1]}];
        const std::pair<std::string, std::string>* best = nullptr;
        int bestCount = 0;
        for (const auto& [pair, n] : counts) {
            if (n > bestCount && !known.contains(pair.first + pair.second)) {
                best = &pair;
                bestCount = n;
            }
        }
        if (best == nullptr)
            break;
        const std::string merged = best->first + best->second;
        const auto [left, right] = *best;
        for (auto& word : words) {
            std::vector<std::string> next;
            for (size_t i = 0; i < word.size(); ++i) {
                if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
                    next.push_back(merged);
                    ++i;
                } else {
                    next.push_back(word[i]);
                }
            }
            word = std::move(next);
        }
        known.insert(merged);
        merges.push_back(merged);
    }
    for (char a = 'a'; a <= 'z' && merges.size() < count; ++a)
        for (char b = 'a'; b <= 'z' && merges.size() < count; ++b)
            if (known.insert(std::string{a, b}).second)
                merges.push_back(std::string{a, b});
    return merges;
}

Status writeTextFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out)
        return makeError(ErrorCode::Io, "cannot write ", path.string());
    return {};
}

}  // namespace

Status writeByteTokenizer(const std::filesystem::path& folder, int64_t vocabSize) {
    constexpr int64_t kSpecials = 256;
    if (vocabSize < 256 + kSpecials)
        return makeError(ErrorCode::InvalidArgument,
                         "a byte tokenizer needs a vocabulary of at least ", 256 + kSpecials,
                         " ids (256 bytes and 256 special tokens), not ", vocabSize);
    const int64_t base = vocabSize - kSpecials;
    const std::vector<std::string> merges = learnMerges(static_cast<size_t>(base - 256));
    if (static_cast<int64_t>(merges.size()) != base - 256)
        return makeError(ErrorCode::InvalidArgument, "a vocabulary of ", vocabSize,
                         " ids needs more merges than the byte tokenizer can make");
    std::string ranks;
    for (int b = 0; b < 256; ++b)
        ranks += cat(base64(std::string(1, static_cast<char>(b))), " ", b, "\n");
    for (size_t i = 0; i < merges.size(); ++i)
        ranks += cat(base64(merges[i]), " ", 256 + i, "\n");

    std::string config = "{\n  \"added_tokens_decoder\": {";
    bool first = true;
    for (const auto& [offset, name] : kimiSpecialNames()) {
        config += cat(first ? "" : ",", "\n    \"", base + offset, "\": {\"content\": \"", name,
                      "\", \"special\": true}");
        first = false;
    }
    config +=
        cat("\n  },\n  \"bos_token\": \"[BOS]\",\n  \"eos_token\": \"[EOS]\",\n",
            "  \"pad_token\": \"[PAD]\",\n  \"unk_token\": \"[UNK]\",\n",
            "  \"model_max_length\": 1048576,\n",
            "  \"folio_note\": \"byte-level tokenizer of Folio's generated test models\"\n}\n");
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec)
        return makeError(ErrorCode::Io, "cannot create ", folder.string(), ": ", ec.message());
    FOLIO_TRY(writeTextFile(folder / "tiktoken.model", ranks));
    return writeTextFile(folder / "tokenizer_config.json", config);
}

Result<std::string> presetConfigJson(const std::string& preset) {
    if (preset == "demo")
        return configJson(256, 6, "1, 2, 3, 5", "4, 6", 2, 64, 1024, 2, 64, 32, 64, 128, 16, 4, 96,
                          512);
    if (preset == "tiny")
        return configJson(64, 4, "1, 2, 3", "4", 2, 32, 640, 2, 16, 8, 16, 32, 8, 2, 32, 128);
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
    FOLIO_TRY(writeTextFile(folder / "config.json", json));
    return writeByteTokenizer(folder, config.vocabSize);
}

bool hasModelFiles(const std::filesystem::path& folder) {
    std::error_code ec;
    for (const char* name :
         {"config.json", "model.safetensors", "tiktoken.model", "tokenizer_config.json"})
        if (!std::filesystem::is_regular_file(folder / name, ec))
            return false;
    return true;
}

Result<std::filesystem::path> locateDemoModel(const std::filesystem::path& fallback,
                                              bool* written) {
    if (written != nullptr)
        *written = false;
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec && exe.has_parent_path()) {
        const std::filesystem::path bin = exe.parent_path();
        for (const auto& candidate :
             {bin.parent_path() / "share" / "folio" / "demo-model", bin / "demo-model"})
            if (hasModelFiles(candidate))
                return candidate;
    }
    if (!hasModelFiles(fallback)) {
        FOLIO_ASSIGN_OR_RETURN(std::string json, presetConfigJson("demo"));
        FOLIO_TRY(writeRandomModel(fallback, json, kDemoModelSeed));
        if (written != nullptr)
            *written = true;
    }
    return fallback;
}

}  // namespace folio::inference
