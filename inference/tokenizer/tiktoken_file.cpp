// SPDX-License-Identifier: GPL-3.0-or-later
#include "tiktoken_file.h"

#include "base64.h"
#include "inference/model_config.h"

namespace folio::tokenizer {

namespace {

bool isBlank(char c) {
    return c == ' ' || c == '\t';
}

Result<uint32_t> parseRank(std::string_view field) {
    if (field.empty() || field.size() > 10)
        return makeError(ErrorCode::Format, "rank \"", field, "\" is not a number up to ",
                         kMaxRank);
    uint64_t value = 0;
    for (char c : field) {
        if (c < '0' || c > '9')
            return makeError(ErrorCode::Format, "rank \"", field, "\" is not a decimal number");
        value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    if (value > kMaxRank)
        return makeError(ErrorCode::Format, "rank ", value, " is above the limit of ", kMaxRank);
    return static_cast<uint32_t>(value);
}

}  // namespace

Result<std::vector<RankedToken>> parseTiktokenRanks(std::string_view text,
                                                    std::string_view sourceName) {
    std::vector<RankedToken> tokens;
    tokens.reserve(text.size() / 12);
    uint32_t lineNumber = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        ++lineNumber;
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.empty())
            continue;
        auto lineError = [&](const std::string& what) {
            return makeError(ErrorCode::Format, sourceName, " line ", lineNumber, ": ", what);
        };
        // Split into whitespace-separated fields; exactly two are allowed.
        std::string_view fields[2];
        size_t count = 0;
        size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && isBlank(line[i]))
                ++i;
            if (i == line.size())
                break;
            size_t j = i;
            while (j < line.size() && !isBlank(line[j]))
                ++j;
            if (count == 2)
                return lineError("expected \"base64-token rank\", found more than two fields");
            fields[count++] = line.substr(i, j - i);
            i = j;
        }
        if (count != 2)
            return lineError("expected \"base64-token rank\", found one field");
        auto bytes = decodeBase64(fields[0]);
        if (!bytes)
            return lineError(bytes.error().message);
        auto rank = parseRank(fields[1]);
        if (!rank)
            return lineError(rank.error().message);
        tokens.push_back({std::move(bytes).value(), *rank, lineNumber});
    }
    if (tokens.empty())
        return makeError(ErrorCode::Format, sourceName, " has no tokens");
    return tokens;
}

Result<std::vector<RankedToken>> readTiktokenFile(const std::filesystem::path& path) {
    FOLIO_ASSIGN_OR_RETURN(std::string text, inference::readTextFile(path, uint64_t{1} << 30));
    return parseTiktokenRanks(text, path.string());
}

std::string formatTiktokenRanks(const std::vector<RankedToken>& tokens) {
    std::string out;
    for (const auto& t : tokens) {
        out += encodeBase64(t.bytes);
        out += ' ';
        out += std::to_string(t.rank);
        out += '\n';
    }
    return out;
}

}  // namespace folio::tokenizer
