// SPDX-License-Identifier: GPL-3.0-or-later
#include "prompt_assembly.h"

#include "token_counting.h"

namespace folio::ingest {

namespace {

using tokenizer::ChatMessage;
using tokenizer::ChatRole;

// 1234567 -> "1,234,567"
std::string grouped(int64_t value) {
    std::string digits = std::to_string(value < 0 ? -value : value);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return value < 0 ? "-" + out : out;
}

std::string escapeAttribute(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '"')
            out += "&quot;";
        else if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '\n' || c == '\r')
            out += ' ';
        else
            out += c;
    }
    return out;
}

// Headers and footers are not counted in Document::tokenCount; this bounds them for the pre-check.
constexpr int64_t kBlockMarkupAllowance = 64;

}  // namespace

int64_t AssembledPrompt::sourceTokens() const {
    int64_t total = static_cast<int64_t>(prefix.size());
    for (const auto& b : blocks)
        total += static_cast<int64_t>(b.tokens.size());
    return total;
}

std::vector<int32_t> AssembledPrompt::concatenated() const {
    std::vector<int32_t> all = prefix;
    for (const auto& b : blocks)
        all.insert(all.end(), b.tokens.begin(), b.tokens.end());
    return all;
}

std::string citationInstructions() {
    return "Answer from the sources in the user's message. Each source is inside "
           "<source name=\"...\"> ... </source>. PDF text is inside <page n=\"N\"> ... </page>; "
           "code and text files are inside <file path=\"...\"> with every line numbered as "
           "\"N| text\".\n"
           "Cite every claim right after it, in square brackets:\n"
           "- a PDF page: [name p.N], e.g. [contract.pdf p.12]\n"
           "- lines of a file: [path:L1-L2], e.g. [src/main.cpp:L40-L52] (one line: "
           "[path:L40])\n"
           "Use the exact source name or file path. If the sources do not contain the answer, "
           "say so.";
}

std::string systemTurnText(std::string_view systemText) {
    if (systemText.empty())
        return citationInstructions();
    return cat(systemText, "\n\n", citationInstructions());
}

std::string sourceBlockHeader(const Document& document) {
    std::string header = cat("<source name=\"", escapeAttribute(document.name), "\" type=\"",
                             sourceKindName(document.kind), "\"");
    if (document.kind == SourceKind::Pdf) {
        header += cat(" pages=\"", document.pageCount, "\"");
        if (!document.title.empty())
            header += cat(" title=\"", escapeAttribute(document.title), "\"");
    } else if (document.kind == SourceKind::Repository) {
        header += cat(" files=\"", document.fileCount, "\"");
    }
    header += ">\n";
    return header;
}

std::string_view sourceBlockFooter() {
    return "</source>\n\n";
}

std::string questionText(std::string_view question) {
    return cat("Question: ", question);
}

Status checkContextBudget(std::span<const BudgetLine> sources, int64_t fixedTokens,
                          int64_t contextLength, int64_t reservedTokens) {
    int64_t total = fixedTokens + reservedTokens;
    for (const auto& s : sources)
        total += s.tokens;
    if (total <= contextLength)
        return {};
    std::string message =
        cat("the sources do not fit the model's context: ", grouped(total), " tokens needed (",
            grouped(fixedTokens), " for instructions, ", grouped(reservedTokens),
            " kept for the question and answer), ", grouped(contextLength), " available; drop ",
            grouped(total - contextLength), " tokens. Sources:");
    for (size_t i = 0; i < sources.size(); ++i)
        message +=
            cat("\n  ", i + 1, ". ", sources[i].name, ": ", grouped(sources[i].tokens), " tokens");
    return makeError(ErrorCode::InvalidArgument, message);
}

