// SPDX-License-Identifier: GPL-3.0-or-later
// Checkpoint folders: (a) small sharded checkpoints open, and every disagreement between the index
// and the shards is rejected naming the tensor or file; (b) the full layout of the official
// Kimi-Linear-48B-A3B-Instruct checkpoint (20,493 tensors, 49,122,681,728 parameters, 20 shards),
// built here from the reference tables independently of model_weights.cpp and written as sparse
// files, opens and binds to the official config; a missing, misshapen or mistyped tensor is
// rejected by name. The 48B weights are never written nor read: they are holes in sparse files.
#include <sys/stat.h>

#include <QtTest>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "inference/checkpoint.h"
#include "inference/model_config.h"
#include "inference/model_weights.h"
#include "inference/safetensors.h"
#include "kimi_linear_48b_config.h"

using folio::Error;
using folio::ErrorCode;
using folio::Status;
using namespace folio::inference;
namespace fs = std::filesystem;

#define EXPECT_IN_MESSAGE(error, fragment)                                      \
    QVERIFY2((error).message.find(fragment) != std::string::npos,               \
             qPrintable(QStringLiteral("\"%1\" not in: %2")                     \
                            .arg(QString::fromStdString(std::string(fragment)), \
                                 QString::fromStdString((error).message))))

namespace {

constexpr const char* kIndex = "model.safetensors.index.json";

template <typename T>
std::span<const std::byte> bytesOf(const std::vector<T>& values) {
    return std::as_bytes(std::span<const T>(values));
}

void writeText(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out)
        qFatal("cannot write %s", path.c_str());
}

std::string indexJson(const std::vector<std::pair<std::string, std::string>>& weightMap,
                      uint64_t totalSize = 0) {
    std::string out = "{\n  \"metadata\": {\"total_size\": " + std::to_string(totalSize) +
                      "},\n  \"weight_map\": {";
    for (size_t i = 0; i < weightMap.size(); ++i) {
        out += i ? ",\n    " : "\n    ";
        out += "\"" + weightMap[i].first + "\": \"" + weightMap[i].second + "\"";
    }
    return out + "\n  }\n}\n";
}

// ---- (b) The official layout, from shared/reference/kimi-linear-architecture.md §1-2. ----

struct Spec {
    std::string name;
    DType dtype = DType::BF16;
    std::vector<int64_t> shape;

    uint64_t elements() const {
        uint64_t n = 1;
        for (int64_t d : shape)
            n *= static_cast<uint64_t>(d);
        return n;
    }
    uint64_t bytes() const { return elements() * dtypeSize(dtype); }
};

std::vector<Spec> kimiLinear48BTensors() {
    constexpr int64_t D = 2304, V = 163840;
    const std::set<int> mlaLayers = {3, 7, 11, 15, 19, 23, 26};  // 0-based
    std::vector<Spec> t;
    auto add = [&](std::string name, std::vector<int64_t> shape, DType dtype = DType::BF16) {
        t.push_back({std::move(name), dtype, std::move(shape)});
    };
    add("model.embed_tokens.weight", {V, D});
    for (int n = 0; n < 27; ++n) {
        const std::string p = "model.layers." + std::to_string(n) + ".";
        const std::string a = p + "self_attn.";
        add(p + "input_layernorm.weight", {D});
        add(p + "post_attention_layernorm.weight", {D});
        add(a + "o_proj.weight", {D, 4096});  // KDA and MLA alike
        if (mlaLayers.count(n)) {
            add(a + "q_proj.weight", {6144, D});
            add(a + "kv_a_proj_with_mqa.weight", {576, D});
            add(a + "kv_a_layernorm.weight", {512});
            add(a + "kv_b_proj.weight", {8192, 512});
        } else {
            for (const char* x : {"q", "k", "v"})
                add(a + x + "_proj.weight", {4096, D});
            for (const char* x : {"q", "k", "v"})
                add(a + x + "_conv1d.weight", {4096, 1, 4});
            add(a + "f_a_proj.weight", {128, D});
            add(a + "f_b_proj.weight", {4096, 128});
            add(a + "A_log", {1, 1, 32, 1}, DType::F32);
            add(a + "dt_bias", {4096}, DType::F32);
            add(a + "b_proj.weight", {32, D});
            add(a + "g_a_proj.weight", {128, D});
            add(a + "g_b_proj.weight", {4096, 128});
            add(a + "o_norm.weight", {128});
        }
        if (n == 0) {
            add(p + "mlp.gate_proj.weight", {9216, D});
            add(p + "mlp.up_proj.weight", {9216, D});
            add(p + "mlp.down_proj.weight", {D, 9216});
        } else {
            const std::string m = p + "block_sparse_moe.";
            add(m + "gate.weight", {256, D});
            add(m + "gate.e_score_correction_bias", {256});
            for (int e = 0; e < 256; ++e) {
                const std::string x = m + "experts." + std::to_string(e) + ".";
                add(x + "w1.weight", {1024, D});
                add(x + "w3.weight", {1024, D});
                add(x + "w2.weight", {D, 1024});
            }
            add(m + "shared_experts.gate_proj.weight", {1024, D});
            add(m + "shared_experts.up_proj.weight", {1024, D});
            add(m + "shared_experts.down_proj.weight", {D, 1024});
        }
    }
    add("model.norm.weight", {D});
    add("lm_head.weight", {V, D});
    return t;
}

