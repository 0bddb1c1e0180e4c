// SPDX-License-Identifier: GPL-3.0-or-later
#include "component_timer.h"

#include "cuda_check.h"

namespace folio::inference::cuda {

ComponentTimer::~ComponentTimer() {
    for (cudaEvent_t e : events_)
        cudaEventDestroy(e);
}

Status ComponentTimer::mark(Component component, cudaStream_t stream) {
    if (!enabled_)
        return {};
    if (used_ == events_.size()) {
        cudaEvent_t e = nullptr;
        FOLIO_CUDA_TRY(cudaEventCreate(&e));
        events_.push_back(e);
        owners_.push_back(component);
    }
    owners_[used_] = component;
    FOLIO_CUDA_TRY(cudaEventRecord(events_[used_], stream));
    ++used_;
    return {};
}

Status ComponentTimer::collect(cudaStream_t stream) {
    if (!enabled_ || used_ == 0)
        return {};
    FOLIO_TRY(mark(Component::OtherGemms, stream));  // closes the last interval
    FOLIO_CUDA_TRY(cudaEventSynchronize(events_[used_ - 1]));
    for (size_t i = 0; i + 1 < used_; ++i) {
        float ms = 0;
        FOLIO_CUDA_TRY(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
        totals_[static_cast<size_t>(owners_[i])] += ms * 1e-3;
    }
    used_ = 0;
    return {};
}

std::vector<std::pair<std::string, double>> ComponentTimer::seconds() const {
    static constexpr const char* kNames[] = {"kda", "mla_attention", "moe", "other_gemms"};
    std::vector<std::pair<std::string, double>> out;
    for (size_t i = 0; i < totals_.size(); ++i)
        out.emplace_back(kNames[i], totals_[i]);
    return out;
}

}  // namespace folio::inference::cuda
