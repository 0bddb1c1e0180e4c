// SPDX-License-Identifier: GPL-3.0-or-later
// A fixed pool of worker threads for the CPU backend's data-parallel loops.
// Owns: its threads (joined on destruction). Promises: parallelFor returns only after every
// index has been processed; the calling thread takes part; work items are handed out in grains
// so uneven items balance. Not re-entrant: a parallelFor body must not call parallelFor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace folio::inference::cpu {

class ThreadPool {
  public:
    explicit ThreadPool(int threads);  // threads <= 0: one per hardware thread
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls body(begin, end) over [0, count) in ranges of at most `grain` indices.
    void parallelFor(int64_t count, int64_t grain,
                     const std::function<void(int64_t, int64_t)>& body);

  private:
    void workerLoop();
    void runItems();

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    uint64_t generation_ = 0;
    bool stopping_ = false;
    int active_ = 0;

    const std::function<void(int64_t, int64_t)>* body_ = nullptr;
    int64_t count_ = 0;
    int64_t grain_ = 1;
    std::atomic<int64_t> next_{0};
};

}  // namespace folio::inference::cpu