std::string shardName(int shard) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-00020.safetensors", shard + 1);
    return name;
}

// Writes `tensors` as 20 sparse shards (split by cumulative size, in table order, so that
// embed_tokens lands in shard 1 and model.norm / lm_head in shard 20), the index and the official
// config.json. Returns the shard file of each tensor.
std::map<std::string, std::string> writeOfficialCheckpoint(const fs::path& folder,
                                                           const std::vector<Spec>& tensors) {
    uint64_t total = 0;
    for (const Spec& s : tensors)
        total += s.bytes();
    std::vector<std::vector<TensorRecord>> shards(20);
    std::vector<std::pair<std::string, std::string>> weightMap;
    std::map<std::string, std::string> shardOf;
    uint64_t offset = 0;
    for (const Spec& s : tensors) {
        const int shard = static_cast<int>(std::min<uint64_t>(19, offset * 20 / total));
        shards[static_cast<size_t>(shard)].push_back({s.name, s.dtype, s.shape, {}});
        weightMap.emplace_back(s.name, shardName(shard));
        shardOf[s.name] = shardName(shard);
        offset += s.bytes();
    }
    for (int i = 0; i < 20; ++i) {
        if (shards[static_cast<size_t>(i)].empty())
            qFatal("shard %d is empty", i + 1);
        Status written = writeSafetensors(folder / shardName(i), shards[static_cast<size_t>(i)],
                                          {{"format", "pt"}});
        if (!written.ok())
            qFatal("%s", written.error().message.c_str());
    }
    writeText(folder / kIndex, indexJson(weightMap, total));
    writeText(folder / "config.json", folio::tests::kKimiLinear48BConfig);
    return shardOf;
}

struct Mapping {
    uintptr_t begin = 0, end = 0;
};

// The address ranges mapped from each file, from /proc/self/maps.
std::map<std::string, std::vector<Mapping>> fileMappings() {
    std::map<std::string, std::vector<Mapping>> out;
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        unsigned long long begin = 0, end = 0;
        int pathAt = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx %*s %*s %*s %*s %n", &begin, &end, &pathAt) < 2 ||
            pathAt <= 0 || static_cast<size_t>(pathAt) >= line.size())
            continue;
        out[line.substr(static_cast<size_t>(pathAt))].push_back(
            {static_cast<uintptr_t>(begin), static_cast<uintptr_t>(end)});
    }
    return out;
}

