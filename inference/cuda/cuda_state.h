// SPDX-License-Identifier: GPL-3.0-or-later
// A sequence's state on the GPU: per KDA layer the fp32 recurrent state and convolution window
// (one allocation), per MLA layer the bf16 latent cache in fixed-size pages, reference-counted
// so that forks share their common prefix and copy a page only before writing into it; the
// length on the device (read by the captured decode step), the bitmap of tokens seen (for the
// repetition penalty) and the sequence's captured decode graph.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "../backend.h"
#include "kernels.h"

namespace folio::inference::cuda {

struct CachePage {
    bf16* rows = nullptr;
    CachePage() = default;
    CachePage(const CachePage&) = delete;
    CachePage& operator=(const CachePage&) = delete;
    ~CachePage() {
        if (rows)
            cudaFree(rows);
    }
};

struct LayerCache {
    std::vector<std::shared_ptr<CachePage>> pages;
    bf16** table = nullptr;  // device copy of the page pointers (capacity: the model's context)
};

struct DeviceState final : BackendState {
    int64_t length = 0;
    float* kdaMemory = nullptr;  // every KDA layer's state then window
    uint64_t kdaBytes = 0;
    std::vector<float*> recurrent;  // per layer, null for MLA layers
    std::vector<float*> window;
    std::vector<LayerCache> caches;  // per layer, unused for KDA layers
    int32_t* deviceLength = nullptr;
    uint32_t* seen = nullptr;
    uint64_t seenWords = 0;
    cudaGraphExec_t decodeGraph = nullptr;
    int decodeGraphOmits = -1;  // the decode part that graph leaves out (benchmarks); -1: none

    DeviceState() = default;
    DeviceState(const DeviceState&) = delete;
    DeviceState& operator=(const DeviceState&) = delete;
    ~DeviceState() override {
        if (decodeGraph)
            cudaGraphExecDestroy(decodeGraph);
        for (LayerCache& c : caches) {
            if (c.table)
                cudaFree(c.table);
        }
        cudaFree(kdaMemory);
        cudaFree(deviceLength);
        cudaFree(seen);
    }
};

}  // namespace folio::inference::cuda
