// SPDX-License-Identifier: GPL-3.0-or-later
#include "cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <map>

#include "../checkpoint.h"
#include "../log.h"
#include "../model_weights.h"
#include "component_timer.h"
#include "cuda_check.h"
#include "cuda_model.h"
#include "cuda_state.h"
#include "kernels.h"
#include "row_upload.h"
#include "weight_plan.h"

namespace folio::inference {
namespace {

using namespace cuda;

constexpr int kPageRows = 4096;
constexpr int kDecodeSplits = 132;
// Prefill MoE: every expert in two grouped launches, the pairs grouped on the GPU. Up to this
// many tokens per forward call (a question) each weight goes straight into registers once per
// 32 pairs; longer calls go through 64 × 128 shared-memory tiles.
constexpr int kGroupedMoeMaxTokens = 256;
// Prefill attention: calls of at least this many tokens use the expanded (flash) form, with the
// cache expanded this many rows at a time (a multiple of the page size; 16 KiB per row, 512 MiB).
constexpr int kFlashMinTokens = 16;
constexpr int64_t kFlashSegmentRows = 32768;
// A few queries over a long context (a question): each segment's keys are split over several
// blocks per query tile, up to this many (query × split) rows of partial softmax state.
constexpr int kFlashPartialRows = 2048;
constexpr int kFlashMaxSplits = 32;
// Prefill KDA: calls of at least this many tokens use the chunked form, shorter ones the step
// kernel token by token.
constexpr int kKdaChunkedMinTokens = 16;
constexpr int kLogitsRowsPerBatch = 64;
// The largest prefill call the work buffers are planned for (about 0.5 MB of them per token):
// longer calls re-read every expert's weights and re-expand the attention cache less often.
constexpr int64_t kMaxForwardTokens = 32768;
constexpr int64_t kMinAutomaticChunk = 1024;  // the automatic choice goes no lower
// The parts a profiled decode step is split into (the decode timer's names, in order).
enum class DecodePart : int {
    EmbedAndSample = 0,
    KdaProjections,
    KdaStep,
    MlaProjection,
    MlaAttention,
    OutProjection,
    Routing,
    Experts,
    SharedExpert,
    Combine,
    DenseMlp,
    LmHead,
};
constexpr const char* kDecodePartNames[] = {"embed_and_sample", "kda_projections", "kda_step",
                                            "mla_projection",   "mla_attention",   "out_projection",
                                            "routing",          "experts",         "shared_expert",
                                            "combine",          "dense_mlp",       "lm_head"};
static_assert(std::size(kDecodePartNames) == static_cast<size_t>(DecodePart::LmHead) + 1);

const auto sz = [](int64_t n) { return static_cast<size_t>(n); };

DeviceState& cast(BackendState& s) {
    return static_cast<DeviceState&>(s);
}
const DeviceState& cast(const BackendState& s) {
    return static_cast<const DeviceState&>(s);
}

// Lays out typed buffers in one device allocation.
class Arena {
  public:
    template <typename T>
    void reserve(T*& target, int64_t count) {
        const uint64_t offset = (total_ + 255) / 256 * 256;
        total_ = offset + static_cast<uint64_t>(std::max<int64_t>(count, 1)) * sizeof(T);
        fixups_.push_back({reinterpret_cast<void**>(&target), offset});
    }
    uint64_t bytes() const { return total_; }
    Status allocate(const char* what) {
        void* raw = nullptr;
        const cudaError_t status = cudaMalloc(&raw, total_);
        if (status != cudaSuccess) {
            cudaGetLastError();
            return makeError(ErrorCode::OutOfMemory, what, " needs ", total_ >> 20,
                             " MiB of GPU memory that is not free");
        }
        memory_.reset(raw, [](void* p) { cudaFree(p); });
        for (const auto& [target, offset] : fixups_)
            *target = static_cast<std::byte*>(raw) + offset;
        return {};
    }

  private:
    uint64_t total_ = 0;
    std::vector<std::pair<void**, uint64_t>> fixups_;
    std::shared_ptr<void> memory_;
};

struct Scratch {
    int64_t tokens = 0;
    float *x, *normed, *proj, *gates, *attended, *qLatent, *oLatent, *partial, *logits;
    bf16 *narrow, *narrowLo;
    float *routerLogits, *slotWeights;
    int32_t *slotIds, *tokenIds, *groupRows, *groupCounts, *groupStart, *groupCursor;
    unsigned* routeBlocksDone;  // launchMoeRoute's counter, zero between launches
    bf16* moeAct;               // [T * slots][moe inner], in expert order
    float* moeOut;              // [T * slots][hidden], in slot order
    bf16 *flashQ, *flashKv;     // prefill attention: queries [T][H][qk], a segment's keys/values
    bf16* flashRope;            // the segment's rope parts, dense (the wgmma form's tensor copies)
    float *flashMax, *flashSum, *flashO;              // its softmax state carried between segments
    float *flashPartMax, *flashPartSum, *flashPartO;  // the splits' partial states
    float* kdaChunks;  // chunked KDA: the records its two kernels pass, per chunk and head
    float *groupWeights, *gathered, *gateUp, *act, *expertOut;
    SampleParams* params;
    int32_t* nextToken;
    int64_t partialFloats = 0, narrowCount = 0;
};

class CudaBackend final : public Backend {
  public:
    ~CudaBackend() override {
        if (cublas_)
            cublasDestroy(cublas_);
        if (stream_)
            cudaStreamDestroy(stream_);
        if (hostParams_)
            cudaFreeHost(hostParams_);
    }

    static Result<std::shared_ptr<Backend>> create(const ModelConfig& config,
                                                   std::unique_ptr<Checkpoint> checkpoint,
                                                   std::unique_ptr<ModelWeights> weights,
                                                   uint64_t seed, const EngineOptions& options) {
        FOLIO_TRY(checkSupported(config));
        FOLIO_TRY(cudaDeviceAvailable());
        FOLIO_CUDA_TRY(cudaSetDevice(options.cudaDevice));
        auto b = std::shared_ptr<CudaBackend>(new CudaBackend());
        b->config_ = config;
        b->options_ = options;
        b->checkpoint_ = std::move(checkpoint);
        b->weights_ = std::move(weights);
        FOLIO_CUDA_TRY(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking));
        FOLIO_CUBLAS_TRY(cublasCreate(&b->cublas_));
        FOLIO_CUBLAS_TRY(cublasSetStream(b->cublas_, b->stream_));
        FOLIO_CUBLAS_TRY(cublasSetMathMode(b->cublas_, CUBLAS_DEFAULT_MATH));

        // Plan all device memory before allocating any of it.
        WeightPlan plan(config, b->weights_.get(), b->model_);
        // Prefill calls: as asked, or (0) the largest that leaves room, halving from 32K down to
        // 1K tokens while the weights, the work buffers, a 128K-token sequence and a margin for
        // cuBLAS's workspace and other sequences do not fit.
        const bool automaticChunk = options.prefillChunkTokens <= 0;
        b->scratch_.tokens =
            automaticChunk ? kMaxForwardTokens
                           : std::clamp<int64_t>(options.prefillChunkTokens, 1, kMaxForwardTokens);
        size_t freeBytes = 0, totalBytes = 0;
        FOLIO_CUDA_TRY(cudaMemGetInfo(&freeBytes, &totalBytes));
        const uint64_t stateBytes = b->sequenceBytes(4096);
        Arena scratch = b->planScratch();
        const uint64_t roomForContexts = b->sequenceBytes(131072) + (1ull << 30);
        while (automaticChunk && b->scratch_.tokens > kMinAutomaticChunk &&
               plan.bytes() + scratch.bytes() + roomForContexts > freeBytes) {
            b->scratch_.tokens /= 2;
            scratch = b->planScratch();
        }
        const uint64_t needed = plan.bytes() + scratch.bytes() + stateBytes;
        if (needed > freeBytes) {
            return makeError(
                ErrorCode::OutOfMemory, "the model does not fit in GPU memory: weights ",
                plan.bytes() >> 20, " MiB + work buffers for prefill chunks of ",
                b->scratch_.tokens, " tokens ", scratch.bytes() >> 20, " MiB + one 4K-token ",
                "sequence ", stateBytes >> 20, " MiB = ", needed >> 20, " MiB, but only ",
                freeBytes >> 20, " MiB of ", totalBytes >> 20,
                " MiB are free. Lower the prefill chunk size, close other GPU programs, or use a "
                "GPU with more memory (the full Kimi-Linear-48B-A3B needs about 100 GB in bf16)");
        }
        FOLIO_ASSIGN_OR_RETURN(b->weightMemory_,
                               plan.materialise(seed, options.onLoadProgress, b->stream_));
        FOLIO_TRY(scratch.allocate("the prefill work buffers"));
        b->scratchArena_ = std::move(scratch);
        FOLIO_CUDA_TRY(
            cudaMemsetAsync(b->scratch_.routeBlocksDone, 0, sizeof(unsigned), b->stream_));
        FOLIO_CUDA_TRY(cudaMallocHost(reinterpret_cast<void**>(&b->hostParams_),
                                      sizeof(SampleParams) + sizeof(int32_t) * 4));
        b->hostToken_ = reinterpret_cast<int32_t*>(b->hostParams_ + 1);
        const ModelConfig& c = b->config_;
        FOLIO_CUDA_TRY(configureMlaFlashPrefill());
        FOLIO_CUDA_TRY(configureKdaChunked());
        FOLIO_CUDA_TRY(configureExpertGemm());
        FOLIO_CUDA_TRY(configureMlaAttention(mlaAttentionSharedBytes(
            static_cast<int>(c.numAttentionHeads), static_cast<int>(c.kvLoraRank),
            static_cast<int>(c.qkRopeHeadDim))));
        cudaDeviceProp prop{};
        FOLIO_CUDA_TRY(cudaGetDeviceProperties(&prop, options.cudaDevice));
        b->deviceName_ = prop.name;
        b->multiprocessors_ = prop.multiProcessorCount;
        log(LogLevel::Info,
            cat("cuda backend ready on ", prop.name, ": weights ", plan.bytes() >> 20,
                " MiB, work buffers ", b->scratchArena_.bytes() >> 20, " MiB"));
        return std::shared_ptr<Backend>(b);
    }

