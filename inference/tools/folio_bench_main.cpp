// SPDX-License-Identifier: GPL-3.0-or-later
// folio-bench: speed of the CUDA engine at batch 1 (Qt-free).
//
//   folio-bench [--config kimi-linear-48b-a3b | --model DIR] [--contexts 4096,32768,131072]
//               [--prefill 4096,32768] [--decode-tokens 128] [--question 50] [--chunk N]
//               [--no-micro | --micro-only] [--no-decode-parts]
//
// With --config the model is built with deterministic random weights on the GPU; with --model
// it is loaded from a checkpoint folder. Prints one JSON line per measured point, then a table:
// prefill time with its split by component (KDA, MLA attention, MoE, other GEMMs), its useful
// FLOP and the compute floor (FLOP / the dense bf16 tensor peak) with the ratio to it; decode
// time per token (median and p90) at each context, timed after
// warm-up over the requested number of tokens on a synthetic context of that length; the GPU
// memory in use; the time to first token of a question of --question tokens asked of the
// resident context (fork, prefill the question, pick its first token); the device-to-device copy
// bandwidth measured on the spot; the floor (bytes read per token / that bandwidth) and the ratio
// to it. After each context's decode, a few steps captured with CUDA events between the parts of
// the step (projections, KDA step, MLA attention, routing, experts, ...) give each part's time per
// token, the bytes it must move and its floor at the measured bandwidth (--no-decode-parts skips
// them). Then per-layer micro-benchmarks of the KDA and MLA decode steps at the model's sizes
// and of the KDA and MLA prefill kernels at T = 8K, 32K and 128K, timed with CUDA events.
// --micro-only runs those micro-benchmarks alone (the real model's sizes, no model built).
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "inference/backend.h"
#include "inference/cuda/kernels.h"
#include "inference/engine.h"
#include "inference/kimi_linear_48b_config.h"
#include "inference/model_config.h"
#include "inference/sampler.h"

using namespace folio;
using namespace folio::inference;

namespace {

struct Options {
    std::string config = "kimi-linear-48b-a3b";
    std::string model;
    std::vector<int64_t> contexts = {4096, 32768, 131072};
    std::vector<int64_t> prefill = {4096, 32768};
    int decodeTokens = 128;
    int64_t question = 50;
    int64_t chunk = 0;  // prefill call size; 0: the backend's choice, as the application runs it
    bool micro = true;
    bool microOnly = false;  // the kernel micro-benchmarks alone, without building a model
    // Brackets two decode steps per context with cudaProfilerStart/Stop, for
    // `ncu --profile-from-start off` to list each kernel of a step.
    bool profileDecode = false;
    // After each context's timed decode, a few more steps captured with a mark at every switch
    // between parts of the step, to show where its time goes.
    bool decodeParts = true;
};

// A comma-separated list of positive counts; "" or "none" is the empty list. Anything else
// (a stray comma, a letter, a negative number) is nullopt, for the caller to refuse.
std::optional<std::vector<int64_t>> parseList(const std::string& text) {
    std::vector<int64_t> out;
    if (text.empty() || text == "none")
        return out;
    size_t at = 0;
    while (at <= text.size()) {
        const size_t comma = std::min(text.find(',', at), text.size());
        int64_t value = 0;
        const char* first = text.data() + at;
        const char* last = text.data() + comma;
        const auto [end, error] = std::from_chars(first, last, value);
        if (error != std::errc() || end != last || value <= 0)
            return std::nullopt;
        out.push_back(value);
        at = comma + 1;
    }
    return out;
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
    return v[i];
}

#define BENCH_CUDA(call)                                                                  \
    do {                                                                                  \
        const cudaError_t e_ = (call);                                                    \
        if (e_ != cudaSuccess) {                                                          \
            std::fprintf(stderr, "folio-bench: %s: %s\n", #call, cudaGetErrorString(e_)); \
            return -1.0;                                                                  \
        }                                                                                 \
    } while (0)

// Device-to-device copy of 2 GiB, median of 9: bytes read + written per second.
double copyBandwidth() {
    const size_t bytes = 2ull << 30;
    void *a = nullptr, *b = nullptr;
    BENCH_CUDA(cudaMalloc(&a, bytes));
    BENCH_CUDA(cudaMalloc(&b, bytes));
    cudaEvent_t start, stop;
    BENCH_CUDA(cudaEventCreate(&start));
    BENCH_CUDA(cudaEventCreate(&stop));
    std::vector<double> rates;
    for (int i = 0; i < 11; ++i) {
        BENCH_CUDA(cudaEventRecord(start));
        BENCH_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
        BENCH_CUDA(cudaEventRecord(stop));
        BENCH_CUDA(cudaEventSynchronize(stop));
        float ms = 0;
        BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
        if (i >= 2)
            rates.push_back(2.0 * static_cast<double>(bytes) / (ms * 1e-3));
    }
    cudaFree(a);
    cudaFree(b);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return percentile(rates, 0.5);
}

// Bytes a decode step must read: the weights it uses (bf16), the MLA cache of the context, and
// the KDA states (read and written, fp32).
struct DecodeBytes {
    double weights = 0, cachePerToken = 0, kdaState = 0;
    double bodyParams = 0;  // parameters used per token, without the embedding and lm_head
    double at(int64_t context) const {
        return weights + cachePerToken * static_cast<double>(context) + kdaState;
    }
};

DecodeBytes decodeBytes(const ModelConfig& c) {
    DecodeBytes b;
    double params = static_cast<double>(c.vocabSize) * static_cast<double>(c.hiddenSize);
    const double D = static_cast<double>(c.hiddenSize);
    for (int64_t i = 0; i < c.numLayers; ++i) {
        if (c.layerKind(i) == LayerKind::Kda) {
            const double P = static_cast<double>(c.kdaProjectionSize()),
                         d = static_cast<double>(c.kdaHeadDim);
            params += (3 * P + static_cast<double>(c.kdaNumHeads) + 2 * d) * D + 2 * P * d + D * P;
            b.kdaState += 2.0 * 4.0 * static_cast<double>(c.kdaNumHeads) * d * d;
        } else {
            const double H = static_cast<double>(c.numAttentionHeads),
                         r = static_cast<double>(c.kvLoraRank);
            params += (H * static_cast<double>(c.qkHeadDim()) + r +
                       static_cast<double>(c.qkRopeHeadDim)) *
                          D +
                      H * static_cast<double>(c.qkNopeHeadDim + c.vHeadDim) * r +
                      D * H * static_cast<double>(c.vHeadDim);
            b.cachePerToken += 2.0 * (r + static_cast<double>(c.qkRopeHeadDim));
        }
        if (c.isMoeLayer(i)) {
            const double I = static_cast<double>(c.moeIntermediateSize);
            params += static_cast<double>(c.numExperts) * D +
                      static_cast<double>(c.numExpertsPerToken + c.numSharedExperts) * 3 * I * D;
        } else {
            params += 3.0 * static_cast<double>(c.intermediateSize) * D;
        }
    }
    b.weights = 2.0 * params;
    b.bodyParams = params - static_cast<double>(c.vocabSize) * D;
    return b;
}

// Useful work of prefilling `tokens` after `context` tokens: every weight once per token (a
// multiply-add is 2 FLOP), lm_head for the last token, the MLA attention in the expanded form
// (q·k over nope + rope, p·v over v, causal pairs only) and the KDA recurrence (decay, update
// and read of a d×d state per head).
double prefillFlop(const ModelConfig& c, const DecodeBytes& b, int64_t tokens, int64_t context) {
    const double T = static_cast<double>(tokens), T0 = static_cast<double>(context);
    double flop = 2.0 * b.bodyParams * T +
                  2.0 * static_cast<double>(c.vocabSize) * static_cast<double>(c.hiddenSize);
    const double pairs = T * T0 + T * (T + 1) / 2;
    for (int64_t i = 0; i < c.numLayers; ++i) {
        if (c.layerKind(i) == LayerKind::Kda) {
            const double d = static_cast<double>(c.kdaHeadDim);
            flop += 2.0 * 3.0 * static_cast<double>(c.kdaNumHeads) * d * d * T;
        } else {
            flop += 2.0 * static_cast<double>(c.numAttentionHeads) *
                    static_cast<double>(c.qkHeadDim() + c.vHeadDim) * pairs;
        }
    }
    return flop;
}

// Dense bf16 tensor-core peak: SMs × clock × 4,096 FLOP per SM per clock (Hopper).
double tensorPeakFlops() {
    int device = 0, sms = 0, khz = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device) != cudaSuccess)
        return 0;
    return static_cast<double>(sms) * static_cast<double>(khz) * 1e3 * 4096.0;
}

