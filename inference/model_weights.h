// SPDX-License-Identifier: GPL-3.0-or-later
// Binds a checkpoint's tensors to the model's structure, as the config describes it.
// Owns: views only (the Checkpoint owns the bytes and must outlive the weights). Promises: after
// bindModelWeights succeeds, every tensor the architecture needs is present with exactly the
// expected shape and a floating dtype (BF16/F16/F32), and the checkpoint holds nothing else.
// Errors list the missing, unexpected or misshapen tensors by name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "model_config.h"
#include "result.h"

namespace folio::inference {

struct KdaWeights {
    TensorView qProj, kProj, vProj;  // [H*d, D]
    TensorView qConv, kConv, vConv;  // [H*d, 1, W]
    TensorView fA, fB;               // [d, D], [H*d, d]
    TensorView aLog;                 // [1, 1, H, 1]
    TensorView dtBias;               // [H*d]
    TensorView bProj;                // [H, D]
    TensorView gA, gB;               // [d, D], [H*d, d]
    TensorView oNorm;                // [d]
    TensorView oProj;                // [D, H*d]
};

struct MlaWeights {
    std::optional<TensorView> qProj;           // [H*(nope+rope), D] when q_lora_rank is null
    std::optional<TensorView> qA, qANorm, qB;  // the low-rank query path otherwise
    TensorView kvA;                            // [r + rope, D]
    TensorView kvANorm;                        // [r]
    TensorView kvB;                            // [H*(nope+v), r]
    TensorView oProj;                          // [D, H*v]
};

struct MlpWeights {
    TensorView gate, up, down;  // SwiGLU: down(silu(gate x) * up x)
};

struct MoeWeights {
    TensorView router;                 // [E, D]
    TensorView correctionBias;         // [E]
    std::vector<MlpWeights> experts;   // w1 = gate, w3 = up, w2 = down
    std::optional<MlpWeights> shared;  // absent when num_shared_experts = 0
};

struct LayerWeights {
    LayerKind kind = LayerKind::Kda;
    TensorView inputNorm, postAttentionNorm;
    KdaWeights kda;  // when kind == Kda
    MlaWeights mla;  // when kind == Mla
    bool moe = false;
    MlpWeights dense;    // when !moe
    MoeWeights experts;  // when moe
};

struct ModelWeights {
    TensorView embedTokens;  // [V, D]
    TensorView finalNorm;    // [D]
    TensorView lmHead;       // [V, D]; the embedding when tie_word_embeddings
    std::vector<LayerWeights> layers;
};

// The tensor names and shapes a config calls for, in checkpoint naming.
struct ExpectedTensor {
    std::string name;
    std::vector<int64_t> shape;
};
std::vector<ExpectedTensor> expectedTensors(const ModelConfig& config);

Result<ModelWeights> bindModelWeights(const ModelConfig& config, const Checkpoint& checkpoint);

}  // namespace folio::inference
