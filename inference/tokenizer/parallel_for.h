// SPDX-License-Identifier: GPL-3.0-or-later
// Runs independent work items on a few threads, for tokenizing many documents or large pieces.
// Owns: the threads it starts, which are joined before it returns. Promises: body(i) is called
// exactly once for each i in [0, count); the calling thread takes part; items are handed out one
// at a time so uneven items balance. Never lets an exception escape a worker (terminates instead).
#pragma once

#include <cstddef>
#include <functional>

namespace folio::tokenizer {

// threads <= 0 means one per hardware thread.
int resolveThreadCount(int threads);

void parallelFor(size_t count, int threads, const std::function<void(size_t)>& body);

}  // namespace folio::tokenizer