double usedGpuBytes() {
    size_t freeBytes = 0, total = 0;
    cudaMemGetInfo(&freeBytes, &total);
    return static_cast<double>(total - freeBytes);
}

// ---- where a decode step's time goes ----

struct PartTable {
    int64_t context;
    double stepMs;  // the whole step's median over the same steps as the parts' runs
    std::vector<Backend::DecodePartTime> parts;  // marked GPU time per token
    std::vector<double> savedMs;  // per part: the step's median less the step's without it
};

constexpr int kPartSteps = 24;

// Median host time of `steps` decode steps after 2 of warm-up (graph capture among them).
Result<double> medianStepMs(Engine& engine, Sequence& seq, int32_t& next, Sampler& sampler,
                            int steps) {
    std::vector<double> ms;
    for (int i = 0; i < 2 + steps; ++i) {
        const auto start = std::chrono::steady_clock::now();
        FOLIO_ASSIGN_OR_RETURN(next, engine.decodeNext(seq, next, sampler));
        if (i >= 2)
            ms.push_back(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() *
                1e3);
    }
    return percentile(ms, 0.5);
}

// Where a decode step's time goes: each part's GPU time between marks, and what leaving the
// part's kernels out saves (the other parts then read stale values; only timing is kept).
Result<PartTable> decodePartsAt(Engine& engine, Sequence& seq, int64_t context, int32_t& next,
                                Sampler& sampler, double bandwidth) {
    Backend& backend = engine.backend();
    PartTable t{context, 0, {}, {}};
    backend.timeDecodeParts(true);
    auto marked = medianStepMs(engine, seq, next, sampler, 1);  // the first two warm up
    (void)backend.decodePartTimes(true);
    if (marked.ok())
        marked = medianStepMs(engine, seq, next, sampler, kPartSteps - 2);
    t.parts = backend.decodePartTimes(true);
    backend.timeDecodeParts(false);
    if (!marked.ok())
        return marked.error();
    if (t.parts.empty())
        return makeError(ErrorCode::Unsupported, backend.name(), " does not time decode parts");
    FOLIO_ASSIGN_OR_RETURN(t.stepMs, medianStepMs(engine, seq, next, sampler, kPartSteps));
    std::string json;
    double total = 0;
    for (size_t i = 0; i < t.parts.size(); ++i) {
        auto& p = t.parts[i];
        p.seconds /= kPartSteps;
        p.bytes /= kPartSteps;
        total += p.seconds;
        double saved = 0;
        if (i > 0 && p.seconds > 0) {  // part 0, embedding and sampling, cannot be left out
            FOLIO_TRY(backend.omitDecodePart(p.name));
            auto without = medianStepMs(engine, seq, next, sampler, kPartSteps);
            FOLIO_TRY(backend.omitDecodePart(""));
            if (!without.ok())
                return without.error();
            saved = t.stepMs - *without;
        }
        t.savedMs.push_back(saved);
        char buf[240];
        std::snprintf(buf, sizeof buf,
                      "%s\"%s\":{\"marked_us\":%.1f,\"saved_us\":%.1f,\"MB\":%.2f,"
                      "\"floor_us\":%.1f}",
                      json.empty() ? "" : ",", p.name.c_str(), p.seconds * 1e6, saved * 1e3,
                      p.bytes / 1e6, p.bytes / bandwidth * 1e6);
        json += buf;
    }
    std::printf(
        "{\"bench\":\"decode_parts\",\"context\":%lld,\"step_ms\":%.3f,"
        "\"marked_step_ms\":%.3f,\"parts\":{%s}}\n",
        static_cast<long long>(context), t.stepMs, total * 1e3, json.c_str());
    return t;
}

