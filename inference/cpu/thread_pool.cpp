// SPDX-License-Identifier: GPL-3.0-or-later
#include "thread_pool.h"

#include <algorithm>

namespace folio::inference::cpu {

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0)
        threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 1; i < threads; ++i)
        workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_)
        t.join();
}

void ThreadPool::runItems() {
    while (true) {
        int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
        if (begin >= count_)
            return;
        (*body_)(begin, std::min(count_, begin + grain_));
    }
}

void ThreadPool::workerLoop() {
    uint64_t seen = 0;
    while (true) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_)
                return;
            seen = generation_;
        }
        runItems();
        {
            std::lock_guard lock(mutex_);
            if (--active_ == 0)
                done_.notify_one();
        }
    }
}

void ThreadPool::parallelFor(int64_t count, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& body) {
    if (count <= 0)
        return;
    grain = std::max<int64_t>(1, grain);
    if (workers_.empty() || count <= grain) {
        body(0, count);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        body_ = &body;
        count_ = count;
        grain_ = grain;
        next_.store(0, std::memory_order_relaxed);
        active_ = static_cast<int>(workers_.size());
        ++generation_;
    }
    wake_.notify_all();
    runItems();
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0; });
    body_ = nullptr;
}

}  // namespace folio::inference::cpu
