// SPDX-License-Identifier: GPL-3.0-or-later
// config.json: the golden tiny/small configs and the official Kimi-Linear-48B-A3B-Instruct config
// parse to the right derived values (1-based layer lists, MoE layers, head sizes); every
// inconsistent or malformed config is rejected with an error that names the field.
#include <QtTest>

#include <filesystem>
#include <string>
#include <vector>

#include "inference/model_config.h"
#include "kimi_linear_48b_config.h"

using folio::ErrorCode;
using namespace folio::inference;

namespace {

constexpr const char* kOfficialConfig = folio::tests::kKimiLinear48BConfig;

// The official config with `from` (which must occur exactly once) replaced by `to`.
QByteArray officialWith(const QByteArray& from, const QByteArray& to) {
    QByteArray text(kOfficialConfig);
    const qsizetype at = text.indexOf(from);
    if (at < 0 || text.indexOf(from, at + 1) >= 0)
        qFatal("test bug: \"%s\" does not occur exactly once in the official config",
               from.constData());
    return text.replace(at, from.size(), to);
}

std::vector<LayerKind> kindsFrom(const char* pattern) {
    std::vector<LayerKind> out;
    for (const char* p = pattern; *p; ++p)
        out.push_back(*p == 'K' ? LayerKind::Kda : LayerKind::Mla);
    return out;
}

std::string_view view(const QByteArray& bytes) {
    return {bytes.constData(), static_cast<size_t>(bytes.size())};
}

}  // namespace

class TestModelConfig : public QObject {
    Q_OBJECT

  private slots:
    void goldenTiny();
    void goldenSmall();
    void official48B();
    void officialLayerSchedule();
    void defaultsForOptionalFields();
    void withoutLinearAttnConfigAllLayersAreMla();
    void fingerprintFollowsTheShape();
    void rejects_data();
    void rejects();
    void loadReportsMissingFile();
};

void TestModelConfig::goldenTiny() {
    auto loaded = loadModelConfig(std::filesystem::path(FOLIO_GOLDEN_DIR) / "tiny" / "config.json");
    QVERIFY2(loaded.ok(), loaded.ok() ? "" : loaded.error().message.c_str());
    const ModelConfig& c = *loaded;
    QCOMPARE(c.vocabSize, int64_t{512});
    QCOMPARE(c.hiddenSize, int64_t{128});
    QCOMPARE(c.intermediateSize, int64_t{256});
    QCOMPARE(c.numLayers, int64_t{4});
    // kda_layers [1,2,3], full_attn_layers [4] are 1-based.
    QCOMPARE(c.layerKinds, kindsFrom("KKKM"));
    QCOMPARE(c.layerKind(3), LayerKind::Mla);
    QCOMPARE(c.countLayers(LayerKind::Kda), int64_t{3});
    QCOMPARE(c.countLayers(LayerKind::Mla), int64_t{1});
    QVERIFY(!c.isMoeLayer(0));  // first_k_dense_replace = 1
    QVERIFY(c.isMoeLayer(1) && c.isMoeLayer(2) && c.isMoeLayer(3));
    QCOMPARE(c.qkNopeHeadDim, int64_t{32});
    QCOMPARE(c.qkRopeHeadDim, int64_t{16});
    QCOMPARE(c.qkHeadDim(), int64_t{48});
    QCOMPARE(c.vHeadDim, int64_t{32});
    QCOMPARE(c.kvLoraRank, int64_t{64});
    QVERIFY(!c.qLoraRank.has_value());
    QCOMPARE(c.kdaNumHeads, int64_t{2});
    QCOMPARE(c.kdaHeadDim, int64_t{64});
    QCOMPARE(c.kdaProjectionSize(), int64_t{128});
    QCOMPARE(c.convKernelSize, int64_t{4});
    QCOMPARE(c.numExperts, int64_t{8});
    QCOMPARE(c.numExpertsPerToken, int64_t{2});
    QCOMPARE(c.moeIntermediateSize, int64_t{64});
    QCOMPARE(c.numSharedExperts, int64_t{1});
    QCOMPARE(c.bosTokenId.value_or(-1), int64_t{508});
    QCOMPARE(c.eosTokenId.value_or(-1), int64_t{509});
    QCOMPARE(c.padTokenId.value_or(-1), int64_t{511});
    QCOMPARE(c.rmsNormEps, 1e-5);
    QCOMPARE(c.routedScalingFactor, 2.446);
}

