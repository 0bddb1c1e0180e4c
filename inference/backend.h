// SPDX-License-Identifier: GPL-3.0-or-later
// The seam between the engine and a compute backend (CPU reference, CUDA). Internal to
// inference/: applications use engine.h.
// A backend owns the model's weights in its own memory and computes forward passes over a
// per-sequence state it allocates. Promises: forward() appends the given tokens to the state
// and is exact for any split of a prompt into calls; failures (out of memory, device errors)
// come back as errors and leave the state as it was before the call.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine_types.h"
#include "model_config.h"
#include "result.h"
#include "sampler.h"

namespace folio::inference {

class BackendState {
  public:
    virtual ~BackendState() = default;
};

struct ForwardRequest {
    std::span<const int32_t> tokens;
    LogitsWanted logits = LogitsWanted::Last;
    std::vector<float>* logitsOut = nullptr;  // rows appended: 0, 1 or tokens.size()
    ForwardTrace* trace = nullptr;            // per-layer hidden states appended when set
};

class Backend {
  public:
    virtual ~Backend() = default;

    virtual const ModelConfig& config() const = 0;
    virtual std::string name() const = 0;

    virtual Result<std::unique_ptr<BackendState>> newState() = 0;
    virtual Result<std::unique_ptr<BackendState>> cloneState(const BackendState& state) = 0;
    virtual int64_t stateLength(const BackendState& state) const = 0;

    virtual Status forward(BackendState& state, const ForwardRequest& request) = 0;
    // Tokens per forward call during prefill when EngineOptions leaves it to the backend: the
    // largest its work buffers take (long calls amortise weight reads), or a size that keeps
    // progress reports frequent where compute is slow.
    virtual int64_t preferredPrefillChunk() const { return 1024; }

    // Appends `token` and chooses the next token on the backend itself, so that logits never
    // leave it; `uniform` in [0, 1) drives a sampled choice. Backends that cannot return
    // Unsupported, and the engine samples on the host instead.
    virtual bool samplesOnDevice() const { return false; }
    virtual Result<int32_t> decodeSampled(BackendState& state, int32_t token,
                                          const SamplingOptions& sampling, double uniform) {
        (void)state, (void)token, (void)sampling, (void)uniform;
        return makeError(ErrorCode::Unsupported, name(), " does not sample on the device");
    }

    // For benchmarks: makes the state `length` tokens long with arbitrary contents (the MLA
    // caches filled), without computing them, so that decode can be timed at long contexts.
    virtual Status fillSyntheticContext(BackendState& state, int64_t length) {
        (void)state, (void)length;
        return makeError(ErrorCode::Unsupported, name(), " has no synthetic contexts");
    }

    // For benchmarks: when on, prefill's GPU time is split into components (kda, mla_attention,
    // moe, other_gemms); componentSeconds() returns the sums since the last reset.
    virtual void timeComponents(bool on) { (void)on; }
    virtual std::vector<std::pair<std::string, double>> componentSeconds(bool reset) {
        (void)reset;
        return {};
    }

    // For benchmarks: when on, each decode step is captured afresh with CUDA events where its
    // work switches from one part to the next (embedding and sampling, the projections, the KDA
    // step, the MLA attention, the routing, the experts, ...), and decodePartTimes() returns
    // each part's GPU time and the bytes it must move at least, summed since the last reset.
    // The marks end the dependent launches at each boundary, so the parts add up to somewhat
    // more than an unmarked step.
    struct DecodePartTime {
        std::string name;
        double seconds = 0, bytes = 0;
    };
    virtual void timeDecodeParts(bool on) { (void)on; }
    // For benchmarks: decode steps from now on leave out the kernels of the named part (their
    // outputs keep whatever they last held, so the results are wrong), to time the step without
    // them; an empty name restores the whole step. Only after a whole step has run, so that
    // what the part would have written (the experts' ids, say) holds valid values.
    virtual Status omitDecodePart(const std::string& name) {
        (void)name;
        return makeError(ErrorCode::Unsupported, this->name(), " cannot leave out decode parts");
    }
    virtual std::vector<DecodePartTime> decodePartTimes(bool reset) {
        (void)reset;
        return {};
    }

    // Runs decoder layer `layer` alone on given inputs [tokens, hidden] from `state`, appending
    // to that layer's part of the state. For layer-by-layer checks against a reference.
    virtual Status runLayer(int64_t layer, BackendState& state, std::span<const float> input,
                            int64_t tokens, std::vector<float>& output) = 0;

    // The state as tensors; MLA caches hold only rows [fromRow, length).
    virtual Result<std::vector<StateTensor>> exportState(const BackendState& state,
                                                         int64_t fromRow) = 0;
    // Replaces `state` with the imported tensors; `tokens` are the sequence's tokens (their count
    // is the state's length; the CUDA backend also rebuilds its repetition-penalty bitmap).
    virtual Status importState(BackendState& state, std::vector<StateTensor> tensors,
                               std::span<const int32_t> tokens) = 0;
};

}  // namespace folio::inference
