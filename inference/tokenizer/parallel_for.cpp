// SPDX-License-Identifier: GPL-3.0-or-later
#include "parallel_for.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace folio::tokenizer {

int resolveThreadCount(int threads) {
    if (threads > 0)
        return threads;
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void parallelFor(size_t count, int threads, const std::function<void(size_t)>& body) {
    const size_t workers = std::min(count, static_cast<size_t>(resolveThreadCount(threads)));
    if (workers <= 1) {
        for (size_t i = 0; i < count; ++i)
            body(i);
        return;
    }
    std::atomic<size_t> next{0};
    auto run = [&] {
        for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1))
            body(i);
    };
    std::vector<std::thread> pool;
    pool.reserve(workers - 1);
    for (size_t t = 1; t < workers; ++t)
        pool.emplace_back(run);
    run();
    for (auto& thread : pool)
        thread.join();
}

}  // namespace folio::tokenizer
