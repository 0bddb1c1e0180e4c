// SPDX-License-Identifier: GPL-3.0-or-later
#include "row_upload.h"

#include <cstring>
#include <utility>

namespace folio::inference::cuda {

DeviceBuffer::~DeviceBuffer() {
    if (data != nullptr)
        cudaFree(data);
}

Status DeviceBuffer::allocate(uint64_t bytes) {
    FOLIO_CUDA_TRY(cudaMalloc(&data, bytes));
    return {};
}

Result<RowUploader> RowUploader::create(int64_t width, cudaStream_t stream) {
    RowUploader u(width, stream);
    const uint64_t bytes = static_cast<uint64_t>(kRows * width) * sizeof(float);
    for (int b = 0; b < 2; ++b) {
        FOLIO_CUDA_TRY(
            cudaHostAlloc(reinterpret_cast<void**>(&u.host_[b]), bytes, cudaHostAllocDefault));
        FOLIO_TRY(u.device_[b].allocate(bytes));
        FOLIO_CUDA_TRY(cudaEventCreateWithFlags(&u.done_[b], cudaEventDisableTiming));
    }
    return u;
}

RowUploader::RowUploader(RowUploader&& other) noexcept
    : width_(other.width_),
      stream_(other.stream_),
      device_{std::move(other.device_[0]), std::move(other.device_[1])},
      turn_(other.turn_) {
    for (int b = 0; b < 2; ++b) {
        host_[b] = std::exchange(other.host_[b], nullptr);
        done_[b] = std::exchange(other.done_[b], nullptr);
    }
}

RowUploader::~RowUploader() {
    for (int b = 0; b < 2; ++b) {
        if (done_[b] != nullptr) {
            cudaEventSynchronize(done_[b]);  // no transfer may still read the pinned buffer
            cudaEventDestroy(done_[b]);
        }
        if (host_[b] != nullptr)
            cudaFreeHost(host_[b]);
    }
}

Status RowUploader::upload(const float* source, int64_t rows, bf16* dest) {
    const int b = turn_;
    turn_ ^= 1;
    const int64_t count = rows * width_;
    FOLIO_CUDA_TRY(cudaEventSynchronize(done_[b]));  // the transfer that last used buffer b
    std::memcpy(host_[b], source, static_cast<size_t>(count) * sizeof(float));
    float* staged = static_cast<float*>(device_[b].data);
    FOLIO_CUDA_TRY(cudaMemcpyAsync(staged, host_[b], static_cast<size_t>(count) * sizeof(float),
                                   cudaMemcpyHostToDevice, stream_));
    FOLIO_CUDA_LAUNCHED(launchToBf16(staged, count, dest, stream_));
    FOLIO_CUDA_TRY(cudaEventRecord(done_[b], stream_));
    return {};
}

Status RowUploader::finish() {
    FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
    return {};
}

}  // namespace folio::inference::cuda