void TestModelConfig::goldenSmall() {
    auto loaded =
        loadModelConfig(std::filesystem::path(FOLIO_GOLDEN_DIR) / "small" / "config.json");
    QVERIFY2(loaded.ok(), loaded.ok() ? "" : loaded.error().message.c_str());
    const ModelConfig& c = *loaded;
    QCOMPARE(c.numLayers, int64_t{6});
    // kda_layers [1,2,3,5], full_attn_layers [4,6] are 1-based: MLA at 0-based 3 and 5.
    QCOMPARE(c.layerKinds, kindsFrom("KKKMKM"));
    QVERIFY(!c.isMoeLayer(0));
    for (int64_t layer = 1; layer < 6; ++layer)
        QVERIFY(c.isMoeLayer(layer));
    QCOMPARE(c.qkHeadDim(), int64_t{192});
    QCOMPARE(c.kvLoraRank, int64_t{512});
    QCOMPARE(c.kdaProjectionSize(), int64_t{256});
    QCOMPARE(c.numExperts, int64_t{16});
    QCOMPARE(c.numExpertsPerToken, int64_t{4});
    QCOMPARE(c.vocabSize, int64_t{1024});
}

void TestModelConfig::official48B() {
    auto parsed = parseModelConfig(kOfficialConfig);
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    const ModelConfig& c = *parsed;
    QCOMPARE(c.vocabSize, int64_t{163840});
    QCOMPARE(c.hiddenSize, int64_t{2304});
    QCOMPARE(c.intermediateSize, int64_t{9216});
    QCOMPARE(c.numLayers, int64_t{27});
    QCOMPARE(c.rmsNormEps, 1e-5);
    QVERIFY(!c.tieWordEmbeddings);
    QCOMPARE(c.modelMaxLength, int64_t{1048576});
    QCOMPARE(c.bosTokenId.value_or(-1), int64_t{163584});
    QCOMPARE(c.eosTokenId.value_or(-1), int64_t{163586});
    QCOMPARE(c.padTokenId.value_or(-1), int64_t{163839});
    QCOMPARE(c.numAttentionHeads, int64_t{32});
    QVERIFY(!c.qLoraRank.has_value());
    QCOMPARE(c.kvLoraRank, int64_t{512});
    QCOMPARE(c.qkNopeHeadDim, int64_t{128});
    QCOMPARE(c.qkRopeHeadDim, int64_t{64});
    QCOMPARE(c.qkHeadDim(), int64_t{192});
    QCOMPARE(c.vHeadDim, int64_t{128});
    QVERIFY(c.mlaUseNope);
    QCOMPARE(c.kdaNumHeads, int64_t{32});
    QCOMPARE(c.kdaHeadDim, int64_t{128});
    QCOMPARE(c.kdaProjectionSize(), int64_t{4096});
    QCOMPARE(c.convKernelSize, int64_t{4});
    QCOMPARE(c.numExperts, int64_t{256});
    QCOMPARE(c.numExpertsPerToken, int64_t{8});
    QCOMPARE(c.moeIntermediateSize, int64_t{1024});
    QCOMPARE(c.numSharedExperts, int64_t{1});
    QVERIFY(c.moeRenormalize);
    QCOMPARE(c.routerActivation, RouterActivation::Sigmoid);
    QCOMPARE(c.routedScalingFactor, 2.446);
    QCOMPARE(c.numExpertGroups, int64_t{1});
    QCOMPARE(c.topkGroup, int64_t{1});
    QVERIFY(c.useGroupedTopk);
    QCOMPARE(c.firstKDenseReplace, int64_t{1});
    QCOMPARE(c.moeLayerFreq, int64_t{1});
}

void TestModelConfig::officialLayerSchedule() {
    auto parsed = parseModelConfig(kOfficialConfig);
    QVERIFY(parsed.ok());
    const ModelConfig& c = *parsed;
    QCOMPARE(c.layerKinds.size(), size_t{27});
    QCOMPARE(c.countLayers(LayerKind::Kda), int64_t{20});
    QCOMPARE(c.countLayers(LayerKind::Mla), int64_t{7});
    std::vector<int64_t> mla;
    for (int64_t layer = 0; layer < c.numLayers; ++layer) {
        if (c.layerKind(layer) == LayerKind::Mla)
            mla.push_back(layer);
    }
    // Not a strict i % 4 == 3: the last MLA layer is 26, after KDA layers 24 and 25.
    QCOMPARE(mla, (std::vector<int64_t>{3, 7, 11, 15, 19, 23, 26}));
    QCOMPARE(c.layerKinds, kindsFrom("KKKMKKKMKKKMKKKMKKKMKKKMKKM"));
    // Dense MLP in layer 0 only; MoE in layers 1..26.
    QVERIFY(!c.isMoeLayer(0));
    for (int64_t layer = 1; layer < 27; ++layer)
        QVERIFY2(c.isMoeLayer(layer), qPrintable(QString::number(layer)));
}

