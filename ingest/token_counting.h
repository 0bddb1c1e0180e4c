// SPDX-License-Identifier: GPL-3.0-or-later
// Token counts of documents with the project's tokenizer. Owns: nothing. Promises: each segment
// is encoded on its own with the chat content options (special-token text stays text), so a
// document's token stream is the concatenation of its segments' ids and prompt assembly, which
// encodes the same way, gets exactly these counts. Never changes the text.
#pragma once

#include <cstdint>
#include <vector>

#include "document.h"
#include "inference/result.h"
#include "inference/tokenizer/tokenizer.h"

namespace folio::ingest {

// The ids of each segment, in order (threads <= 0: all hardware threads).
Result<std::vector<std::vector<int32_t>>> encodeSegments(const Document& document,
                                                         const tokenizer::Tokenizer& tokenizer,
                                                         int threads);

// Fills every segment's token range and the document's token count.
Status countTokens(Document& document, const tokenizer::Tokenizer& tokenizer, int threads);

}  // namespace folio::ingest
