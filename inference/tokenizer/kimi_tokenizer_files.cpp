// SPDX-License-Identifier: GPL-3.0-or-later
#include "kimi_tokenizer_files.h"

#include "inference/model_config.h"
#include "tiktoken_file.h"

namespace folio::tokenizer {

Result<SpecialTokens> kimiSpecialTokens(uint32_t numBaseTokens,
                                        const std::vector<AddedToken>& added,
                                        std::string_view configName) {
    const int64_t first = numBaseTokens;
    const int64_t last = first + kKimiReservedSpecialTokens - 1;
    std::vector<const AddedToken*> byOffset(kKimiReservedSpecialTokens, nullptr);
    for (const AddedToken& token : added) {
        if (token.id < first || token.id > last)
            return makeError(ErrorCode::Format, configName, ": added_tokens_decoder.\"", token.id,
                             "\" (\"", token.content, "\"): id ", token.id,
                             " is outside the special range ", first, "..", last,
                             " that follows the ", numBaseTokens, " BPE tokens");
        byOffset[static_cast<size_t>(token.id - first)] = &token;
    }
    SpecialTokens specials;
    for (uint32_t i = 0; i < kKimiReservedSpecialTokens; ++i) {
        const auto id = static_cast<int32_t>(first + i);
        std::string name =
            byOffset[i] != nullptr ? byOffset[i]->content : cat("<|reserved_token_", id, "|>");
        if (auto status = specials.add(std::move(name), id); !status)
            return status.error().withContext(std::string(configName));
    }
    return specials;
}

Result<Tokenizer> makeKimiTokenizer(std::string_view tiktokenModel, std::string_view modelName,
                                    std::string_view tokenizerConfig, std::string_view configName) {
    FOLIO_ASSIGN_OR_RETURN(std::vector<RankedToken> ranks,
                           parseTiktokenRanks(tiktokenModel, modelName));
    const auto count = static_cast<uint32_t>(ranks.size());
    for (const RankedToken& t : ranks) {
        if (t.rank >= count)
            return makeError(ErrorCode::Format, modelName, " line ", t.line, ": rank ", t.rank,
                             " is not below the number of tokens (", count, "); ranks must be 0..",
                             count - 1, " without gaps, since the special ids follow them");
    }
    FOLIO_ASSIGN_OR_RETURN(BpeVocabulary vocabulary,
                           BpeVocabulary::build(std::move(ranks), modelName));
    FOLIO_ASSIGN_OR_RETURN(std::vector<AddedToken> added,
                           parseAddedTokens(tokenizerConfig, configName));
    FOLIO_ASSIGN_OR_RETURN(SpecialTokens specials,
                           kimiSpecialTokens(vocabulary.size(), added, configName));
    return Tokenizer::create(std::move(vocabulary), std::move(specials),
                             PreTokenizer(PatternKind::Kimi), kKimiChunkLimits);
}

Result<Tokenizer> loadKimiTokenizer(const std::filesystem::path& dir) {
    const auto modelPath = dir / "tiktoken.model";
    const auto configPath = dir / "tokenizer_config.json";
    FOLIO_ASSIGN_OR_RETURN(std::string model,
                           inference::readTextFile(modelPath, uint64_t{1} << 30));
    FOLIO_ASSIGN_OR_RETURN(std::string config, inference::readTextFile(configPath, 64 << 20));
    return makeKimiTokenizer(model, modelPath.string(), config, configPath.string());
}

}  // namespace folio::tokenizer
