// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenize_command.h"

#include <cstdio>

#include "inference/json.h"
#include "inference/log.h"
#include "inference/model_config.h"
#include "inference/tokenizer/chat_format.h"
#include "inference/tokenizer/kimi_tokenizer_files.h"
#include "inference/tokenizer/utf8.h"

namespace folio::tools {

using namespace folio::tokenizer;

std::string jsonString(std::string_view s) {
    return "\"" + inference::jsonEscape(s) + "\"";
}

Result<std::string> runTokenize(const TokenizeRequest& request) {
    if (request.text.has_value() == request.textFile.has_value())
        return makeError(ErrorCode::InvalidArgument, "give exactly one of --text and --text-file");
    std::string text;
    if (request.text) {
        text = *request.text;
    } else {
        FOLIO_ASSIGN_OR_RETURN(text, inference::readTextFile(*request.textFile, uint64_t{1} << 32));
    }
    if (auto bad = findInvalidUtf8(text))
        inference::log(inference::LogLevel::Warn,
                       cat("the text is not valid UTF-8 (first bad byte at offset ", *bad,
                           "); ill-formed sequences are read as U+FFFD"));
    FOLIO_ASSIGN_OR_RETURN(Tokenizer tokenizer, loadKimiTokenizer(request.tokenizerDir));

    const EncodeOptions options{SpecialTokenPolicy::Recognize, Utf8Policy::Replace, 0};
    std::vector<int32_t> ids;
    std::vector<std::string> pieces;
    if (request.chat) {
        FOLIO_ASSIGN_OR_RETURN(KimiChatFormat chat, KimiChatFormat::create(tokenizer));
        const ChatMessage turn[] = {{ChatRole::User, text}};
        if (request.pieces) {
            FOLIO_ASSIGN_OR_RETURN(pieces, chat.pieces(turn, true));
        } else {
            FOLIO_ASSIGN_OR_RETURN(ids, chat.encode(turn, true));
        }
    } else if (request.pieces) {
        FOLIO_ASSIGN_OR_RETURN(pieces, tokenizer.pieces(text, options));
    } else {
        FOLIO_ASSIGN_OR_RETURN(ids, tokenizer.encode(text, options));
    }

    std::string out = "[";
    if (request.pieces) {
        for (size_t i = 0; i < pieces.size(); ++i) {
            if (i)
                out += ", ";
            out += jsonString(pieces[i]);
        }
    } else {
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i)
                out += ", ";
            out += std::to_string(ids[i]);
        }
    }
    out += "]";
    return out;
}

}  // namespace folio::tools
