// SPDX-License-Identifier: GPL-3.0-or-later
// ComponentTimer: where prefill's GPU time goes. The stream is marked with CUDA events as work
// switches from one component (KDA, MLA attention, MoE, other GEMMs) to the next; collect()
// waits for the last mark and adds each interval to its component.
//
// Owns: a pool of events, reused between collections. Promises: when disabled, mark() and
// collect() do nothing and cost nothing; timings are GPU time between marks, so host gaps
// inside an interval count towards that interval's component. Never synchronises the device
// except in collect().
#pragma once

#include <cuda_runtime.h>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "../result.h"

namespace folio::inference::cuda {

enum class Component : int { Kda = 0, MlaAttention, Moe, OtherGemms, Count };

class ComponentTimer {
  public:
    ComponentTimer() = default;
    ComponentTimer(const ComponentTimer&) = delete;
    ComponentTimer& operator=(const ComponentTimer&) = delete;
    ~ComponentTimer();

    void enable(bool on) { enabled_ = on; }
    bool enabled() const { return enabled_; }

    // From now on, the stream's work belongs to `component`.
    Status mark(Component component, cudaStream_t stream);
    // Ends the current interval, waits for it and adds every interval to its component.
    Status collect(cudaStream_t stream);

    // Seconds per component since the last reset, with their names.
    std::vector<std::pair<std::string, double>> seconds() const;
    void reset() { totals_.fill(0.0); }

  private:
    bool enabled_ = false;
    std::vector<cudaEvent_t> events_;
    std::vector<Component> owners_;  // owners_[i]: the component of the interval after event i
    size_t used_ = 0;
    std::array<double, static_cast<size_t>(Component::Count)> totals_{};
};

}  // namespace folio::inference::cuda