void TestModelConfig::defaultsForOptionalFields() {
    // A minimal config: only what has no default.
    const char* minimal = R"({
      "model_type": "kimi_linear", "vocab_size": 64, "hidden_size": 16,
      "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
      "kv_lora_rank": 8, "qk_nope_head_dim": 4, "qk_rope_head_dim": 0, "v_head_dim": 4,
      "mla_use_nope": true,
      "linear_attn_config": {"num_heads": 2, "head_dim": 4, "short_conv_kernel_size": 3,
                             "kda_layers": [2], "full_attn_layers": [1]}
    })";
    auto parsed = parseModelConfig(minimal);
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    const ModelConfig& c = *parsed;
    QCOMPARE(c.layerKinds, kindsFrom("MK"));
    QCOMPARE(c.numExperts, int64_t{0});
    QVERIFY(!c.isMoeLayer(0) && !c.isMoeLayer(1));  // no experts: every layer is dense
    QCOMPARE(c.qkHeadDim(), int64_t{4});
    QCOMPARE(c.rmsNormEps, 1e-6);
    QVERIFY(!c.tieWordEmbeddings);
    QVERIFY(!c.bosTokenId.has_value());
}

void TestModelConfig::withoutLinearAttnConfigAllLayersAreMla() {
    QByteArray text = kOfficialConfig;
    const qsizetype begin = text.indexOf("\"linear_attn_config\"");
    const qsizetype end = text.indexOf("},", begin) + 2;
    QVERIFY(begin > 0 && end > begin);
    text.remove(begin, end - begin);
    auto parsed = parseModelConfig(view(text));
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    QCOMPARE(parsed->countLayers(LayerKind::Mla), int64_t{27});
    QCOMPARE(parsed->countLayers(LayerKind::Kda), int64_t{0});
}

void TestModelConfig::fingerprintFollowsTheShape() {
    auto a = parseModelConfig(kOfficialConfig);
    auto b = parseModelConfig(kOfficialConfig);
    QVERIFY(a.ok() && b.ok());
    QCOMPARE(a->fingerprint(), b->fingerprint());
    // Fields that do not shape the computation leave it alone ...
    auto renamed = parseModelConfig(view(
        officialWith("\"transformers_version\": \"4.57.1\"", "\"transformers_version\": \"9.9\"")));
    QVERIFY(renamed.ok());
    QCOMPARE(renamed->fingerprint(), a->fingerprint());
    // ... but a different layer schedule changes it.
    auto swapped = parseModelConfig(
        view(officialWith("\"full_attn_layers\": [4, 8, 12, 16, 20, 24, 27]",
                          "\"full_attn_layers\": [3, 8, 12, 16, 20, 24, 27]")
                 .replace("\"kda_layers\": [1, 2, 3,", "\"kda_layers\": [1, 2, 4,")));
    QVERIFY2(swapped.ok(), swapped.ok() ? "" : swapped.error().message.c_str());
    QVERIFY(swapped->fingerprint() != a->fingerprint());
}

