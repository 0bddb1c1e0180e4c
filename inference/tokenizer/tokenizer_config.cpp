// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer_config.h"

#include <unordered_set>

#include "inference/json.h"
#include "inference/model_config.h"

namespace folio::tokenizer {

Result<std::vector<AddedToken>> parseAddedTokens(std::string_view json,
                                                 std::string_view sourceName) {
    auto root = inference::parseJson(json);
    if (!root)
        return root.error().withContext(std::string(sourceName));
    auto fieldError = [&](const std::string& field, const std::string& what) {
        return makeError(ErrorCode::Format, sourceName, ": ", field, " ", what);
    };
    if (!root->isObject())
        return makeError(ErrorCode::Format, sourceName, ": the top level is not a JSON object");
    const inference::JsonValue* decoder = root->find("added_tokens_decoder");
    if (decoder == nullptr)
        return fieldError("added_tokens_decoder", "is missing");
    if (!decoder->isObject())
        return fieldError(
            "added_tokens_decoder",
            cat("is ", inference::JsonValue::typeName(decoder->type()), ", not an object"));
    std::vector<AddedToken> tokens;
    std::unordered_set<std::string> seen;
    for (const auto& [key, value] : decoder->members()) {
        const std::string field = cat("added_tokens_decoder.\"", key, "\"");
        int64_t id = 0;
        bool digits = !key.empty() && key.size() <= 10 && (key == "0" || key[0] != '0');
        for (char c : key) {
            if (c < '0' || c > '9')
                digits = false;
            else
                id = id * 10 + (c - '0');
        }
        if (!digits)
            return fieldError(field, "is not a token id (a decimal number without sign)");
        if (!value.isObject())
            return fieldError(
                field, cat("is ", inference::JsonValue::typeName(value.type()), ", not an object"));
        const inference::JsonValue* content = value.find("content");
        if (content == nullptr)
            return fieldError(field + ".content", "is missing");
        if (!content->isString())
            return fieldError(
                field + ".content",
                cat("is ", inference::JsonValue::typeName(content->type()), ", not a string"));
        if (content->string().empty())
            return fieldError(field + ".content", "is empty");
        if (!seen.insert(content->string()).second)
            return fieldError(field + ".content", cat("names \"", content->string(),
                                                      "\", which another id already has"));
        tokens.push_back({id, content->string()});
    }
    return tokens;
}

Result<std::vector<AddedToken>> readAddedTokens(const std::filesystem::path& path) {
    FOLIO_ASSIGN_OR_RETURN(std::string text, inference::readTextFile(path, 64 << 20));
    return parseAddedTokens(text, path.string());
}

}  // namespace folio::tokenizer