Result<AssembledPrompt> assemblePrompt(const tokenizer::KimiChatFormat& format,
                                       const tokenizer::Tokenizer& tokenizer,
                                       std::string_view systemText,
                                       std::span<const SourceInput> enabledSourcesInOrder,
                                       const AssembleOptions& options) {
    for (const auto& s : enabledSourcesInOrder) {
        if (!s.document)
            return makeError(ErrorCode::InvalidArgument, "a source has no document");
    }
    AssembledPrompt prompt;
    prompt.contextLength = options.contextLength;
    prompt.reservedTokens = options.reservedTokens;

    // The system turn and the user turn's opening: encode both turns with empty user content and
    // drop the user turn's <|im_end|>.
    const std::string system = systemTurnText(systemText);
    const ChatMessage turns[] = {{ChatRole::System, system}, {ChatRole::User, ""}};
    FOLIO_ASSIGN_OR_RETURN(prompt.prefix, format.encode(turns, false));
    if (prompt.prefix.empty() || prompt.prefix.back() != format.imEnd())
        return makeError(ErrorCode::Format,
                         "the chat format did not end the user turn as expected");
    prompt.prefix.pop_back();

    // Before tokenizing anything: the counts ingest already made.
    bool allCounted = true;
    std::vector<BudgetLine> lines;
    for (const auto& s : enabledSourcesInOrder) {
        allCounted = allCounted && s.document->tokensCounted();
        lines.push_back({s.document->name, s.document->tokenCount + kBlockMarkupAllowance});
    }
    if (allCounted)
        FOLIO_TRY(checkContextBudget(lines, static_cast<int64_t>(prompt.prefix.size()),
                                     options.contextLength, options.reservedTokens));

    const tokenizer::EncodeOptions markup = tokenizer::kChatContentOptions;
    int64_t position = static_cast<int64_t>(prompt.prefix.size());
    for (const auto& source : enabledSourcesInOrder) {
        const Document& document = *source.document;
        SourceBlock block;
        block.contentHash = document.contentHash;
        block.sourceKey = source.sourceKey.empty() ? document.contentHash : source.sourceKey;
        block.name = document.name;
        block.tokenBegin = position;
        FOLIO_ASSIGN_OR_RETURN(block.tokens, tokenizer.encode(sourceBlockHeader(document), markup));
        FOLIO_ASSIGN_OR_RETURN(auto segmentIds,
                               encodeSegments(document, tokenizer, options.threads));
        for (size_t i = 0; i < segmentIds.size(); ++i) {
            const int64_t begin = position + static_cast<int64_t>(block.tokens.size());
            block.tokens.insert(block.tokens.end(), segmentIds[i].begin(), segmentIds[i].end());
            block.segments.push_back({document.segments[i].locator, begin,
                                      position + static_cast<int64_t>(block.tokens.size())});
        }
        FOLIO_ASSIGN_OR_RETURN(auto footer, tokenizer.encode(sourceBlockFooter(), markup));
        block.tokens.insert(block.tokens.end(), footer.begin(), footer.end());
        position += static_cast<int64_t>(block.tokens.size());
        prompt.blocks.push_back(std::move(block));
    }

    lines.clear();
    for (const auto& b : prompt.blocks)
        lines.push_back({b.name, static_cast<int64_t>(b.tokens.size())});
    FOLIO_TRY(checkContextBudget(lines, static_cast<int64_t>(prompt.prefix.size()),
                                 options.contextLength, options.reservedTokens));
    return prompt;
}

Result<std::vector<int32_t>> questionTokens(const tokenizer::KimiChatFormat& format,
                                            const tokenizer::Tokenizer& tokenizer,
                                            std::string_view question) {
    FOLIO_ASSIGN_OR_RETURN(
        std::vector<int32_t> ids,
        tokenizer.encode(questionText(question), tokenizer::kChatContentOptions));
    ids.push_back(format.imEnd());
    const auto& generation = format.generationPrompt();
    ids.insert(ids.end(), generation.begin(), generation.end());
    return ids;
}

}  // namespace folio::ingest
