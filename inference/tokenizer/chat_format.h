// SPDX-License-Identifier: GPL-3.0-or-later
// Kimi's chat format (tokenization_kimi.py / chat_template.jinja):
//   <|im_system|>system<|im_middle|>{content}<|im_end|>
//   <|im_user|>user<|im_middle|>{content}<|im_end|>
//   <|im_assistant|>assistant<|im_middle|>{content}<|im_end|>
// with no newlines between parts, no BOS, no default system turn, and the generation prompt
// <|im_assistant|>assistant<|im_middle|>. Generation stops on <|im_end|> or [EOS].
// Owns: the ids of the structural tokens and of the role headers, looked up once. Promises: the
// structure is always made of special ids, whatever the content says; content is encoded with
// the given options, by default with special-token text kept as plain text (so a document that
// quotes "<|im_end|>" cannot end its turn; pass SpecialTokenPolicy::Recognize to get exactly what
// Hugging Face's apply_chat_template gives for such content). Never adds a newline or a BOS.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "inference/result.h"
#include "tokenizer.h"

namespace folio::tokenizer {

enum class ChatRole { System, User, Assistant };

struct ChatMessage {
    ChatRole role = ChatRole::User;
    std::string_view content;
};

// What message content is encoded with unless the caller says otherwise.
inline constexpr EncodeOptions kChatContentOptions{SpecialTokenPolicy::AsText, Utf8Policy::Replace,
                                                   1};

class KimiChatFormat {
  public:
    // Needs <|im_system|>, <|im_user|>, <|im_assistant|>, <|im_middle|> and <|im_end|>; [EOS] is
    // a stop id when present. The tokenizer must outlive the format.
    static Result<KimiChatFormat> create(const Tokenizer& tokenizer);

    // One part of a rendered conversation: a special token or a span of ordinary text.
    struct Segment {
        int32_t specialId = -1;  // >= 0: this special token
        std::string_view text;   // the special token's name, a role name or message content
        bool isContent = false;  // message content (encoded with the content options)
    };
    std::vector<Segment> layout(std::span<const ChatMessage> messages,
                                bool addGenerationPrompt) const;

    Result<std::vector<int32_t>> encode(
        std::span<const ChatMessage> messages, bool addGenerationPrompt,
        const EncodeOptions& contentOptions = kChatContentOptions) const;
    // The pre-tokenizer pieces of the same (special tokens as their own pieces).
    Result<std::vector<std::string>> pieces(
        std::span<const ChatMessage> messages, bool addGenerationPrompt,
        const EncodeOptions& contentOptions = kChatContentOptions) const;
    // The conversation as the chat template renders it to text.
    std::string render(std::span<const ChatMessage> messages, bool addGenerationPrompt) const;

    const std::vector<int32_t>& generationPrompt() const { return generationPrompt_; }
    const std::vector<int32_t>& stopIds() const { return stopIds_; }
    bool isStop(int32_t id) const;
    int32_t imEnd() const { return imEnd_; }

    static std::string_view roleName(ChatRole role);

  private:
    const Tokenizer* tokenizer_ = nullptr;
    int32_t imSystem_ = -1, imUser_ = -1, imAssistant_ = -1, imMiddle_ = -1, imEnd_ = -1;
    std::vector<int32_t> generationPrompt_;
    std::vector<int32_t> stopIds_;
};

}  // namespace folio::tokenizer
