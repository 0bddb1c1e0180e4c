// SPDX-License-Identifier: GPL-3.0-or-later
// Plans and fills the CUDA backend's weight memory. The plan walks the config once and lays out
// every device tensor in one allocation (so its size is known before anything is allocated);
// filling then either uploads from the checkpoint's memory-mapped tensors through pinned staging
// buffers (converting to bf16 where stored otherwise, with progress), or generates deterministic
// random values on the GPU for benchmark models.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "../model_weights.h"
#include "cuda_model.h"

namespace folio::inference::cuda {

class WeightPlan {
  public:
    // `weights` null: random weights (benchmarks).
    WeightPlan(const ModelConfig& config, const ModelWeights* weights, ModelDevice& model);

    uint64_t bytes() const { return total_; }

    // Allocates the weight memory and fills it. The device memory is owned by the returned
    // handle; `model`'s pointers point into it.
    Result<std::shared_ptr<void>> materialise(
        uint64_t seed, const std::function<void(uint64_t, uint64_t)>& onProgress,
        cudaStream_t stream);

  private:
    enum class Source {
        Bf16Tensor,
        F32Tensor,
        ExpF32Tensor,
        RandomBf16,
        ConstF32,
        PointerTable,
        WidenedMatrix,  // an fp32 copy of a bf16 matrix planned earlier
    };
    struct Piece {
        uint64_t offset = 0, bytes = 0;
        Source source = Source::ConstF32;
        const TensorView* tensor = nullptr;
        float value = 0;                       // ConstF32 value, RandomBf16 scale
        std::vector<uint64_t> pointerOffsets;  // PointerTable: offsets of the pointed-to data
        std::vector<int64_t> pointerDeltas;    // added to each pointer (elements of bf16)
        void** fixup = nullptr;                // host field set to base + offset
    };

    uint64_t reserve(uint64_t bytes);
    void matrix(Matrix& m, int rows, int cols, std::initializer_list<const TensorView*> parts);
    void vector(float*& target, int64_t count, const TensorView* tensor, Source source,
                float fallback);
    void table(bf16**& target, const std::vector<const Matrix*>& matrices, int64_t deltaElements);
    void widened(float*& target, const Matrix& source);

    bool random_;
    std::vector<Piece> pieces_;
    std::vector<std::pair<Matrix*, uint64_t>> matrixOffsets_;
    uint64_t total_ = 0;
};

}  // namespace folio::inference::cuda
