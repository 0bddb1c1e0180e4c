// SPDX-License-Identifier: GPL-3.0-or-later
#include "cpu_backend.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "../log.h"
#include "cpu_model.h"
#include "kernels.h"

namespace folio::inference {
namespace {

using cpu::Context;
using cpu::Model;
using cpu::SequenceState;

const auto sz = [](int64_t n) { return static_cast<size_t>(n); };

struct CpuState final : BackendState {
    SequenceState s;
};

CpuState& cast(BackendState& state) {
    return static_cast<CpuState&>(state);
}
const CpuState& cast(const BackendState& state) {
    return static_cast<const CpuState&>(state);
}

void prepareLayers(Model& m) {
    const ModelConfig& c = m.config;
    m.finalNorm = toFloatVector(m.weights.finalNorm);
    m.layers.resize(sz(c.numLayers));
    for (int64_t i = 0; i < c.numLayers; ++i) {
        const LayerWeights& lw = m.weights.layers[sz(i)];
        cpu::Layer& layer = m.layers[sz(i)];
        layer.kind = lw.kind;
        layer.inputNorm = toFloatVector(lw.inputNorm);
        layer.postAttentionNorm = toFloatVector(lw.postAttentionNorm);
        if (lw.kind == LayerKind::Kda) {
            cpu::KdaLayer& k = layer.kda;
            k.w = &lw.kda;
            for (const TensorView* taps : {&lw.kda.qConv, &lw.kda.kConv, &lw.kda.vConv}) {
                auto values = toFloatVector(*taps);
                k.convTaps.insert(k.convTaps.end(), values.begin(), values.end());
            }
            k.decayRate = toFloatVector(lw.kda.aLog);
            for (float& a : k.decayRate)
                a = std::exp(a);
            k.dtBias = toFloatVector(lw.kda.dtBias);
            k.outNorm = toFloatVector(lw.kda.oNorm);
        } else {
            cpu::MlaLayer& a = layer.mla;
            a.w = &lw.mla;
            a.latentNorm = toFloatVector(lw.mla.kvANorm);
            if (lw.mla.qANorm)
                a.queryNorm = toFloatVector(*lw.mla.qANorm);
            a.upProjection = toFloatVector(lw.mla.kvB);
        }
        layer.ffn.moe = lw.moe;
        if (lw.moe) {
            layer.ffn.experts = &lw.experts;
            layer.ffn.correctionBias = toFloatVector(lw.experts.correctionBias);
        } else {
            layer.ffn.dense = &lw.dense;
        }
    }
}

class CpuBackend final : public Backend {
  public:
    CpuBackend(std::unique_ptr<Model> model, int threads)
        : model_(std::move(model)), pool_(threads) {}

    const ModelConfig& config() const override { return model_->config; }
    std::string name() const override { return cat("cpu (fp32, ", pool_.size(), " threads)"); }

    Result<std::unique_ptr<BackendState>> newState() override {
        try {
            const ModelConfig& c = model_->config;
            auto state = std::make_unique<CpuState>();
            state->s.kda.resize(sz(c.numLayers));
            state->s.mla.resize(sz(c.numLayers));
            for (int64_t i = 0; i < c.numLayers; ++i) {
                if (c.layerKind(i) == LayerKind::Kda) {
                    const int64_t d = c.kdaHeadDim, P = c.kdaProjectionSize();
                    state->s.kda[sz(i)].recurrent.assign(sz(c.kdaNumHeads * d * d), 0.0f);
                    state->s.kda[sz(i)].conv.assign(sz(3 * (c.convKernelSize - 1) * P), 0.0f);
                } else {
                    state->s.mla[sz(i)] = cpu::RowStore(c.kvLoraRank + c.qkRopeHeadDim);
                }
            }
            return std::unique_ptr<BackendState>(std::move(state));
        } catch (const std::bad_alloc&) {
            return makeError(ErrorCode::OutOfMemory, "not enough host memory for a new sequence");
        }
    }

    Result<std::unique_ptr<BackendState>> cloneState(const BackendState& state) override {
        try {
            auto copy = std::make_unique<CpuState>();
            copy->s = cast(state).s;  // KDA state copied; MLA pages shared until written
            return std::unique_ptr<BackendState>(std::move(copy));
        } catch (const std::bad_alloc&) {
            return makeError(ErrorCode::OutOfMemory, "not enough host memory to fork a sequence");
        }
    }

    int64_t stateLength(const BackendState& state) const override { return cast(state).s.length; }