    const ModelConfig& config() const override { return config_; }

    void timeComponents(bool on) override { timer_.enable(on); }
    std::vector<std::pair<std::string, double>> componentSeconds(bool reset) override {
        auto out = timer_.seconds();
        if (reset)
            timer_.reset();
        return out;
    }
    void timeDecodeParts(bool on) override { decodeTimer_.enable(on); }
    Status omitDecodePart(const std::string& name) override {
        if (name.empty()) {
            omittedPart_ = -1;
            return {};
        }
        const auto names = decodeTimer_.seconds();
        for (size_t i = 1; i < names.size(); ++i) {  // 0, embedding and sampling, is kept
            if (names[i].first == name) {
                omittedPart_ = static_cast<int>(i);
                return {};
            }
        }
        return makeError(ErrorCode::InvalidArgument, "no decode part ", name, " can be left out");
    }
    std::vector<DecodePartTime> decodePartTimes(bool reset) override {
        std::vector<DecodePartTime> out;
        const auto seconds = decodeTimer_.seconds();
        for (size_t i = 0; i < seconds.size(); ++i)
            out.push_back({seconds[i].first, seconds[i].second, decodeTimer_.bytes()[i]});
        if (reset)
            decodeTimer_.reset();
        return out;
    }
    std::string name() const override { return cat("cuda (bf16, ", deviceName_, ")"); }

    Result<std::unique_ptr<BackendState>> newState() override {
        auto s = std::make_unique<DeviceState>();
        FOLIO_TRY(allocateState(*s));
        FOLIO_CUDA_TRY(cudaMemsetAsync(s->kdaMemory, 0, s->kdaBytes, stream_));
        FOLIO_CUDA_TRY(cudaMemsetAsync(s->deviceLength, 0, sizeof(int32_t), stream_));
        FOLIO_CUDA_TRY(cudaMemsetAsync(s->seen, 0, s->seenWords * 4, stream_));
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        return std::unique_ptr<BackendState>(std::move(s));
    }