void printDecodeParts(const PartTable& t, double bandwidth) {
    double total = 0, bytes = 0, saved = 0;
    for (size_t i = 0; i < t.parts.size(); ++i) {
        total += t.parts[i].seconds;
        bytes += t.parts[i].bytes;
        saved += t.savedMs[i];
    }
    std::printf("\ndecode step by part at context %lld: %.3f ms per step (%.3f ms with marks)\n",
                static_cast<long long>(t.context), t.stepMs, total * 1e3);
    std::printf("%-17s %9s %9s %9s %9s %7s\n", "part", "marked us", "saved us", "MB/token",
                "floor us", "saved/floor");
    for (size_t i = 0; i < t.parts.size(); ++i) {
        const auto& p = t.parts[i];
        if (p.seconds == 0 && p.bytes == 0)
            continue;
        const double floorUs = p.bytes / bandwidth * 1e6;
        std::printf("%-17s %9.1f %9.1f %9.2f %9.1f %7.2f\n", p.name.c_str(), p.seconds * 1e6,
                    t.savedMs[i] * 1e3, p.bytes / 1e6, floorUs,
                    floorUs > 0 ? t.savedMs[i] * 1e3 / floorUs : 0.0);
    }
    std::printf("%-17s %9.1f %9.1f %9.2f %9.1f %7.2f\n", "all", total * 1e6, saved * 1e3,
                bytes / 1e6, bytes / bandwidth * 1e6, saved * 1e-3 * bandwidth / bytes);
}

// ---- per-layer micro-benchmarks of the decode steps ----

template <typename T>
T* deviceArray(size_t count, std::vector<void*>& owned) {
    void* p = nullptr;
    if (cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)) != cudaSuccess)
        return nullptr;
    cudaMemset(p, 0, count * sizeof(T));
    owned.push_back(p);
    return static_cast<T*>(p);
}

// Median over 7 runs of `run` (which enqueues `iterations` launches on `stream`) of the time
// per launch in µs, by CUDA events; -1 when a call fails.
double medianPerLaunch(cudaStream_t stream, int iterations, const std::function<void()>& run) {
    cudaEvent_t start, stop;
    BENCH_CUDA(cudaEventCreate(&start));
    BENCH_CUDA(cudaEventCreate(&stop));
    std::vector<double> samples;
    for (int rep = 0; rep < 7; ++rep) {
        BENCH_CUDA(cudaEventRecord(start, stream));
        run();
        BENCH_CUDA(cudaEventRecord(stop, stream));
        BENCH_CUDA(cudaEventSynchronize(stop));
        float ms = 0;
        BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
        samples.push_back(ms * 1e3 / iterations);
    }
    BENCH_CUDA(cudaGetLastError());
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return percentile(samples, 0.5);
}

double timeKernel(const std::function<void(cudaStream_t)>& launch, int iterations,
                  int warmup = 20) {
    cudaStream_t stream;
    BENCH_CUDA(cudaStreamCreate(&stream));
    for (int i = 0; i < warmup; ++i)
        launch(stream);
    BENCH_CUDA(cudaStreamSynchronize(stream));
    BENCH_CUDA(cudaGetLastError());
    const double us = medianPerLaunch(stream, iterations, [&] {
        for (int i = 0; i < iterations; ++i)
            launch(stream);
    });
    cudaStreamDestroy(stream);
    return us;
}

// The same launches captured as one CUDA graph and replayed, as the decode step runs its
// kernels: per-launch time without the host's launch overhead between them.
double timeKernelInGraph(const std::function<void(cudaStream_t)>& launch, int iterations) {
    cudaStream_t stream;
    BENCH_CUDA(cudaStreamCreate(&stream));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < iterations; ++i)
        launch(stream);
    BENCH_CUDA(cudaStreamEndCapture(stream, &graph));
    BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    for (int i = 0; i < 3; ++i)
        BENCH_CUDA(cudaGraphLaunch(exec, stream));
    BENCH_CUDA(cudaStreamSynchronize(stream));
    cudaError_t launched = cudaSuccess;
    const double us = medianPerLaunch(stream, iterations, [&] {
        if (launched == cudaSuccess)
            launched = cudaGraphLaunch(exec, stream);
    });
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    BENCH_CUDA(launched);
    return us;
}