uint64_t headerLength(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    unsigned char b[8] = {};
    in.read(reinterpret_cast<char*>(b), 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | b[i];
    return n;
}

bool holesSupported(const fs::path& folder) {
    const fs::path probe = folder / "sparse-probe";
    {
        std::ofstream out(probe, std::ios::binary);
        out.put('x');
    }
    fs::resize_file(probe, uint64_t{1} << 30);
    struct stat info {};
    const bool sparse = ::stat(probe.c_str(), &info) == 0 && info.st_blocks * 512 < (1 << 24);
    fs::remove(probe);
    return sparse;
}

}  // namespace

class TestCheckpointLayout : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase();
    // (a) small checkpoints
    void shardedCheckpointOpens();
    void singleFileCheckpointOpens();
    void goldenTinyBinds();
    void noWeightsAtAll();
    void missingShardFile();
    void tensorListedButAbsentFromShard();
    void tensorInShardButNotInIndex();
    void shardNameLeavesTheFolder_data();
    void shardNameLeavesTheFolder();
    void sameTensorInTwoShards();
    void indexNotJson();
    void indexWithoutWeightMap();
    void indexWithEmptyWeightMap();
    void malformedShardNamesTheShard();
    // (b) the official 48B layout
    void officialTableCounts();
    void officialLayoutOpensAndBinds();
    void officialLayoutMissingTensor();
    void officialLayoutMisshapenTensor();
    void officialLayoutWrongDtype();
    void officialLayoutUnexpectedTensor();

  private:
    // A fresh folder for one test function.
    fs::path freshFolder(const char* name) {
        const fs::path folder = root_ / name;
        fs::remove_all(folder);
        fs::create_directories(folder);
        return folder;
    }
    // Two shards: a (F32 [2]) and b (BF16 [3]) in shard 1, c (I32 [1]) in shard 2.
    void writeSmallShards(const fs::path& folder, bool cAlsoHoldsA = false);

    QTemporaryDir dir_;
    fs::path root_;
    std::vector<Spec> official_;
    const std::string shard1_ = "model-00001-of-00002.safetensors";
    const std::string shard2_ = "model-00002-of-00002.safetensors";
    const std::vector<float> a_ = {1.5f, -2.0f};
    const std::vector<uint16_t> b_ = {0x3F80, 0x4000, 0xC040};
    const std::vector<int32_t> c_ = {123456};
};

void TestCheckpointLayout::initTestCase() {
    QVERIFY2(dir_.isValid(), qPrintable(dir_.errorString()));
    root_ = fs::path(dir_.path().toStdString());
    official_ = kimiLinear48BTensors();
}

void TestCheckpointLayout::writeSmallShards(const fs::path& folder, bool cAlsoHoldsA) {
    const std::vector<TensorRecord> one = {{"a", DType::F32, {2}, bytesOf(a_)},
                                           {"b", DType::BF16, {3}, bytesOf(b_)}};
    std::vector<TensorRecord> two = {{"c", DType::I32, {1}, bytesOf(c_)}};
    if (cAlsoHoldsA)
        two.push_back({"a", DType::F32, {2}, bytesOf(a_)});
    QVERIFY(writeSafetensors(folder / shard1_, one).ok());
    QVERIFY(writeSafetensors(folder / shard2_, two).ok());
}

// ---- (a) ----

void TestCheckpointLayout::shardedCheckpointOpens() {
    const fs::path folder = freshFolder("sharded");
    writeSmallShards(folder);
    writeText(folder / kIndex, indexJson({{"a", shard1_}, {"b", shard1_}, {"c", shard2_}}, 18));
    auto opened = Checkpoint::open(folder);
    QVERIFY2(opened.ok(), opened.ok() ? "" : opened.error().message.c_str());
    QCOMPARE(opened->shardCount(), size_t{2});
    QCOMPARE(opened->tensors().size(), size_t{3});
    QCOMPARE(opened->totalBytes(), uint64_t{8 + 6 + 4});
    QCOMPARE(opened->find("missing"), nullptr);

    const TensorView* a = opened->find("a");
    QVERIFY(a != nullptr);
    QCOMPARE(a->dtype, DType::F32);
    QCOMPARE(a->shapeString(), std::string("[2]"));
    QCOMPARE(toFloatVector(*a), a_);
    const TensorView* b = opened->find("b");
    QVERIFY(b != nullptr);
    QCOMPARE(toFloatVector(*b), (std::vector<float>{1.0f, 2.0f, -3.0f}));
    const TensorView* c = opened->find("c");
    QVERIFY(c != nullptr);
    QCOMPARE(c->dtype, DType::I32);
    int32_t value = 0;
    std::memcpy(&value, c->data, 4);
    QCOMPARE(value, c_[0]);
}

