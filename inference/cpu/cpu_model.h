// SPDX-License-Identifier: GPL-3.0-or-later
// The CPU backend's model: memory-mapped weights plus the few small tensors it keeps in fp32
// (norm weights, conv taps, gate constants, the MLA up-projection), and the per-sequence state.
// Large matrices stay in their stored dtype and are converted a block at a time while used.
#pragma once

#include <memory>
#include <vector>

#include "../checkpoint.h"
#include "../engine_types.h"
#include "../model_config.h"
#include "../model_weights.h"
#include "row_store.h"
#include "thread_pool.h"

namespace folio::inference::cpu {

struct KdaLayer {
    const KdaWeights* w = nullptr;
    std::vector<float> convTaps;   // [3][P][W]: q, k, v
    std::vector<float> decayRate;  // [H]: exp(A_log)
    std::vector<float> dtBias;     // [P]
    std::vector<float> outNorm;    // [d]
};

struct MlaLayer {
    const MlaWeights* w = nullptr;
    std::vector<float> latentNorm;    // [r]
    std::vector<float> queryNorm;     // [q_lora_rank] when the low-rank query path exists
    std::vector<float> upProjection;  // kv_b_proj as fp32: [H*(nope+v), r]
};

struct FfnLayer {
    bool moe = false;
    const MlpWeights* dense = nullptr;
    const MoeWeights* experts = nullptr;
    std::vector<float> correctionBias;  // [E]
};

struct Layer {
    LayerKind kind = LayerKind::Kda;
    std::vector<float> inputNorm, postAttentionNorm;
    KdaLayer kda;
    MlaLayer mla;
    FfnLayer ffn;
};

struct Model {
    ModelConfig config;
    EngineOptions options;
    Checkpoint checkpoint;
    ModelWeights weights;
    std::vector<Layer> layers;
    std::vector<float> finalNorm;
};

struct KdaState {
    std::vector<float> recurrent;  // [H][K][V]
    std::vector<float> conv;       // [3][W-1][P], oldest first
};

struct SequenceState {
    int64_t length = 0;
    std::vector<KdaState> kda;  // indexed by layer; empty for MLA layers
    std::vector<RowStore> mla;  // indexed by layer; rows of (latent, k_pe); unused for KDA
};

// Everything a layer computation needs besides its weights and state.
struct Context {
    ThreadPool& pool;
    const ModelConfig& config;
    const EngineOptions& options;
};

// Token mixers and channel mixers: each reads h [T, D] and writes out [T, D].
void kdaForward(const Context& ctx, const KdaLayer& layer, const float* h, int64_t tokens,
                KdaState& state, float* out);
void mlaForward(const Context& ctx, const MlaLayer& layer, const float* h, int64_t tokens,
                RowStore& cache, float* out);
void ffnForward(const Context& ctx, const FfnLayer& layer, const float* h, int64_t tokens,
                float* out);

// The two forms of the KDA delta rule over one head, exposed for tests. Row t of q, k (key
// width K), v, out (value width V) and g (K) starts at t * rowStride; beta[t * betaStride].
// q is already normalised and scaled, k normalised, g the log-decay (<= 0).
// state: [K][V], updated in place.
struct KdaHeadInputs {
    int64_t tokens = 0, keyDim = 0, valueDim = 0, rowStride = 0, betaStride = 1;
    const float* q = nullptr;
    const float* k = nullptr;
    const float* v = nullptr;
    const float* g = nullptr;
    const float* beta = nullptr;
};
void kdaRecurrentHead(const KdaHeadInputs& in, float* state, float* out);
void kdaChunkedHead(const KdaHeadInputs& in, float* state, float* out, int64_t chunkSize = 64);

}  // namespace folio::inference::cpu