void TestModelConfig::rejects_data() {
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<int>("code");
    QTest::addColumn<QStringList>("fragments");

    auto row = [](const char* name, const QByteArray& text, ErrorCode code, QStringList fragments) {
        QTest::newRow(name) << text << int(code) << fragments;
    };
    const auto F = ErrorCode::Format;
    row("unknown model_type", officialWith("\"kimi_linear\"", "\"deepseek_v3\""),
        ErrorCode::Unsupported,
        {"field \"model_type\" is \"deepseek_v3\"", "only \"kimi_linear\""});
    row("missing model_type", officialWith("\"model_type\": \"kimi_linear\",", ""), F,
        {"field \"model_type\" is missing"});
    row("missing hidden_size", officialWith("\"hidden_size\": 2304,", ""), F,
        {"field \"hidden_size\" is missing"});
    row("null hidden_size", officialWith("\"hidden_size\": 2304", "\"hidden_size\": null"), F,
        {"field \"hidden_size\" is missing"});
    row("non-integer vocab_size",
        officialWith("\"vocab_size\": 163840", "\"vocab_size\": 163840.5"), F,
        {"field \"vocab_size\" must be an integer, found a number"});
    row("vocab_size as a string",
        officialWith("\"vocab_size\": 163840", "\"vocab_size\": \"163840\""), F,
        {"field \"vocab_size\" must be an integer, found a string"});
    row("negative hidden_size", officialWith("\"hidden_size\": 2304", "\"hidden_size\": -2304"), F,
        {"field \"hidden_size\" must be positive, found -2304"});
    row("zero intermediate_size",
        officialWith("\"intermediate_size\": 9216", "\"intermediate_size\": 0"), F,
        {"field \"intermediate_size\" must be positive, found 0"});
    row("negative num_attention_heads",
        officialWith("\"num_attention_heads\": 32", "\"num_attention_heads\": -1"), F,
        {"field \"num_attention_heads\" must be positive, found -1"});
    row("negative qk_rope_head_dim",
        officialWith("\"qk_rope_head_dim\": 64", "\"qk_rope_head_dim\": -64"), F,
        {"field \"qk_rope_head_dim\" must not be negative, found -64"});
    row("negative num_experts", officialWith("\"num_experts\": 256", "\"num_experts\": -8"), F,
        {"field \"num_experts\" must not be negative, found -8"});
    row("negative kda head_dim", officialWith("\"head_dim\": 128", "\"head_dim\": -128"), F,
        {"field \"linear_attn_config.head_dim\" must be positive, found -128"});
    row("huge hidden_size", officialWith("\"hidden_size\": 2304", "\"hidden_size\": 98000000000"),
        F, {"field \"hidden_size\" is implausibly large (98000000000)"});
    // Sizes that would overflow the engine's 64-bit shape arithmetic (found by fuzzing).
    row("huge qk_nope_head_dim",
        officialWith("\"qk_nope_head_dim\": 128", "\"qk_nope_head_dim\": 9223372036854775807"), F,
        {"field \"qk_nope_head_dim\" is implausibly large (9223372036854775807)"});
    row("huge qk_rope_head_dim",
        officialWith("\"qk_rope_head_dim\": 64", "\"qk_rope_head_dim\": 4611686018427387904"), F,
        {"field \"qk_rope_head_dim\" is implausibly large (4611686018427387904)"});
    row("huge v_head_dim",
        officialWith("\"v_head_dim\": 128", "\"v_head_dim\": 9223372036854775807"), F,
        {"field \"v_head_dim\" is implausibly large (9223372036854775807)"});
    row("huge num_shared_experts",
        officialWith("\"num_shared_experts\": 1", "\"num_shared_experts\": 9223372036854775807"), F,
        {"field \"num_shared_experts\" is implausibly large (9223372036854775807)"});
    row("huge q_lora_rank", officialWith("\"q_lora_rank\": null", "\"q_lora_rank\": 16777217"), F,
        {"field \"q_lora_rank\" is implausibly large (16777217)"});
    row("layer in both lists",
        officialWith("\"kda_layers\": [1, 2, 3, 5,", "\"kda_layers\": [1, 2, 3, 4, 5,"), F,
        {"field \"linear_attn_config.full_attn_layers\"", "lists layer 4 twice or in both lists"});
    row("layer twice in one list",
        officialWith("\"kda_layers\": [1, 2, 3, 5,", "\"kda_layers\": [1, 2, 3, 3, 5,"), F,
        {"field \"linear_attn_config.kda_layers\"", "lists layer 3 twice"});
    row("layer in neither list",
        officialWith("[4, 8, 12, 16, 20, 24, 27]", "[4, 8, 12, 16, 20, 24]"), F,
        {"field \"linear_attn_config\"",
         "does not say whether layer 27 (1-based) is in kda_layers or full_attn_layers"});
    row("layer index 0 (0-based list)",
        officialWith("\"kda_layers\": [1, 2, 3,", "\"kda_layers\": [0, 1, 2, 3,"), F,
        {"field \"linear_attn_config.kda_layers\"", "lists layer 0, outside 1..27",
         "the lists are 1-based"});
    row("layer index past num_hidden_layers",
        officialWith("[4, 8, 12, 16, 20, 24, 27]", "[4, 8, 12, 16, 20, 24, 27, 28]"), F,
        {"field \"linear_attn_config.full_attn_layers\"", "lists layer 28, outside 1..27"});
    row("layer list not a list", officialWith("[4, 8, 12, 16, 20, 24, 27]", "\"4,8,12\""), F,
        {"field \"linear_attn_config.full_attn_layers\" must be a list of integers"});
    row("layer list holds a fraction",
        officialWith("[4, 8, 12, 16, 20, 24, 27]", "[4, 8, 12, 16, 20, 24, 27.5]"), F,
        {"field \"linear_attn_config.full_attn_layers\" must be a list of integers"});
    row("linear_attn_config not an object",
        officialWith("\"linear_attn_config\": {", "\"linear_attn_config\": [{")
            .replace("\"short_conv_kernel_size\": 4\n  }", "\"short_conv_kernel_size\": 4\n  }]"),
        F, {"field \"linear_attn_config\" must be an object"});
    row("num_experts_per_token over num_experts",
        officialWith("\"num_experts_per_token\": 8", "\"num_experts_per_token\": 257"), F,
        {"field \"num_experts_per_token\" (257) exceeds num_experts (256)"});
    row("topk_group over num_expert_group", officialWith("\"topk_group\": 1", "\"topk_group\": 2"),
        F, {"field \"topk_group\" (2) exceeds num_expert_group (1)"});
    row("num_expert_group not dividing num_experts",
        officialWith("\"num_expert_group\": 1", "\"num_expert_group\": 3"), F,
        {"field \"num_expert_group\" (3) does not divide num_experts (256)"});
    row("unknown router activation", officialWith("\"sigmoid\"", "\"relu\""), F,
        {"field \"moe_router_activation_func\" is \"relu\""});
    row("mla_use_nope false", officialWith("\"mla_use_nope\": true", "\"mla_use_nope\": false"), F,
        {"field \"mla_use_nope\" is false"});
    row("mla_use_nope not a boolean", officialWith("\"mla_use_nope\": true", "\"mla_use_nope\": 1"),
        F, {"field \"mla_use_nope\" must be true or false, found a number"});
    row("bos_token_id outside the vocabulary",
        officialWith("\"bos_token_id\": 163584", "\"bos_token_id\": 163840"), F,
        {"field \"bos_token_id\" (163840) is outside the vocabulary (163840)"});
    row("q_lora_rank zero", officialWith("\"q_lora_rank\": null", "\"q_lora_rank\": 0"), F,
        {"field \"q_lora_rank\" must be positive or null"});
    row("rms_norm_eps a string",
        officialWith("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": \"1e-05\""), F,
        {"field \"rms_norm_eps\" must be a finite number, found a string"});
    row("hidden_act not silu", officialWith("\"silu\"", "\"gelu\""), F,
        {"field \"hidden_act\" is \"gelu\""});
    row("first_k_dense_replace past the layers",
        officialWith("\"first_k_dense_replace\": 1", "\"first_k_dense_replace\": 28"), F,
        {"field \"first_k_dense_replace\" (28) exceeds num_hidden_layers (27)"});
    row("broken JSON", QByteArray(kOfficialConfig).chopped(2), F,
        {"config.json: invalid JSON at byte", "unterminated object"});
    row("duplicate field",
        officialWith("\"hidden_size\": 2304,", "\"hidden_size\": 2304, \"hidden_size\": 1,"), F,
        {"config.json: invalid JSON", "duplicate key \"hidden_size\""});
    row("top level is an array", "[" + QByteArray(kOfficialConfig) + "]", F,
        {"config.json: the top level is not a JSON object"});
    row("top level is a string", "\"kimi_linear\"", F,
        {"config.json: the top level is not a JSON object"});
    row("empty file", "", F, {"config.json: invalid JSON at byte 0: unexpected end of input"});
}

