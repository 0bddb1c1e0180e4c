// SPDX-License-Identifier: GPL-3.0-or-later
// Folio's inference engine: the public API of inference/ (no Qt, no documents, no sessions).
//
// Engine owns a loaded Kimi Linear model on one backend (the fp32 CPU reference, or CUDA when
// built). Sequence owns one token stream's state: per KDA layer the recurrent state and the
// convolution window, per MLA layer the latent cache. The engine promises:
//   - prefill of any number of tokens from any state, in chunks of bounded memory, with progress
//     and cancellation between chunks; prefilling a prompt in any split equals prefilling it whole;
//   - decode of one token continues a prefill exactly;
//   - fork() gives an independent sequence (KDA state copied, MLA cache prefix shared);
//   - a sequence's state serialises to bytes (versioned, checksummed) and back;
//   - every failure (bad files, bad tokens, out of memory, device errors) is an Error value:
//     the engine never exits, aborts or throws on bad input, and a failed call leaves the
//     sequence as it was.
// It never touches the UI, storage or the network. Calls on one Engine must not overlap.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine_types.h"
#include "model_config.h"
#include "result.h"

namespace folio::inference {

class Backend;
class BackendState;
class Sampler;

// Logits for one or more positions, row-major [rows, vocab].
struct Logits {
    int64_t vocab = 0;
    std::vector<float> values;
    int64_t rows() const { return vocab == 0 ? 0 : static_cast<int64_t>(values.size()) / vocab; }
    std::span<const float> row(int64_t i) const {
        return {values.data() + i * vocab, static_cast<size_t>(vocab)};
    }
    std::span<const float> last() const { return row(rows() - 1); }
};

class Sequence {
  public:
    Sequence(Sequence&&) noexcept;
    Sequence& operator=(Sequence&&) noexcept;
    ~Sequence();

    int64_t length() const { return static_cast<int64_t>(tokens_.size()); }
    const std::vector<int32_t>& tokens() const { return tokens_; }

    // An independent copy: later tokens added to either do not affect the other.
    Result<Sequence> fork() const;

  private:
    friend class Engine;
    Sequence(std::shared_ptr<Backend> backend, std::unique_ptr<BackendState> state);
    std::shared_ptr<Backend> backend_;
    std::unique_ptr<BackendState> state_;
    std::vector<int32_t> tokens_;
};

class Engine {
  public:
    // Loads config.json and the safetensors weights of `modelDir` onto the chosen backend.
    static Result<std::unique_ptr<Engine>> open(const std::filesystem::path& modelDir,
                                                const EngineOptions& options = {});
    // For benchmarks: a model of `config` with deterministic random weights made on the GPU
    // (CUDA builds only).
    static Result<std::unique_ptr<Engine>> openRandom(const ModelConfig& config, uint64_t seed,
                                                      const EngineOptions& options);
    ~Engine();

    const ModelConfig& config() const;
    const EngineOptions& options() const { return options_; }
    std::string backendName() const;

    Result<Sequence> newSequence();

    // Appends `tokens` to the sequence. On cancellation the sequence keeps the chunks completed
    // so far and the error says how many tokens that is.
    Result<Logits> prefill(Sequence& sequence, std::span<const int32_t> tokens,
                           const PrefillOptions& options = {});

    // Appends one token and returns the logits for the next.
    Result<Logits> decode(Sequence& sequence, int32_t token);

    // Appends one token and returns the next one chosen by `sampler`: on the GPU when the
    // backend samples there (only the id leaves the device), else from the logits on the host.
    // The repetition penalty applies to every token of the sequence.
    Result<int32_t> decodeNext(Sequence& sequence, int32_t token, Sampler& sampler);

    // A sequence's complete state as bytes, and back (the model must match).
    Result<std::vector<std::byte>> saveState(const Sequence& sequence) const;
    Result<Sequence> loadState(std::span<const std::byte> bytes);

    // The state as tensors, for snapshot chains: KDA states and convolution windows whole, MLA
    // caches only rows [fromToken, length) — what a snapshot at `fromToken` lacks.
    Result<std::vector<StateTensor>> exportState(const Sequence& sequence,
                                                 int64_t fromToken = 0) const;
    // A sequence from its tokens and complete state tensors (MLA caches with every row), e.g.
    // the rows of a snapshot chain concatenated. Shapes and names are checked.
    Result<Sequence> importState(std::vector<int32_t> tokens, std::vector<StateTensor> tensors);

    // For benchmarks: makes a fresh sequence `length` tokens long with arbitrary contents (token
    // id 0, caches filled with noise) without computing them, where the backend can.
    Status fillSyntheticContext(Sequence& sequence, int64_t length);

    // For tools and tests that check a backend layer by layer.
    Backend& backend() { return *backend_; }

  private:
    Engine(std::shared_ptr<Backend> backend, EngineOptions options);
    Status checkTokens(const Sequence& sequence, std::span<const int32_t> tokens) const;

    std::shared_ptr<Backend> backend_;
    EngineOptions options_;
};

}  // namespace folio::inference
