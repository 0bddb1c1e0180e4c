// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target for config.json (parseModelConfig). Besides "no crash, no UB" it checks what a
// parsed config promises: positive sizes, a kind for every layer, top-k within the expert count;
// it evaluates every derived value (head sizes, MoE layers, the fingerprint) and, for configs
// small enough, the tensor list the config calls for, so that UndefinedBehaviorSanitizer sees the
// arithmetic the engine will do with these numbers. Errors must name config.json.
// Built by tests/fuzz/CMakeLists.txt (clang, FOLIO_FUZZ=ON) and, with the entry point renamed
// through FOLIO_FUZZ_ENTRY, replayed by the CTest suite test_fuzz_replay.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "inference/model_config.h"
#include "inference/model_weights.h"

#ifndef FOLIO_FUZZ_ENTRY
#define FOLIO_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

using namespace folio::inference;

#ifdef FOLIO_FUZZ_LIBFUZZER
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t maxSize);

// libFuzzer's own mutations rarely turn "128" into a whole extreme integer such as
// 9223372036854775807 (a configuration field that overflows the engine's shape arithmetic needs
// exactly that), so half of the mutations replace one run of digits by a number at an edge.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t maxSize,
                                          unsigned int seed) {
    std::minstd_rand rng(seed);
    if (rng() % 2 == 0 || size == 0)
        return LLVMFuzzerMutate(data, size, maxSize);
    static constexpr const char* kNumbers[] = {"0",
                                               "-1",
                                               "1",
                                               "4097",
                                               "16777216",
                                               "16777217",
                                               "2147483648",
                                               "4611686018427387904",
                                               "9223372036854775807",
                                               "-9223372036854775808",
                                               "18446744073709551616",
                                               "1e308",
                                               "0.5"};
    std::string text(reinterpret_cast<const char*>(data), size);
    size_t at = text.find_first_of("0123456789", rng() % size);
    if (at == std::string::npos)
        at = text.find_first_of("0123456789");
    if (at == std::string::npos)
        return LLVMFuzzerMutate(data, size, maxSize);
    const size_t end = std::min(text.find_first_not_of("0123456789", at), text.size());
    text.replace(at, end - at, kNumbers[rng() % std::size(kNumbers)]);
    if (text.size() > maxSize)
        return LLVMFuzzerMutate(data, size, maxSize);
    std::memcpy(data, text.data(), text.size());
    return text.size();
}
#endif

extern "C" int FOLIO_FUZZ_ENTRY(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = parseModelConfig(text);
    if (!parsed.ok()) {
        FUZZ_CHECK(parsed.error().message.rfind("config.json: ", 0) == 0);
        return 0;
    }
    const ModelConfig& c = parsed.value();
    FUZZ_CHECK(c.vocabSize > 0 && c.hiddenSize > 0 && c.intermediateSize > 0);
    FUZZ_CHECK(c.numLayers > 0 && c.layerKinds.size() == static_cast<size_t>(c.numLayers));
    FUZZ_CHECK(c.countLayers(LayerKind::Kda) + c.countLayers(LayerKind::Mla) == c.numLayers);
    FUZZ_CHECK(c.numAttentionHeads > 0 && c.kvLoraRank > 0 && c.vHeadDim > 0);
    FUZZ_CHECK(c.mlaUseNope);
    FUZZ_CHECK(c.numExperts >= 0 && c.numExpertsPerToken <= c.numExperts);
    FUZZ_CHECK(c.rmsNormEps > 0);
    if (c.countLayers(LayerKind::Kda) > 0)
        FUZZ_CHECK(c.kdaNumHeads > 0 && c.kdaHeadDim > 0 && c.convKernelSize > 0);
    if (c.numExperts > 0 && c.useGroupedTopk) {
        FUZZ_CHECK(c.topkGroup <= c.numExpertGroups);
        FUZZ_CHECK(c.numExperts % c.numExpertGroups == 0);
    }
    for (auto id : {c.bosTokenId, c.eosTokenId, c.padTokenId})
        FUZZ_CHECK(!id || (*id >= 0 && *id < c.vocabSize));

    int64_t moeLayers = 0;
    for (int64_t layer = 0; layer < c.numLayers; ++layer) {
        moeLayers += c.isMoeLayer(layer) ? 1 : 0;
        (void)c.layerKind(layer);
    }
    volatile int64_t sink = c.qkHeadDim() + c.kdaProjectionSize() + moeLayers;
    volatile uint64_t print = c.fingerprint();
    (void)sink;
    (void)print;

    // The tensor list, when it is small enough to build quickly.
    const int64_t perLayer = 32 + 3 * (c.numExperts + 1);
    if (c.numLayers * perLayer <= 20'000) {
        for (const ExpectedTensor& t : expectedTensors(c)) {
            FUZZ_CHECK(!t.name.empty());
            for (int64_t d : t.shape)
                FUZZ_CHECK(d > 0);
        }
    }
    return 0;
}
