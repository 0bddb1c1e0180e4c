// SPDX-License-Identifier: GPL-3.0-or-later
// Prompt assembly (DESIGN "Assemble"): the session's enabled sources, in order, rendered into one
// token stream in Kimi's chat format:
//
//   prefix   = <|im_system|>system<|im_middle|>{system turn text}<|im_end|>
//              <|im_user|>user<|im_middle|>
//   block 1  = <source name="a.pdf" type="pdf" pages="12">\n <page n="1">...</page> ...
//   </source>\n\n block 2  = ... question = Question:
//   {question}<|im_end|><|im_assistant|>assistant<|im_middle|>
//
// The stream is exactly prefix + block 1 + ... + block N + questionTokens(question). Every block
// is tokenized on its own (and inside it every segment on its own), so each source boundary is a
// token boundary and a block's ids depend only on its document: the engine snapshots its state at
// the end of each block and reuses it while the blocks before are unchanged. Structure tokens are
// special ids; document text is encoded with special-token text kept as text, so a document that
// contains "<|im_end|>" cannot end the turn.
//
// Owns: the assembled ids and locators. Promises: the budget is checked before anything is
// tokenized when the documents carry token counts, and again exactly after; over budget the error
// lists every source with its token count so the user can choose what to drop. Never touches the
// GPU, files or the engine.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "document.h"
#include "inference/result.h"
#include "inference/tokenizer/chat_format.h"
#include "inference/tokenizer/tokenizer.h"

namespace folio::ingest {

inline constexpr int64_t kKimiLinearContextLength = 1'048'576;

struct SourceInput {
    const Document* document = nullptr;  // must outlive the call
    std::string sourceKey;               // the caller's id for the source; empty: contentHash
};

struct AssembleOptions {
    int64_t contextLength = kKimiLinearContextLength;
    int64_t reservedTokens = 8192;  // kept free for the question and the answer
    int threads = 0;                // tokenizer threads; <= 0: all hardware threads
};

// A segment's position in the whole prompt (token indices from the start of `prefix`).
struct PromptSegment {
    Locator locator;
    int64_t tokenBegin = 0;
    int64_t tokenEnd = 0;
};

struct SourceBlock {
    std::string sourceKey;
    std::string contentHash;
    std::string name;
    std::vector<int32_t> tokens;  // the whole block: header, segments, footer
    int64_t tokenBegin = 0;       // where the block starts in the prompt
    std::vector<PromptSegment> segments;
};

struct AssembledPrompt {
    std::vector<int32_t> prefix;      // system turn + the start of the user turn
    std::vector<SourceBlock> blocks;  // one per source, in order
    int64_t contextLength = 0;
    int64_t reservedTokens = 0;

    // prefix + every block (the tokens before the question).
    int64_t sourceTokens() const;
    // The whole stream before the question, concatenated (for tests and simple callers).
    std::vector<int32_t> concatenated() const;
};

// The citation rules every system turn ends with.
std::string citationInstructions();
// The system turn's text: `systemText` (may be empty) followed by the citation rules.
std::string systemTurnText(std::string_view systemText);
// The text of a source's block (header, document text, footer) as it is tokenized.
std::string sourceBlockHeader(const Document& document);
std::string_view sourceBlockFooter();

Result<AssembledPrompt> assemblePrompt(const tokenizer::KimiChatFormat& format,
                                       const tokenizer::Tokenizer& tokenizer,
                                       std::string_view systemText,
                                       std::span<const SourceInput> enabledSourcesInOrder,
                                       const AssembleOptions& options = {});

// The tokens after the last block: "Question: {question}", <|im_end|>, the generation prompt.
Result<std::vector<int32_t>> questionTokens(const tokenizer::KimiChatFormat& format,
                                            const tokenizer::Tokenizer& tokenizer,
                                            std::string_view question);
// The text the question tokens encode (before <|im_end|>).
std::string questionText(std::string_view question);

// One line of a budget report.
struct BudgetLine {
    std::string name;
    int64_t tokens = 0;
};
// Fails (InvalidArgument) when fixedTokens + the sources + reserved exceed the context; the
// message lists every source with its tokens.
Status checkContextBudget(std::span<const BudgetLine> sources, int64_t fixedTokens,
                          int64_t contextLength, int64_t reservedTokens);

}  // namespace folio::ingest