void TestCheckpointLayout::singleFileCheckpointOpens() {
    const fs::path folder = freshFolder("single");
    const std::vector<TensorRecord> records = {{"a", DType::F32, {2}, bytesOf(a_)}};
    QVERIFY(writeSafetensors(folder / "model.safetensors", records).ok());
    auto opened = Checkpoint::open(folder);
    QVERIFY2(opened.ok(), opened.ok() ? "" : opened.error().message.c_str());
    QCOMPARE(opened->shardCount(), size_t{1});
    QVERIFY(opened->find("a") != nullptr);
    QCOMPARE(toFloatVector(*opened->find("a")), a_);
}

void TestCheckpointLayout::goldenTinyBinds() {
    const fs::path folder = fs::path(FOLIO_GOLDEN_DIR) / "tiny";
    auto checkpoint = Checkpoint::open(folder);
    QVERIFY2(checkpoint.ok(), checkpoint.ok() ? "" : checkpoint.error().message.c_str());
    auto config = loadModelConfig(folder / "config.json");
    QVERIFY(config.ok());
    auto weights = bindModelWeights(*config, *checkpoint);
    QVERIFY2(weights.ok(), weights.ok() ? "" : weights.error().message.c_str());
    QCOMPARE(weights->layers.size(), size_t{4});
    QCOMPARE(weights->layers[3].kind, LayerKind::Mla);
    QCOMPARE(weights->layers[0].kda.aLog.dtype, DType::F32);
    QCOMPARE(weights->layers[1].experts.experts.size(), size_t{8});
}

void TestCheckpointLayout::noWeightsAtAll() {
    const fs::path folder = freshFolder("empty");
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::NotFound);
    EXPECT_IN_MESSAGE(opened.error(), folder.string());
    EXPECT_IN_MESSAGE(opened.error(), "neither model.safetensors nor " + std::string(kIndex));
}

void TestCheckpointLayout::missingShardFile() {
    const fs::path folder = freshFolder("missing_shard");
    writeSmallShards(folder);
    const std::string shard3 = "model-00003-of-00003.safetensors";
    writeText(folder / kIndex,
              indexJson({{"a", shard1_}, {"b", shard1_}, {"c", shard2_}, {"d", shard3}}));
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::NotFound);
    EXPECT_IN_MESSAGE(opened.error(), (folder / shard3).string());
}

void TestCheckpointLayout::tensorListedButAbsentFromShard() {
    const fs::path folder = freshFolder("listed_absent");
    writeSmallShards(folder);
    writeText(folder / kIndex,
              indexJson({{"a", shard1_}, {"b", shard1_}, {"c", shard2_}, {"ghost", shard2_}}));
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(), std::string(kIndex) + " lists tensor \"ghost\" in " +
                                          shard2_ + " but that shard does not contain it");
}

void TestCheckpointLayout::tensorInShardButNotInIndex() {
    const fs::path folder = freshFolder("unlisted");
    writeSmallShards(folder);
    writeText(folder / kIndex, indexJson({{"a", shard1_}, {"c", shard2_}}));
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(),
                      "tensor \"b\" in " + shard1_ + " is not listed in " + std::string(kIndex));
}

void TestCheckpointLayout::shardNameLeavesTheFolder_data() {
    QTest::addColumn<QString>("shard");
    QTest::newRow("parent") << QStringLiteral("../model-00002-of-00002.safetensors");
    QTest::newRow("parent only") << QStringLiteral("..");
    QTest::newRow("dot") << QStringLiteral(".");
    QTest::newRow("absolute") << QStringLiteral("/etc/passwd");
    QTest::newRow("subfolder") << QStringLiteral("sub/model-00002-of-00002.safetensors");
    QTest::newRow("backslash") << QStringLiteral("..\\\\model-00002-of-00002.safetensors");
    QTest::newRow("empty") << QString();
}

