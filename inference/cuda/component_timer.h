// SPDX-License-Identifier: GPL-3.0-or-later
// ComponentTimer: where a stream's GPU time goes. The stream is marked with CUDA events as work
// switches from one named component to the next (prefill: KDA, MLA attention, MoE, other GEMMs;
// decode: the parts of a step); the intervals between marks are added to their components.
// Marks made while the stream is being captured become event nodes of the graph, so the same
// timer splits a graph's replay.
//
// Owns: a pool of events, reused between collections. Promises: when disabled, mark(),
// finish() and accumulate() do nothing and cost nothing; timings are GPU time between marks,
// so host gaps inside an interval count towards that interval's component. Never synchronises
// the device except in accumulate() and collect().
#pragma once

#include <cuda_runtime.h>
#include <string>
#include <utility>
#include <vector>

#include "../result.h"

namespace folio::inference::cuda {

enum class Component : int { Kda = 0, MlaAttention, Moe, OtherGemms };

class ComponentTimer {
  public:
    explicit ComponentTimer(std::vector<std::string> names);
    ComponentTimer(const ComponentTimer&) = delete;
    ComponentTimer& operator=(const ComponentTimer&) = delete;
    ~ComponentTimer();

    void enable(bool on) { enabled_ = on; }
    bool enabled() const { return enabled_; }

    // From now on, the stream's work belongs to component `index` (a no-op when it already
    // does).
    Status mark(size_t index, cudaStream_t stream);
    template <class E>
    Status mark(E component, cudaStream_t stream) {
        return mark(static_cast<size_t>(component), stream);
    }
    // Counts bytes that a component's work must move at least (for floors; reported as is).
    template <class E>
    void addBytes(E component, double bytes) {
        if (enabled_)
            bytes_[static_cast<size_t>(component)] += bytes;
    }
    // Ends the current interval (inside a capture: in the graph).
    Status finish(cudaStream_t stream);
    // Waits for the last mark (or the graph that recorded it) and adds every interval to its
    // component; the marks are then free for the next collection.
    Status accumulate();
    // Forgets the marks made since the last accumulate() (their work did not run).
    void discard() { used_ = 0; }
    Status collect(cudaStream_t stream) {
        FOLIO_TRY(finish(stream));
        return accumulate();
    }

    // Seconds per component since the last reset, with their names.
    std::vector<std::pair<std::string, double>> seconds() const;
    // Bytes per component since the last reset, in the same order.
    const std::vector<double>& bytes() const { return bytes_; }
    void reset();

  private:
    Status record(size_t owner, cudaStream_t stream);

    bool enabled_ = false;
    std::vector<std::string> names_;
    std::vector<cudaEvent_t> events_;
    std::vector<size_t> owners_;  // owners_[i]: the component of the interval after event i
    size_t used_ = 0;
    std::vector<double> totals_, bytes_;
};

}  // namespace folio::inference::cuda