// The MLA prefill attention kernel alone (expanded form, causal, T queries over T keys, the
// keys in segments of 16K rows as the engine runs it), in TFLOP/s of useful work.
void mlaPrefillMicro(const ModelConfig& c) {
    using namespace cuda;
    const int H = static_cast<int>(c.numAttentionHeads), nope = static_cast<int>(c.qkNopeHeadDim);
    const int rope = static_cast<int>(c.qkRopeHeadDim), dv = static_cast<int>(c.vHeadDim);
    const int width = static_cast<int>(c.kvLoraRank) + rope, pageRows = 4096;
    const int64_t segment = 16384;
    if (!mlaFlashSupported(nope, rope, dv) || configureMlaFlashPrefill() != cudaSuccess)
        return;
    for (int64_t T : {int64_t{8192}, int64_t{32768}, int64_t{131072}}) {
        std::vector<void*> local;
        std::vector<bf16*> pagePointers;
        for (int64_t p = 0; p < (T + pageRows - 1) / pageRows; ++p) {
            bf16* page = deviceArray<bf16>(static_cast<size_t>(pageRows) * width, local);
            if (page == nullptr)
                return;
            launchFillRandomBf16(page, static_cast<int64_t>(pageRows) * width, 40 + p, 1.0f,
                                 nullptr);
            pagePointers.push_back(page);
        }
        bf16** table = deviceArray<bf16*>(pagePointers.size(), local);
        const size_t qCount = static_cast<size_t>(T) * H * (nope + rope);
        const size_t kvCount = static_cast<size_t>(segment) * H * (nope + dv);
        bf16* q = deviceArray<bf16>(qCount, local);
        bf16* kv = deviceArray<bf16>(kvCount, local);
        float* stateMax = deviceArray<float>(static_cast<size_t>(T) * H, local);
        float* stateSum = deviceArray<float>(static_cast<size_t>(T) * H, local);
        float* stateO = deviceArray<float>(static_cast<size_t>(T) * H * dv, local);
        float* out = deviceArray<float>(static_cast<size_t>(T) * H * dv, local);
        bf16* ropeRows = deviceArray<bf16>(static_cast<size_t>(segment) * rope, local);
        if (table == nullptr || q == nullptr || kv == nullptr || stateO == nullptr ||
            out == nullptr || ropeRows == nullptr) {
            for (void* p : local)
                cudaFree(p);
            return;
        }
        cudaMemcpy(table, pagePointers.data(), pagePointers.size() * sizeof(bf16*),
                   cudaMemcpyHostToDevice);
        launchFillRandomBf16(q, static_cast<int64_t>(qCount), 5, 1.0f, nullptr);
        launchFillRandomBf16(kv, static_cast<int64_t>(kvCount), 6, 1.0f, nullptr);
        const double us = timeKernel(
            [&](cudaStream_t s) {
                for (int64_t begin = 0; begin < T; begin += segment) {
                    MlaFlashArgs a;
                    a.q = q;
                    a.kv = kv;  // every segment reads the same expanded rows: same work
                    a.cache = LatentCache{table, pageRows, width};
                    a.keyBegin = begin;
                    a.keyEnd = std::min(T, begin + segment);
                    a.tokens = static_cast<int>(T);
                    a.heads = H;
                    a.first = begin == 0;
                    a.last = a.keyEnd == T;
                    a.scale = 0.07f;
                    a.stateMax = stateMax;
                    a.stateSum = stateSum;
                    a.stateO = stateO;
                    a.out = out;
                    a.outStride = static_cast<int64_t>(H) * dv;
                    a.ropeRows = ropeRows;
                    launchMlaFlashPrefill(a, s);
                }
            },
            1, 1);
        const double flop = 2.0 * H * (nope + rope + dv) * static_cast<double>(T) *
                            static_cast<double>(T + 1) / 2.0;
        std::printf(
            "{\"bench\":\"mla_prefill_attention\",\"tokens\":%lld,\"ms\":%.2f,"
            "\"useful_TFLOPs\":%.1f}\n",
            static_cast<long long>(T), us / 1e3, flop / (us * 1e-6) / 1e12);
        for (void* p : local)
            cudaFree(p);
    }
}