void TestCheckpointLayout::shardNameLeavesTheFolder() {
    QFETCH(QString, shard);
    const fs::path folder = freshFolder("escape");
    writeSmallShards(folder);
    // A real shard next to the folder, which a "../" name would reach.
    QVERIFY(writeSafetensors(root_ / shard2_,
                             std::vector<TensorRecord>{{"c", DType::I32, {1}, bytesOf(c_)}})
                .ok());
    writeText(folder / kIndex,
              indexJson({{"a", shard1_}, {"b", shard1_}, {"c", shard.toStdString()}}));
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(), "tensor \"c\" maps to an invalid shard file name");
    fs::remove(root_ / shard2_);
}

void TestCheckpointLayout::sameTensorInTwoShards() {
    const fs::path folder = freshFolder("twice");
    writeSmallShards(folder, /*cAlsoHoldsA=*/true);
    writeText(folder / kIndex, indexJson({{"a", shard1_}, {"b", shard1_}, {"c", shard2_}}));
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(), "tensor \"a\" is in " + shard2_ + " but " +
                                          std::string(kIndex) + " places it in " + shard1_);
}

void TestCheckpointLayout::indexNotJson() {
    const fs::path folder = freshFolder("index_not_json");
    writeSmallShards(folder);
    writeText(folder / kIndex, "{\"weight_map\": {\"a\": ");
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(), (folder / kIndex).string() + ": invalid JSON at byte");
}

void TestCheckpointLayout::indexWithoutWeightMap() {
    const fs::path folder = freshFolder("no_weight_map");
    writeSmallShards(folder);
    writeText(folder / kIndex, R"({"metadata": {}, "weights": {"a": "x"}})");
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(), "\"weight_map\" is missing or not an object");

    writeText(folder / kIndex, R"(["weight_map"])");
    auto array = Checkpoint::open(folder);
    QVERIFY(!array.ok());
    EXPECT_IN_MESSAGE(array.error(), "\"weight_map\" is missing or not an object");
}

void TestCheckpointLayout::indexWithEmptyWeightMap() {
    const fs::path folder = freshFolder("empty_weight_map");
    writeSmallShards(folder);
    writeText(folder / kIndex, R"({"weight_map": {}})");
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(), (folder / kIndex).string() + ": \"weight_map\" is empty");
}

void TestCheckpointLayout::malformedShardNamesTheShard() {
    const fs::path folder = freshFolder("bad_shard");
    writeSmallShards(folder);
    writeText(folder / kIndex, indexJson({{"a", shard1_}, {"b", shard1_}, {"c", shard2_}}));
    fs::resize_file(folder / shard2_, fs::file_size(folder / shard2_) - 1);
    auto opened = Checkpoint::open(folder);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(opened.error(), (folder / shard2_).string());
    EXPECT_IN_MESSAGE(opened.error(), "tensor \"c\"");
    EXPECT_IN_MESSAGE(opened.error(), "extend past the data area");
}

// ---- (b) ----

