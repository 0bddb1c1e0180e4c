// SPDX-License-Identifier: GPL-3.0-or-later
// The CUDA backend's device-side model: where every weight lives in the one weight allocation,
// fused the way the kernels read them (a layer's input projections concatenated into one
// matrix, each SwiGLU's gate and up projections stacked), plus the small fp32 vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "../model_config.h"
#include "kernels.h"

namespace folio::inference::cuda {

struct Matrix {
    bf16* data = nullptr;
    int rows = 0, cols = 0;
};

struct KdaDevice {
    Matrix inProj;        // [q; k; v; b; f_a; g_a]: 3P + H + 2d rows
    Matrix fB, gB;        // [P, d]
    Matrix oProj;         // [D, P]
    float* convTaps;      // [3][P][W]
    float* decayRate;     // [H]
    float* dtBias;        // [P]
    float* outNorm;       // [d]
    bf16** lowRankTable;  // device [2]: fB, gB
};

struct MlaDevice {
    Matrix inProj;      // [q_proj; kv_a]: H*(nope+rope) + r + rope rows
    Matrix kvB;         // [H*(nope+dv), r]
    Matrix oProj;       // [D, H*dv]
    float* latentNorm;  // [r]
};

struct MlpDevice {
    Matrix gateUp;  // [gate; up]: 2I rows
    Matrix down;    // [D, I]
};

struct FfnDevice {
    bool moe = false;
    MlpDevice dense;             // when !moe
    Matrix router;               // [E, D]
    float* routerF32 = nullptr;  // the same in fp32: prefill routes on fp32 activations
    float* correctionBias = nullptr;
    std::vector<MlpDevice> experts;  // host copy of the pointers
    bf16** gateTable = nullptr;      // device [E]: expert gate rows (up follows at + I*D)
    bf16** upTable = nullptr;        // device [E]
    bf16** downTable = nullptr;      // device [E]
    bool hasShared = false;
    bool sharedInTable = false;  // the shared expert is entry E of the tables
    MlpDevice shared;
};

struct LayerDevice {
    LayerKind kind = LayerKind::Kda;
    float* inputNorm = nullptr;
    float* postAttentionNorm = nullptr;
    KdaDevice kda{};
    MlaDevice mla{};
    FfnDevice ffn;
};

struct ModelDevice {
    Matrix embed;   // [V, D]
    Matrix lmHead;  // [V, D]
    float* finalNorm = nullptr;
    std::vector<LayerDevice> layers;
};

}  // namespace folio::inference::cuda