// The KDA prefill (chunked form) of one layer over T tokens, in calls of 4,096 tokens as the
// engine makes them (the state carries from call to call), in tokens per second; then the same
// calls once more with CUDA events between the two stages (local: per chunk, fully parallel;
// state: the sequential pass with the outputs), with each stage's time and the bandwidth its
// compulsory DRAM traffic implies. Gates of -1 give mild decays (the tensor-core path only);
// the "steep" line repeats 32K tokens with gates of +8, every channel past the direct-sum
// threshold (the slowest case).
void kdaPrefillMicro(const ModelConfig& c) {
    using namespace cuda;
    const int H = static_cast<int>(c.kdaNumHeads), d = static_cast<int>(c.kdaHeadDim);
    const int W = static_cast<int>(c.convKernelSize), call = 4096;
    if (!kdaChunkedSupported(d, W) || configureKdaChunked() != cudaSuccess)
        return;
    const int64_t P = static_cast<int64_t>(H) * d, projStride = 3 * P + H + 2 * d;
    std::vector<void*> local;
    KdaChunkedArgs a;
    float* proj = deviceArray<float>(static_cast<size_t>(call * projStride), local);
    float* gates = deviceArray<float>(static_cast<size_t>(call * 2 * P), local);
    const int64_t recordFloats = kdaChunkedScratchFloats(call, H);
    a.chunks = deviceArray<float>(static_cast<size_t>(recordFloats), local);
    float* taps = deviceArray<float>(static_cast<size_t>(3 * P * W), local);
    float* decayRate = deviceArray<float>(static_cast<size_t>(H), local);
    float* outNorm = deviceArray<float>(static_cast<size_t>(d), local);
    a.convTaps = taps;
    a.decayRate = decayRate;
    a.outNorm = outNorm;
    a.convWindow = deviceArray<float>(static_cast<size_t>(3 * (W - 1) * P), local);
    a.state = deviceArray<float>(static_cast<size_t>(H) * d * d, local);
    a.dtBias = deviceArray<float>(static_cast<size_t>(P), local);
    a.out = deviceArray<float>(static_cast<size_t>(call * P), local);
    if (proj == nullptr || gates == nullptr || a.chunks == nullptr || a.out == nullptr ||
        a.state == nullptr) {
        for (void* p : local)
            cudaFree(p);
        return;
    }
    launchFillFloat(proj, call * projStride, 0.01f, nullptr);
    launchFillFloat(decayRate, H, 1.0f, nullptr);
    launchFillFloat(taps, 3 * P * W, 0.25f, nullptr);
    launchFillFloat(outNorm, d, 1.0f, nullptr);
    a.proj = proj;
    a.projStride = projStride;
    a.gates = gates;
    a.gatesStride = 2 * P;
    a.eps = 1e-5f;
    a.tokens = call;
    a.heads = H;
    a.convWidth = W;
    // Compulsory DRAM bytes of one call per stage: local reads q, k, v, f and β and writes the
    // records; state reads the records, the output gates and the state, writes the state and
    // the output.
    const double recordBytes = 4.0 * static_cast<double>(recordFloats);
    const double rowBytes = 4.0 * static_cast<double>(call) * static_cast<double>(P);
    const double stateBytes = 4.0 * static_cast<double>(H) * d * d;
    const double localBytes = 4 * rowBytes + 4.0 * call * H + recordBytes;
    const double passBytes = recordBytes + 2 * rowBytes + 2 * stateBytes;
    auto measure = [&](const char* name, int64_t T) -> double {  // -1 on a CUDA error
        const int calls = static_cast<int>(T / call);
        const double us = timeKernel(
            [&](cudaStream_t s) {
                for (int i = 0; i < calls; ++i)
                    launchKdaChunked(a, s);
            },
            1, 1);
        // The same calls with events around each stage.
        cudaStream_t stream;
        BENCH_CUDA(cudaStreamCreate(&stream));
        std::vector<cudaEvent_t> events(static_cast<size_t>(3 * calls));
        for (cudaEvent_t& e : events)
            BENCH_CUDA(cudaEventCreate(&e));
        for (int i = 0; i < calls; ++i) {
            BENCH_CUDA(cudaEventRecord(events[static_cast<size_t>(3 * i)], stream));
            launchKdaChunkedStage(a, KdaChunkedStage::Local, stream);
            BENCH_CUDA(cudaEventRecord(events[static_cast<size_t>(3 * i + 1)], stream));
            launchKdaChunkedStage(a, KdaChunkedStage::State, stream);
            BENCH_CUDA(cudaEventRecord(events[static_cast<size_t>(3 * i + 2)], stream));
        }
        BENCH_CUDA(cudaStreamSynchronize(stream));
        BENCH_CUDA(cudaGetLastError());
        double localMs = 0, stateMs = 0;
        for (int i = 0; i < calls; ++i) {
            float ms = 0;
            BENCH_CUDA(cudaEventElapsedTime(&ms, events[static_cast<size_t>(3 * i)],
                                            events[static_cast<size_t>(3 * i + 1)]));
            localMs += ms;
            BENCH_CUDA(cudaEventElapsedTime(&ms, events[static_cast<size_t>(3 * i + 1)],
                                            events[static_cast<size_t>(3 * i + 2)]));
            stateMs += ms;
        }
        for (cudaEvent_t e : events)
            cudaEventDestroy(e);
        cudaStreamDestroy(stream);
        std::printf(
            "{\"bench\":\"%s\",\"tokens\":%lld,\"ms\":%.2f,\"tokens_per_s_per_layer\":%.3g,"
            "\"stage_ms\":{\"local\":%.3f,\"state\":%.3f},"
            "\"stage_GBps\":{\"local\":%.0f,\"state\":%.0f},\"state_heads_at_once\":%d}\n",
            name, static_cast<long long>(T), us / 1e3, static_cast<double>(T) / (us * 1e-6),
            localMs, stateMs, localBytes * calls / (localMs * 1e6),
            passBytes * calls / (stateMs * 1e6), kdaChunkedHeadsAtOnce(H));
        return us;
    };
    launchFillFloat(gates, call * 2 * P, -1.0f, nullptr);
    for (int64_t T : {int64_t{8192}, int64_t{32768}, int64_t{131072}})
        measure("kda_prefill", T);
    launchFillFloat(gates, call * 2 * P, 8.0f, nullptr);
    measure("kda_prefill_steep", 32768);
    for (void* p : local)
        cudaFree(p);
}

