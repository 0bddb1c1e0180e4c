// SPDX-License-Identifier: GPL-3.0-or-later
#include "engine.h"

#include <chrono>

#include "backend.h"
#include "cpu/cpu_backend.h"
#ifdef FOLIO_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif
#include "log.h"
#include "sampler.h"
#include "state_format.h"

namespace folio::inference {

Sequence::Sequence(std::shared_ptr<Backend> backend, std::unique_ptr<BackendState> state)
    : backend_(std::move(backend)), state_(std::move(state)) {}
Sequence::Sequence(Sequence&&) noexcept = default;
Sequence& Sequence::operator=(Sequence&&) noexcept = default;
Sequence::~Sequence() = default;

Result<Sequence> Sequence::fork() const {
    FOLIO_ASSIGN_OR_RETURN(auto state, backend_->cloneState(*state_));
    Sequence copy(backend_, std::move(state));
    copy.tokens_ = tokens_;
    return copy;
}

Engine::Engine(std::shared_ptr<Backend> backend, EngineOptions options)
    : backend_(std::move(backend)), options_(options) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::open(const std::filesystem::path& modelDir,
                                             const EngineOptions& options) {
    if (options.prefillChunkTokens < 0)
        return makeError(ErrorCode::InvalidArgument,
                         "prefill chunk size must be positive (or 0 for the backend's choice)");
    std::shared_ptr<Backend> backend;
    switch (options.backend) {
        case BackendKind::Cpu: {
            FOLIO_ASSIGN_OR_RETURN(backend, createCpuBackend(modelDir, options));
            break;
        }
        case BackendKind::Cuda: {
#ifdef FOLIO_HAVE_CUDA
            FOLIO_ASSIGN_OR_RETURN(backend, createCudaBackend(modelDir, options));
            break;
#else
            return makeError(ErrorCode::Unsupported,
                             "this build of Folio has no CUDA backend; use the CPU backend");
#endif
        }
    }
    log(LogLevel::Info, cat("engine opened ", modelDir.string(), " on ", backend->name()));
    return std::unique_ptr<Engine>(new Engine(std::move(backend), options));
}

Result<std::unique_ptr<Engine>> Engine::openRandom(const ModelConfig& config, uint64_t seed,
                                                   const EngineOptions& options) {
#ifdef FOLIO_HAVE_CUDA
    if (options.backend != BackendKind::Cuda)
        return makeError(ErrorCode::Unsupported, "random-weight models are made on the GPU only");
    FOLIO_ASSIGN_OR_RETURN(auto backend, createRandomCudaBackend(config, seed, options));
    return std::unique_ptr<Engine>(new Engine(std::move(backend), options));
#else
    (void)config, (void)seed, (void)options;
    return makeError(ErrorCode::Unsupported, "this build of Folio has no CUDA backend");
#endif
}

const ModelConfig& Engine::config() const {
    return backend_->config();
}
std::string Engine::backendName() const {
    return backend_->name();
}

Result<Sequence> Engine::newSequence() {
    FOLIO_ASSIGN_OR_RETURN(auto state, backend_->newState());
    return Sequence(backend_, std::move(state));
}

Status Engine::checkTokens(const Sequence& sequence, std::span<const int32_t> tokens) const {
    if (sequence.backend_ != backend_)
        return makeError(ErrorCode::InvalidArgument, "the sequence belongs to a different engine");
    const ModelConfig& c = config();
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= c.vocabSize)
            return makeError(ErrorCode::InvalidArgument, "token ", tokens[i], " at position ", i,
                             " is outside the vocabulary of ", c.vocabSize);
    }
    const int64_t total = sequence.length() + static_cast<int64_t>(tokens.size());
    if (total > c.modelMaxLength)
        return makeError(ErrorCode::InvalidArgument, "the sequence would hold ", total,
                         " tokens, more than the model's context of ", c.modelMaxLength);
    return {};
}