void TestModelConfig::rejects() {
    QFETCH(QByteArray, text);
    QFETCH(int, code);
    QFETCH(QStringList, fragments);
    auto parsed = parseModelConfig(view(text));
    QVERIFY2(!parsed.ok(), "an invalid config was accepted");
    QCOMPARE(int(parsed.error().code), code);
    const QString message = QString::fromStdString(parsed.error().message);
    QVERIFY2(message.startsWith(QStringLiteral("config.json: ")), qPrintable(message));
    for (const QString& fragment : fragments)
        QVERIFY2(message.contains(fragment),
                 qPrintable(QStringLiteral("\"%1\" not in: %2").arg(fragment, message)));
}

void TestModelConfig::loadReportsMissingFile() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto path = std::filesystem::path(dir.path().toStdString()) / "config.json";
    auto loaded = loadModelConfig(path);
    QVERIFY(!loaded.ok());
    QCOMPARE(loaded.error().code, ErrorCode::NotFound);
    QVERIFY(loaded.error().message.find(path.string()) != std::string::npos);

    // A file that parses badly names its folder.
    QFile file(QString::fromStdString(path.string()));
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(officialWith("\"hidden_size\": 2304,", ""));
    file.close();
    auto bad = loadModelConfig(path);
    QVERIFY(!bad.ok());
    QVERIFY2(bad.error().message.find(dir.path().toStdString()) != std::string::npos,
             bad.error().message.c_str());
    QVERIFY(bad.error().message.find("\"hidden_size\" is missing") != std::string::npos);
}

QTEST_GUILESS_MAIN(TestModelConfig)
#include "test_model_config.moc"