    Result<std::unique_ptr<BackendState>> cloneState(const BackendState& from) override {
        const DeviceState& src = cast(from);
        auto s = std::make_unique<DeviceState>();
        FOLIO_TRY(allocateState(*s));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(s->kdaMemory, src.kdaMemory, s->kdaBytes,
                                       cudaMemcpyDeviceToDevice, stream_));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(s->deviceLength, src.deviceLength, sizeof(int32_t),
                                       cudaMemcpyDeviceToDevice, stream_));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(s->seen, src.seen, s->seenWords * 4,
                                       cudaMemcpyDeviceToDevice, stream_));
        s->length = src.length;
        for (size_t i = 0; i < s->caches.size(); ++i) {
            s->caches[i].pages = src.caches[i].pages;  // shared until written
            FOLIO_TRY(uploadPageTable(s->caches[i]));
        }
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        return std::unique_ptr<BackendState>(std::move(s));
    }

    int64_t stateLength(const BackendState& s) const override { return cast(s).length; }
    int64_t preferredPrefillChunk() const override { return scratch_.tokens; }

    Status forward(BackendState& state, const ForwardRequest& request) override {
        DeviceState& s = cast(state);
        const auto total = static_cast<int64_t>(request.tokens.size());
        if (total == 0)
            return {};
        if (total == 1 && request.trace == nullptr) {
            SampleParams params;
            params.inputToken = request.tokens[0];
            FOLIO_TRY(decodeStep(s, params));
            if (request.logits != LogitsWanted::None && request.logitsOut != nullptr) {
                std::vector<float>& out = *request.logitsOut;
                const size_t offset = out.size();
                out.resize(offset + sz(config_.vocabSize));
                FOLIO_CUDA_TRY(cudaMemcpyAsync(out.data() + offset, scratch_.logits,
                                               sz(config_.vocabSize) * sizeof(float),
                                               cudaMemcpyDeviceToHost, stream_));
                FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
            }
            return {};
        }
        for (int64_t done = 0; done < total;) {
            const int64_t n = std::min(scratch_.tokens, total - done);
            const bool last = done + n == total;
            const LogitsWanted wanted = request.logits == LogitsWanted::All ? LogitsWanted::All
                                        : last                              ? request.logits
                                                                            : LogitsWanted::None;
            FOLIO_TRY(prefillChunk(s, request.tokens.subspan(sz(done), sz(n)), wanted,
                                   request.logitsOut, request.trace));
            done += n;
        }
        return {};
    }

    bool samplesOnDevice() const override { return true; }

    Result<int32_t> decodeSampled(BackendState& state, int32_t token,
                                  const SamplingOptions& sampling, double uniform) override {
        SampleParams params;
        params.inputToken = token;
        params.temperature = sampling.temperature;
        params.topK = static_cast<int32_t>(std::min<int64_t>(sampling.topK, INT32_MAX));
        params.topP = sampling.topP;
        params.repetitionPenalty = sampling.repetitionPenalty;
        params.uniform = static_cast<float>(uniform);
        FOLIO_TRY(decodeStep(cast(state), params));
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        return *hostToken_;
    }

    Status fillSyntheticContext(BackendState& state, int64_t length) override {
        DeviceState& s = cast(state);
        FOLIO_TRY(reserveRows(s, length));
        const int64_t width = config_.kvLoraRank + config_.qkRopeHeadDim;
        for (const LayerCache& cache : s.caches) {
            for (size_t p = 0; p < cache.pages.size(); ++p)
                launchFillRandomBf16(cache.pages[p]->rows, static_cast<int64_t>(kPageRows) * width,
                                     p + 1, 1.0f, stream_);
        }
        FOLIO_CUDA_TRY(cudaGetLastError());
        const int32_t deviceLength = static_cast<int32_t>(length);
        FOLIO_CUDA_TRY(cudaMemcpyAsync(s.deviceLength, &deviceLength, sizeof(int32_t),
                                       cudaMemcpyHostToDevice, stream_));
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        s.length = length;
        return {};
    }

    Status runLayer(int64_t layer, BackendState& state, std::span<const float> input,
                    int64_t tokens, std::vector<float>& output) override {
        const ModelConfig& c = config_;
        if (layer < 0 || layer >= c.numLayers)
            return makeError(ErrorCode::InvalidArgument, "layer ", layer, " does not exist");
        if (static_cast<int64_t>(input.size()) != tokens * c.hiddenSize)
            return makeError(ErrorCode::InvalidArgument, "runLayer: input has ", input.size(),
                             " values, expected ", tokens * c.hiddenSize);
        if (tokens > scratch_.tokens)
            return makeError(ErrorCode::InvalidArgument, "runLayer: at most ", scratch_.tokens,
                             " tokens at a time");
        DeviceState& s = cast(state);
        FOLIO_TRY(reserveRows(s, s.length + tokens));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(scratch_.x, input.data(), input.size() * sizeof(float),
                                       cudaMemcpyHostToDevice, stream_));
        FOLIO_TRY(prefillLayer(layer, s, static_cast<int>(tokens)));
        launchAdvanceLength(s.deviceLength, static_cast<int>(tokens), stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        output.resize(input.size());
        FOLIO_CUDA_TRY(cudaMemcpyAsync(output.data(), scratch_.x, input.size() * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_));
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        s.length += tokens;
        return {};
    }

    Result<std::vector<StateTensor>> exportState(const BackendState& state,
                                                 int64_t fromRow) override {
        const DeviceState& s = cast(state);
        const ModelConfig& c = config_;
        std::vector<StateTensor> out;
        const int64_t H = c.kdaNumHeads, d = c.kdaHeadDim, P = c.kdaProjectionSize();
        const int64_t W = c.convKernelSize, width = c.kvLoraRank + c.qkRopeHeadDim;
        for (int64_t i = 0; i < c.numLayers; ++i) {
            if (c.layerKind(i) == LayerKind::Kda) {
                StateTensor st{cat("kda.", i, ".state"), {H, d, d}, {}};
                st.data.resize(sz(H * d * d));
                FOLIO_CUDA_TRY(cudaMemcpyAsync(st.data.data(), s.recurrent[sz(i)],
                                               st.data.size() * 4, cudaMemcpyDeviceToHost,
                                               stream_));
                StateTensor cv{cat("kda.", i, ".conv"), {3, W - 1, P}, {}};
                cv.data.resize(sz(3 * (W - 1) * P));
                FOLIO_CUDA_TRY(cudaMemcpyAsync(cv.data.data(), s.window[sz(i)], cv.data.size() * 4,
                                               cudaMemcpyDeviceToHost, stream_));
                out.push_back(std::move(st));
                out.push_back(std::move(cv));
            } else {
                const int64_t rows = s.length - fromRow;
                std::vector<uint16_t> narrow(sz(rows * width));
                const LayerCache& cache = s.caches[sz(i)];
                for (int64_t r = 0; r < rows;) {
                    const int64_t row = fromRow + r;
                    const int64_t inPage = std::min<int64_t>(kPageRows - row % kPageRows, rows - r);
                    FOLIO_CUDA_TRY(cudaMemcpyAsync(
                        narrow.data() + r * width,
                        cache.pages[sz(row / kPageRows)]->rows + (row % kPageRows) * width,
                        sz(inPage * width) * 2, cudaMemcpyDeviceToHost, stream_));
                    r += inPage;
                }
                FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
                StateTensor m{cat("mla.", i, ".cache"), {rows, width}, {}};
                m.data.resize(narrow.size());
                for (size_t j = 0; j < narrow.size(); ++j)
                    m.data[j] = bf16ToFloat(narrow[j]);
                out.push_back(std::move(m));
            }
        }
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        return out;
    }

    Status importState(BackendState& state, std::vector<StateTensor> tensors,
                       std::span<const int32_t> tokens) override {
        const ModelConfig& c = config_;
        const int64_t length = static_cast<int64_t>(tokens.size());
        FOLIO_ASSIGN_OR_RETURN(auto fresh, newState());
        DeviceState& s = cast(*fresh);
        const int64_t H = c.kdaNumHeads, d = c.kdaHeadDim, P = c.kdaProjectionSize();
        const int64_t W = c.convKernelSize, width = c.kvLoraRank + c.qkRopeHeadDim;
        size_t next = 0;
        auto take = [&](const std::string& name,
                        const std::vector<int64_t>& shape) -> Result<const StateTensor*> {
            if (next >= tensors.size() || tensors[next].name != name)
                return makeError(ErrorCode::Format, "state tensor ", name, " is missing");
            const StateTensor& t = tensors[next++];
            if (t.shape != shape)
                return makeError(ErrorCode::Format, "state tensor ", name, " has shape ",
                                 shapeToString(t.shape), ", expected ", shapeToString(shape));
            return &t;
        };
        FOLIO_TRY(reserveRows(s, length));
        FOLIO_ASSIGN_OR_RETURN(RowUploader uploader, RowUploader::create(width, stream_));
        for (int64_t i = 0; i < c.numLayers; ++i) {
            if (c.layerKind(i) == LayerKind::Kda) {
                FOLIO_ASSIGN_OR_RETURN(const StateTensor* st,
                                       take(cat("kda.", i, ".state"), {H, d, d}));
                FOLIO_CUDA_TRY(cudaMemcpy(s.recurrent[sz(i)], st->data.data(), st->data.size() * 4,
                                          cudaMemcpyHostToDevice));
                FOLIO_ASSIGN_OR_RETURN(const StateTensor* cv,
                                       take(cat("kda.", i, ".conv"), {3, W - 1, P}));
                FOLIO_CUDA_TRY(cudaMemcpy(s.window[sz(i)], cv->data.data(), cv->data.size() * 4,
                                          cudaMemcpyHostToDevice));
            } else {
                FOLIO_ASSIGN_OR_RETURN(const StateTensor* m,
                                       take(cat("mla.", i, ".cache"), {length, width}));
                const LayerCache& cache = s.caches[sz(i)];
                for (int64_t r = 0; r < length;) {
                    const int64_t rows = std::min<int64_t>(
                        {RowUploader::kRows, kPageRows - r % kPageRows, length - r});
                    FOLIO_TRY(uploader.upload(
                        m->data.data() + r * width, rows,
                        cache.pages[sz(r / kPageRows)]->rows + (r % kPageRows) * width));
                    r += rows;
                }
            }
        }
        if (length > 0) {
            // The repetition penalty's bitmap of the context's tokens.
            DeviceBuffer ids;
            FOLIO_TRY(ids.allocate(sz(length) * 4));
            FOLIO_CUDA_TRY(cudaMemcpyAsync(ids.data, tokens.data(), sz(length) * 4,
                                           cudaMemcpyHostToDevice, stream_));
            launchMarkSeen(s.seen, static_cast<int32_t*>(ids.data), static_cast<int>(length),
                           stream_);
            FOLIO_CUDA_TRY(cudaGetLastError());
            FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        }
        FOLIO_TRY(uploader.finish());
        if (next != tensors.size())
            return makeError(ErrorCode::Format, "unexpected state tensor ", tensors[next].name);
        const int32_t deviceLength = static_cast<int32_t>(length);
        FOLIO_CUDA_TRY(
            cudaMemcpy(s.deviceLength, &deviceLength, sizeof(int32_t), cudaMemcpyHostToDevice));
        s.length = length;
        // Take over the fresh state's buffers.
        DeviceState& target = cast(state);
        std::swap(target.kdaMemory, s.kdaMemory);
        std::swap(target.recurrent, s.recurrent);
        std::swap(target.window, s.window);
        std::swap(target.caches, s.caches);
        std::swap(target.deviceLength, s.deviceLength);
        std::swap(target.seen, s.seen);
        std::swap(target.decodeGraph, s.decodeGraph);
        std::swap(target.decodeGraphOmits, s.decodeGraphOmits);
        target.length = length;
        return {};
    }

  private:
    CudaBackend() = default;

    static Status checkSupported(const ModelConfig& c) {
        auto unsupported = [](auto&&... what) {
            return makeError(ErrorCode::Unsupported, "the CUDA backend does not support ", what...);
        };
        if (!kdaHeadDimSupported(static_cast<int>(c.kdaHeadDim)))
            return unsupported("KDA head size ", c.kdaHeadDim, " (64 and 128 are)");
        if (!sampleVocabSupported(static_cast<int>(c.vocabSize)))
            return unsupported("a vocabulary of ", c.vocabSize, " tokens (at most 196,608)");
        if (c.qLoraRank)
            return unsupported("a low-rank MLA query (q_lora_rank)");
        if (c.convKernelSize < 2 || c.convKernelSize > 9)
            return unsupported("a short convolution of width ", c.convKernelSize);
        if (c.numExperts > kMoeMaxExperts || c.numExpertGroups > kMoeMaxGroups ||
            c.numExpertsPerToken > kMoeMaxTopK)
            return unsupported(c.numExperts, " experts in ", c.numExpertGroups, " groups, ",
                               c.numExpertsPerToken, " per token");
        for (int64_t n : {c.hiddenSize, c.intermediateSize, c.moeIntermediateSize, c.kdaHeadDim,
                          c.kvLoraRank, c.kdaProjectionSize(), c.numAttentionHeads * c.vHeadDim})
            if (n % 8 != 0)
                return unsupported("a dimension of ", n, " (a multiple of 8 is needed)");
        if (c.modelMaxLength > INT32_MAX)
            return unsupported("contexts longer than 2^31 tokens");
        // Decode's products stage their input row in at most 48 KB of shared memory, the router
        // beside the expert choice's 18 KB.
        for (int64_t n :
             {c.intermediateSize, c.moeIntermediateSize * std::max<int64_t>(c.numSharedExperts, 1),
              c.kdaProjectionSize(), c.numAttentionHeads * c.vHeadDim})
            if (n > 12288)
                return unsupported("a product over ", n, " inputs (at most 12,288)");
        if (c.hiddenSize > 7168)
            return unsupported("a hidden size of ", c.hiddenSize, " (at most 7,168)");
        return {};
    }

    int kdaProjRows() const {
        const ModelConfig& c = config_;
        return static_cast<int>(3 * c.kdaProjectionSize() + c.kdaNumHeads + 2 * c.kdaHeadDim);
    }
    int mlaProjRows() const {
        const ModelConfig& c = config_;
        return static_cast<int>(c.numAttentionHeads * c.qkHeadDim() + c.kvLoraRank +
                                c.qkRopeHeadDim);
    }

    Arena planScratch() {
        const ModelConfig& c = config_;
        Scratch& s = scratch_;
        const int64_t T = s.tokens, D = c.hiddenSize;
        const int64_t H = c.numAttentionHeads, r = c.kvLoraRank;
        const int64_t projCols =
            std::max<int64_t>(c.countLayers(LayerKind::Kda) ? kdaProjRows() : 0,
                              c.countLayers(LayerKind::Mla) ? mlaProjRows() : 0);
        const int64_t inner = std::max({c.intermediateSize, c.moeIntermediateSize,
                                        c.moeIntermediateSize * c.numSharedExperts});
        const int64_t P = c.kdaProjectionSize();
        const int64_t attendedCols = std::max(P, H * c.vHeadDim);
        const int64_t slots = c.numExpertsPerToken + 1;  // decode: the chosen and the shared
        Arena a;
        a.reserve(s.x, T * D);
        a.reserve(s.normed, T * D);
        a.reserve(s.proj, T * projCols);
        a.reserve(s.gates, T * 2 * P);
        a.reserve(s.attended, T * attendedCols);
        // The absorbed attention runs for decode and, where the flash kernel serves long calls,
        // only for calls shorter than kFlashMinTokens (up to 16 splits each).
        const int64_t absorbedRows = flashShapes() ? std::min<int64_t>(T, kFlashMinTokens - 1) : T;
        a.reserve(s.qLatent, absorbedRows * H * r);
        a.reserve(s.oLatent, absorbedRows * H * r);
        s.partialFloats =
            std::max<int64_t>(flashShapes() ? absorbedRows * 16 : T, kDecodeSplits) * H * (r + 2);
        a.reserve(s.partial, s.partialFloats);
        a.reserve(s.logits, std::min<int64_t>(T, kLogitsRowsPerBatch) * c.vocabSize);
        s.narrowCount = T * std::max({D, projCols, 2 * inner, attendedCols});
        a.reserve(s.narrow, s.narrowCount);
        a.reserve(s.narrowLo, s.narrowCount);
        a.reserve(s.routerLogits, T * std::max<int64_t>(c.numExperts, 1));
        a.reserve(s.slotWeights, T * slots);
        a.reserve(s.slotIds, T * slots);
        a.reserve(s.routeBlocksDone, 1);
        a.reserve(s.tokenIds, T);
        a.reserve(s.groupRows, T * slots);
        a.reserve(s.groupWeights, T * slots);
        const int64_t oneByOneRows = groupedMoeShapes() ? 0 : T;  // expertsOneByOne's rows
        a.reserve(s.gathered, oneByOneRows * D);
        a.reserve(s.groupCounts, c.numExperts + 2);
        a.reserve(s.groupStart, c.numExperts + 2);
        a.reserve(s.groupCursor, c.numExperts + 2);
        a.reserve(s.moeAct, T * slots * c.moeIntermediateSize);
        a.reserve(s.moeOut, T * slots * D);
        a.reserve(s.gateUp, T * 2 * inner);
        a.reserve(s.act, std::max(T, slots) * inner);
        a.reserve(s.expertOut, std::max(oneByOneRows, slots) * D);
        if (kdaChunkedShapes()) {
            a.reserve(s.kdaChunks, kdaChunkedScratchFloats(static_cast<int>(T),
                                                           static_cast<int>(c.kdaNumHeads)));
        }
        if (flashShapes()) {
            a.reserve(s.flashQ, T * H * c.qkHeadDim());
            a.reserve(s.flashKv, kFlashSegmentRows * H * (c.qkNopeHeadDim + c.vHeadDim));
            a.reserve(s.flashRope, kFlashSegmentRows * c.qkRopeHeadDim);
            a.reserve(s.flashMax, T * H);
            a.reserve(s.flashSum, T * H);
            a.reserve(s.flashO, T * H * c.vHeadDim);
            a.reserve(s.flashPartMax, kFlashPartialRows * H);
            a.reserve(s.flashPartSum, kFlashPartialRows * H);
            a.reserve(s.flashPartO, kFlashPartialRows * H * c.vHeadDim);
        }
        a.reserve(s.params, 1);
        a.reserve(s.nextToken, 1);
        return a;
    }

    uint64_t sequenceBytes(int64_t tokens) const {
        const ModelConfig& c = config_;
        const uint64_t kda = static_cast<uint64_t>(c.countLayers(LayerKind::Kda)) *
                             (c.kdaNumHeads * c.kdaHeadDim * c.kdaHeadDim +
                              3 * (c.convKernelSize - 1) * c.kdaProjectionSize()) *
                             4;
        const uint64_t pages = static_cast<uint64_t>((tokens + kPageRows - 1) / kPageRows);
        return kda + pages * kPageRows * static_cast<uint64_t>(c.kvLoraRank + c.qkRopeHeadDim) * 2 *
                         static_cast<uint64_t>(c.countLayers(LayerKind::Mla));
    }

    Status allocateState(DeviceState& s) {
        const ModelConfig& c = config_;
        const int64_t stateFloats = c.kdaNumHeads * c.kdaHeadDim * c.kdaHeadDim;
        const int64_t windowFloats = 3 * (c.convKernelSize - 1) * c.kdaProjectionSize();
        const int64_t kdaLayers = c.countLayers(LayerKind::Kda);
        s.kdaBytes = static_cast<uint64_t>(std::max<int64_t>(kdaLayers, 1)) *
                     (stateFloats + windowFloats) * 4;
        FOLIO_CUDA_TRY(cudaMalloc(&s.kdaMemory, s.kdaBytes));
        FOLIO_CUDA_TRY(cudaMalloc(&s.deviceLength, sizeof(int32_t)));
        s.seenWords = static_cast<uint64_t>((c.vocabSize + 31) / 32);
        FOLIO_CUDA_TRY(cudaMalloc(&s.seen, s.seenWords * 4));
        s.recurrent.assign(sz(c.numLayers), nullptr);
        s.window.assign(sz(c.numLayers), nullptr);
        s.caches.resize(sz(c.numLayers));
        float* at = s.kdaMemory;
        const int64_t maxPages = (c.modelMaxLength + kPageRows - 1) / kPageRows;
        for (int64_t i = 0; i < c.numLayers; ++i) {
            if (c.layerKind(i) == LayerKind::Kda) {
                s.recurrent[sz(i)] = at;
                s.window[sz(i)] = at + stateFloats;
                at += stateFloats + windowFloats;
            } else {
                FOLIO_CUDA_TRY(cudaMalloc(&s.caches[sz(i)].table,
                                          sz(std::max<int64_t>(maxPages, 1)) * sizeof(bf16*)));
            }
        }
        return {};
    }

    Status uploadPageTable(LayerCache& cache) {
        std::vector<bf16*> pointers;
        for (const auto& p : cache.pages)
            pointers.push_back(p->rows);
        if (!pointers.empty())
            FOLIO_CUDA_TRY(cudaMemcpy(cache.table, pointers.data(), pointers.size() * sizeof(bf16*),
                                      cudaMemcpyHostToDevice));
        return {};
    }

    // Makes rows [length, newLength) of every MLA cache writable by this sequence: new pages
    // where needed, and a private copy of a partly filled page shared with a fork. Allocation
    // failures come back before any state changes.
    Status reserveRows(DeviceState& s, int64_t newLength) {
        const ModelConfig& c = config_;
        if (newLength > c.modelMaxLength)
            return makeError(ErrorCode::InvalidArgument, "the sequence would exceed the context");
        const int64_t width = c.kvLoraRank + c.qkRopeHeadDim;
        const uint64_t pageBytes = static_cast<uint64_t>(kPageRows) * width * sizeof(bf16);
        const int64_t needed = (newLength + kPageRows - 1) / kPageRows;
        for (int64_t i = 0; i < c.numLayers; ++i) {
            if (c.layerKind(i) != LayerKind::Mla)
                continue;
            LayerCache& cache = s.caches[sz(i)];
            bool changed = false;
            const int64_t writeFrom = s.length / kPageRows;
            if (s.length % kPageRows != 0 && writeFrom < static_cast<int64_t>(cache.pages.size()) &&
                cache.pages[sz(writeFrom)].use_count() > 1) {
                auto copy = std::make_shared<CachePage>();
                const cudaError_t status = cudaMalloc(&copy->rows, pageBytes);
                if (status != cudaSuccess) {
                    cudaGetLastError();
                    return makeError(ErrorCode::OutOfMemory,
                                     "GPU memory ran out for the attention cache of a fork");
                }
                FOLIO_CUDA_TRY(cudaMemcpyAsync(copy->rows, cache.pages[sz(writeFrom)]->rows,
                                               pageBytes, cudaMemcpyDeviceToDevice, stream_));
                cache.pages[sz(writeFrom)] = std::move(copy);
                changed = true;
            }
            while (static_cast<int64_t>(cache.pages.size()) < needed) {
                auto page = std::make_shared<CachePage>();
                const cudaError_t status = cudaMalloc(&page->rows, pageBytes);
                if (status != cudaSuccess) {
                    cudaGetLastError();
                    return makeError(ErrorCode::OutOfMemory, "GPU memory ran out for the ",
                                     "attention cache at ", newLength,
                                     " tokens; shorten the sources or free GPU memory");
                }
                cache.pages.push_back(std::move(page));
                changed = true;
            }
            if (changed)
                FOLIO_TRY(uploadPageTable(cache));
        }
        return {};
    }

    LatentCache cacheOf(const DeviceState& s, int64_t layer) const {
        return LatentCache{s.caches[sz(layer)].table, kPageRows,
                           static_cast<int>(config_.kvLoraRank + config_.qkRopeHeadDim)};
    }

    // y[T][N] = x[T][K] W^T + beta * y, where x points into scratch.narrow (row stride ldx):
    // the activations enter as two bf16 terms (hi in narrow, lo at the same place in narrowLo),
    // so the products see ~16 bits of each fp32 activation rather than bf16's 8.
    Status gemm(const Matrix& w, const bf16* x, int64_t ldx, int T, float* y, int64_t ldy,
                float beta) {
        const float alpha = 1.0f, one = 1.0f;
        const bf16* lo = scratch_.narrowLo + (x - scratch_.narrow);
        FOLIO_CUBLAS_TRY(cublasGemmEx(
            cublas_, CUBLAS_OP_T, CUBLAS_OP_N, w.rows, T, w.cols, &alpha, w.data, CUDA_R_16BF,
            w.cols, x, CUDA_R_16BF, static_cast<int>(ldx), &beta, y, CUDA_R_32F,
            static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        FOLIO_CUBLAS_TRY(cublasGemmEx(
            cublas_, CUBLAS_OP_T, CUBLAS_OP_N, w.rows, T, w.cols, &alpha, w.data, CUDA_R_16BF,
            w.cols, lo, CUDA_R_16BF, static_cast<int>(ldx), &one, y, CUDA_R_32F,
            static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return {};
    }

    // The same product with the activations as one bf16 term (scratch.narrow only): one cuBLAS
    // call instead of two; standard bf16 compute with fp32 accumulation, as bf16 engines do. The
    // MoE (routed experts in the grouped kernels, the shared expert here) uses this form: half
    // the tensor-core work, and its output is a router-weighted sum of expert outputs added to
    // the residual stream, in which the independent rounding errors of the inputs (2^-9
    // relative each) average out. The attention projections keep gemm's two terms: their
    // outputs become queries and keys whose dot products, over long contexts and through the
    // softmax's exponential, are more sensitive to activation rounding.
    Status gemmOneTerm(const Matrix& w, const bf16* x, int64_t ldx, int T, float* y, int64_t ldy,
                       float beta) {
        const float alpha = 1.0f;
        FOLIO_CUBLAS_TRY(cublasGemmEx(
            cublas_, CUBLAS_OP_T, CUBLAS_OP_N, w.rows, T, w.cols, &alpha, w.data, CUDA_R_16BF,
            w.cols, x, CUDA_R_16BF, static_cast<int>(ldx), &beta, y, CUDA_R_32F,
            static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return {};
    }

    // hi into scratch.narrow, lo into scratch.narrowLo (gemm's inputs).
    Status narrow(const float* x, int64_t count) {
        if (count > scratch_.narrowCount)
            return makeError(ErrorCode::Backend, "internal: narrow buffer too small");
        launchSplitBf16(x, count, scratch_.narrow, scratch_.narrowLo, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        return {};
    }
    // bf16(x) into scratch.narrow only (the input of gemmOneTerm and of the grouped experts).
    Status narrowOneTerm(const float* x, int64_t count) {
        if (count > scratch_.narrowCount)
            return makeError(ErrorCode::Backend, "internal: narrow buffer too small");
        launchToBf16(x, count, scratch_.narrow, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        return {};
    }

    // ---- prefill: T tokens, the large products on cuBLAS ----

    Status prefillLayer(int64_t i, DeviceState& s, int T) {
        const ModelConfig& c = config_;
        const LayerDevice& L = model_.layers[sz(i)];
        Scratch& x = scratch_;
        const int D = static_cast<int>(c.hiddenSize);
        launchRmsNorm(x.x, L.inputNorm, T, D, static_cast<float>(c.rmsNormEps), x.normed, stream_);
        FOLIO_TRY(narrow(x.normed, static_cast<int64_t>(T) * D));
        if (L.kind == LayerKind::Kda) {
            const KdaDevice& k = L.kda;
            const int H = static_cast<int>(c.kdaNumHeads), d = static_cast<int>(c.kdaHeadDim);
            const int P = H * d, S = kdaProjRows();
            FOLIO_TRY(gemm(k.inProj, x.narrow, D, T, x.proj, S, 0.0f));
            FOLIO_TRY(narrow(x.proj, static_cast<int64_t>(T) * S));
            FOLIO_TRY(gemm(k.fB, x.narrow + 3 * P + H, S, T, x.gates, 2 * P, 0.0f));
            FOLIO_TRY(gemm(k.gB, x.narrow + 3 * P + H + d, S, T, x.gates + P, 2 * P, 0.0f));
            FOLIO_TRY(timer_.mark(Component::Kda, stream_));
            if (T >= kKdaChunkedMinTokens && kdaChunkedShapes())
                FOLIO_TRY(kdaChunked(i, s, T));
            else
                FOLIO_TRY(kdaSteps(i, s, T));
            FOLIO_TRY(timer_.mark(Component::OtherGemms, stream_));
            FOLIO_TRY(narrow(x.attended, static_cast<int64_t>(T) * P));
            FOLIO_TRY(gemm(k.oProj, x.narrow, P, T, x.x, D, 1.0f));
        } else {
            const MlaDevice& m = L.mla;
            const int S = mlaProjRows();
            FOLIO_TRY(gemm(m.inProj, x.narrow, D, T, x.proj, S, 0.0f));
            const int splits = static_cast<int>(std::clamp<int64_t>(
                x.partialFloats /
                    (static_cast<int64_t>(T) * c.numAttentionHeads * (c.kvLoraRank + 2)),
                1, 16));
            FOLIO_TRY(timer_.mark(Component::MlaAttention, stream_));
            if (useFlashPrefill(T))
                FOLIO_TRY(mlaFlashAttention(i, s, T));
            else
                FOLIO_TRY(mlaAttention(i, s, T, splits));
            FOLIO_TRY(timer_.mark(Component::OtherGemms, stream_));
            const int HV = static_cast<int>(c.numAttentionHeads * c.vHeadDim);
            FOLIO_TRY(narrow(x.attended, static_cast<int64_t>(T) * HV));
            FOLIO_TRY(gemm(m.oProj, x.narrow, HV, T, x.x, D, 1.0f));
        }
        return prefillFfn(i, T);
    }

    bool kdaChunkedShapes() const {
        const ModelConfig& c = config_;
        return c.countLayers(LayerKind::Kda) > 0 &&
               kdaChunkedSupported(static_cast<int>(c.kdaHeadDim),
                                   static_cast<int>(c.convKernelSize));
    }

    // A KDA layer's inputs, state and output for `T` tokens (projections in scratch).
    KdaStepArgs kdaArgs(int64_t i, DeviceState& s, int T) const {
        const ModelConfig& c = config_;
        const KdaDevice& k = model_.layers[sz(i)].kda;
        KdaStepArgs a;
        a.proj = scratch_.proj;
        a.projStride = kdaProjRows();
        a.gates = scratch_.gates;
        a.gatesStride = 2 * c.kdaProjectionSize();
        a.convTaps = k.convTaps;
        a.convWindow = s.window[sz(i)];
        a.state = s.recurrent[sz(i)];
        a.decayRate = k.decayRate;
        a.dtBias = k.dtBias;
        a.outNorm = k.outNorm;
        a.eps = static_cast<float>(c.rmsNormEps);
        a.out = scratch_.attended;
        a.tokens = T;
        a.heads = static_cast<int>(c.kdaNumHeads);
        a.headDim = static_cast<int>(c.kdaHeadDim);
        a.convWidth = static_cast<int>(c.convKernelSize);
        return a;
    }

    // Prefill of a KDA layer's recurrence in the chunked form (chunks of 64 tokens, then one
    // sequential pass over the chunks per head and 32 value columns).
    Status kdaChunked(int64_t i, DeviceState& s, int T) {
        KdaChunkedArgs a;
        static_cast<KdaStepArgs&>(a) = kdaArgs(i, s, T);
        a.chunks = scratch_.kdaChunks;
        launchKdaChunked(a, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        return {};
    }

    // `stateSettled`: the kernel just before did not write the state (see KdaStepArgs).
    Status kdaSteps(int64_t i, DeviceState& s, int T, bool stateSettled = false) {
        KdaStepArgs a = kdaArgs(i, s, T);
        a.stateSettled = stateSettled;
        launchKdaSteps(a, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        return {};
    }

    bool flashShapes() const {
        const ModelConfig& c = config_;
        return c.countLayers(LayerKind::Mla) > 0 &&
               mlaFlashSupported(static_cast<int>(c.qkNopeHeadDim),
                                 static_cast<int>(c.qkRopeHeadDim), static_cast<int>(c.vHeadDim));
    }
    bool useFlashPrefill(int T) const { return T >= kFlashMinTokens && flashShapes(); }
    // The grouped expert kernels take the model's MoE (else one cuBLAS product per expert).
    bool groupedMoeShapes() const {
        return config_.hiddenSize % 64 == 0 && config_.moeIntermediateSize % 64 == 0;
    }

    // Prefill attention in the expanded form: the new rows are appended, then the cache is
    // expanded segment by segment (kv_b on cuBLAS into bf16 keys and values) and every segment
    // attended by the flash kernel, the softmax state carried between segments.
    Status mlaFlashAttention(int64_t i, DeviceState& s, int T) {
        const ModelConfig& c = config_;
        const MlaDevice& m = model_.layers[sz(i)].mla;
        Scratch& x = scratch_;
        const int H = static_cast<int>(c.numAttentionHeads);
        const int nope = static_cast<int>(c.qkNopeHeadDim),
                  rope = static_cast<int>(c.qkRopeHeadDim);
        const int r = static_cast<int>(c.kvLoraRank), dv = static_cast<int>(c.vHeadDim);
        const int S = mlaProjRows(), width = r + rope, expanded = H * (nope + dv);
        launchMlaAppend(x.proj + H * (nope + rope), S, m.latentNorm,
                        static_cast<float>(c.latentNormEps), r, cacheOf(s, i), s.deviceLength, T,
                        stream_);
        launchMlaQueriesToBf16(x.proj, S, T, H * (nope + rope), x.flashQ, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        const LayerCache& cache = s.caches[sz(i)];
        const int64_t keys = s.length + T;
        const float alpha = 1.0f, zero = 0.0f;
        // Enough blocks to fill the GPU: split the keys when the queries alone are too few.
        const int64_t blocks = (T + kMlaFlashQueries - 1) / kMlaFlashQueries * H;
        const int splits = static_cast<int>(std::clamp<int64_t>(
            std::min<int64_t>((4 * multiprocessors_ + blocks - 1) / blocks, kFlashPartialRows / T),
            1, kFlashMaxSplits));
        for (int64_t begin = 0; begin < keys; begin += kFlashSegmentRows) {
            const int64_t end = std::min(keys, begin + kFlashSegmentRows);
            // Keys' nope parts and values of rows [begin, end): latent rows × kv_bᵀ, page by page.
            for (int64_t row = begin; row < end;) {
                const int64_t n = std::min<int64_t>(kPageRows - row % kPageRows, end - row);
                const bf16* latent =
                    cache.pages[sz(row / kPageRows)]->rows + (row % kPageRows) * width;
                FOLIO_CUBLAS_TRY(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, expanded,
                                              static_cast<int>(n), r, &alpha, m.kvB.data,
                                              CUDA_R_16BF, r, latent, CUDA_R_16BF, width, &zero,
                                              x.flashKv + (row - begin) * expanded, CUDA_R_16BF,
                                              expanded, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
                row += n;
            }
            MlaFlashArgs a;
            a.q = x.flashQ;
            a.kv = x.flashKv;
            a.cache = cacheOf(s, i);
            a.queryPos0 = s.length;
            a.keyBegin = begin;
            a.keyEnd = end;
            a.tokens = T;
            a.heads = H;
            a.first = begin == 0;
            a.last = end == keys;
            a.scale = 1.0f / std::sqrt(static_cast<float>(nope + rope));
            a.stateMax = x.flashMax;
            a.stateSum = x.flashSum;
            a.stateO = x.flashO;
            a.out = x.attended;
            a.outStride = static_cast<int64_t>(H) * dv;
            a.splits = static_cast<int>(std::min<int64_t>(splits, (end - begin + 255) / 256));
            a.partialMax = x.flashPartMax;
            a.partialSum = x.flashPartSum;
            a.partialO = x.flashPartO;
            a.ropeRows = x.flashRope;
            launchMlaFlashPrefill(a, stream_);
            FOLIO_CUDA_TRY(cudaGetLastError());
        }
        return {};
    }

    // Appends the new rows, then attends: the projections are in scratch.proj.
    Status mlaAttention(int64_t i, DeviceState& s, int T, int splits) {
        const ModelConfig& c = config_;
        const MlaDevice& m = model_.layers[sz(i)].mla;
        const int H = static_cast<int>(c.numAttentionHeads),
                  nope = static_cast<int>(c.qkNopeHeadDim);
        const int rope = static_cast<int>(c.qkRopeHeadDim), r = static_cast<int>(c.kvLoraRank);
        const int dv = static_cast<int>(c.vHeadDim), S = mlaProjRows();
        launchMlaAppendAndAbsorb(scratch_.proj + H * (nope + rope), S, m.latentNorm,
                                 static_cast<float>(c.latentNormEps), cacheOf(s, i), s.deviceLength,
                                 scratch_.proj, S, m.kvB.data, H, nope, rope, dv, r, T,
                                 scratch_.qLatent, stream_);
        MlaAttentionArgs a;
        a.qLatent = scratch_.qLatent;
        a.q = scratch_.proj;
        a.qStride = S;
        a.cache = cacheOf(s, i);
        a.length = s.deviceLength;
        a.tokens = T;
        a.heads = H;
        a.nope = nope;
        a.rope = rope;
        a.latentRank = r;
        a.splits = splits;
        a.scale = 1.0f / std::sqrt(static_cast<float>(nope + rope));
        a.partial = scratch_.partial;
        a.out = scratch_.oLatent;
        launchMlaAttention(a, stream_);
        launchMlaUpValue(scratch_.oLatent, m.kvB.data, H, nope, dv, r, T, scratch_.attended,
                         stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        return {};
    }

    // normed rows are in scratch.narrow (bf16: one term with oneTerm, else two); the result is
    // added to x. A dense layer's MLP takes two terms, the MoE's shared expert one (gemmOneTerm).
    Status prefillMlp(const MlpDevice& m, int T, bool oneTerm) {
        const int D = static_cast<int>(config_.hiddenSize), I = m.down.cols;
        const int64_t actCount = static_cast<int64_t>(T) * I;
        if (oneTerm) {
            FOLIO_TRY(gemmOneTerm(m.gateUp, scratch_.narrow, D, T, scratch_.gateUp, 2 * I, 0.0f));
            launchSwiglu(scratch_.gateUp, T, I, scratch_.act, stream_);
            FOLIO_TRY(narrowOneTerm(scratch_.act, actCount));
            return gemmOneTerm(m.down, scratch_.narrow, I, T, scratch_.x, D, 1.0f);
        }
        FOLIO_TRY(gemm(m.gateUp, scratch_.narrow, D, T, scratch_.gateUp, 2 * I, 0.0f));
        launchSwiglu(scratch_.gateUp, T, I, scratch_.act, stream_);
        FOLIO_TRY(narrow(scratch_.act, actCount));
        return gemm(m.down, scratch_.narrow, I, T, scratch_.x, D, 1.0f);
    }

    Status prefillFfn(int64_t i, int T) {
        const ModelConfig& c = config_;
        const LayerDevice& L = model_.layers[sz(i)];
        const FfnDevice& f = L.ffn;
        Scratch& x = scratch_;
        const int D = static_cast<int>(c.hiddenSize);
        launchRmsNorm(x.x, L.postAttentionNorm, T, D, static_cast<float>(c.rmsNormEps), x.normed,
                      stream_);
        if (!f.moe) {
            FOLIO_TRY(narrow(x.normed, static_cast<int64_t>(T) * D));
            return prefillMlp(f.dense, T, false);
        }
        // The grouped kernels' blocks own 64 output rows of an expert.
        const bool grouped = groupedMoeShapes();
        // The experts' products take the normed rows as one bf16 term (see gemmOneTerm); the
        // expert-by-expert fallback, for shapes the grouped kernels do not take, keeps two.
        if (grouped)
            FOLIO_TRY(narrowOneTerm(x.normed, static_cast<int64_t>(T) * D));
        else
            FOLIO_TRY(narrow(x.normed, static_cast<int64_t>(T) * D));
        FOLIO_TRY(timer_.mark(Component::Moe, stream_));

        const int E = static_cast<int>(c.numExperts);
        // Routing decides which experts run: it gets fp32 inputs and weights, so that prefill
        // chooses the experts decode would.
        const float one = 1.0f, zero = 0.0f;
        FOLIO_CUBLAS_TRY(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, E, T, D, &one, f.routerF32,
                                     D, x.normed, D, &zero, x.routerLogits, E));
        const bool tiled = T > kGroupedMoeMaxTokens;
        // A short prompt runs the shared expert as one more slot of the grouped launches. In a
        // long one every token reaches it: as a slot it would be one group as large as all the
        // routed ones together, so it runs as a dense MLP on cuBLAS instead.
        const bool sharedAsSlot = grouped && f.sharedInTable && !tiled;
        MoeSelectArgs sel = selectArgs(f, T);
        sel.sharedSlots = sharedAsSlot ? 1 : 0;
        launchMoeSelect(sel, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        if (grouped) {
            FOLIO_TRY(groupedExperts(f, T, sel.sharedSlots, tiled));
            if (f.hasShared && !sharedAsSlot)
                FOLIO_TRY(prefillMlp(f.shared, T, true));  // narrow still holds the normed rows
        } else {
            if (f.hasShared)
                FOLIO_TRY(prefillMlp(f.shared, T, false));  // uses narrow(normed) before reuse
            FOLIO_TRY(expertsOneByOne(f, T));
        }
        return timer_.mark(Component::OtherGemms, stream_);
    }

    // Every chosen expert's SwiGLU in two grouped launches, the pairs grouped on the GPU: each
    // weight read once per 32 pairs (short prompts) or through 64 × 128 shared tiles (tiled; on
    // Hopper 128 pairs × 256 weight rows on wgmma).
    Status groupedExperts(const FfnDevice& f, int T, int sharedSlots, bool tiled) {
        const ModelConfig& c = config_;
        Scratch& x = scratch_;
        const int D = static_cast<int>(c.hiddenSize), E = static_cast<int>(c.numExperts);
        const int K = static_cast<int>(c.numExpertsPerToken);
        // Every chosen expert's SwiGLU at once, grouped on the GPU (no host round trip).
        const int slots = K + sharedSlots, groups = E + sharedSlots;
        const int I = static_cast<int>(c.moeIntermediateSize);
        launchMoeGroupPairs(x.slotIds, T * slots, groups, x.groupCounts, x.groupStart,
                            x.groupCursor, x.groupRows, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        ExpertGemmArgs up;
        up.table = f.gateTable;
        up.groups = groups;
        up.rows = I;
        up.cols = D;
        up.groupStart = x.groupStart;
        up.order = x.groupRows;
        up.x = x.narrow;  // bf16(normed) from above, one term
        up.xStride = D;
        up.inputBySlot = true;
        up.slotsPerRow = slots;
        up.swiglu = true;
        up.tiled = tiled;
        up.tileCounter = x.groupCounts;  // free once the pairs are grouped
        up.act = x.moeAct;
        launchExpertGemm(up, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        ExpertGemmArgs down = up;  // the same groups, order and form
        down.table = f.downTable;
        down.rows = D;
        down.cols = I;
        down.x = x.moeAct;
        down.xStride = I;
        down.inputBySlot = false;
        down.swiglu = false;
        down.act = nullptr;
        down.out = x.moeOut;
        launchExpertGemm(down, stream_);
        launchMoeCombine(x.x, x.moeOut, x.slotWeights, T, slots, D, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        return {};
    }

    // Long prompts: the pairs grouped by expert on the host (one round trip per layer), then
    // one cuBLAS product per chosen expert with many rows each.
    Status expertsOneByOne(const FfnDevice& f, int T) {
        const ModelConfig& c = config_;
        Scratch& x = scratch_;
        const int D = static_cast<int>(c.hiddenSize), E = static_cast<int>(c.numExperts);
        const int K = static_cast<int>(c.numExpertsPerToken);
        std::vector<int32_t> ids(sz(T * K));
        std::vector<float> weights(sz(T * K));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(ids.data(), x.slotIds, ids.size() * 4,
                                       cudaMemcpyDeviceToHost, stream_));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(weights.data(), x.slotWeights, weights.size() * 4,
                                       cudaMemcpyDeviceToHost, stream_));
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        // Group the (token, slot) pairs by expert.
        std::vector<int32_t> counts(sz(E) + 1, 0);
        for (int32_t e : ids) {
            if (e < 0 || e >= E)
                return makeError(ErrorCode::Backend, "internal: expert id ", e, " out of range");
            ++counts[sz(e) + 1];
        }
        for (int e = 0; e < E; ++e)
            counts[sz(e) + 1] += counts[sz(e)];
        std::vector<int32_t> rows(ids.size());
        std::vector<float> rowWeights(ids.size());
        std::vector<int32_t> fill(counts.begin(), counts.end() - 1);
        for (size_t j = 0; j < ids.size(); ++j) {
            const auto at = sz(fill[sz(ids[j])]++);
            rows[at] = static_cast<int32_t>(j / sz(K));
            rowWeights[at] = weights[j];
        }
        FOLIO_CUDA_TRY(cudaMemcpyAsync(x.groupRows, rows.data(), rows.size() * 4,
                                       cudaMemcpyHostToDevice, stream_));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(x.groupWeights, rowWeights.data(), rowWeights.size() * 4,
                                       cudaMemcpyHostToDevice, stream_));
        const int I = static_cast<int>(c.moeIntermediateSize);
        for (int e = 0; e < E; ++e) {
            const int n = counts[sz(e) + 1] - counts[sz(e)];
            if (n == 0)
                continue;
            const MlpDevice& m = f.experts[sz(e)];
            launchGatherRows(x.normed, x.groupRows + counts[sz(e)], n, D, x.gathered, stream_);
            FOLIO_TRY(narrow(x.gathered, static_cast<int64_t>(n) * D));
            FOLIO_TRY(gemm(m.gateUp, x.narrow, D, n, x.gateUp, 2 * I, 0.0f));
            launchSwiglu(x.gateUp, n, I, x.act, stream_);
            FOLIO_TRY(narrow(x.act, static_cast<int64_t>(n) * I));
            FOLIO_TRY(gemm(m.down, x.narrow, I, n, x.expertOut, D, 0.0f));
            launchScatterAddRows(x.x, x.groupRows + counts[sz(e)], x.groupWeights + counts[sz(e)],
                                 x.expertOut, n, D, stream_);
            FOLIO_CUDA_TRY(cudaGetLastError());
        }
        return {};
    }

    MoeSelectArgs selectArgs(const FfnDevice& f, int T) const {
        const ModelConfig& c = config_;
        MoeSelectArgs sel;
        sel.logits = scratch_.routerLogits;
        sel.correctionBias = f.correctionBias;
        sel.tokens = T;
        sel.experts = static_cast<int>(c.numExperts);
        sel.topK = static_cast<int>(c.numExpertsPerToken);
        sel.groups = static_cast<int>(c.numExpertGroups);
        sel.topGroups = static_cast<int>(c.topkGroup);
        sel.sigmoid = c.routerActivation == RouterActivation::Sigmoid;
        sel.grouped = c.useGroupedTopk;
        sel.biasedWeights = options_.router == RouterWeighting::BiasCorrected;
        sel.renormalize = c.moeRenormalize;
        sel.scaling = static_cast<float>(c.routedScalingFactor);
        sel.ids = scratch_.slotIds;
        sel.weights = scratch_.slotWeights;
        return sel;
    }

    Status prefillChunk(DeviceState& s, std::span<const int32_t> tokens, LogitsWanted wanted,
                        std::vector<float>* logitsOut, ForwardTrace* trace) {
        const ModelConfig& c = config_;
        const int T = static_cast<int>(tokens.size());
        const int D = static_cast<int>(c.hiddenSize);
        FOLIO_TRY(reserveRows(s, s.length + T));
        Scratch& x = scratch_;
        FOLIO_CUDA_TRY(
            cudaMemcpyAsync(x.tokenIds, tokens.data(), sz(T) * 4, cudaMemcpyHostToDevice, stream_));
        FOLIO_TRY(timer_.mark(Component::OtherGemms, stream_));
        launchMarkSeen(s.seen, x.tokenIds, T, stream_);
        launchEmbed(model_.embed.data, x.tokenIds, T, D, x.x, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        auto capture = [&](std::vector<float>& into) -> Status {
            const size_t offset = into.size();
            into.resize(offset + sz(T) * sz(D));
            FOLIO_CUDA_TRY(cudaMemcpyAsync(into.data() + offset, x.x, sz(T) * sz(D) * 4,
                                           cudaMemcpyDeviceToHost, stream_));
            FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
            return {};
        };
        if (trace) {
            trace->hidden = D;
            trace->layers.resize(sz(c.numLayers));
            FOLIO_TRY(capture(trace->embeddings));
        }
        for (int64_t i = 0; i < c.numLayers; ++i) {
            FOLIO_TRY(prefillLayer(i, s, T));
            if (trace)
                FOLIO_TRY(capture(trace->layers[sz(i)]));
        }
        launchAdvanceLength(s.deviceLength, T, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        if (wanted != LogitsWanted::None && logitsOut != nullptr) {
            const int first = wanted == LogitsWanted::All ? 0 : T - 1;
            launchRmsNorm(x.x + static_cast<int64_t>(first) * D, model_.finalNorm, T - first, D,
                          static_cast<float>(c.rmsNormEps), x.normed, stream_);
            FOLIO_TRY(narrow(x.normed, static_cast<int64_t>(T - first) * D));
            const int64_t V = c.vocabSize;
            for (int row = 0; row < T - first; row += kLogitsRowsPerBatch) {
                const int n = std::min(kLogitsRowsPerBatch, T - first - row);
                FOLIO_TRY(gemm(model_.lmHead, x.narrow + static_cast<int64_t>(row) * D, D, n,
                               x.logits, V, 0.0f));
                const size_t offset = logitsOut->size();
                logitsOut->resize(offset + sz(n) * sz(V));
                FOLIO_CUDA_TRY(cudaMemcpyAsync(logitsOut->data() + offset, x.logits,
                                               sz(n) * sz(V) * 4, cudaMemcpyDeviceToHost, stream_));
            }
        }
        FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        FOLIO_TRY(timer_.collect(stream_));
        s.length += T;
        return {};
    }

    // ---- decode: one token, fused kernels, captured once per sequence ----

    // Marks the decode step's work from here on as `part`, which must move `bytes` at least
    // (a no-op unless the step is being profiled).
    Status decodePart(DecodePart part, double bytes) {
        decodeTimer_.addBytes(part, bytes);
        return decodeTimer_.mark(part, stream_);
    }
    bool omitted(DecodePart part) const { return static_cast<int>(part) == omittedPart_; }
    static double bytesOf(const Matrix& m) {
        return 2.0 * static_cast<double>(m.rows) * static_cast<double>(m.cols);
    }

    Status enqueueDecode(DeviceState& s) {
        const ModelConfig& c = config_;
        Scratch& x = scratch_;
        const int D = static_cast<int>(c.hiddenSize);
        const float eps = static_cast<float>(c.rmsNormEps);
        FOLIO_TRY(decodePart(DecodePart::EmbedAndSample, 2.0 * D));
        FOLIO_CUDA_TRY(cudaMemcpyAsync(x.params, hostParams_, sizeof(SampleParams),
                                       cudaMemcpyHostToDevice, stream_));
        const int32_t* input = &x.params->inputToken;
        launchMarkSeen(s.seen, input, 1, stream_);
        launchEmbed(model_.embed.data, input, 1, D, x.x, stream_);
        const auto kdaLayers = static_cast<double>(c.countLayers(LayerKind::Kda));
        for (int64_t i = 0; i < c.numLayers; ++i) {
            const LayerDevice& L = model_.layers[sz(i)];
            if (L.kind == LayerKind::Kda) {
                const KdaDevice& k = L.kda;
                const int H = static_cast<int>(c.kdaNumHeads), d = static_cast<int>(c.kdaHeadDim);
                const int P = H * d;
                FOLIO_TRY(decodePart(DecodePart::KdaProjections,
                                     bytesOf(k.inProj) + bytesOf(k.fB) + bytesOf(k.gB)));
                if (!omitted(DecodePart::KdaProjections))
                    gemv(k.inProj, x.x, L.inputNorm, eps, x.proj);
                GemvArgs low;
                low.table = k.lowRankTable;
                low.rows = P;
                low.cols = d;
                low.items = 2;
                low.x = x.proj + 3 * P + H;
                low.xItemStride = d;
                low.y = x.gates;
                low.yItemStride = P;
                if (!omitted(DecodePart::KdaProjections))
                    launchGemv(low, stream_);
                // The layer's state and window, read and written.
                FOLIO_TRY(decodePart(DecodePart::KdaStep,
                                     2.0 * static_cast<double>(s.kdaBytes) / kdaLayers));
                if (!omitted(DecodePart::KdaStep))
                    FOLIO_TRY(kdaSteps(i, s, 1, /*stateSettled=*/true));  // after the gates
                FOLIO_TRY(decodePart(DecodePart::OutProjection, bytesOf(k.oProj)));
                if (!omitted(DecodePart::OutProjection))
                    gemv(k.oProj, x.attended, nullptr, 0, x.x, x.x);
            } else {
                const MlaDevice& m = L.mla;
                FOLIO_TRY(decodePart(DecodePart::MlaProjection, bytesOf(m.inProj)));
                if (!omitted(DecodePart::MlaProjection))
                    gemv(m.inProj, x.x, L.inputNorm, eps, x.proj);
                // The cache with the new row, and kv_b (absorbed into the queries, then W_UV).
                const double width = static_cast<double>(c.kvLoraRank + c.qkRopeHeadDim);
                FOLIO_TRY(
                    decodePart(DecodePart::MlaAttention,
                               2.0 * width * static_cast<double>(s.length + 1) + bytesOf(m.kvB)));
                if (!omitted(DecodePart::MlaAttention))
                    FOLIO_TRY(mlaAttention(i, s, 1, kDecodeSplits));
                FOLIO_TRY(decodePart(DecodePart::OutProjection, bytesOf(m.oProj)));
                if (!omitted(DecodePart::OutProjection))
                    gemv(m.oProj, x.attended, nullptr, 0, x.x, x.x);
            }
            FOLIO_TRY(decodeFfn(L, eps));
            FOLIO_CUDA_TRY(cudaGetLastError());
        }
        FOLIO_TRY(decodePart(DecodePart::LmHead, bytesOf(model_.lmHead)));
        if (!omitted(DecodePart::LmHead))
            gemv(model_.lmHead, x.x, model_.finalNorm, eps, x.logits);
        FOLIO_TRY(decodePart(DecodePart::EmbedAndSample, 0));
        launchSample(x.logits, static_cast<int>(c.vocabSize), x.params, s.seen, x.nextToken,
                     stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        FOLIO_CUDA_TRY(cudaMemcpyAsync(hostToken_, x.nextToken, sizeof(int32_t),
                                       cudaMemcpyDeviceToHost, stream_));
        launchAdvanceLength(s.deviceLength, 1, stream_);
        FOLIO_CUDA_TRY(cudaGetLastError());
        return {};
    }

    void gemv(const Matrix& w, const float* in, const float* norm, float eps, float* y,
              const float* residual = nullptr) {
        GemvArgs a;
        a.matrix = w.data;
        a.rows = w.rows;
        a.cols = w.cols;
        a.x = in;
        a.normWeight = norm;
        a.normEps = eps;
        a.residual = residual;
        a.y = y;
        launchGemv(a, stream_);
    }

    // down(silu(gate x) * up x) added to x, with x RMS-normalised on load; `act` is scratch.
    void swigluGemv(const MlpDevice& m, const float* norm, float eps, float* act) {
        const int I = m.down.cols, D = m.down.rows;
        GemvArgs a;
        a.matrix = m.gateUp.data;
        a.up = m.gateUp.data + static_cast<int64_t>(I) * D;
        a.rows = I;
        a.cols = D;
        a.x = scratch_.x;
        a.normWeight = norm;
        a.normEps = eps;
        a.y = act;
        launchGemv(a, stream_);
        gemv(m.down, act, nullptr, 0, scratch_.x, scratch_.x);
    }

    Status decodeFfn(const LayerDevice& L, float eps) {
        const FfnDevice& f = L.ffn;
        if (!f.moe) {
            FOLIO_TRY(
                decodePart(DecodePart::DenseMlp, bytesOf(f.dense.gateUp) + bytesOf(f.dense.down)));
            if (!omitted(DecodePart::DenseMlp))
                swigluGemv(f.dense, L.postAttentionNorm, eps, scratch_.act);
            return {};
        }
        const ModelConfig& c = config_;
        Scratch& x = scratch_;
        const int D = static_cast<int>(c.hiddenSize), I = static_cast<int>(c.moeIntermediateSize);
        const int K = static_cast<int>(c.numExpertsPerToken);
        MoeRouteArgs route;
        route.router = f.router.data;
        route.hidden = D;
        route.logits = x.routerLogits;
        route.x = x.x;
        route.normWeight = L.postAttentionNorm;
        route.normEps = eps;
        route.blocksDone = x.routeBlocksDone;
        route.select = selectArgs(f, 1);
        route.select.sharedSlots = f.sharedInTable ? 1 : 0;
        route.normalizedOut = x.normed;  // RMSNorm(x), computed once for the experts' products
        const int slots = K + route.select.sharedSlots;
        FOLIO_TRY(decodePart(DecodePart::Routing, bytesOf(f.router)));
        if (!omitted(DecodePart::Routing))
            launchMoeRoute(route, stream_);
        FOLIO_TRY(decodePart(DecodePart::Experts, 3.0 * 2.0 * slots * static_cast<double>(I) * D));
        GemvArgs up;
        up.table = f.gateTable;
        up.upTable = f.upTable;
        up.ids = x.slotIds;
        up.rows = I;
        up.cols = D;
        up.items = slots;
        up.x = x.normed;
        up.y = x.act;
        up.yItemStride = I;
        if (!omitted(DecodePart::Experts))
            launchGemv(up, stream_);
        GemvArgs down;
        down.table = f.downTable;
        down.ids = x.slotIds;
        down.rows = D;
        down.cols = I;
        down.items = slots;
        down.x = x.act;
        down.xItemStride = I;
        down.y = x.expertOut;
        down.yItemStride = D;
        if (!omitted(DecodePart::Experts))
            launchGemv(down, stream_);
        // Every input has read x before the shared expert and the combine write it.
        if (f.hasShared && !f.sharedInTable) {
            FOLIO_TRY(decodePart(DecodePart::SharedExpert,
                                 bytesOf(f.shared.gateUp) + bytesOf(f.shared.down)));
            if (!omitted(DecodePart::SharedExpert))
                swigluGemv(f.shared, L.postAttentionNorm, eps, x.gateUp);
        }
        FOLIO_TRY(decodePart(DecodePart::Combine, 0));
        if (!omitted(DecodePart::Combine))
            launchMoeCombine(x.x, x.expertOut, x.slotWeights, 1, slots, D, stream_);
        return {};
    }
    // The decode step captured as a graph; when profiled, with the decode timer's marks in it.
    Result<cudaGraphExec_t> captureDecode(DeviceState& s) {
        cudaGraph_t graph = nullptr;
        FOLIO_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        Status enqueued = enqueueDecode(s);
        if (enqueued.ok())
            enqueued = decodeTimer_.finish(stream_);
        const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
        if (!enqueued.ok() || ended != cudaSuccess) {
            decodeTimer_.discard();
            if (graph)
                cudaGraphDestroy(graph);
            FOLIO_TRY(enqueued);
            FOLIO_CUDA_TRY(ended);
        }
        cudaGraphExec_t exec = nullptr;
        const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        if (made != cudaSuccess)
            decodeTimer_.discard();
        FOLIO_CUDA_TRY(made);
        return exec;
    }

    Status decodeStep(DeviceState& s, const SampleParams& params) {
        FOLIO_TRY(reserveRows(s, s.length + 1));
        *hostParams_ = params;
        if (decodeTimer_.enabled()) {
            // Captured afresh (the marks' events belong to this one graph), run, then timed.
            FOLIO_ASSIGN_OR_RETURN(cudaGraphExec_t marked, captureDecode(s));
            cudaError_t ran = cudaGraphLaunch(marked, stream_);
            if (ran == cudaSuccess)
                ran = cudaStreamSynchronize(stream_);
            cudaGraphExecDestroy(marked);
            if (ran != cudaSuccess)
                decodeTimer_.discard();
            FOLIO_CUDA_TRY(ran);
            FOLIO_TRY(decodeTimer_.accumulate());
        } else {
            if (s.decodeGraph != nullptr && s.decodeGraphOmits != omittedPart_) {
                cudaGraphExecDestroy(s.decodeGraph);
                s.decodeGraph = nullptr;
            }
            if (s.decodeGraph == nullptr) {
                FOLIO_ASSIGN_OR_RETURN(s.decodeGraph, captureDecode(s));
                s.decodeGraphOmits = omittedPart_;
            }
            FOLIO_CUDA_TRY(cudaGraphLaunch(s.decodeGraph, stream_));
            FOLIO_CUDA_TRY(cudaStreamSynchronize(stream_));
        }
        s.length += 1;
        return {};
    }

    ModelConfig config_;
    EngineOptions options_;
    std::unique_ptr<Checkpoint> checkpoint_;
    std::unique_ptr<ModelWeights> weights_;
    ModelDevice model_;
    std::shared_ptr<void> weightMemory_;
    Arena scratchArena_;
    Scratch scratch_{};
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    SampleParams* hostParams_ = nullptr;
    int32_t* hostToken_ = nullptr;
    std::string deviceName_;
    int multiprocessors_ = 132;
    ComponentTimer timer_{{"kda", "mla_attention", "moe", "other_gemms"}};
    int omittedPart_ = -1;  // a DecodePart that decode steps leave out (benchmarks); -1: none
    ComponentTimer decodeTimer_{{std::begin(kDecodePartNames), std::end(kDecodePartNames)}};
};

}  // namespace

Status cudaDeviceAvailable() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return makeError(ErrorCode::Unsupported,
                         "no usable CUDA device: ", cudaGetErrorString(status));
    }
    if (count == 0)
        return makeError(ErrorCode::Unsupported, "no CUDA device");
    return {};
}

Result<std::shared_ptr<Backend>> createCudaBackend(const std::filesystem::path& modelDir,
                                                   const EngineOptions& options) {
    FOLIO_ASSIGN_OR_RETURN(ModelConfig config, loadModelConfig(modelDir / "config.json"));
    FOLIO_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::open(modelDir));
    auto owned = std::make_unique<Checkpoint>(std::move(checkpoint));
    FOLIO_ASSIGN_OR_RETURN(ModelWeights weights, bindModelWeights(config, *owned));
    return CudaBackend::create(config, std::move(owned),
                               std::make_unique<ModelWeights>(std::move(weights)), 0, options);
}

Result<std::shared_ptr<Backend>> createRandomCudaBackend(const ModelConfig& config, uint64_t seed,
                                                         const EngineOptions& options) {
    return CudaBackend::create(config, nullptr, nullptr, seed, options);
}

}  // namespace folio::inference
