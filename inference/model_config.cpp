// SPDX-License-Identifier: GPL-3.0-or-later
#include "model_config.h"

#include <cmath>
#include <fstream>
#include <set>

#include "checksum.h"
#include "json.h"

namespace folio::inference {
namespace {

Error fieldError(std::string_view field, std::string_view what) {
    return makeError(ErrorCode::Format, "config.json: field \"", field, "\" ", what);
}

// Reads fields of one JSON object with type checks; each error names the field.
class FieldReader {
  public:
    FieldReader(const JsonValue& object, std::string prefix)
        : object_(object), prefix_(std::move(prefix)) {}

    std::string name(std::string_view key) const { return prefix_ + std::string(key); }

    const JsonValue* raw(std::string_view key) const { return object_.find(key); }

    Result<int64_t> integer(std::string_view key, std::optional<int64_t> fallback = {}) const {
        const JsonValue* v = object_.find(key);
        if (v == nullptr || v->isNull()) {
            if (fallback)
                return *fallback;
            return fieldError(name(key), "is missing");
        }
        auto i = v->integer();
        if (!i)
            return fieldError(name(key),
                              cat("must be an integer, found ", JsonValue::typeName(v->type())));
        return *i;
    }

    Result<int64_t> positive(std::string_view key, std::optional<int64_t> fallback = {}) const {
        FOLIO_ASSIGN_OR_RETURN(int64_t value, integer(key, fallback));
        if (value <= 0)
            return fieldError(name(key), cat("must be positive, found ", value));
        return value;
    }

    Result<int64_t> nonNegative(std::string_view key, std::optional<int64_t> fallback = {}) const {
        FOLIO_ASSIGN_OR_RETURN(int64_t value, integer(key, fallback));
        if (value < 0)
            return fieldError(name(key), cat("must not be negative, found ", value));
        return value;
    }

    Result<std::optional<int64_t>> optionalInteger(std::string_view key) const {
        const JsonValue* v = object_.find(key);
        if (v == nullptr || v->isNull())
            return std::optional<int64_t>{};
        auto i = v->integer();
        if (!i)
            return fieldError(name(key), cat("must be an integer or null, found ",
                                             JsonValue::typeName(v->type())));
        return std::optional<int64_t>{*i};
    }

    Result<double> number(std::string_view key, std::optional<double> fallback = {}) const {
        const JsonValue* v = object_.find(key);
        if (v == nullptr || v->isNull()) {
            if (fallback)
                return *fallback;
            return fieldError(name(key), "is missing");
        }
        if (!v->isNumber() || !std::isfinite(v->number()))
            return fieldError(
                name(key), cat("must be a finite number, found ", JsonValue::typeName(v->type())));
        return v->number();
    }

    Result<bool> boolean(std::string_view key, bool fallback) const {
        const JsonValue* v = object_.find(key);
        if (v == nullptr || v->isNull())
            return fallback;
        if (!v->isBool())
            return fieldError(name(key),
                              cat("must be true or false, found ", JsonValue::typeName(v->type())));
        return v->boolean();
    }

    Result<std::string> string(std::string_view key, std::optional<std::string> fallback) const {
        const JsonValue* v = object_.find(key);
        if (v == nullptr || v->isNull()) {
            if (fallback)
                return *fallback;
            return fieldError(name(key), "is missing");
        }
        if (!v->isString())
            return fieldError(name(key),
                              cat("must be a string, found ", JsonValue::typeName(v->type())));
        return v->string();
    }

    Result<std::vector<int64_t>> integerList(std::string_view key) const {
        const JsonValue* v = object_.find(key);
        if (v == nullptr || v->isNull())
            return fieldError(name(key), "is missing");
        if (!v->isArray())
            return fieldError(name(key), "must be a list of integers");
        std::vector<int64_t> out;
        for (const JsonValue& item : v->items()) {
            auto i = item.integer();
            if (!i)
                return fieldError(name(key), "must be a list of integers");
            out.push_back(*i);
        }
        return out;
    }