void microBenchmarks(const ModelConfig& c, double bandwidth) {
    using namespace folio::inference::cuda;
    std::vector<void*> owned;
    const int H = static_cast<int>(c.kdaNumHeads), d = static_cast<int>(c.kdaHeadDim);
    const int P = H * d, W = static_cast<int>(c.convKernelSize);
    KdaStepArgs k;
    k.proj = deviceArray<float>(static_cast<size_t>(3 * P + H + 2 * d), owned);
    k.projStride = 3 * P + H + 2 * d;
    k.gates = deviceArray<float>(static_cast<size_t>(2 * P), owned);
    k.gatesStride = 2 * P;
    k.convTaps = deviceArray<float>(static_cast<size_t>(3 * P * W), owned);
    k.convWindow = deviceArray<float>(static_cast<size_t>(3 * (W - 1) * P), owned);
    k.state = deviceArray<float>(static_cast<size_t>(H) * d * d, owned);
    k.decayRate = deviceArray<float>(static_cast<size_t>(H), owned);
    k.dtBias = deviceArray<float>(static_cast<size_t>(P), owned);
    k.outNorm = deviceArray<float>(static_cast<size_t>(d), owned);
    k.eps = 1e-5f;
    k.out = deviceArray<float>(static_cast<size_t>(P), owned);
    k.tokens = 1;
    k.heads = H;
    k.headDim = d;
    k.convWidth = W;
    const auto kdaStep = [&](cudaStream_t s) { launchKdaSteps(k, s); };
    const double kdaUs = timeKernel(kdaStep, 200);
    const double kdaGraphUs = timeKernelInGraph(kdaStep, 200);
    // As decode meets it: in a graph, each launch with another layer's state, none of them
    // still in the L2 cache (32 states of 2 MiB taken in turn), whose copies may start before
    // the launch before it ends (KdaStepArgs::stateSettled).
    constexpr int kColdStates = 32;
    float* states = deviceArray<float>(static_cast<size_t>(kColdStates) * H * d * d, owned);
    double kdaColdUs = 0;
    if (states != nullptr) {
        int next = 0;
        kdaColdUs = timeKernelInGraph(
            [&](cudaStream_t s) {
                KdaStepArgs layer = k;
                layer.state = states + static_cast<size_t>(next++ % kColdStates) * H * d * d;
                layer.stateSettled = true;  // each state written 32 launches earlier
                launchKdaSteps(layer, s);
            },
            4 * kColdStates);
    }
    const double kdaFloorUs = 2.0 * 4.0 * H * d * d / bandwidth * 1e6;
    std::printf(
        "{\"bench\":\"kda_decode_step\",\"heads\":%d,\"head_dim\":%d,\"us\":%.2f,"
        "\"us_in_graph\":%.2f,\"us_in_graph_cold_state\":%.2f,\"state_floor_us\":%.2f}\n",
        H, d, kdaUs, kdaGraphUs, kdaColdUs, kdaFloorUs);

    // The decode GEMVs at the model's sizes: achieved bandwidth over the weights they read.
    {
        const int D = static_cast<int>(c.hiddenSize), I = static_cast<int>(c.moeIntermediateSize);
        const int K = static_cast<int>(c.numExpertsPerToken);
        const int kdaRows = 3 * P + H + 2 * d;
        struct Case {
            const char* name;
            int rows, cols, items;
            bool swiglu;
        };
        const Case cases[] = {{"kda_in_proj", kdaRows, D, 1, false},
                              {"kda_o_proj", D, P, 1, false},
                              {"moe_gate_up_top_k", I, D, K, true},
                              {"moe_down_top_k", D, I, K, false},
                              {"lm_head", static_cast<int>(c.vocabSize), D, 1, false}};
        for (const Case& k0 : cases) {
            const size_t matrixElements = static_cast<size_t>(k0.rows) * k0.cols;
            const int matrices = k0.items * (k0.swiglu ? 2 : 1);
            std::vector<bf16*> tables;
            for (int m = 0; m < matrices; ++m) {
                bf16* w = deviceArray<bf16>(matrixElements, owned);
                if (w == nullptr)
                    return;
                launchFillRandomBf16(w, static_cast<int64_t>(matrixElements), 3 + m, 0.02f,
                                     nullptr);
                tables.push_back(w);
            }
            bf16** gate = deviceArray<bf16*>(static_cast<size_t>(k0.items), owned);
            bf16** up = deviceArray<bf16*>(static_cast<size_t>(k0.items), owned);
            for (int m = 0; m < k0.items; ++m) {
                cudaMemcpy(gate + m, &tables[static_cast<size_t>(m * (k0.swiglu ? 2 : 1))],
                           sizeof(bf16*), cudaMemcpyHostToDevice);
                if (k0.swiglu)
                    cudaMemcpy(up + m, &tables[static_cast<size_t>(2 * m + 1)], sizeof(bf16*),
                               cudaMemcpyHostToDevice);
            }
            GemvArgs g;
            g.table = gate;
            g.upTable = k0.swiglu ? up : nullptr;
            g.rows = k0.rows;
            g.cols = k0.cols;
            g.items = k0.items;
            g.x = deviceArray<float>(static_cast<size_t>(k0.cols) * k0.items, owned);
            g.xItemStride = k0.swiglu ? 0 : k0.cols;
            g.y = deviceArray<float>(static_cast<size_t>(k0.rows) * k0.items, owned);
            g.yItemStride = k0.rows;
            const double us = timeKernel([&](cudaStream_t s) { launchGemv(g, s); }, 50);
            const double bytes = 2.0 * static_cast<double>(matrixElements) * matrices;
            std::printf(
                "{\"bench\":\"gemv\",\"shape\":\"%s\",\"rows\":%d,\"cols\":%d,"
                "\"items\":%d,\"us\":%.2f,\"GBps\":%.0f,\"of_copy_bandwidth\":%.2f}\n",
                k0.name, k0.rows, k0.cols, matrices, us, bytes / us / 1e3,
                bytes / (us * 1e-6) / bandwidth);
        }
    }

    const int Hm = static_cast<int>(c.numAttentionHeads), nope = static_cast<int>(c.qkNopeHeadDim);
    const int rope = static_cast<int>(c.qkRopeHeadDim), r = static_cast<int>(c.kvLoraRank);
    const int dv = static_cast<int>(c.vHeadDim), width = r + rope;
    const int pageRows = 4096, splits = 132;  // the decode step's grid (kDecodeSplits)
    if (configureMlaAttention(mlaAttentionSharedBytes(Hm, r, rope)) != cudaSuccess)
        return;
    for (int64_t context : {int64_t{4096}, int64_t{32768}, int64_t{131072}}) {
        const int64_t pages = (context + pageRows) / pageRows;
        std::vector<bf16*> pagePointers;
        for (int64_t p = 0; p < pages; ++p) {
            bf16* page = deviceArray<bf16>(static_cast<size_t>(pageRows) * width, owned);
            if (page == nullptr)
                return;
            launchFillRandomBf16(page, static_cast<int64_t>(pageRows) * width, 7 + p, 1.0f,
                                 nullptr);
            pagePointers.push_back(page);
        }
        bf16** table = deviceArray<bf16*>(pagePointers.size(), owned);
        cudaMemcpy(table, pagePointers.data(), pagePointers.size() * sizeof(bf16*),
                   cudaMemcpyHostToDevice);
        int32_t* length = deviceArray<int32_t>(1, owned);
        const int32_t len = static_cast<int32_t>(context - 1);
        cudaMemcpy(length, &len, sizeof(len), cudaMemcpyHostToDevice);
        const int S = Hm * (nope + rope) + width;
        float* proj = deviceArray<float>(static_cast<size_t>(S), owned);
        float* norm = deviceArray<float>(static_cast<size_t>(r), owned);
        bf16* kvB = deviceArray<bf16>(static_cast<size_t>(Hm) * (nope + dv) * r, owned);
        float* qLatent = deviceArray<float>(static_cast<size_t>(Hm) * r, owned);
        float* oLatent = deviceArray<float>(static_cast<size_t>(Hm) * r, owned);
        float* partial = deviceArray<float>(static_cast<size_t>(splits) * Hm * (r + 2), owned);
        float* out = deviceArray<float>(static_cast<size_t>(Hm) * dv, owned);
        LatentCache cache{table, pageRows, width};
        MlaAttentionArgs a;
        a.qLatent = qLatent;
        a.q = proj;
        a.qStride = S;
        a.cache = cache;
        a.length = length;
        a.tokens = 1;
        a.heads = Hm;
        a.nope = nope;
        a.rope = rope;
        a.latentRank = r;
        a.splits = splits;
        a.scale = 0.07f;
        a.partial = partial;
        a.out = oLatent;
        const auto mlaStep = [&](cudaStream_t s) {
            launchMlaAppendAndAbsorb(proj + Hm * (nope + rope), S, norm, 1e-6f, cache, length, proj,
                                     S, kvB, Hm, nope, rope, dv, r, 1, qLatent, s);
            launchMlaAttention(a, s);
            launchMlaUpValue(oLatent, kvB, Hm, nope, dv, r, 1, out, s);
        };
        const double us = timeKernel(mlaStep, 50);
        const double graphUs = timeKernelInGraph(mlaStep, 50);
        // The attention with its merge alone, against the cache's share of the floor.
        const double attentionUs =
            timeKernel([&](cudaStream_t s) { launchMlaAttention(a, s); }, 50);
        // On Hopper, the portable mma.sync form of the attention too, for comparison.
        double portableUs = attentionUs;
        if (mlaDecodeWgmmaAvailable()) {
            selectMlaDecodeWgmma(false);
            portableUs = timeKernel([&](cudaStream_t s) { launchMlaAttention(a, s); }, 50);
            selectMlaDecodeWgmma(true);
        }
        const double cacheBytes = static_cast<double>(context) * width * 2;
        const double bytes = cacheBytes + 2.0 * Hm * (nope + dv) * r;
        std::printf(
            "{\"bench\":\"mla_decode_step\",\"context\":%lld,\"us\":%.2f,\"us_in_graph\":%.2f,"
            "\"floor_us\":%.2f,\"attention_us\":%.2f,\"attention_mma_sync_us\":%.2f,"
            "\"attention_floor_us\":%.2f}\n",
            static_cast<long long>(context), us, graphUs, bytes / bandwidth * 1e6, attentionUs,
            portableUs, cacheBytes / bandwidth * 1e6);
    }
    mlaPrefillMicro(c);
    kdaPrefillMicro(c);
    for (void* p : owned)
        cudaFree(p);
}

