// SPDX-License-Identifier: GPL-3.0-or-later
// Shared helpers of the tokenizer test suites: the committed expected outputs (data/, made by
// generate_expected.mjs), tokenizers built from the committed rank subsets, and a test folder in
// Kimi's layout. Owns: nothing beyond the values it returns. Promises: failures to read the data
// are reported with QFAIL-friendly messages. Never writes outside FOLIO_TEST_OUTPUT_DIR.
#pragma once

#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "inference/json.h"
#include "inference/model_config.h"
#include "inference/tokenizer/bpe_vocabulary.h"
#include "inference/tokenizer/tiktoken_file.h"
#include "inference/tokenizer/tokenizer.h"

namespace folio::tokenizer::testing {

inline std::filesystem::path dataDir() {
    return FOLIO_TOKENIZER_TEST_DATA;
}

inline std::filesystem::path outputDir(const std::string& name) {
    const auto dir = std::filesystem::path(FOLIO_TEST_OUTPUT_DIR) / "tokenizer" / name;
    std::filesystem::create_directories(dir);
    return dir;
}

inline inference::JsonValue loadJson(const std::string& file) {
    auto text = inference::readTextFile(dataDir() / file, 64 << 20);
    if (!text)
        qFatal("%s", text.error().message.c_str());
    auto json = inference::parseJson(*text);
    if (!json)
        qFatal("%s: %s", file.c_str(), json.error().message.c_str());
    return std::move(json).value();
}

inline std::vector<int32_t> idsOf(const inference::JsonValue& array) {
    std::vector<int32_t> ids;
    for (const auto& v : array.items())
        ids.push_back(static_cast<int32_t>(*v.integer()));
    return ids;
}

inline std::vector<RankedToken> subsetRanks(const std::string& encoding) {
    auto ranks = readTiktokenFile(dataDir() / (encoding + ".subset.tiktoken"));
    if (!ranks)
        qFatal("%s", ranks.error().message.c_str());
    return std::move(ranks).value();
}

// A tokenizer with the rank subset, pattern and special tokens of expected_<encoding>.json.
inline Tokenizer referenceTokenizer(const std::string& encoding) {
    const inference::JsonValue expected = loadJson("expected_" + encoding + ".json");
    auto vocabulary = BpeVocabulary::build(subsetRanks(encoding), encoding);
    if (!vocabulary)
        qFatal("%s", vocabulary.error().message.c_str());
    SpecialTokens specials;
    for (const auto& [name, id] : expected.find("specialTokens")->members()) {
        if (auto status = specials.add(name, static_cast<int32_t>(*id.integer())); !status)
            qFatal("%s", status.error().message.c_str());
    }
    auto pre = PreTokenizer::fromPattern(expected.find("pattern")->string());
    if (!pre)
        qFatal("%s", pre.error().message.c_str());
    auto tokenizer = Tokenizer::create(std::move(vocabulary).value(), std::move(specials), *pre);
    if (!tokenizer)
        qFatal("%s", tokenizer.error().message.c_str());
    return std::move(tokenizer).value();
}

inline void writeFile(const std::filesystem::path& path, std::string_view content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

// Kimi-K2's special token names (tokenizer_config.json's added_tokens_decoder).
inline const std::vector<std::pair<int32_t, std::string>>& kimiAddedTokens() {
    static const std::vector<std::pair<int32_t, std::string>> tokens = {
        {163584, "[BOS]"},
        {163585, "[EOS]"},
        {163586, "<|im_end|>"},
        {163587, "<|im_user|>"},
        {163588, "<|im_assistant|>"},
        {163590, "<|start_header_id|>"},
        {163591, "<|end_header_id|>"},
        {163593, "[EOT]"},
        {163594, "<|im_system|>"},
        {163595, "<|tool_calls_section_begin|>"},
        {163596, "<|tool_calls_section_end|>"},
        {163597, "<|tool_call_begin|>"},
        {163598, "<|tool_call_argument_begin|>"},
        {163599, "<|tool_call_end|>"},
        {163601, "<|im_middle|>"},
        {163838, "[UNK]"},
        {163839, "[PAD]"},
    };
    return tokens;
}

inline std::string kimiTokenizerConfig(const std::vector<std::pair<int32_t, std::string>>& added) {
    std::string json = "{\n  \"added_tokens_decoder\": {\n";
    for (size_t i = 0; i < added.size(); ++i) {
        json += "    \"" + std::to_string(added[i].first) + "\": {\"content\": \"" +
                added[i].second +
                "\", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, "
                "\"single_word\": false, \"special\": true}";
        json += i + 1 < added.size() ? ",\n" : "\n";
    }
    json += "  },\n  \"tokenizer_class\": \"TikTokenTokenizer\"\n}\n";
    return json;
}

// Kimi's real vocabulary has 163,584 BPE tokens. The test vocabulary keeps cl100k_base's subset at
// its real ranks and fills every other rank below 163,584 with a token that contains 0xFF 0xFF,
// which never occurs in UTF-8 text and so never takes part in a merge.
inline constexpr uint32_t kKimiBaseTokens = 163584;

inline std::string kimiLayoutTiktokenModel() {
    std::vector<RankedToken> ranks = subsetRanks("cl100k_base");
    std::vector<bool> used(kKimiBaseTokens, false);
    for (const auto& t : ranks)
        used[t.rank] = true;
    for (uint32_t r = 0; r < kKimiBaseTokens; ++r) {
        if (used[r])
            continue;
        std::string filler = "\xFF\xFF";
        filler += static_cast<char>((r >> 16) & 0xFF);
        filler += static_cast<char>((r >> 8) & 0xFF);
        filler += static_cast<char>(r & 0xFF);
        ranks.push_back({filler, r, 0});
    }
    return formatTiktokenRanks(ranks);
}

// Writes tiktoken.model and tokenizer_config.json in Kimi's layout; returns the folder. Each
// suite passes its own name, so that suites running in parallel never share the files.
inline std::filesystem::path makeKimiLayoutFolder(const std::string& suite) {
    const auto dir = outputDir("kimi_layout_" + suite);
    writeFile(dir / "tiktoken.model", kimiLayoutTiktokenModel());
    writeFile(dir / "tokenizer_config.json", kimiTokenizerConfig(kimiAddedTokens()));
    return dir;
}

inline QByteArray bytes(std::string_view s) {
    return QByteArray(s.data(), static_cast<qsizetype>(s.size()));
}

}  // namespace folio::tokenizer::testing