Result<Logits> Engine::prefill(Sequence& sequence, std::span<const int32_t> tokens,
                               const PrefillOptions& options) {
    FOLIO_TRY(checkTokens(sequence, tokens));
    Logits logits;
    logits.vocab = config().vocabSize;
    const auto start = std::chrono::steady_clock::now();
    const auto total = static_cast<int64_t>(tokens.size());
    for (int64_t done = 0; done < total;) {
        if (options.cancel && options.cancel->load())
            return makeError(ErrorCode::Cancelled, "prefill cancelled after ", done, " of ", total,
                             " tokens");
        const int64_t chunk = options_.prefillChunkTokens > 0 ? options_.prefillChunkTokens
                                                              : backend_->preferredPrefillChunk();
        const int64_t n = std::min(chunk, total - done);
        const bool lastChunk = done + n == total;
        ForwardRequest request;
        request.tokens = tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(n));
        request.logits = options.logits == LogitsWanted::All ? LogitsWanted::All
                         : lastChunk                         ? options.logits
                                                             : LogitsWanted::None;
        request.logitsOut = &logits.values;
        request.trace = options.trace;
        FOLIO_TRY(backend_->forward(*sequence.state_, request));
        sequence.tokens_.insert(sequence.tokens_.end(), request.tokens.begin(),
                                request.tokens.end());
        done += n;
        if (options.onProgress) {
            const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
            options.onProgress(PrefillProgress{done, total, elapsed.count()});
        }
    }
    return logits;
}

Result<Logits> Engine::decode(Sequence& sequence, int32_t token) {
    const int32_t one[1] = {token};
    FOLIO_TRY(checkTokens(sequence, one));
    Logits logits;
    logits.vocab = config().vocabSize;
    ForwardRequest request;
    request.tokens = one;
    request.logits = LogitsWanted::Last;
    request.logitsOut = &logits.values;
    FOLIO_TRY(backend_->forward(*sequence.state_, request));
    sequence.tokens_.push_back(token);
    return logits;
}

Result<int32_t> Engine::decodeNext(Sequence& sequence, int32_t token, Sampler& sampler) {
    const int32_t one[1] = {token};
    FOLIO_TRY(checkTokens(sequence, one));
    if (backend_->samplesOnDevice()) {
        FOLIO_ASSIGN_OR_RETURN(int32_t next,
                               backend_->decodeSampled(*sequence.state_, token, sampler.options(),
                                                       sampler.nextUniform()));
        sequence.tokens_.push_back(token);
        return next;
    }
    FOLIO_ASSIGN_OR_RETURN(Logits logits, decode(sequence, token));
    return sampler.sample(logits.last(), sequence.tokens_);
}

Status Engine::fillSyntheticContext(Sequence& sequence, int64_t length) {
    if (sequence.length() != 0 || length < 0 || length > config().modelMaxLength)
        return makeError(ErrorCode::InvalidArgument,
                         "a synthetic context needs a fresh sequence "
                         "and a length within the model's context");
    FOLIO_TRY(backend_->fillSyntheticContext(*sequence.state_, length));
    sequence.tokens_.assign(static_cast<size_t>(length), 0);
    return {};
}

Result<std::vector<std::byte>> Engine::saveState(const Sequence& sequence) const {
    if (sequence.backend_ != backend_)
        return makeError(ErrorCode::InvalidArgument, "the sequence belongs to a different engine");
    FOLIO_ASSIGN_OR_RETURN(auto tensors, exportState(sequence));
    return encodeState(config().fingerprint(), sequence.tokens_, tensors);
}

Result<Sequence> Engine::loadState(std::span<const std::byte> bytes) {
    FOLIO_ASSIGN_OR_RETURN(DecodedState decoded, decodeState(bytes));
    if (decoded.fingerprint != config().fingerprint())
        return makeError(ErrorCode::InvalidArgument,
                         "the sequence state was saved for a different model");
    return importState(std::move(decoded.tokens), std::move(decoded.tensors));
}

Result<std::vector<StateTensor>> Engine::exportState(const Sequence& sequence,
                                                     int64_t fromToken) const {
    if (sequence.backend_ != backend_)
        return makeError(ErrorCode::InvalidArgument, "the sequence belongs to a different engine");
    if (fromToken < 0 || fromToken > sequence.length())
        return makeError(ErrorCode::InvalidArgument, "cannot export a state from token ", fromToken,
                         " of a sequence of ", sequence.length());
    return backend_->exportState(*sequence.state_, fromToken);
}

Result<Sequence> Engine::importState(std::vector<int32_t> tokens,
                                     std::vector<StateTensor> tensors) {
    FOLIO_ASSIGN_OR_RETURN(Sequence sequence, newSequence());
    FOLIO_TRY(checkTokens(sequence, tokens));
    FOLIO_TRY(backend_->importState(*sequence.state_, std::move(tensors), tokens));
    sequence.tokens_ = std::move(tokens);
    return sequence;
}

}  // namespace folio::inference
