// SPDX-License-Identifier: GPL-3.0-or-later
// Uploading restored state: f32 rows in pageable host memory become bf16 rows on the device
// (MLA cache pages), through two pinned staging buffers so the host copy of one chunk overlaps
// the transfer and conversion of the previous one.
//
// Owns: its pinned and device staging buffers (freed on destruction). Promises: rows reach
// their destination in order on the given stream; every CUDA call is checked and a failure is
// an Error; finish() waits for every transfer. Never synchronises the whole device.
#pragma once

#include <cstdint>

#include "cuda_check.h"
#include "kernels.h"

namespace folio::inference::cuda {

// A device allocation released on destruction.
struct DeviceBuffer {
    void* data = nullptr;
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept : data(other.data) { other.data = nullptr; }
    ~DeviceBuffer();
    Status allocate(uint64_t bytes);
};

class RowUploader {
  public:
    static constexpr int64_t kRows = 1024;  // rows per chunk (divides the cache's page size)

    static Result<RowUploader> create(int64_t width, cudaStream_t stream);
    RowUploader(RowUploader&& other) noexcept;
    RowUploader(const RowUploader&) = delete;
    RowUploader& operator=(const RowUploader&) = delete;
    RowUploader& operator=(RowUploader&&) = delete;
    ~RowUploader();

    // Copies rows [0, rows) of `source` (rows × width floats, rows ≤ kRows) to `dest` as bf16.
    Status upload(const float* source, int64_t rows, bf16* dest);
    // Waits until everything uploaded so far is on the device.
    Status finish();

  private:
    RowUploader(int64_t width, cudaStream_t stream) : width_(width), stream_(stream) {}

    int64_t width_;
    cudaStream_t stream_;
    float* host_[2] = {nullptr, nullptr};
    DeviceBuffer device_[2];
    cudaEvent_t done_[2] = {nullptr, nullptr};
    int turn_ = 0;
};

}  // namespace folio::inference::cuda