    Status forward(BackendState& state, const ForwardRequest& request) override {
        // A failure must leave the state as it was: the KDA states are small enough to keep a
        // copy of; the MLA caches only grow, so they are cut back to their previous length.
        SequenceState& s = cast(state).s;
        const int64_t previousLength = s.length;
        std::vector<cpu::KdaState> previousKda;
        auto restore = [&] {
            if (!previousKda.empty())
                s.kda = std::move(previousKda);
            for (cpu::RowStore& cache : s.mla)
                cache.truncate(previousLength);
            s.length = previousLength;
        };
        try {
            previousKda = s.kda;
            Status status = run(s, request);
            if (!status.ok())
                restore();
            return status;
        } catch (const std::bad_alloc&) {
            restore();
            return makeError(ErrorCode::OutOfMemory,
                             "host memory ran out during a forward pass of ", request.tokens.size(),
                             " tokens; prefill in smaller chunks");
        }
    }

    Status runLayer(int64_t layer, BackendState& state, std::span<const float> input,
                    int64_t tokens, std::vector<float>& output) override {
        const ModelConfig& c = model_->config;
        if (layer < 0 || layer >= c.numLayers)
            return makeError(ErrorCode::InvalidArgument, "layer ", layer, " does not exist");
        if (static_cast<int64_t>(input.size()) != tokens * c.hiddenSize)
            return makeError(ErrorCode::InvalidArgument, "runLayer: input has ", input.size(),
                             " values, expected ", tokens * c.hiddenSize);
        try {
            SequenceState& s = cast(state).s;
            output.assign(input.begin(), input.end());
            decoderLayer(layer, s, output.data(), tokens);
            return {};
        } catch (const std::bad_alloc&) {
            return makeError(ErrorCode::OutOfMemory, "host memory ran out in layer ", layer);
        }
    }

    Result<std::vector<StateTensor>> exportState(const BackendState& state,
                                                 int64_t fromRow) override {
        const ModelConfig& c = model_->config;
        const SequenceState& s = cast(state).s;
        std::vector<StateTensor> out;
        for (int64_t i = 0; i < c.numLayers; ++i) {
            if (c.layerKind(i) == LayerKind::Kda) {
                const int64_t d = c.kdaHeadDim;
                out.push_back(
                    {cat("kda.", i, ".state"), {c.kdaNumHeads, d, d}, s.kda[sz(i)].recurrent});
                out.push_back({cat("kda.", i, ".conv"),
                               {3, c.convKernelSize - 1, c.kdaProjectionSize()},
                               s.kda[sz(i)].conv});
            } else {
                const cpu::RowStore& rows = s.mla[sz(i)];
                const int64_t count = rows.rows() - fromRow;
                StateTensor t{cat("mla.", i, ".cache"), {count, rows.width()}, {}};
                t.data.resize(sz(count * rows.width()));
                for (int64_t r = 0; r < count; ++r)
                    std::copy_n(rows.row(fromRow + r), rows.width(),
                                t.data.begin() + r * rows.width());
                out.push_back(std::move(t));
            }
        }
        return out;
    }

    Status importState(BackendState& state, std::vector<StateTensor> tensors,
                       std::span<const int32_t> tokens) override {
        const ModelConfig& c = model_->config;
        const int64_t length = static_cast<int64_t>(tokens.size());
        FOLIO_ASSIGN_OR_RETURN(auto fresh, newState());
        SequenceState& s = cast(*fresh).s;
        size_t next = 0;
        auto take = [&](const std::string& name,
                        std::vector<int64_t> shape) -> Result<std::vector<float>> {
            if (next >= tensors.size() || tensors[next].name != name)
                return makeError(ErrorCode::Format, "state tensor ", name, " is missing");
            StateTensor& t = tensors[next++];
            if (t.shape != shape)
                return makeError(ErrorCode::Format, "state tensor ", name, " has shape ",
                                 shapeToString(t.shape), ", expected ", shapeToString(shape));
            return std::move(t.data);
        };
        for (int64_t i = 0; i < c.numLayers; ++i) {
            if (c.layerKind(i) == LayerKind::Kda) {
                const int64_t d = c.kdaHeadDim;
                FOLIO_ASSIGN_OR_RETURN(s.kda[sz(i)].recurrent,
                                       take(cat("kda.", i, ".state"), {c.kdaNumHeads, d, d}));
                FOLIO_ASSIGN_OR_RETURN(s.kda[sz(i)].conv,
                                       take(cat("kda.", i, ".conv"),
                                            {3, c.convKernelSize - 1, c.kdaProjectionSize()}));
            } else {
                const int64_t width = c.kvLoraRank + c.qkRopeHeadDim;
                FOLIO_ASSIGN_OR_RETURN(auto rows, take(cat("mla.", i, ".cache"), {length, width}));
                s.mla[sz(i)].append(rows.data(), length);
            }
        }
        if (next != tensors.size())
            return makeError(ErrorCode::Format, "unexpected state tensor ", tensors[next].name);
        s.length = length;
        cast(state).s = std::move(s);
        return {};
    }

