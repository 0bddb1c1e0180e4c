// SPDX-License-Identifier: GPL-3.0-or-later
// The CUDA backend: bf16 weights resident on one GPU, fp32 accumulation, fp32 KDA state, a bf16
// MLA latent cache in pages shared copy-on-write between forks. Prefill runs the large products
// on cuBLAS; decode runs one captured CUDA graph per sequence of fused kernels with no host
// synchronisation inside the step, and samples on the GPU.
// Promises: device memory is planned before anything is allocated and a model that does not fit
// is an error saying what did not fit and what to lower; every CUDA call is checked and its
// failure reaches the caller; allocation failures during a forward pass happen before any state
// is touched. Never aborts.
#pragma once

#include <filesystem>
#include <memory>

#include "../backend.h"

namespace folio::inference {

// The model in `modelDir`, uploaded from its memory-mapped files.
Result<std::shared_ptr<Backend>> createCudaBackend(const std::filesystem::path& modelDir,
                                                   const EngineOptions& options);

// A model of the given configuration with deterministic random weights made on the GPU (for
// benchmarks of configurations too large to write to disk).
Result<std::shared_ptr<Backend>> createRandomCudaBackend(const ModelConfig& config, uint64_t seed,
                                                         const EngineOptions& options);

// Whether a CUDA device is present and usable; the reason when not.
Status cudaDeviceAvailable();

}  // namespace folio::inference
