// SPDX-License-Identifier: GPL-3.0-or-later
#include "component_timer.h"

#include <algorithm>

#include "cuda_check.h"

namespace folio::inference::cuda {

ComponentTimer::ComponentTimer(std::vector<std::string> names)
    : names_(std::move(names)), totals_(names_.size(), 0.0), bytes_(names_.size(), 0.0) {}

ComponentTimer::~ComponentTimer() {
    for (cudaEvent_t e : events_)
        cudaEventDestroy(e);
}

Status ComponentTimer::mark(size_t index, cudaStream_t stream) {
    if (!enabled_ || (used_ > 0 && owners_[used_ - 1] == index))
        return {};
    if (index >= names_.size())
        return makeError(ErrorCode::InvalidArgument, "component ", index, " has no name");
    return record(index, stream);
}

Status ComponentTimer::finish(cudaStream_t stream) {
    if (!enabled_ || used_ == 0)
        return {};
    return record(names_.size(), stream);  // the interval after it belongs to no component
}

Status ComponentTimer::record(size_t owner, cudaStream_t stream) {
    if (used_ == events_.size()) {
        cudaEvent_t e = nullptr;
        FOLIO_CUDA_TRY(cudaEventCreate(&e));
        events_.push_back(e);
        owners_.push_back(owner);
    }
    owners_[used_] = owner;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    FOLIO_CUDA_TRY(cudaStreamIsCapturing(stream, &capture));
    // Inside a capture, only an external record becomes a node that the replay records.
    FOLIO_CUDA_TRY(cudaEventRecordWithFlags(
        events_[used_], stream,
        capture == cudaStreamCaptureStatusActive ? cudaEventRecordExternal : 0));
    ++used_;
    return {};
}

Status ComponentTimer::accumulate() {
    if (!enabled_ || used_ == 0)
        return {};
    FOLIO_CUDA_TRY(cudaEventSynchronize(events_[used_ - 1]));
    for (size_t i = 0; i + 1 < used_; ++i) {
        if (owners_[i] >= names_.size())
            continue;
        float ms = 0;
        FOLIO_CUDA_TRY(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
        totals_[owners_[i]] += ms * 1e-3;
    }
    used_ = 0;
    return {};
}

std::vector<std::pair<std::string, double>> ComponentTimer::seconds() const {
    std::vector<std::pair<std::string, double>> out;
    for (size_t i = 0; i < names_.size(); ++i)
        out.emplace_back(names_[i], totals_[i]);
    return out;
}

void ComponentTimer::reset() {
    std::fill(totals_.begin(), totals_.end(), 0.0);
    std::fill(bytes_.begin(), bytes_.end(), 0.0);
}

}  // namespace folio::inference::cuda
