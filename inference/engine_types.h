// SPDX-License-Identifier: GPL-3.0-or-later
// Plain option and result types shared by the engine's public API and its backends.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace folio::inference {

enum class BackendKind { Cpu, Cuda };

// How the MoE router weights the chosen experts. The choice of experts is the same either way.
enum class RouterWeighting {
    Unbiased,       // sigmoid scores (vLLM, SGLang, llama.cpp, transformers): the default
    BiasCorrected,  // scores + e_score_correction_bias, as the checkpoint's remote code does
};

// Which form of the KDA delta rule a prefill uses; both compute the same function. Auto is the
// backend's choice: on the CPU the recurrent form, which makes any split of a prompt give
// bit-identical results.
enum class KdaAlgorithm { Auto, Chunked, Recurrent };

enum class LogitsWanted { None, Last, All };

struct EngineOptions {
    BackendKind backend = BackendKind::Cpu;
    RouterWeighting router = RouterWeighting::Unbiased;
    KdaAlgorithm kdaAlgorithm = KdaAlgorithm::Auto;
    int threads = 0;  // CPU worker threads; 0 = one per hardware thread
    // Tokens per forward call during prefill (bounds memory; progress reports and cancellation
    // come between calls). 0: the backend's choice (1,024 on the CPU; on CUDA the largest its
    // work buffers allow, up to 32,768, as GPU memory permits).
    int64_t prefillChunkTokens = 0;
    int cudaDevice = 0;  // which GPU the CUDA backend uses
    // Called while the weights load: bytes done of total (the CUDA upload reports per tensor).
    std::function<void(uint64_t done, uint64_t total)> onLoadProgress;
};

// One named fp32 tensor of a sequence's state, in a backend-neutral layout:
//   kda.<layer>.state  [H, K, V]            recurrent state (rows = key channel)
//   kda.<layer>.conv   [3, W-1, H*d]        last W-1 pre-convolution q, k, v projections
//   mla.<layer>.cache  [T, kv_lora + rope]  latent after kv_a_layernorm, then k_pe
// Tensors come in layer order, and for a KDA layer state before conv.
struct StateTensor {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> data;
};

// Hidden states captured during a forward pass, for checks against a reference.
struct ForwardTrace {
    int64_t hidden = 0;
    std::vector<float> embeddings;           // [tokens, hidden]
    std::vector<std::vector<float>> layers;  // per layer: [tokens, hidden] residual stream after it
};

struct PrefillProgress {
    int64_t done = 0;   // tokens prefilled so far in this call
    int64_t total = 0;  // tokens in this call
    double seconds = 0;
    double tokensPerSecond() const { return seconds > 0 ? static_cast<double>(done) / seconds : 0; }
};

struct PrefillOptions {
    LogitsWanted logits = LogitsWanted::Last;
    std::function<void(const PrefillProgress&)> onProgress;  // after every chunk
    const std::atomic<bool>* cancel = nullptr;               // checked between chunks
    ForwardTrace* trace = nullptr;
};

}  // namespace folio::inference