  private:
    const JsonValue& object_;
    std::string prefix_;
};

Status readLayerSchedule(const FieldReader& top, ModelConfig& c) {
    const JsonValue* linear = top.raw("linear_attn_config");
    if (linear == nullptr || linear->isNull()) {
        // The official code treats a model without linear_attn_config as all full attention.
        c.layerKinds.assign(static_cast<size_t>(c.numLayers), LayerKind::Mla);
        return {};
    }
    if (!linear->isObject())
        return fieldError("linear_attn_config", "must be an object");
    FieldReader la(*linear, "linear_attn_config.");
    FOLIO_ASSIGN_OR_RETURN(c.kdaNumHeads, la.positive("num_heads"));
    FOLIO_ASSIGN_OR_RETURN(c.kdaHeadDim, la.positive("head_dim"));
    FOLIO_ASSIGN_OR_RETURN(c.convKernelSize, la.positive("short_conv_kernel_size"));
    if (c.convKernelSize > 64)
        return fieldError("linear_attn_config.short_conv_kernel_size",
                          cat("is implausibly large (", c.convKernelSize, ")"));
    FOLIO_ASSIGN_OR_RETURN(auto kdaLayers, la.integerList("kda_layers"));
    FOLIO_ASSIGN_OR_RETURN(auto fullLayers, la.integerList("full_attn_layers"));

    std::vector<int> seen(static_cast<size_t>(c.numLayers), 0);
    auto mark = [&](const std::vector<int64_t>& list, std::string_view field,
                    LayerKind kind) -> Status {
        for (int64_t oneBased : list) {
            if (oneBased < 1 || oneBased > c.numLayers)
                return fieldError(cat("linear_attn_config.", field),
                                  cat("lists layer ", oneBased, ", outside 1..", c.numLayers,
                                      " (the lists are 1-based)"));
            size_t i = static_cast<size_t>(oneBased - 1);
            if (seen[i] != 0)
                return fieldError(cat("linear_attn_config.", field),
                                  cat("lists layer ", oneBased, " twice or in both lists"));
            seen[i] = 1;
            c.layerKinds[i] = kind;
        }
        return {};
    };
    c.layerKinds.assign(static_cast<size_t>(c.numLayers), LayerKind::Mla);
    FOLIO_TRY(mark(kdaLayers, "kda_layers", LayerKind::Kda));
    FOLIO_TRY(mark(fullLayers, "full_attn_layers", LayerKind::Mla));
    for (size_t i = 0; i < seen.size(); ++i) {
        if (seen[i] == 0)
            return fieldError("linear_attn_config",
                              cat("does not say whether layer ", i + 1,
                                  " (1-based) is in kda_layers or full_attn_layers"));
    }
    return {};
}

Status readMoe(const FieldReader& f, ModelConfig& c) {
    FOLIO_ASSIGN_OR_RETURN(c.numExperts, f.nonNegative("num_experts", 0));
    FOLIO_ASSIGN_OR_RETURN(c.firstKDenseReplace, f.nonNegative("first_k_dense_replace", 0));
    FOLIO_ASSIGN_OR_RETURN(c.moeLayerFreq, f.positive("moe_layer_freq", 1));
    if (c.numExperts == 0)
        return {};
    FOLIO_ASSIGN_OR_RETURN(c.numExpertsPerToken, f.positive("num_experts_per_token"));
    FOLIO_ASSIGN_OR_RETURN(c.moeIntermediateSize, f.positive("moe_intermediate_size"));
    FOLIO_ASSIGN_OR_RETURN(c.numSharedExperts, f.nonNegative("num_shared_experts", 0));
    FOLIO_ASSIGN_OR_RETURN(c.moeRenormalize, f.boolean("moe_renormalize", true));
    FOLIO_ASSIGN_OR_RETURN(c.routedScalingFactor, f.number("routed_scaling_factor", 1.0));
    FOLIO_ASSIGN_OR_RETURN(std::string activation,
                           f.string("moe_router_activation_func", std::string("sigmoid")));
    if (activation == "sigmoid")
        c.routerActivation = RouterActivation::Sigmoid;
    else if (activation == "softmax")
        c.routerActivation = RouterActivation::Softmax;
    else
        return fieldError("moe_router_activation_func",
                          cat("is \"", activation, "\"; only \"sigmoid\" and \"softmax\" exist"));
    FOLIO_ASSIGN_OR_RETURN(c.useGroupedTopk, f.boolean("use_grouped_topk", true));
    FOLIO_ASSIGN_OR_RETURN(c.numExpertGroups, f.positive("num_expert_group", 1));
    FOLIO_ASSIGN_OR_RETURN(c.topkGroup, f.positive("topk_group", 1));

    if (c.numExpertsPerToken > c.numExperts)
        return fieldError(
            "num_experts_per_token",
            cat("(", c.numExpertsPerToken, ") exceeds num_experts (", c.numExperts, ")"));
    if (c.useGroupedTopk) {
        if (c.numExperts % c.numExpertGroups != 0)
            return fieldError(
                "num_expert_group",
                cat("(", c.numExpertGroups, ") does not divide num_experts (", c.numExperts, ")"));
        if (c.topkGroup > c.numExpertGroups)
            return fieldError("topk_group", cat("(", c.topkGroup, ") exceeds num_expert_group (",
                                                c.numExpertGroups, ")"));
        int64_t perGroup = c.numExperts / c.numExpertGroups;
        if (c.numExpertGroups > 1 && perGroup < 2)
            return fieldError("num_expert_group",
                              "leaves fewer than 2 experts per group (a group scores its top 2)");
        if (c.numExpertsPerToken > c.topkGroup * perGroup)
            return fieldError(
                "num_experts_per_token",
                cat("(", c.numExpertsPerToken, ") exceeds the ", c.topkGroup * perGroup,
                    " experts that topk_group (", c.topkGroup, ") groups hold"));
    }
    return {};
}

}  // namespace

int64_t ModelConfig::countLayers(LayerKind kind) const {
    int64_t n = 0;
    for (LayerKind k : layerKinds)
        n += k == kind ? 1 : 0;
    return n;
}

uint64_t ModelConfig::fingerprint() const {
    std::string canonical = cat(
        "kimi_linear;V=", vocabSize, ";D=", hiddenSize, ";I=", intermediateSize, ";L=", numLayers,
        ";eps=", rmsNormEps, ";H=", numAttentionHeads, ";qr=", qLoraRank.value_or(-1),
        ";kvr=", kvLoraRank, ";nope=", qkNopeHeadDim, ";rope=", qkRopeHeadDim, ";v=", vHeadDim,
        ";kh=", kdaNumHeads, ";kd=", kdaHeadDim, ";conv=", convKernelSize, ";E=", numExperts,
        ";k=", numExpertsPerToken, ";mi=", moeIntermediateSize, ";se=", numSharedExperts,
        ";dense=", firstKDenseReplace, ";freq=", moeLayerFreq, ";layers=");
    for (LayerKind k : layerKinds)
        canonical += k == LayerKind::Kda ? 'K' : 'M';
    return fnv1a64(canonical);
}

Result<ModelConfig> parseModelConfig(std::string_view jsonText) {
    auto parsed = parseJson(jsonText);
    if (!parsed)
        return parsed.error().withContext("config.json");
    const JsonValue& root = parsed.value();
    if (!root.isObject())
        return makeError(ErrorCode::Format, "config.json: the top level is not a JSON object");
    FieldReader f(root, "");
    ModelConfig c;

    FOLIO_ASSIGN_OR_RETURN(std::string modelType, f.string("model_type", std::nullopt));
    if (modelType != "kimi_linear")
        return makeError(ErrorCode::Unsupported, "config.json: field \"model_type\" is \"",
                         modelType, "\"; Folio runs only \"kimi_linear\" models");

    FOLIO_ASSIGN_OR_RETURN(c.vocabSize, f.positive("vocab_size"));
    FOLIO_ASSIGN_OR_RETURN(c.hiddenSize, f.positive("hidden_size"));
    FOLIO_ASSIGN_OR_RETURN(c.intermediateSize, f.positive("intermediate_size"));
    FOLIO_ASSIGN_OR_RETURN(c.numLayers, f.positive("num_hidden_layers"));
    if (c.numLayers > 4096)
        return fieldError("num_hidden_layers", cat("is implausibly large (", c.numLayers, ")"));
    FOLIO_ASSIGN_OR_RETURN(c.rmsNormEps, f.number("rms_norm_eps", 1e-6));
    if (c.rmsNormEps <= 0)
        return fieldError("rms_norm_eps", "must be positive");
    FOLIO_ASSIGN_OR_RETURN(c.tieWordEmbeddings, f.boolean("tie_word_embeddings", false));
    FOLIO_ASSIGN_OR_RETURN(c.modelMaxLength, f.positive("model_max_length", int64_t{1} << 20));
    FOLIO_ASSIGN_OR_RETURN(c.bosTokenId, f.optionalInteger("bos_token_id"));
    FOLIO_ASSIGN_OR_RETURN(c.eosTokenId, f.optionalInteger("eos_token_id"));
    FOLIO_ASSIGN_OR_RETURN(c.padTokenId, f.optionalInteger("pad_token_id"));
    for (auto [name, id] :
         {std::pair{"bos_token_id", c.bosTokenId}, std::pair{"eos_token_id", c.eosTokenId},
          std::pair{"pad_token_id", c.padTokenId}}) {
        if (id && (*id < 0 || *id >= c.vocabSize))
            return fieldError(name,
                              cat("(", *id, ") is outside the vocabulary (", c.vocabSize, ")"));
    }
    FOLIO_ASSIGN_OR_RETURN(std::string activation, f.string("hidden_act", std::string("silu")));
    if (activation != "silu")
        return fieldError("hidden_act", cat("is \"", activation, "\"; only \"silu\" is supported"));

    // MLA.
    FOLIO_ASSIGN_OR_RETURN(c.numAttentionHeads, f.positive("num_attention_heads"));
    FOLIO_ASSIGN_OR_RETURN(int64_t kvHeads, f.positive("num_key_value_heads", c.numAttentionHeads));
    (void)kvHeads;  // read by the official code for GQA bookkeeping; MLA does not use it
    FOLIO_ASSIGN_OR_RETURN(c.qLoraRank, f.optionalInteger("q_lora_rank"));
    if (c.qLoraRank && *c.qLoraRank <= 0)
        return fieldError("q_lora_rank", "must be positive or null");
    FOLIO_ASSIGN_OR_RETURN(c.kvLoraRank, f.positive("kv_lora_rank"));
    FOLIO_ASSIGN_OR_RETURN(c.qkNopeHeadDim, f.positive("qk_nope_head_dim"));
    FOLIO_ASSIGN_OR_RETURN(c.qkRopeHeadDim, f.nonNegative("qk_rope_head_dim"));
    FOLIO_ASSIGN_OR_RETURN(c.vHeadDim, f.positive("v_head_dim"));
    FOLIO_ASSIGN_OR_RETURN(c.mlaUseNope, f.boolean("mla_use_nope", false));
    FOLIO_ASSIGN_OR_RETURN(double ropeTheta, f.number("rope_theta", 10000.0));
    (void)ropeTheta;
    if (!c.mlaUseNope)
        return fieldError("mla_use_nope",
                          "is false (rotary MLA); Kimi Linear's official code requires NoPE");
    if (const JsonValue* scaling = f.raw("rope_scaling");
        scaling && !scaling->isNull() && !scaling->isObject())
        return fieldError("rope_scaling", "must be null or an object");

    FOLIO_TRY(readLayerSchedule(f, c));
    if (c.countLayers(LayerKind::Kda) > 0 && c.kdaNumHeads == 0)
        return fieldError("linear_attn_config", "is missing although KDA layers exist");
    FOLIO_TRY(readMoe(f, c));
    if (c.numExperts > 0 && c.firstKDenseReplace > c.numLayers)
        return fieldError(
            "first_k_dense_replace",
            cat("(", c.firstKDenseReplace, ") exceeds num_hidden_layers (", c.numLayers, ")"));
    FOLIO_ASSIGN_OR_RETURN(int64_t nextn, f.nonNegative("num_nextn_predict_layers", 0));
    (void)nextn;  // multi-token prediction heads are not part of the served model

    // Guard against sizes that overflow the engine's 64-bit arithmetic.
    const int64_t kMaxDim = int64_t{1} << 24;
    for (auto [name, value] :
         {std::pair{"vocab_size", c.vocabSize}, std::pair{"hidden_size", c.hiddenSize},
          std::pair{"intermediate_size", c.intermediateSize},
          std::pair{"num_attention_heads", c.numAttentionHeads},
          std::pair{"kv_lora_rank", c.kvLoraRank},
          std::pair{"q_lora_rank", c.qLoraRank.value_or(0)},
          std::pair{"qk_nope_head_dim", c.qkNopeHeadDim},
          std::pair{"qk_rope_head_dim", c.qkRopeHeadDim}, std::pair{"v_head_dim", c.vHeadDim},
          std::pair{"num_experts", c.numExperts},
          std::pair{"moe_intermediate_size", c.moeIntermediateSize},
          std::pair{"num_shared_experts", c.numSharedExperts},
          std::pair{"linear_attn_config.num_heads", c.kdaNumHeads},
          std::pair{"linear_attn_config.head_dim", c.kdaHeadDim}}) {
        if (value > kMaxDim)
            return fieldError(name, cat("is implausibly large (", value, ")"));
    }
    return c;
}

Result<std::string> readTextFile(const std::filesystem::path& path, uint64_t maxBytes) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec)
        return makeError(
            ec == std::errc::no_such_file_or_directory ? ErrorCode::NotFound : ErrorCode::Io,
            "cannot read ", path.string(), ": ", ec.message());
    if (size > maxBytes)
        return makeError(ErrorCode::Format, path.string(), " is ", size,
                         " bytes, more than the limit of ", maxBytes);
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return makeError(ErrorCode::Io, "cannot open ", path.string());
    std::string text(size, '\0');
    in.read(text.data(), static_cast<std::streamsize>(size));
    if (static_cast<uint64_t>(in.gcount()) != size)
        return makeError(ErrorCode::Io, "short read from ", path.string());
    return text;
}

Result<ModelConfig> loadModelConfig(const std::filesystem::path& path) {
    FOLIO_ASSIGN_OR_RETURN(std::string text, readTextFile(path, 16 << 20));
    auto config = parseModelConfig(text);
    if (!config)
        return config.error().withContext(path.parent_path().string());
    return config;
}

}  // namespace folio::inference