void TestCheckpointLayout::officialTableCounts() {
    QCOMPARE(official_.size(), size_t{20'493});
    std::set<std::string> names;
    uint64_t params = 0, kda = 0, mla = 0, moe = 0, dense = 0, embeddings = 0, norms = 0;
    const std::set<int> mlaLayers = {3, 7, 11, 15, 19, 23, 26};
    for (const Spec& s : official_) {
        QVERIFY2(names.insert(s.name).second, s.name.c_str());
        const uint64_t n = s.elements();
        params += n;
        int layer = -1;
        std::sscanf(s.name.c_str(), "model.layers.%d.", &layer);
        if (s.name.find(".self_attn.") != std::string::npos)
            (mlaLayers.count(layer) ? mla : kda) += n;
        else if (s.name.find(".block_sparse_moe.") != std::string::npos)
            moe += n;
        else if (s.name.find(".mlp.") != std::string::npos)
            dense += n;
        else if (s.name == "model.embed_tokens.weight" || s.name == "lm_head.weight")
            embeddings += n;
        else
            norms += n;
        const bool f32 = s.name.ends_with(".A_log") || s.name.ends_with(".dt_bias");
        QCOMPARE(s.dtype, f32 ? DType::F32 : DType::BF16);
    }
    // The per-part table of the reference, then its sum.
    QCOMPARE(kda, uint64_t{39'514'272} * 20);
    QCOMPARE(mla, uint64_t{29'114'880} * 7);
    QCOMPARE(moe, uint64_t{1'819'607'296} * 26);
    QCOMPARE(dense, uint64_t{63'700'992});
    QCOMPARE(embeddings, uint64_t{754'974'720});
    QCOMPARE(norms, uint64_t{126'720});
    QCOMPARE(params, uint64_t{49'122'681'728});
}

void TestCheckpointLayout::officialLayoutOpensAndBinds() {
    QElapsedTimer timer;
    timer.start();
    const fs::path folder = freshFolder("kimi-linear-48b");
    if (!holesSupported(folder))
        QSKIP("the temporary folder's filesystem has no sparse files; 98 GB would be written");
    const auto shardOf = writeOfficialCheckpoint(folder, official_);
    const qint64 writeMs = timer.restart();

    // Sparse: the 20 shards take about 98 GB of logical size, but only their headers on disk.
    uint64_t logical = 0, allocated = 0;
    for (int i = 0; i < 20; ++i) {
        struct stat info {};
        QVERIFY(::stat((folder / shardName(i)).c_str(), &info) == 0);
        logical += static_cast<uint64_t>(info.st_size);
        allocated += static_cast<uint64_t>(info.st_blocks) * 512;
    }
    QVERIFY2(allocated < (uint64_t{64} << 20), qPrintable(QString::number(allocated)));
    QVERIFY(logical > uint64_t{98'245'528'576});
    QCOMPARE(shardOf.at("model.embed_tokens.weight"), shardName(0));
    QCOMPARE(shardOf.at("model.norm.weight"), shardName(19));
    QCOMPARE(shardOf.at("lm_head.weight"), shardName(19));

    auto checkpoint = Checkpoint::open(folder);
    QVERIFY2(checkpoint.ok(), checkpoint.ok() ? "" : checkpoint.error().message.c_str());
    QCOMPARE(checkpoint->shardCount(), size_t{20});
    QCOMPARE(checkpoint->tensors().size(), size_t{20'493});
    // 2 bytes per parameter, 4 for A_log and dt_bias (20 KDA layers x (32 + 4096)).
    QCOMPARE(checkpoint->totalBytes(), uint64_t{49'122'681'728} * 2 + 20 * (32 + 4096) * 2);

    auto config = loadModelConfig(folder / "config.json");
    QVERIFY2(config.ok(), config.ok() ? "" : config.error().message.c_str());
    auto weights = bindModelWeights(*config, *checkpoint);
    QVERIFY2(weights.ok(), weights.ok() ? "" : weights.error().message.c_str());
    const qint64 openMs = timer.restart();

    // Every tensor of the table is in the checkpoint as written, and its view lies inside the
    // mapping of its own shard, at the offset the shard's header gives (no byte is read).
    const auto mappings = fileMappings();
    std::map<std::string, uint64_t> nextOffset;  // per shard, within its data area
    std::map<std::string, uint64_t> headerBytes;
    for (const Spec& s : official_) {
        const TensorView* v = checkpoint->find(s.name);
        QVERIFY2(v != nullptr, s.name.c_str());
        QCOMPARE(v->dtype, s.dtype);
        QVERIFY2(std::equal(v->shape.begin(), v->shape.end(), s.shape.begin(), s.shape.end()),
                 s.name.c_str());
        QCOMPARE(v->elements, s.elements());

        const std::string& shard = shardOf.at(s.name);
        const fs::path file = fs::canonical(folder / shard);
        const auto ranges = mappings.find(file.string());
        QVERIFY2(ranges != mappings.end() && !ranges->second.empty(), file.c_str());
        const Mapping& map = ranges->second.front();
        QVERIFY(ranges->second.size() == 1);
        const uintptr_t begin = reinterpret_cast<uintptr_t>(v->data);
        QVERIFY2(begin >= map.begin && begin + s.bytes() <= map.end, s.name.c_str());
        if (!headerBytes.count(shard))
            headerBytes[shard] = headerLength(folder / shard);
        QCOMPARE(uint64_t(begin - map.begin), 8 + headerBytes[shard] + nextOffset[shard]);
        nextOffset[shard] += s.bytes();
    }
    for (int i = 0; i < 20; ++i) {  // each mapping covers its whole (logical) file
        const fs::path file = fs::canonical(folder / shardName(i));
        const Mapping& map = mappings.at(file.string()).front();
        QCOMPARE(uint64_t(map.end - map.begin + 4095) / 4096, (fs::file_size(file) + 4095) / 4096);
    }

    // The bound model follows the official schedule.
    const ModelWeights& w = *weights;
    QCOMPARE(w.layers.size(), size_t{27});
    for (int n = 0; n < 27; ++n) {
        const bool isMla = n % 4 == 3 || n == 26;
        QCOMPARE(w.layers[size_t(n)].kind, isMla ? LayerKind::Mla : LayerKind::Kda);
        QCOMPARE(w.layers[size_t(n)].moe, n != 0);
    }
    QCOMPARE(w.embedTokens.data, checkpoint->find("model.embed_tokens.weight")->data);
    QCOMPARE(w.lmHead.data, checkpoint->find("lm_head.weight")->data);
    QVERIFY(w.lmHead.data != w.embedTokens.data);  // not tied
    QCOMPARE(w.layers[26].mla.kvB.data,
             checkpoint->find("model.layers.26.self_attn.kv_b_proj.weight")->data);
    QVERIFY(w.layers[26].mla.qProj.has_value() && !w.layers[26].mla.qA.has_value());
    QCOMPARE(w.layers[25].kda.dtBias.dtype, DType::F32);
    QCOMPARE(w.layers[1].experts.experts.size(), size_t{256});
    QCOMPARE(w.layers[1].experts.experts[255].down.data,
             checkpoint->find("model.layers.1.block_sparse_moe.experts.255.w2.weight")->data);
    QVERIFY(w.layers[1].experts.shared.has_value());
    qInfo(
        "48B layout: wrote 20 shards in %lld ms (%llu MiB on disk for %llu GiB of files), "
        "opened and bound in %lld ms, checked in %lld ms",
        writeMs, static_cast<unsigned long long>(allocated >> 20),
        static_cast<unsigned long long>(logical >> 30), openMs, timer.elapsed());
}

void TestCheckpointLayout::officialLayoutMissingTensor() {
    const fs::path folder = freshFolder("kimi-linear-48b-missing");
    if (!holesSupported(folder))
        QSKIP("the temporary folder's filesystem has no sparse files");
    std::vector<Spec> tensors = official_;
    const std::string removed = "model.layers.7.self_attn.kv_b_proj.weight";
    std::erase_if(tensors, [&](const Spec& s) { return s.name == removed; });
    QCOMPARE(tensors.size(), official_.size() - 1);
    writeOfficialCheckpoint(folder, tensors);

    auto checkpoint = Checkpoint::open(folder);  // consistent with its index
    QVERIFY2(checkpoint.ok(), checkpoint.ok() ? "" : checkpoint.error().message.c_str());
    auto config = loadModelConfig(folder / "config.json");
    QVERIFY(config.ok());
    auto weights = bindModelWeights(*config, *checkpoint);
    QVERIFY(!weights.ok());
    QCOMPARE(weights.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(weights.error(),
                      "does not match config.json: 1 missing tensor(s): " + removed);
    QVERIFY(weights.error().message.find("misshapen") == std::string::npos);
    QVERIFY(weights.error().message.find("unexpected") == std::string::npos);
}

void TestCheckpointLayout::officialLayoutMisshapenTensor() {
    const fs::path folder = freshFolder("kimi-linear-48b-misshapen");
    if (!holesSupported(folder))
        QSKIP("the temporary folder's filesystem has no sparse files");
    std::vector<Spec> tensors = official_;
    const std::string changed = "model.layers.5.block_sparse_moe.experts.17.w2.weight";
    auto it = std::find_if(tensors.begin(), tensors.end(),
                           [&](const Spec& s) { return s.name == changed; });
    QVERIFY(it != tensors.end());
    QCOMPARE(it->shape, (std::vector<int64_t>{2304, 1024}));
    it->shape = {2304, 1023};
    writeOfficialCheckpoint(folder, tensors);

    auto checkpoint = Checkpoint::open(folder);
    QVERIFY2(checkpoint.ok(), checkpoint.ok() ? "" : checkpoint.error().message.c_str());
    auto config = loadModelConfig(folder / "config.json");
    QVERIFY(config.ok());
    auto weights = bindModelWeights(*config, *checkpoint);
    QVERIFY(!weights.ok());
    QCOMPARE(weights.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(weights.error(), "1 misshapen tensor(s): " + changed +
                                           " has shape [2304, 1023], expected [2304, 1024]");
    QVERIFY(weights.error().message.find("missing") == std::string::npos);
}

void TestCheckpointLayout::officialLayoutWrongDtype() {
    const fs::path folder = freshFolder("kimi-linear-48b-dtype");
    if (!holesSupported(folder))
        QSKIP("the temporary folder's filesystem has no sparse files");
    std::vector<Spec> tensors = official_;
    const std::string changed = "model.layers.20.self_attn.A_log";
    auto it = std::find_if(tensors.begin(), tensors.end(),
                           [&](const Spec& s) { return s.name == changed; });
    QVERIFY(it != tensors.end());
    it->dtype = DType::I32;  // same size as F32: only the dtype is wrong
    writeOfficialCheckpoint(folder, tensors);

    auto checkpoint = Checkpoint::open(folder);
    QVERIFY2(checkpoint.ok(), checkpoint.ok() ? "" : checkpoint.error().message.c_str());
    QCOMPARE(checkpoint->find(changed)->dtype, DType::I32);
    auto config = loadModelConfig(folder / "config.json");
    QVERIFY(config.ok());
    auto weights = bindModelWeights(*config, *checkpoint);
    QVERIFY(!weights.ok());
    QCOMPARE(weights.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(weights.error(), "1 misshapen tensor(s): " + changed +
                                           " has dtype I32, expected BF16, F16 or F32");
}

void TestCheckpointLayout::officialLayoutUnexpectedTensor() {
    const fs::path folder = freshFolder("kimi-linear-48b-extra");
    if (!holesSupported(folder))
        QSKIP("the temporary folder's filesystem has no sparse files");
    std::vector<Spec> tensors = official_;
    // A 28th layer's norm, as a checkpoint for a deeper model would have.
    tensors.insert(tensors.end() - 2,
                   Spec{"model.layers.27.input_layernorm.weight", DType::BF16, {2304}});
    writeOfficialCheckpoint(folder, tensors);

    auto checkpoint = Checkpoint::open(folder);
    QVERIFY2(checkpoint.ok(), checkpoint.ok() ? "" : checkpoint.error().message.c_str());
    auto config = loadModelConfig(folder / "config.json");
    QVERIFY(config.ok());
    auto weights = bindModelWeights(*config, *checkpoint);
    QVERIFY(!weights.ok());
    EXPECT_IN_MESSAGE(weights.error(),
                      "1 unexpected tensor(s): model.layers.27.input_layernorm.weight");
}

QTEST_GUILESS_MAIN(TestCheckpointLayout)
#include "test_checkpoint_layout.moc"
