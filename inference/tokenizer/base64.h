// SPDX-License-Identifier: GPL-3.0-or-later
// Strict base64 (RFC 4648 standard alphabet, '=' padding) for tiktoken.model lines.
// Owns: nothing. Promises: accepts only canonical encodings (length a multiple of 4, padding only
// at the end, unused bits zero) and explains a rejection in words. Never reads outside the view.
#pragma once

#include <string>
#include <string_view>

#include "inference/result.h"

namespace folio::tokenizer {

Result<std::string> decodeBase64(std::string_view text);

std::string encodeBase64(std::string_view bytes);

}  // namespace folio::tokenizer