  private:
    Context context() { return Context{pool_, model_->config, model_->options}; }

    // Applies decoder layer `i` to the residual stream x [T, D] in place.
    void decoderLayer(int64_t i, SequenceState& s, float* x, int64_t T) {
        const ModelConfig& c = model_->config;
        const cpu::Layer& layer = model_->layers[sz(i)];
        const int64_t D = c.hiddenSize;
        Context ctx = context();
        std::vector<float> normed(sz(T * D)), delta(sz(T * D));
        cpu::rmsNorm(x, layer.inputNorm.data(), T, D, c.rmsNormEps, normed.data());
        if (layer.kind == LayerKind::Kda)
            cpu::kdaForward(ctx, layer.kda, normed.data(), T, s.kda[sz(i)], delta.data());
        else
            cpu::mlaForward(ctx, layer.mla, normed.data(), T, s.mla[sz(i)], delta.data());
        for (int64_t j = 0; j < T * D; ++j)
            x[j] += delta[sz(j)];
        cpu::rmsNorm(x, layer.postAttentionNorm.data(), T, D, c.rmsNormEps, normed.data());
        cpu::ffnForward(ctx, layer.ffn, normed.data(), T, delta.data());
        for (int64_t j = 0; j < T * D; ++j)
            x[j] += delta[sz(j)];
    }

    Status run(SequenceState& s, const ForwardRequest& request) {
        const ModelConfig& c = model_->config;
        const int64_t T = static_cast<int64_t>(request.tokens.size());
        const int64_t D = c.hiddenSize;
        if (T == 0)
            return {};
        std::vector<float> x(sz(T * D));
        for (int64_t t = 0; t < T; ++t) {
            convertToFloat(model_->weights.embedTokens,
                           static_cast<uint64_t>(request.tokens[sz(t)]) * static_cast<uint64_t>(D),
                           static_cast<uint64_t>(D), x.data() + t * D);
        }
        if (request.trace) {
            request.trace->hidden = D;
            request.trace->embeddings.insert(request.trace->embeddings.end(), x.begin(), x.end());
            request.trace->layers.resize(sz(c.numLayers));
        }
        for (int64_t i = 0; i < c.numLayers; ++i) {
            decoderLayer(i, s, x.data(), T);
            if (request.trace) {
                auto& dst = request.trace->layers[sz(i)];
                dst.insert(dst.end(), x.begin(), x.end());
            }
        }
        s.length += T;

        if (request.logits == LogitsWanted::None || request.logitsOut == nullptr)
            return {};
        const int64_t first = request.logits == LogitsWanted::All ? 0 : T - 1;
        const int64_t rows = T - first;
        std::vector<float> normed(sz(rows * D));
        cpu::rmsNorm(x.data() + first * D, model_->finalNorm.data(), rows, D, c.rmsNormEps,
                     normed.data());
        std::vector<float>& out = *request.logitsOut;
        const size_t offset = out.size();
        out.resize(offset + sz(rows * c.vocabSize));
        cpu::linear(pool_, model_->weights.lmHead, normed.data(), rows, out.data() + offset);
        return {};
    }

    std::unique_ptr<Model> model_;
    cpu::ThreadPool pool_;
};

}  // namespace

Result<std::shared_ptr<Backend>> createCpuBackend(const std::filesystem::path& modelDir,
                                                  const EngineOptions& options) {
    auto model = std::make_unique<Model>();
    FOLIO_ASSIGN_OR_RETURN(model->config, loadModelConfig(modelDir / "config.json"));
    FOLIO_ASSIGN_OR_RETURN(model->checkpoint, Checkpoint::open(modelDir));
    FOLIO_ASSIGN_OR_RETURN(model->weights, bindModelWeights(model->config, model->checkpoint));
    model->options = options;
    try {
        prepareLayers(*model);
    } catch (const std::bad_alloc&) {
        return makeError(ErrorCode::OutOfMemory,
                         "not enough host memory for the CPU backend's fp32 tensors");
    }
    log(LogLevel::Info, cat("cpu backend ready: ", model->config.numLayers, " layers, ",
                            model->checkpoint.totalBytes() / (1 << 20), " MiB of weights"));
    return std::shared_ptr<Backend>(
        std::make_shared<CpuBackend>(std::move(model), options.threads));
}

}  // namespace folio::inference