int run(const Options& o) {
    if (o.microOnly) {
        auto config = parseModelConfig(kKimiLinear48BA3BConfigJson);
        if (!config.ok()) {
            std::fprintf(stderr, "folio-bench: %s\n", config.error().message.c_str());
            return 1;
        }
        microBenchmarks(*config, copyBandwidth());
        return 0;
    }
    EngineOptions options;
    options.backend = BackendKind::Cuda;
    options.prefillChunkTokens = o.chunk;
    std::unique_ptr<Engine> engine;
    if (!o.model.empty()) {
        auto opened = Engine::open(o.model, options);
        if (!opened.ok()) {
            std::fprintf(stderr, "folio-bench: %s\n", opened.error().message.c_str());
            return 1;
        }
        engine = std::move(*opened);
    } else {
        if (o.config != "kimi-linear-48b-a3b") {
            std::fprintf(stderr, "folio-bench: unknown config %s\n", o.config.c_str());
            return 2;
        }
        auto config = parseModelConfig(kKimiLinear48BA3BConfigJson);
        if (!config.ok()) {
            std::fprintf(stderr, "folio-bench: %s\n", config.error().message.c_str());
            return 1;
        }
        const auto start = std::chrono::steady_clock::now();
        auto opened = Engine::openRandom(*config, 1, options);
        if (!opened.ok()) {
            std::fprintf(stderr, "folio-bench: %s\n", opened.error().message.c_str());
            return 1;
        }
        engine = std::move(*opened);
        std::fprintf(
            stderr, "random weights made in %.1f s\n",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const ModelConfig& c = engine->config();
    const double bandwidth = copyBandwidth();
    const DecodeBytes bytes = decodeBytes(c);
    const double peak = tensorPeakFlops();
    std::printf(
        "{\"bench\":\"setup\",\"device\":\"%s\",\"copy_bandwidth_GBps\":%.1f,"
        "\"weights_read_per_token_GB\":%.3f,\"bf16_tensor_peak_TFLOPs\":%.1f,"
        "\"gpu_memory_used_GiB\":%.2f,\"prefill_call_tokens\":%lld}\n",
        engine->backendName().c_str(), bandwidth / 1e9, bytes.weights / 1e9, peak / 1e12,
        usedGpuBytes() / (1ull << 30),
        static_cast<long long>(engine->backend().preferredPrefillChunk()));
    std::mt19937 random(7);
    std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(c.vocabSize - 1));

    struct Row {
        std::string what;
        int64_t context;
        double value, p90, floor;
    };
    std::vector<Row> table;
    std::vector<PartTable> partTables;
    for (int64_t n : o.prefill) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (int32_t& id : ids)
            id = token(random);
        auto seq = engine->newSequence();
        if (!seq.ok())
            return 1;
        PrefillOptions p;
        p.logits = LogitsWanted::Last;
        engine->backend().timeComponents(true);
        (void)engine->backend().componentSeconds(true);
        const auto start = std::chrono::steady_clock::now();
        auto result = engine->prefill(*seq, ids, p);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const auto components = engine->backend().componentSeconds(true);
        engine->backend().timeComponents(false);
        if (!result.ok()) {
            std::fprintf(stderr, "folio-bench: prefill %lld: %s\n", static_cast<long long>(n),
                         result.error().message.c_str());
            return 1;
        }
        const double floorSeconds = prefillFlop(c, bytes, n, 0) / peak;
        std::string split;
        for (const auto& [name, secs] : components)
            split += (split.empty() ? "" : ",") + ("\"" + name + "\":") + std::to_string(secs);
        std::printf(
            "{\"bench\":\"prefill\",\"tokens\":%lld,\"seconds\":%.3f,"
            "\"tokens_per_s\":%.0f,\"flop\":%.4g,\"floor_s\":%.3f,\"ratio_to_floor\":%.2f,"
            "\"component_seconds\":{%s},\"gpu_memory_used_GiB\":%.2f}\n",
            static_cast<long long>(n), seconds, static_cast<double>(n) / seconds,
            prefillFlop(c, bytes, n, 0), floorSeconds, seconds / floorSeconds, split.c_str(),
            usedGpuBytes() / (1ull << 30));
        table.push_back({"prefill s", n, seconds, 0, floorSeconds});
    }
    for (int64_t context : o.contexts) {
        auto seq = engine->newSequence();
        if (!seq.ok())
            return 1;
        if (auto filled = engine->fillSyntheticContext(*seq, context); !filled.ok()) {
            std::fprintf(stderr, "folio-bench: %s\n", filled.error().message.c_str());
            return 1;
        }
        Sampler sampler(SamplingOptions{});
        if (o.question > 0) {
            // Time to first token of a question asked of the resident context: what a follow-up
            // question costs once the documents' state is in GPU memory.
            std::vector<int32_t> question(static_cast<size_t>(o.question));
            std::vector<double> ttft;
            for (int i = 0; i < 6; ++i) {
                for (int32_t& id : question)
                    id = token(random);
                const auto start = std::chrono::steady_clock::now();
                auto asked = seq->fork();
                if (!asked.ok()) {
                    std::fprintf(stderr, "folio-bench: fork: %s\n", asked.error().message.c_str());
                    return 1;
                }
                PrefillOptions last;
                last.logits = LogitsWanted::Last;
                auto logits = engine->prefill(*asked, question, last);
                if (!logits.ok()) {
                    std::fprintf(stderr, "folio-bench: question: %s\n",
                                 logits.error().message.c_str());
                    return 1;
                }
                const int32_t first = sampler.sample(logits->values, question);
                const double elapsed =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                (void)first;
                if (i > 0)  // the first one warms up
                    ttft.push_back(elapsed * 1e3);
            }
            const double median = percentile(ttft, 0.5);
            std::printf(
                "{\"bench\":\"question\",\"context\":%lld,\"question_tokens\":%lld,"
                "\"ttft_median_ms\":%.2f,\"ttft_max_ms\":%.2f}\n",
                static_cast<long long>(context), static_cast<long long>(o.question), median,
                percentile(ttft, 1.0));
            table.push_back({"question TTFT ms", context, median, percentile(ttft, 1.0), 0});
        }
        int32_t next = token(random);
        std::vector<double> ms;
        for (int i = 0; i < 8 + o.decodeTokens; ++i) {
            if (o.profileDecode && (i == 8 || i == 10))
                (void)(i == 8 ? cudaProfilerStart() : cudaProfilerStop());
            const auto start = std::chrono::steady_clock::now();
            auto chosen = engine->decodeNext(*seq, next, sampler);
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (!chosen.ok()) {
                std::fprintf(stderr, "folio-bench: decode: %s\n", chosen.error().message.c_str());
                return 1;
            }
            next = *chosen;
            if (i >= 8)
                ms.push_back(elapsed * 1e3);
        }
        const double floorMs = bytes.at(context) / bandwidth * 1e3;
        const double median = percentile(ms, 0.5), p90 = percentile(ms, 0.9);
        std::printf(
            "{\"bench\":\"decode\",\"context\":%lld,\"tokens\":%d,\"median_ms\":%.3f,"
            "\"p90_ms\":%.3f,\"floor_ms\":%.3f,\"ratio_to_floor\":%.2f,"
            "\"gpu_memory_used_GiB\":%.2f}\n",
            static_cast<long long>(context), o.decodeTokens, median, p90, floorMs, median / floorMs,
            usedGpuBytes() / (1ull << 30));
        table.push_back({"decode ms/token", context, median, p90, floorMs});
        if (o.decodeParts) {
            auto parts = decodePartsAt(*engine, *seq, context, next, sampler, bandwidth);
            if (!parts.ok()) {
                std::fprintf(stderr, "folio-bench: decode parts: %s\n",
                             parts.error().message.c_str());
                return 1;
            }
            partTables.push_back(std::move(*parts));
        }
    }
    std::printf("\n%-18s %10s %12s %10s %10s %8s\n", "measure", "context", "value", "p90", "floor",
                "ratio");
    for (const Row& r : table) {
        std::printf("%-18s %10lld %12.3f %10.3f %10.3f %8.2f\n", r.what.c_str(),
                    static_cast<long long>(r.context), r.value, r.p90, r.floor,
                    r.floor > 0 ? r.value / r.floor : 0.0);
    }
    for (const PartTable& t : partTables)
        printDecodeParts(t, bandwidth);
    std::fflush(stdout);
    if (o.micro)
        microBenchmarks(c, bandwidth);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (arg == "--config")
            o.config = value();
        else if (arg == "--model")
            o.model = value();
        else if (arg == "--contexts" || arg == "--prefill") {
            const std::string text = value();
            auto list = parseList(text);
            if (!list) {
                std::fprintf(stderr,
                             "folio-bench: %s wants token counts like 4096,32768 or none, "
                             "not '%s'\n",
                             arg.c_str(), text.c_str());
                return 2;
            }
            (arg == "--contexts" ? o.contexts : o.prefill) = std::move(*list);
        } else if (arg == "--decode-tokens")
            o.decodeTokens = std::max(100, std::atoi(value().c_str()));
        else if (arg == "--question")
            o.question = std::atoll(value().c_str());
        else if (arg == "--chunk")
            o.chunk = std::atoll(value().c_str());
        else if (arg == "--no-micro")
            o.micro = false;
        else if (arg == "--micro-only")
            o.microOnly = true;
        else if (arg == "--profile-decode")
            o.profileDecode = true;
        else if (arg == "--no-decode-parts")
            o.decodeParts = false;
        else {
            std::fprintf(stderr,
                         "usage: folio-bench [--config kimi-linear-48b-a3b | --model DIR] "
                         "[--contexts 4096,32768,131072|none] [--prefill 4096,32768|none] "
                         "[--decode-tokens N>=100] [--question N] [--chunk N] [--no-micro | "
                         "--micro-only] [--profile-decode] [--no-decode-parts]\n");
            return 2;
        }
    }
    return run(o);
}
