// SPDX-License-Identifier: GPL-3.0-or-later
#include "chat_format.h"

#include <algorithm>

namespace folio::tokenizer {

namespace {

constexpr EncodeOptions kRoleOptions{SpecialTokenPolicy::AsText, Utf8Policy::Replace, 1};

}  // namespace

std::string_view KimiChatFormat::roleName(ChatRole role) {
    switch (role) {
        case ChatRole::System:
            return "system";
        case ChatRole::User:
            return "user";
        case ChatRole::Assistant:
            return "assistant";
    }
    return {};
}

Result<KimiChatFormat> KimiChatFormat::create(const Tokenizer& tokenizer) {
    KimiChatFormat f;
    f.tokenizer_ = &tokenizer;
    struct Needed {
        const char* name;
        int32_t* id;
    };
    for (const Needed& n :
         {Needed{"<|im_system|>", &f.imSystem_}, Needed{"<|im_user|>", &f.imUser_},
          Needed{"<|im_assistant|>", &f.imAssistant_}, Needed{"<|im_middle|>", &f.imMiddle_},
          Needed{"<|im_end|>", &f.imEnd_}}) {
        auto id = tokenizer.specialId(n.name);
        if (!id)
            return makeError(ErrorCode::Format, "the tokenizer has no special token ", n.name,
                             ", which Kimi's chat format needs");
        *n.id = *id;
    }
    f.stopIds_.push_back(f.imEnd_);
    if (auto eos = tokenizer.specialId("[EOS]"))
        f.stopIds_.push_back(*eos);
    FOLIO_ASSIGN_OR_RETURN(f.generationPrompt_, f.encode(std::span<const ChatMessage>(), true));
    return f;
}

bool KimiChatFormat::isStop(int32_t id) const {
    return std::find(stopIds_.begin(), stopIds_.end(), id) != stopIds_.end();
}

std::vector<KimiChatFormat::Segment> KimiChatFormat::layout(std::span<const ChatMessage> messages,
                                                            bool addGenerationPrompt) const {
    auto special = [&](int32_t id) { return Segment{id, *tokenizer_->tokenBytes(id), false}; };
    std::vector<Segment> out;
    auto header = [&](ChatRole role) {
        const int32_t start = role == ChatRole::System ? imSystem_
                              : role == ChatRole::User ? imUser_
                                                       : imAssistant_;
        out.push_back(special(start));
        out.push_back(Segment{-1, roleName(role), false});
        out.push_back(special(imMiddle_));
    };
    for (const ChatMessage& m : messages) {
        header(m.role);
        out.push_back(Segment{-1, m.content, true});
        out.push_back(special(imEnd_));
    }
    if (addGenerationPrompt)
        header(ChatRole::Assistant);
    return out;
}

Result<std::vector<int32_t>> KimiChatFormat::encode(std::span<const ChatMessage> messages,
                                                    bool addGenerationPrompt,
                                                    const EncodeOptions& contentOptions) const {
    std::vector<int32_t> ids;
    for (const Segment& s : layout(messages, addGenerationPrompt)) {
        if (s.specialId >= 0) {
            ids.push_back(s.specialId);
            continue;
        }
        FOLIO_ASSIGN_OR_RETURN(
            std::vector<int32_t> part,
            tokenizer_->encode(s.text, s.isContent ? contentOptions : kRoleOptions));
        ids.insert(ids.end(), part.begin(), part.end());
    }
    return ids;
}

Result<std::vector<std::string>> KimiChatFormat::pieces(std::span<const ChatMessage> messages,
                                                        bool addGenerationPrompt,
                                                        const EncodeOptions& contentOptions) const {
    std::vector<std::string> out;
    for (const Segment& s : layout(messages, addGenerationPrompt)) {
        if (s.specialId >= 0) {
            out.emplace_back(s.text);
            continue;
        }
        FOLIO_ASSIGN_OR_RETURN(
            std::vector<std::string> part,
            tokenizer_->pieces(s.text, s.isContent ? contentOptions : kRoleOptions));
        for (auto& p : part)
            out.push_back(std::move(p));
    }
    return out;
}

std::string KimiChatFormat::render(std::span<const ChatMessage> messages,
                                   bool addGenerationPrompt) const {
    std::string out;
    for (const Segment& s : layout(messages, addGenerationPrompt))
        out.append(s.text);
    return out;
}

}  // namespace folio::tokenizer
