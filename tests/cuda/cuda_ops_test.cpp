// SPDX-License-Identifier: GPL-3.0-or-later
// folio-cuda-ops-test: every launcher of inference/cuda/kernels.h against a CPU computation on
// deterministic random inputs at Kimi Linear's sizes (hidden 2304; KDA 32 heads x 128, conv 4;
// MLA 32 heads, nope 128, rope 64, v 128, latent 512; 256 experts top-8, expert width 1024;
// vocab 163840). Checked:
//   basic   embed, RMSNorm, bf16 conversion, add, SwiGLU, fills, length advance;
//   gemv    plain, RMSNorm on load, residual, SwiGLU (dense and per-expert tables), expert table
//           with ids, row counts that leave a partial last block, the vocab-sized LM head
//           (double-precision dots over the same bf16 weights);
//   kda     launchKdaSteps (head dims 128 and 64; 70, 1, 2, 1, 1 and 5 tokens in sequence, so
//           the conv window and state carry over) against the CPU recurrence of inference/cpu;
//   mla     append across a page boundary, append with query absorption, split attention at
//           decode's grid and at few splits, several tokens, pages of 40 and 16 rows, the merge
//           over NaN-filled unused splits (mma.sync and, on Hopper, wgmma forms), value
//           up-projection;
//   moe     router (sigmoid, plain and grouped, biased/unbiased weights), combine, gather,
//           scatter-add, pair grouping, grouped expert products (direct and tiled forms, the
//           tiled one as mma.sync and, on Hopper, as wgmma);
//   sample  greedy (ties, the maximum on the last token, an odd vocabulary), temperature,
//           top-k and top-p on flat, LM-shaped and tied logits with the repetition penalty,
//           token by token against a host reference, including the exact fallback path;
// One line per check: "PASS name err=... tol=..." or "FAIL ...". Exit 0 when all pass, 1 on any
// failure, 77 (CTest's skip) when no CUDA device is present.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "inference/cpu/cpu_model.h"
#include "inference/cpu/kernels.h"
#include "inference/cuda/kernels.h"
#include "inference/cuda/mla_flash_wgmma.h"
#include "inference/engine.h"
#include "inference/json.h"
#include "inference/kimi_linear_48b_config.h"
#include "inference/model_config.h"
#include "inference/safetensors.h"
#include "inference/state_format.h"

namespace {

namespace cu = folio::inference::cuda;
namespace cpu = folio::inference::cpu;
using folio::inference::bf16ToFloat;
using folio::inference::floatToBf16;

// ---- model sizes ----
constexpr int kHidden = 2304;
constexpr int kKdaHeads = 32, kConvWidth = 4;
constexpr int kMlaHeads = 32, kNope = 128, kRope = 64, kValue = 128, kLatent = 512;
constexpr int kExperts = 256, kTopK = 8, kExpertInner = 1024;
constexpr int kVocab = 163840;

// ---- infrastructure: errors, report, device buffers, random numbers ----
void cudaCheck(cudaError_t error, const std::string& what) {
    if (error != cudaSuccess)
        throw std::runtime_error(what + ": " + cudaGetErrorString(error));
}
#define CUDA_CHECK(expr) cudaCheck((expr), #expr)

// After launches: the launch error, then the execution error.
void finish(const std::string& what) {
    cudaCheck(cudaGetLastError(), what + " (launch)");
    cudaCheck(cudaDeviceSynchronize(), what + " (execution)");
}

class Report {
  public:
    void result(const std::string& name, double err, double tol) {
        const bool ok = err <= tol;  // NaN fails
        std::printf("%s %s err=%.3e tol=%.1e\n", ok ? "PASS" : "FAIL", name.c_str(), err, tol);
        failures_ += ok ? 0 : 1;
    }
    void equal(const std::string& name, long long got, long long want) {
        const bool ok = got == want;
        std::printf("%s %s got=%lld want=%lld\n", ok ? "PASS" : "FAIL", name.c_str(), got, want);
        failures_ += ok ? 0 : 1;
    }
    void error(const std::string& name, const std::string& what) {
        std::printf("FAIL %s: %s\n", name.c_str(), what.c_str());
        ++failures_;
    }
    int failures() const { return failures_; }

  private:
    int failures_ = 0;
};

template <class T>
class Device {
  public:
    explicit Device(size_t count) : count_(count) {
        CUDA_CHECK(
            cudaMalloc(reinterpret_cast<void**>(&data_), std::max<size_t>(1, count) * sizeof(T)));
    }
    explicit Device(const std::vector<T>& host) : Device(host.size()) { upload(host); }
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    Device(Device&& other) noexcept : data_(other.data_), count_(other.count_) {
        other.data_ = nullptr;
    }
    Device& operator=(Device&&) = delete;
    ~Device() { cudaFree(data_); }

    T* get() const { return data_; }
    size_t size() const { return count_; }
    void upload(const std::vector<T>& host) {
        if (host.size() != count_)
            throw std::runtime_error("upload: size mismatch");
        CUDA_CHECK(cudaMemcpy(data_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> download() const {
        std::vector<T> host(count_);
        CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
        return host;
    }

  private:
    T* data_ = nullptr;
    size_t count_ = 0;
};

using Bf16Buffer = Device<uint16_t>;
const cu::bf16* bf(const Bf16Buffer& b) {
    return reinterpret_cast<const cu::bf16*>(b.get());
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

class Rng {
  public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        state_ += 0x9e3779b97f4a7c15ull;
        return splitmix64(state_);
    }
    float uniform(float lo, float hi) {
        return lo + (hi - lo) * static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
    }
    int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }

  private:
    uint64_t state_;
};

std::vector<float> randomFloats(size_t n, Rng& rng, float lo, float hi) {
    std::vector<float> v(n);
    for (float& x : v)
        x = rng.uniform(lo, hi);
    return v;
}
std::vector<uint16_t> randomBf16(size_t n, Rng& rng, float scale) {
    std::vector<uint16_t> v(n);
    for (uint16_t& x : v)
        x = floatToBf16(rng.uniform(-scale, scale));
    return v;
}
std::vector<float> widen(const std::vector<uint16_t>& v) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i)
        out[i] = bf16ToFloat(v[i]);
    return out;
}
// Distinct indices in [0, n).
std::vector<int32_t> distinctIds(int count, int n, Rng& rng) {
    std::vector<int32_t> ids;
    while (static_cast<int>(ids.size()) < count) {
        const int32_t id = rng.below(n);
        if (std::find(ids.begin(), ids.end(), id) == ids.end())
            ids.push_back(id);
    }
    return ids;
}

// ||got - want|| / ||want||.
template <class A, class B>
double relL2(const std::vector<A>& got, const std::vector<B>& want) {
    if (got.size() != want.size())
        return INFINITY;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
        diff += d * d;
        norm += static_cast<double>(want[i]) * static_cast<double>(want[i]);
    }
    return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}
template <class A, class B>
double maxAbs(const std::vector<A>& got, const std::vector<B>& want) {
    if (got.size() != want.size())
        return INFINITY;
    double m = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
        m = std::isnan(d) ? INFINITY : std::max(m, d);
    }
    return m;
}

constexpr size_t sz(int64_t n) {
    return static_cast<size_t>(n);
}

double sigmoidD(double x) {
    return 1.0 / (1.0 + std::exp(-x));
}

// ---- 6. basic kernels (and the vocab-sized matrix, reused by the gemv LM-head check) ----
void testBasic(Report& report) {
    Rng rng(6);
    // Fill: the device generator reproduced on the host.
    const int64_t vocabCount = static_cast<int64_t>(kVocab) * kHidden;
    Bf16Buffer vocabMatrix(sz(vocabCount));
    const uint64_t seed = 0x5eed;
    const float fillScale = 0.05f;
    cu::launchFillRandomBf16(reinterpret_cast<cu::bf16*>(vocabMatrix.get()), vocabCount, seed,
                             fillScale, nullptr);
    finish("launchFillRandomBf16");
    const std::vector<uint16_t> table = vocabMatrix.download();
    double fillErr = 0;
    for (int64_t i = 0; i < vocabCount; ++i) {
        const uint64_t bits = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i)));
        const float u = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
        const float want = bf16ToFloat(floatToBf16((2.0f * u - 1.0f) * fillScale));
        fillErr =
            std::max(fillErr, static_cast<double>(std::fabs(bf16ToFloat(table[sz(i)]) - want)));
    }
    report.result("fill_random_bf16 (max abs)", fillErr, 0.0);

    // Embedding rows, including the first and the last of the vocabulary.
    const std::vector<int32_t> ids = {0, kVocab - 1, 12345, 100000, 7};
    Device<int32_t> dIds(ids);
    Device<float> embedded(ids.size() * kHidden);
    cu::launchEmbed(bf(vocabMatrix), dIds.get(), static_cast<int>(ids.size()), kHidden,
                    embedded.get(), nullptr);
    finish("launchEmbed");
    std::vector<float> wantEmbed;
    for (int32_t id : ids)
        for (int i = 0; i < kHidden; ++i)
            wantEmbed.push_back(bf16ToFloat(table[sz(id) * kHidden + i]));
    report.result("embed (max abs)", maxAbs(embedded.download(), wantEmbed), 0.0);

    // RMSNorm over rows of the hidden size.
    const int rows = 5;
    const auto x = randomFloats(sz(rows) * kHidden, rng, -2, 2);
    const auto w = randomFloats(kHidden, rng, 0.5f, 1.5f);
    Device<float> dx(x), dw(w), dNorm(x.size());
    cu::launchRmsNorm(dx.get(), dw.get(), rows, kHidden, 1e-5f, dNorm.get(), nullptr);
    finish("launchRmsNorm");
    std::vector<double> wantNorm(x.size());
    for (int r = 0; r < rows; ++r) {
        double sum = 0;
        for (int i = 0; i < kHidden; ++i)
            sum += static_cast<double>(x[r * kHidden + i]) * x[r * kHidden + i];
        const double inv = 1.0 / std::sqrt(sum / kHidden + 1e-5);
        for (int i = 0; i < kHidden; ++i)
            wantNorm[r * kHidden + i] = w[i] * x[r * kHidden + i] * inv;
    }
    report.result("rms_norm", relL2(dNorm.download(), wantNorm), 1e-6);

    // bf16 conversion (round to nearest even) and addition: exact.
    const size_t count = 100003;
    const auto values = randomFloats(count, rng, -1000, 1000);
    const auto delta = randomFloats(count, rng, -1, 1);
    Device<float> dValues(values), dDelta(delta);
    Bf16Buffer dBf16(count);
    cu::launchToBf16(dValues.get(), static_cast<int64_t>(count),
                     reinterpret_cast<cu::bf16*>(dBf16.get()), nullptr);
    finish("launchToBf16");
    const auto gotBf16 = dBf16.download();
    long long mismatches = 0;
    for (size_t i = 0; i < count; ++i)
        mismatches += gotBf16[i] != floatToBf16(values[i]) ? 1 : 0;
    report.equal("to_bf16 mismatches", mismatches, 0);
    // hi = bf16(x), lo = bf16(x - hi); bf16 -> float: exact.
    Bf16Buffer dHi(count), dLo(count);
    Device<float> dWide(count);
    cu::launchSplitBf16(dValues.get(), static_cast<int64_t>(count),
                        reinterpret_cast<cu::bf16*>(dHi.get()),
                        reinterpret_cast<cu::bf16*>(dLo.get()), nullptr);
    cu::launchToFloat(bf(dBf16), static_cast<int64_t>(count), dWide.get(), nullptr);
    finish("launchSplitBf16/launchToFloat");
    const auto hi = dHi.download(), lo = dLo.download();
    const auto wide = dWide.download();
    long long splitMismatches = 0, wideMismatches = 0;
    for (size_t i = 0; i < count; ++i) {
        const uint16_t wantHi = floatToBf16(values[i]);
        splitMismatches += hi[i] != wantHi || lo[i] != floatToBf16(values[i] - bf16ToFloat(wantHi));
        wideMismatches += wide[i] != bf16ToFloat(gotBf16[i]);
    }
    report.equal("split_bf16 mismatches", splitMismatches, 0);
    report.equal("to_float mismatches", wideMismatches, 0);
    cu::launchAdd(dValues.get(), dDelta.get(), static_cast<int64_t>(count), nullptr);
    finish("launchAdd");
    std::vector<float> wantSum(count);
    for (size_t i = 0; i < count; ++i)
        wantSum[i] = values[i] + delta[i];
    report.result("add (max abs)", maxAbs(dValues.download(), wantSum), 0.0);

    // SwiGLU over [gate | up] rows.
    const int swRows = 3;
    const auto gateUp = randomFloats(sz(swRows) * 2 * kExpertInner, rng, -4, 4);
    Device<float> dGateUp(gateUp), dSw(sz(swRows) * kExpertInner);
    cu::launchSwiglu(dGateUp.get(), swRows, kExpertInner, dSw.get(), nullptr);
    finish("launchSwiglu");
    std::vector<double> wantSw(dSw.size());
    for (int r = 0; r < swRows; ++r)
        for (int i = 0; i < kExpertInner; ++i) {
            const double g = gateUp[r * 2 * kExpertInner + i];
            wantSw[r * kExpertInner + i] =
                g * sigmoidD(g) * gateUp[r * 2 * kExpertInner + kExpertInner + i];
        }
    report.result("swiglu", relL2(dSw.download(), wantSw), 2e-6);

    // Fill with a constant; advance a device length.
    Device<float> filled(1000);
    cu::launchFillFloat(filled.get(), 1000, 0.25f, nullptr);
    Device<int32_t> length(std::vector<int32_t>{41});
    cu::launchAdvanceLength(length.get(), 7, nullptr);
    finish("launchFillFloat/launchAdvanceLength");
    report.result("fill_float (max abs)",
                  maxAbs(filled.download(), std::vector<float>(1000, 0.25f)), 0.0);
    report.equal("advance_length", length.download()[0], 48);

    // The LM head: the vocab matrix with the final norm applied on load.
    const auto hidden = randomFloats(kHidden, rng, -3, 3);
    Device<float> dHidden(hidden), logits(kVocab);
    const cu::GemvArgs a{.matrix = bf(vocabMatrix),
                         .rows = kVocab,
                         .cols = kHidden,
                         .x = dHidden.get(),
                         .normWeight = dw.get(),
                         .normEps = 1e-5f,
                         .y = logits.get()};
    cu::launchGemv(a, nullptr);
    finish("launchGemv lm_head");
    double sum = 0;
    for (float v : hidden)
        sum += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(sum / kHidden + 1e-5);
    std::vector<double> xn(kHidden), want(kVocab);
    for (int i = 0; i < kHidden; ++i)
        xn[i] = w[i] * (hidden[i] * inv);
    for (int r = 0; r < kVocab; ++r) {
        const uint16_t* row = table.data() + sz(r) * kHidden;
        double acc = 0;
        for (int i = 0; i < kHidden; ++i)
            acc += bf16ToFloat(row[i]) * xn[i];
        want[r] = acc;
    }
    report.result("gemv_lm_head_163840x2304_norm", relL2(logits.download(), want), 1e-5);
}

// ---- 1. gemv ----
// y[item] = (residual) + W_item x_item (double) over the bf16 weights in `w` (float copies).
std::vector<double> refGemv(const std::vector<const std::vector<float>*>& weights, int rows,
                            int cols, const std::vector<double>& x, int64_t xStride) {
    std::vector<double> y(weights.size() * rows);
    for (size_t item = 0; item < weights.size(); ++item) {
        const float* W = weights[item]->data();
        const double* xi = x.data() + item * xStride;
        for (int r = 0; r < rows; ++r) {
            double acc = 0;
            for (int k = 0; k < cols; ++k)
                acc += static_cast<double>(W[sz(r) * cols + k]) * xi[k];
            y[item * rows + r] = acc;
        }
    }
    return y;
}

void testGemv(Report& report) {
    Rng rng(1);
    const int rows = 4096, cols = kHidden;
    const auto wBits = randomBf16(sz(rows) * cols, rng, 0.05f);
    const auto uBits = randomBf16(sz(rows) * cols, rng, 0.05f);
    const auto wF = widen(wBits), uF = widen(uBits);
    Bf16Buffer dW(wBits), dU(uBits);
    const auto x = randomFloats(cols, rng, -2, 2);
    const auto norm = randomFloats(cols, rng, 0.5f, 1.5f);
    const auto residual = randomFloats(rows, rng, -1, 1);
    Device<float> dx(x), dNorm(norm), dRes(residual), dy(rows);
    const std::vector<double> xd(x.begin(), x.end());

    const cu::GemvArgs base{
        .matrix = bf(dW), .rows = rows, .cols = cols, .x = dx.get(), .y = dy.get()};
    const auto plain = refGemv({&wF}, rows, cols, xd, 0);

    cu::launchGemv(base, nullptr);
    finish("launchGemv plain");
    report.result("gemv_plain_4096x2304", relL2(dy.download(), plain), 1e-5);

    cu::GemvArgs normed = base;
    normed.normWeight = dNorm.get();
    normed.normEps = 1e-5f;
    cu::launchGemv(normed, nullptr);
    finish("launchGemv norm");
    double sum = 0;
    for (float v : x)
        sum += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(sum / cols + 1e-5);
    std::vector<double> xn(cols);
    for (int i = 0; i < cols; ++i)
        xn[i] = norm[i] * (x[i] * inv);
    report.result("gemv_norm_on_load", relL2(dy.download(), refGemv({&wF}, rows, cols, xn, 0)),
                  1e-5);

    cu::GemvArgs withResidual = base;
    withResidual.residual = dRes.get();
    cu::launchGemv(withResidual, nullptr);
    finish("launchGemv residual");
    std::vector<double> wantRes = plain;
    for (int r = 0; r < rows; ++r)
        wantRes[r] += residual[r];
    report.result("gemv_residual", relL2(dy.download(), wantRes), 1e-5);

    cu::GemvArgs swiglu = base;
    swiglu.up = bf(dU);
    cu::launchGemv(swiglu, nullptr);
    finish("launchGemv swiglu");
    const auto up = refGemv({&uF}, rows, cols, xd, 0);
    std::vector<double> wantSw(rows);
    for (int r = 0; r < rows; ++r)
        wantSw[r] = plain[r] * sigmoidD(plain[r]) * up[r];
    report.result("gemv_swiglu_dense", relL2(dy.download(), wantSw), 1e-5);

    // Products launched as dependents of one another, each reading the vector the one before it
    // wrote (as decode chains them): a product that read its input before the previous one had
    // finished writing it would drift from the reference.
    {
        const int n = kHidden, links = 12;
        const auto sqBits = randomBf16(sz(n) * n, rng, 0.05f);
        const auto sqF = widen(sqBits);
        Bf16Buffer dSq(sqBits);
        const auto start = randomFloats(n, rng, -2, 2);
        Device<float> ping(start), pong(n);
        cudaStream_t stream = nullptr;
        cudaCheck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "chain stream");
        std::vector<double> want(start.begin(), start.end());
        for (int link = 0; link < links; ++link) {
            float* in = link % 2 == 0 ? ping.get() : pong.get();
            float* out = link % 2 == 0 ? pong.get() : ping.get();
            const cu::GemvArgs step{.matrix = bf(dSq),
                                    .rows = n,
                                    .cols = n,
                                    .x = in,
                                    .normWeight = dNorm.get(),
                                    .normEps = 1e-5f,
                                    .residual = in,
                                    .y = out};
            cu::launchGemv(step, stream);
            double squares = 0;
            for (double v : want)
                squares += v * v;
            const double scale = 1.0 / std::sqrt(squares / n + 1e-5);
            std::vector<double> input(sz(n));
            for (int i = 0; i < n; ++i)
                input[sz(i)] = norm[sz(i)] * (want[sz(i)] * scale);
            const auto product = refGemv({&sqF}, n, n, input, 0);
            for (int i = 0; i < n; ++i)
                want[sz(i)] += product[sz(i)];
        }
        cudaCheck(cudaGetLastError(), "launchGemv chain (launch)");
        cudaCheck(cudaStreamSynchronize(stream), "launchGemv chain (execution)");
        cudaCheck(cudaStreamDestroy(stream), "chain stream");
        report.result("gemv_dependent_chain_12",
                      relL2((links % 2 == 0 ? ping : pong).download(), want), 1e-5);
    }

    // Experts: 256-entry tables; the 8 chosen point at distinct matrices, the others at a poison
    // matrix (all 8.0) so a wrong lookup shows. Gate/up [1024][2304], down [2304][1024].
    const auto chosen = distinctIds(kTopK, kExperts, rng);
    const size_t expertSize = sz(kExpertInner) * kHidden;
    Bf16Buffer poison(std::vector<uint16_t>(expertSize, floatToBf16(8.0f)));
    std::vector<std::vector<float>> gateF, upF, downF;
    std::vector<Bf16Buffer> gateD, upD, downD;
    for (int j = 0; j < kTopK; ++j) {
        auto g = randomBf16(expertSize, rng, 0.05f), u = randomBf16(expertSize, rng, 0.05f),
             d = randomBf16(expertSize, rng, 0.05f);
        gateF.push_back(widen(g));
        upF.push_back(widen(u));
        downF.push_back(widen(d));
        gateD.emplace_back(g);
        upD.emplace_back(u);
        downD.emplace_back(d);
    }
    std::vector<const cu::bf16*> gateTable(kExperts, bf(poison)), upTable = gateTable,
                                                                  downTable = gateTable;
    for (int j = 0; j < kTopK; ++j) {
        gateTable[sz(chosen[j])] = bf(gateD[j]);
        upTable[sz(chosen[j])] = bf(upD[j]);
        downTable[sz(chosen[j])] = bf(downD[j]);
    }
    Device<const cu::bf16*> dGateTable(gateTable), dUpTable(upTable), dDownTable(downTable);
    Device<int32_t> dChosen(chosen);
    Device<float> dInner(sz(kTopK) * kExpertInner);

    const cu::GemvArgs experts{.table = dGateTable.get(),
                               .upTable = dUpTable.get(),
                               .ids = dChosen.get(),
                               .rows = kExpertInner,
                               .cols = kHidden,
                               .items = kTopK,
                               .x = dx.get(),  // every expert reads the same hidden state
                               .xItemStride = 0,
                               .y = dInner.get(),
                               .yItemStride = kExpertInner};
    cu::launchGemv(experts, nullptr);
    finish("launchGemv expert swiglu");
    std::vector<const std::vector<float>*> gPtrs, uPtrs, dPtrs;
    for (int j = 0; j < kTopK; ++j) {
        gPtrs.push_back(&gateF[j]);
        uPtrs.push_back(&upF[j]);
        dPtrs.push_back(&downF[j]);
    }
    std::vector<double> xRep;
    for (int j = 0; j < kTopK; ++j)
        xRep.insert(xRep.end(), xd.begin(), xd.end());
    const auto g = refGemv(gPtrs, kExpertInner, kHidden, xRep, kHidden);
    const auto u = refGemv(uPtrs, kExpertInner, kHidden, xRep, kHidden);
    std::vector<double> wantInner(g.size());
    for (size_t i = 0; i < g.size(); ++i)
        wantInner[i] = g[i] * sigmoidD(g[i]) * u[i];
    report.result("gemv_experts_swiglu_table_ids", relL2(dInner.download(), wantInner), 1e-5);

    // Down projections with per-item inputs and a per-item residual.
    const auto innerX = randomFloats(sz(kTopK) * kExpertInner, rng, -1, 1);
    const auto innerRes = randomFloats(sz(kTopK) * kHidden, rng, -1, 1);
    Device<float> dInnerX(innerX), dInnerRes(innerRes), dOut(innerRes.size());
    const cu::GemvArgs down{.table = dDownTable.get(),
                            .ids = dChosen.get(),
                            .rows = kHidden,
                            .cols = kExpertInner,
                            .items = kTopK,
                            .x = dInnerX.get(),
                            .xItemStride = kExpertInner,
                            .residual = dInnerRes.get(),
                            .y = dOut.get(),
                            .yItemStride = kHidden};
    cu::launchGemv(down, nullptr);
    finish("launchGemv expert down");
    auto wantDown = refGemv(dPtrs, kHidden, kExpertInner,
                            std::vector<double>(innerX.begin(), innerX.end()), kExpertInner);
    for (size_t i = 0; i < wantDown.size(); ++i)
        wantDown[i] += innerRes[i];
    report.result("gemv_experts_down_table_ids_residual", relL2(dOut.download(), wantDown), 1e-5);

    // Row counts that leave the last block a partial share: 4096 columns (o_proj) over 999 rows
    // in place, 2304 columns over 1001 rows with SwiGLU.
    {
        const int oRows = 999, oCols = 4096;
        const auto oBits = randomBf16(sz(oRows) * oCols, rng, 0.05f);
        const auto oF = widen(oBits);
        Bf16Buffer dO(oBits);
        const auto oX = randomFloats(oCols, rng, -1, 1);
        const auto oRes = randomFloats(oRows, rng, -1, 1);
        Device<float> dOX(oX), dORes(oRes);
        const cu::GemvArgs inPlace{.matrix = bf(dO),
                                   .rows = oRows,
                                   .cols = oCols,
                                   .x = dOX.get(),
                                   .residual = dORes.get(),
                                   .y = dORes.get()};
        cu::launchGemv(inPlace, nullptr);
        finish("launchGemv 999x4096 in place");
        auto want = refGemv({&oF}, oRows, oCols, std::vector<double>(oX.begin(), oX.end()), 0);
        for (int r = 0; r < oRows; ++r)
            want[sz(r)] += oRes[sz(r)];
        report.result("gemv_partial_share_4096_in_place", relL2(dORes.download(), want), 1e-5);

        const int sRows = 1001;
        Device<float> dS(sRows);
        cu::GemvArgs oddSwiglu = swiglu;
        oddSwiglu.rows = sRows;
        oddSwiglu.y = dS.get();
        cu::launchGemv(oddSwiglu, nullptr);
        finish("launchGemv swiglu 1001 rows");
        std::vector<double> wantS(wantSw.begin(), wantSw.begin() + sRows);
        report.result("gemv_partial_share_swiglu", relL2(dS.download(), wantS), 1e-5);
    }
}

// ---- 2. KDA ----
struct KdaCase {
    int heads, headDim;
    int64_t projStride, gatesStride;
    std::vector<float> taps, decayRate, dtBias, outNorm;
    std::vector<float> window, state;  // the CPU's copies, advanced by the reference
};

// The layer between the projections and o_proj, as inference/cpu/kda_layer.cpp computes it.
std::vector<float> kdaReference(KdaCase& c, const std::vector<float>& proj,
                                const std::vector<float>& gates, int T, float eps) {
    const int H = c.heads, d = c.headDim, P = H * d, W = kConvWidth, hist = W - 1;
    std::vector<float> conv[3];
    for (int part = 0; part < 3; ++part) {
        // Causal depthwise convolution over [window; new rows], SiLU; the window slides.
        std::vector<float> ext(sz(static_cast<int64_t>(hist + T) * P));
        std::copy_n(c.window.begin() + part * hist * P, hist * P, ext.begin());
        for (int t = 0; t < T; ++t)
            std::copy_n(proj.begin() + t * c.projStride + part * P, P,
                        ext.begin() + (hist + t) * P);
        conv[part].resize(sz(static_cast<int64_t>(T) * P));
        for (int t = 0; t < T; ++t)
            for (int ch = 0; ch < P; ++ch) {
                float acc = 0.0f;
                for (int j = 0; j < W; ++j)
                    acc += c.taps[sz((static_cast<int64_t>(part) * P + ch) * W + j)] *
                           ext[sz(static_cast<int64_t>(t + j) * P + ch)];
                conv[part][sz(static_cast<int64_t>(t) * P + ch)] = cpu::silu(acc);
            }
        std::copy_n(ext.begin() + static_cast<int64_t>(T) * P, hist * P,
                    c.window.begin() + part * hist * P);
    }
    std::vector<float> g(sz(static_cast<int64_t>(T) * P)), beta(sz(static_cast<int64_t>(T) * H));
    for (int t = 0; t < T; ++t) {
        for (int i = 0; i < P; ++i)
            g[sz(t * P + i)] = -c.decayRate[sz(i / d)] *
                               cpu::softplus(gates[sz(t * c.gatesStride + i)] + c.dtBias[sz(i)]);
        for (int h = 0; h < H; ++h)
            beta[sz(t * H + h)] = cpu::sigmoid(proj[sz(t * c.projStride + 3 * P + h)]);
    }
    auto l2 = [&](std::vector<float>& v, float scale) {
        for (int row = 0; row < T * H; ++row) {
            float* p = v.data() + static_cast<int64_t>(row) * d;
            float s = 0.0f;
            for (int i = 0; i < d; ++i)
                s += p[i] * p[i];
            const float k = scale / std::sqrt(s + 1e-6f);
            for (int i = 0; i < d; ++i)
                p[i] *= k;
        }
    };
    l2(conv[0], 1.0f / std::sqrt(static_cast<float>(d)));
    l2(conv[1], 1.0f);
    std::vector<float> o(sz(static_cast<int64_t>(T) * P));
    for (int h = 0; h < H; ++h) {
        cpu::KdaHeadInputs in;
        in.tokens = T;
        in.keyDim = d;
        in.valueDim = d;
        in.rowStride = P;
        in.betaStride = H;
        in.q = conv[0].data() + h * d;
        in.k = conv[1].data() + h * d;
        in.v = conv[2].data() + h * d;
        in.g = g.data() + h * d;
        in.beta = beta.data() + h;
        cpu::kdaRecurrentHead(in, c.state.data() + static_cast<int64_t>(h) * d * d,
                              o.data() + h * d);
    }
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h) {
            float* x = o.data() + static_cast<int64_t>(t) * P + h * d;
            const float* gate = gates.data() + t * c.gatesStride + P + h * d;
            float s = 0.0f;
            for (int i = 0; i < d; ++i)
                s += x[i] * x[i];
            const float inv = 1.0f / std::sqrt(s / static_cast<float>(d) + eps);
            for (int i = 0; i < d; ++i)
                x[i] = c.outNorm[sz(i)] * (x[i] * inv) * cpu::sigmoid(gate[i]);
        }
    return o;
}

// A KDA layer's random parameters, window and state at the real head count.
KdaCase randomKdaCase(int headDim, Rng& rng) {
    const int H = kKdaHeads, d = headDim, P = H * d, hist = kConvWidth - 1;
    KdaCase c{H, d, 3 * P + H + 5, 2 * P + 3, {}, {}, {}, {}, {}, {}};
    c.taps = randomFloats(sz(3) * P * kConvWidth, rng, -0.6f, 0.6f);
    for (int h = 0; h < H; ++h)
        c.decayRate.push_back(std::exp(rng.uniform(-2.0f, 1.0f)));
    c.dtBias = randomFloats(P, rng, -1, 1);
    c.outNorm = randomFloats(d, rng, 0.5f, 1.5f);
    c.window = randomFloats(sz(3) * hist * P, rng, -1, 1);
    c.state = randomFloats(sz(H) * d * d, rng, -0.2f, 0.2f);
    return c;
}

// T tokens' projections (q, k, v, beta logits) and gates (forget, output) for case c.
void randomKdaInputs(const KdaCase& c, int T, Rng& rng, std::vector<float>& proj,
                     std::vector<float>& gates) {
    const int H = c.heads, P = H * c.headDim;
    proj.assign(sz(T * c.projStride), 0.0f);
    gates.assign(sz(T * c.gatesStride), 0.0f);
    for (int t = 0; t < T; ++t) {
        for (int i = 0; i < 3 * P; ++i)
            proj[sz(t * c.projStride + i)] = rng.uniform(-1, 1);
        for (int h = 0; h < H; ++h)
            proj[sz(t * c.projStride + 3 * P + h)] = rng.uniform(-3, 3);
        for (int i = 0; i < P; ++i)
            gates[sz(t * c.gatesStride + i)] = rng.uniform(-3, 1);
        for (int i = 0; i < P; ++i)
            gates[sz(t * c.gatesStride + P + i)] = rng.uniform(-3, 3);
    }
}

void testKda(Report& report, int headDim) {
    Rng rng(200 + static_cast<uint64_t>(headDim));
    const int H = kKdaHeads, d = headDim, P = H * d;
    const float eps = 1e-5f;
    KdaCase c = randomKdaCase(d, rng);
    Device<float> dTaps(c.taps), dDecay(c.decayRate), dDt(c.dtBias), dOutNorm(c.outNorm);
    Device<float> dWindow(c.window), dState(c.state);

    // Calls in sequence, each continuing from the window and state the one before left: a
    // prompt, decode steps of one token, and short runs (two shorter than the window).
    int call = 0;
    for (int T : {70, 1, 2, 1, 1, 5}) {
        const std::string name = "kda_d" + std::to_string(d) + "_call" + std::to_string(++call) +
                                 "_t" + std::to_string(T);
        std::vector<float> proj, gates;
        randomKdaInputs(c, T, rng, proj, gates);
        Device<float> dProj(proj), dGates(gates), dOut(sz(T) * P);
        const cu::KdaStepArgs a{.proj = dProj.get(),
                                .projStride = c.projStride,
                                .gates = dGates.get(),
                                .gatesStride = c.gatesStride,
                                .convTaps = dTaps.get(),
                                .convWindow = dWindow.get(),
                                .state = dState.get(),
                                .decayRate = dDecay.get(),
                                .dtBias = dDt.get(),
                                .outNorm = dOutNorm.get(),
                                .eps = eps,
                                .out = dOut.get(),
                                .tokens = T,
                                .heads = H,
                                .headDim = d,
                                .convWidth = kConvWidth,
                                .stateSettled = false};  // steps follow each other on one state
        if (!cu::kdaHeadDimSupported(d))
            throw std::runtime_error("kdaHeadDimSupported(" + std::to_string(d) + ") is false");
        cu::launchKdaSteps(a, nullptr);
        finish("launchKdaSteps " + name);
        const auto want = kdaReference(c, proj, gates, T, eps);
        report.result(name + "_out", relL2(dOut.download(), want), 1e-4);
        report.result(name + "_state", relL2(dState.download(), c.state), 1e-4);
        report.result(name + "_window (max abs)", maxAbs(dWindow.download(), c.window), 0.0);
    }
}

// The chunked prefill form (head size 128) against the CPU recurrence (kdaReference), each call
// continuing the state and window of the one before.
//
// Tolerances (relative L2). The chunked form is a different order of operations and runs its
// products on tensor cores. Every product, those that feed the state (L, W, U, W S, K̃ᵀ V') and
// those that feed only the outputs (A, (Q e^Γ) S, A V'), has TF32 operands rounded to nearest
// (unit roundoff 2^-11 = 4.9e-4) with fp32 accumulation; rounding errors are independent from
// term to term, so the state comes out about 4e-4 off and does not drift over long prompts (the
// decay contracts old errors): 2e-3 leaves a margin of about 5. The outputs carry the state's
// error plus their own products' and come out about as far off, before and after the gated
// RMSNorm: 1.2e-3, a margin of about 3, which bf16 operands on the output path (unit roundoff
// 2^-8: q, Q e^Γ and A in bf16 gave about 2.6e-3 here) fail. An indexing or decay-factor mistake
// gives errors of order 1 (or NaN, which fails).
constexpr double kChunkedOutTol = 1.2e-3, kChunkedStateTol = 2e-3;

// A chunked layer's device side: parameters, window and state, carried from call to call.
struct ChunkedDevice {
    Device<float> taps, decay, dt, outNorm, window, state;
    explicit ChunkedDevice(const KdaCase& c)
        : taps(c.taps),
          decay(c.decayRate),
          dt(c.dtBias),
          outNorm(c.outNorm),
          window(c.window),
          state(c.state) {}
    // One call of T tokens; returns its output rows.
    std::vector<float> run(const KdaCase& c, const std::vector<float>& proj,
                           const std::vector<float>& gates, int T, float eps,
                           const std::string& name) {
        const int H = c.heads, P = H * c.headDim;
        Device<float> dProj(proj), dGates(gates), dOut(sz(T) * P);
        Device<float> chunks(sz(cu::kdaChunkedScratchFloats(T, H)));
        cu::KdaChunkedArgs a;
        a.proj = dProj.get();
        a.projStride = c.projStride;
        a.gates = dGates.get();
        a.gatesStride = c.gatesStride;
        a.convTaps = taps.get();
        a.convWindow = window.get();
        a.state = state.get();
        a.decayRate = decay.get();
        a.dtBias = dt.get();
        a.outNorm = outNorm.get();
        a.eps = eps;
        a.out = dOut.get();
        a.tokens = T;
        a.heads = H;
        a.convWidth = kConvWidth;
        a.chunks = chunks.get();
        cu::launchKdaChunked(a, nullptr);
        finish("launchKdaChunked " + name);
        return dOut.download();
    }
};

// relL2 over the rows [h * rowLength, (h + 1) * rowLength) of every `period` floats, heads h in
// `heads` (a subset of the state or of the output rows).
double relL2Heads(const std::vector<float>& got, const std::vector<float>& want, int rowLength,
                  int period, const std::vector<int>& heads) {
    if (got.size() != want.size())
        return INFINITY;
    std::vector<double> g, w;
    for (size_t base = 0; base < got.size(); base += sz(period))
        for (int h : heads)
            for (int i = 0; i < rowLength; ++i) {
                g.push_back(got[base + sz(h) * rowLength + i]);
                w.push_back(want[base + sz(h) * rowLength + i]);
            }
    return relL2(g, w);
}

void testKdaChunked(Report& report) {
    const int H = kKdaHeads, d = 128, P = H * d;
    const float eps = 1e-5f;
    if (!cu::kdaChunkedSupported(d, kConvWidth))
        throw std::runtime_error("kdaChunkedSupported(128) is false");
    CUDA_CHECK(cu::configureKdaChunked());

    // 1. Short calls in sequence: two whole chunks and a short one, one short chunk, exactly one
    //    chunk, a single token, one chunk short of two.
    {
        Rng rng(300);
        KdaCase c = randomKdaCase(d, rng);
        ChunkedDevice dev(c);
        for (int T : {150, 5, 64, 1, 127}) {
            const std::string name = "kda_chunked_t" + std::to_string(T);
            std::vector<float> proj, gates;
            randomKdaInputs(c, T, rng, proj, gates);
            const auto got = dev.run(c, proj, gates, T, eps, name);
            const auto want = kdaReference(c, proj, gates, T, eps);
            report.result(name + "_out", relL2(got, want), kChunkedOutTol);
            report.result(name + "_state", relL2(dev.state.download(), c.state), kChunkedStateTol);
            report.result(name + "_window (max abs)", maxAbs(dev.window.download(), c.window), 0.0);
        }
    }

    // 2. A long prompt (4,133 tokens) in uneven calls against the recurrence call by call, and
    //    the same prompt in one call from the same start: states and windows must agree.
    {
        Rng rng(301);
        KdaCase c = randomKdaCase(d, rng);
        const std::vector<int> calls = {1000, 2048, 1085};
        int total = 0;
        for (int T : calls)
            total += T;
        std::vector<float> proj, gates;
        randomKdaInputs(c, total, rng, proj, gates);
        ChunkedDevice split(c), whole(c);
        std::vector<float> splitOut;
        int at = 0;
        for (int T : calls) {
            const std::string name =
                "kda_chunked_long_call" + std::to_string(at) + "+" + std::to_string(T);
            const std::vector<float> p(proj.begin() + at * c.projStride,
                                       proj.begin() + (at + T) * c.projStride);
            const std::vector<float> g(gates.begin() + at * c.gatesStride,
                                       gates.begin() + (at + T) * c.gatesStride);
            const auto got = split.run(c, p, g, T, eps, name);
            const auto want = kdaReference(c, p, g, T, eps);
            report.result(name + "_out", relL2(got, want), kChunkedOutTol);
            report.result(name + "_state", relL2(split.state.download(), c.state),
                          kChunkedStateTol);
            splitOut.insert(splitOut.end(), got.begin(), got.end());
            at += T;
        }
        const auto wholeOut = whole.run(c, proj, gates, total, eps, "kda_chunked_long_whole");
        report.result("kda_chunked_long_whole_state", relL2(whole.state.download(), c.state),
                      kChunkedStateTol);
        report.result("kda_chunked_long_whole_vs_split_state",
                      relL2(whole.state.download(), split.state.download()), kChunkedStateTol);
        report.result("kda_chunked_long_whole_vs_split_out", relL2(wholeOut, splitOut),
                      kChunkedOutTol);
        report.result("kda_chunked_long_whole_window (max abs)",
                      maxAbs(whole.window.download(), c.window), 0.0);
    }

    // 3. Steep decays: in the even heads exp(A_log) in [7, 20]; their channels 0..63 get forget
    //    inputs in [-6, 4], so the cumulative log-decay falls by hundreds within a chunk
    //    (e^{-Γ} overflows fp32 past 88) and past the direct-sum threshold within most
    //    sub-chunks, while channels 64..127 get [-8, -5] and decay slowly: both kinds of channel
    //    in the same diagonal blocks. Odd heads keep the ordinary case. Calls of 200 and 77.
    {
        Rng rng(302);
        KdaCase c = randomKdaCase(d, rng);
        for (int h = 0; h < H; h += 2)
            c.decayRate[sz(h)] = std::exp(rng.uniform(2.0f, 3.0f));
        ChunkedDevice dev(c);
        std::vector<int> steepHeads;
        for (int h = 0; h < H; h += 2)
            steepHeads.push_back(h);
        double fall = 0;  // the largest fall of Γ within a chunk of 64, over heads and channels
        for (int T : {200, 77}) {
            const std::string name = "kda_chunked_steep_t" + std::to_string(T);
            std::vector<float> proj, gates;
            randomKdaInputs(c, T, rng, proj, gates);
            for (int t = 0; t < T; ++t)
                for (int h : steepHeads)
                    for (int i = 0; i < d; ++i)
                        gates[sz(t * c.gatesStride + h * d + i)] =
                            i < d / 2 ? rng.uniform(-6.0f, 4.0f) : rng.uniform(-8.0f, -5.0f);
            for (int h : steepHeads)
                for (int i = 0; i < d; ++i)
                    for (int t0 = 0; t0 < T; t0 += 64) {
                        double sum = 0;
                        for (int t = t0; t < std::min(T, t0 + 64); ++t)
                            sum += c.decayRate[sz(h)] *
                                   cpu::softplus(gates[sz(t * c.gatesStride + h * d + i)] +
                                                 c.dtBias[sz(h * d + i)]);
                        fall = std::max(fall, sum);
                    }
            const auto got = dev.run(c, proj, gates, T, eps, name);
            const auto want = kdaReference(c, proj, gates, T, eps);
            report.result(name + "_out", relL2(got, want), kChunkedOutTol);
            report.result(name + "_out_steep_heads", relL2Heads(got, want, d, P, steepHeads),
                          kChunkedOutTol);
            const auto state = dev.state.download();
            report.result(name + "_state", relL2(state, c.state), kChunkedStateTol);
            report.result(name + "_state_steep_heads",
                          relL2Heads(state, c.state, d * d, P * d, steepHeads), kChunkedStateTol);
        }
        report.equal("kda_chunked_steep Γ falls by more than 100 within a chunk", fall > 100, 1);
    }
}

// ---- 3. MLA ----
void testMla(Report& report) {
    Rng rng(3);
    const int H = kMlaHeads, r = kLatent, width = kLatent + kRope, qkDim = kNope + kRope;
    const int pageRows = 4096, pageCount = 3;
    const size_t pageSize = sz(pageRows) * width;

    // The up-projection kv_b_proj: [H * (nope + v)][r].
    const auto kvBBits = randomBf16(sz(H) * (kNope + kValue) * r, rng, 0.06f);
    const auto kvB = widen(kvBBits);
    Bf16Buffer dKvB(kvBBits);
    auto kvBAt = [&](int h, int row, int j) {
        return static_cast<double>(kvB[(sz(h) * (kNope + kValue) + row) * r + j]);
    };

    // Cache pages with random rows; a page table on the device.
    std::vector<std::vector<uint16_t>> pages;
    std::vector<Bf16Buffer> dPages;
    std::vector<cu::bf16*> pagePtrs;
    for (int p = 0; p < pageCount; ++p) {
        pages.push_back(randomBf16(pageSize, rng, 1.0f));
        dPages.emplace_back(pages.back());
        pagePtrs.push_back(reinterpret_cast<cu::bf16*>(dPages.back().get()));
    }
    Device<cu::bf16*> dPageTable(pagePtrs);
    cu::LatentCache cache;
    cache.pages = dPageTable.get();
    cache.pageRows = pageRows;
    cache.width = width;
    std::vector<std::vector<float>> pagesF;  // float copies for the reference
    for (const auto& page : pages)
        pagesF.push_back(widen(page));
    auto cacheAt = [&](int64_t row, int j) {
        return static_cast<double>(pagesF[sz(row / pageRows)][sz(row % pageRows) * width + j]);
    };

    // Append: 12 rows at 4090 .. 4101, across the boundary of pages 0 and 1, once alone (as the
    // flash prefill runs it) and once with the query absorption in the same launch (as the
    // absorbed attention runs it): qLatent[t][h][j] = sum_n q_nope[t][h][n] W_UK_h[n][j].
    const int64_t qStride = static_cast<int64_t>(H) * qkDim + 16;
    for (const bool absorb : {false, true}) {
        const int past = 4090, T = 12;
        const int64_t stride = width + 8;
        const auto kvA = randomFloats(sz(T * stride), rng, -2, 2);
        const auto norm = randomFloats(r, rng, 0.5f, 1.5f);
        const auto q = randomFloats(sz(T * qStride), rng, -1, 1);
        Device<float> dKvA(kvA), dNorm(norm), dq(q), dqLatent(sz(T) * H * r);
        Device<int32_t> dLength(std::vector<int32_t>{past});
        const std::string launcher = absorb ? "launchMlaAppendAndAbsorb" : "launchMlaAppend";
        if (absorb)
            cu::launchMlaAppendAndAbsorb(dKvA.get(), stride, dNorm.get(), 1e-6f, cache,
                                         dLength.get(), dq.get(), qStride, bf(dKvB), H, kNope,
                                         kRope, kValue, r, T, dqLatent.get(), nullptr);
        else
            cu::launchMlaAppend(dKvA.get(), stride, dNorm.get(), 1e-6f, r, cache, dLength.get(), T,
                                nullptr);
        finish(launcher);
        const std::string tag = absorb ? "_with_absorb" : "";
        if (absorb) {
            std::vector<double> want(dqLatent.size());
            for (int t = 0; t < T; ++t)
                for (int h = 0; h < H; ++h)
                    for (int j = 0; j < r; ++j) {
                        double acc = 0;
                        for (int n = 0; n < kNope; ++n)
                            acc += q[sz(t * qStride + h * qkDim + n)] * kvBAt(h, n, j);
                        want[(sz(t) * H + h) * r + j] = acc;
                    }
            report.result("mla_absorb_query", relL2(dqLatent.download(), want), 1e-5);
        }
        const auto page0 = dPages[0].download(), page1 = dPages[1].download();
        double latentErr = 0, ropeErr = 0;
        for (int t = 0; t < T; ++t) {
            const int64_t pos = past + t;
            const uint16_t* got =
                (pos < pageRows ? page0.data() : page1.data()) + (pos % pageRows) * width;
            const float* row = kvA.data() + t * stride;
            double sum = 0;
            for (int j = 0; j < r; ++j)
                sum += static_cast<double>(row[j]) * row[j];
            const double inv = 1.0 / std::sqrt(sum / r + 1e-6);
            for (int j = 0; j < r; ++j) {
                const double want = norm[j] * (row[j] * inv);
                latentErr = std::max(latentErr, std::fabs(bf16ToFloat(got[j]) - want) /
                                                    std::max(std::fabs(want), 1e-3));
            }
            for (int j = r; j < width; ++j)
                ropeErr =
                    std::max(ropeErr, static_cast<double>(std::fabs(
                                          bf16ToFloat(got[j]) - bf16ToFloat(floatToBf16(row[j])))));
        }
        // Rounding to bf16 moves a value by at most half an ulp: 2^-8 of it, relatively.
        report.result("mla_append_latent" + tag + " (max rel, one bf16 ulp)", latentErr, 0x1p-7);
        report.result("mla_append_rope" + tag + " (max abs)", ropeErr, 0.0);
        // The rows around the written ones are untouched.
        double untouched = 0;
        for (int j = 0; j < width; ++j) {
            untouched += page0[sz(past - 1) * width + j] != pages[0][sz(past - 1) * width + j];
            untouched += page1[sz(past + T - pageRows) * width + j] !=
                         pages[1][sz(past + T - pageRows) * width + j];
        }
        report.result("mla_append_neighbours" + tag + " (changed values)", untouched, 0.0);
        // Keep the host copies equal to the device pages for the attention checks.
        pagesF[0] = widen(page0);
        pagesF[1] = widen(page1);
    }

    // Attention over the cache (random qLatent and q_pe), double-precision softmax reference.
    // The tensor-core kernel (the real shape, pages of at least 32 rows) splits a context in whole
    // 32-row tiles, at least 2 per split: the cases give one split of one partial tile, a few
    // splits whose last tile is partial, the decode grid (132) at a short context (65 splits in
    // use) and over the whole cache, many tiles per split, several queries, tiles across page
    // boundaries (pages of 40 rows), and the CUDA-core kernel (pages of 16 rows). The partial
    // results' buffer starts as NaN, so a merge that read a split's unwritten part would fail.
    const size_t sharedBytes = cu::mlaAttentionSharedBytes(H, r, kRope);
    CUDA_CHECK(cu::configureMlaAttention(sharedBytes));
    const float scale = 1.0f / std::sqrt(static_cast<float>(qkDim));
    struct AttnCase {
        int tokens, context, splits, pageRows;
    };
    // Both tensor-core forms where the device has the Hopper one (the CUDA-core kernel serves
    // the 16-row pages in either).
    std::vector<bool> forms{false};
    if (cu::mlaDecodeWgmmaAvailable())
        forms.push_back(true);
    else
        std::printf("SKIP mla_attention wgmma form: not an sm_90a build on a 9.0 device\n");
    for (const bool wgmma : forms)
        for (const AttnCase ac : {AttnCase{1, 1, 96, pageRows}, AttnCase{1, 300, 96, pageRows},
                                  AttnCase{1, 5000, 96, pageRows}, AttnCase{1, 4101, 132, pageRows},
                                  AttnCase{1, 3 * pageRows, 132, pageRows},
                                  AttnCase{1, 11999, 8, pageRows}, AttnCase{5, 4101, 1, pageRows},
                                  AttnCase{5, 4101, 3, pageRows}, AttnCase{3, 8195, 16, pageRows},
                                  AttnCase{2, 1000, 7, 40}, AttnCase{2, 1000, 7, 16}}) {
            cu::selectMlaDecodeWgmma(wgmma);
            const int T = ac.tokens, past = ac.context - T;
            // Small pages: a copy of the context's rows in pages of ac.pageRows rows.
            std::vector<Bf16Buffer> smallPages;
            std::vector<cu::bf16*> smallPagePtrs;
            if (ac.pageRows != pageRows) {
                for (int first = 0; first < ac.context; first += ac.pageRows) {
                    std::vector<uint16_t> rows(sz(ac.pageRows) * width);
                    for (int row = first; row < std::min(ac.context, first + ac.pageRows); ++row)
                        for (int j = 0; j < width; ++j)
                            rows[sz(row - first) * width + j] =
                                floatToBf16(static_cast<float>(cacheAt(row, j)));
                    smallPages.emplace_back(rows);
                    smallPagePtrs.push_back(reinterpret_cast<cu::bf16*>(smallPages.back().get()));
                }
            }
            Device<cu::bf16*> dSmallPageTable(smallPagePtrs);
            cu::LatentCache caseCache = cache;
            if (ac.pageRows != pageRows) {
                caseCache.pages = dSmallPageTable.get();
                caseCache.pageRows = ac.pageRows;
            }
            const auto qLatent = randomFloats(sz(T) * H * r, rng, -3, 3);
            const auto q = randomFloats(sz(T * qStride), rng, -3, 3);
            Device<float> dqLatent(qLatent), dq(q), dOut(sz(T) * H * r);
            Device<float> dPartial(sz(T) * ac.splits * H * (r + 2));
            cu::launchFillFloat(dPartial.get(), static_cast<int64_t>(dPartial.size()), NAN,
                                nullptr);
            Device<int32_t> dLength(std::vector<int32_t>{past});
            const cu::MlaAttentionArgs a{.qLatent = dqLatent.get(),
                                         .q = dq.get(),
                                         .qStride = qStride,
                                         .cache = caseCache,
                                         .length = dLength.get(),
                                         .tokens = T,
                                         .heads = H,
                                         .nope = kNope,
                                         .rope = kRope,
                                         .latentRank = r,
                                         .splits = ac.splits,
                                         .scale = scale,
                                         .partial = dPartial.get(),
                                         .out = dOut.get()};
            cu::launchMlaAttention(a, nullptr);
            const std::string name =
                std::string(wgmma ? "mla_attention_wgmma" : "mla_attention") + "_t" +
                std::to_string(T) + "_ctx" + std::to_string(ac.context) + "_splits" +
                std::to_string(ac.splits) + "_pages" + std::to_string(ac.pageRows);
            finish("launchMlaAttention " + name);
            std::vector<double> want(dOut.size()), scores;
            for (int t = 0; t < T; ++t)
                for (int h = 0; h < H; ++h) {
                    const int64_t visible = past + t + 1;
                    const float* ql = qLatent.data() + (sz(t) * H + h) * r;
                    const float* qpe = q.data() + t * qStride + h * qkDim + kNope;
                    scores.assign(sz(visible), 0.0);
                    double m = -INFINITY;
                    for (int64_t s = 0; s < visible; ++s) {
                        double acc = 0;
                        for (int j = 0; j < r; ++j)
                            acc += ql[j] * cacheAt(s, j);
                        for (int j = 0; j < kRope; ++j)
                            acc += qpe[j] * cacheAt(s, r + j);
                        scores[sz(s)] = scale * acc;
                        m = std::max(m, scale * acc);
                    }
                    double total = 0;
                    for (double& sc : scores)
                        total += sc = std::exp(sc - m);
                    double* o = want.data() + (sz(t) * H + h) * r;
                    for (int64_t s = 0; s < visible; ++s)
                        for (int j = 0; j < r; ++j)
                            o[j] += scores[sz(s)] / total * cacheAt(s, j);
                }
            report.result(name, relL2(dOut.download(), want), 1e-4);
        }
    cu::selectMlaDecodeWgmma(true);  // back to the configured choice

    // Value up-projection: out[t][h][i] = W_UV_h[i] . oLatent[t][h].
    {
        const int T = 5;
        const auto oLatent = randomFloats(sz(T) * H * r, rng, -1, 1);
        Device<float> dLatent(oLatent), dOut(sz(T) * H * kValue);
        cu::launchMlaUpValue(dLatent.get(), bf(dKvB), H, kNope, kValue, r, T, dOut.get(), nullptr);
        finish("launchMlaUpValue");
        std::vector<double> want(dOut.size());
        for (int t = 0; t < T; ++t)
            for (int h = 0; h < H; ++h)
                for (int i = 0; i < kValue; ++i) {
                    double acc = 0;
                    for (int j = 0; j < r; ++j)
                        acc += kvBAt(h, kNope + i, j) * oLatent[(sz(t) * H + h) * r + j];
                    want[(sz(t) * H + h) * kValue + i] = acc;
                }
        report.result("mla_up_value", relL2(dOut.download(), want), 1e-5);
    }
}

// ---- 4. MoE ----
// Indices of the `count` largest values, largest first, ties to the lower index (as ffn_layer).
std::vector<int32_t> topIndices(const float* values, int n, int count) {
    std::vector<int32_t> order(sz(n));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + count, order.end(), [&](int32_t a, int32_t b) {
        return values[a] != values[b] ? values[a] > values[b] : a < b;
    });
    order.resize(sz(count));
    return order;
}

// Smallest gap between distinct entries that matter for the choice.
float minGap(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    float gap = INFINITY;
    for (size_t i = 1; i < v.size(); ++i)
        if (std::isfinite(v[i - 1]))
            gap = std::min(gap, v[i] - v[i - 1]);
    return gap;
}

struct Route {
    std::vector<int32_t> ids;
    std::vector<float> weights;
    float gap = 0;  // the smallest gap among choice and group scores
};

// route() of inference/cpu/ffn_layer.cpp for one token (sigmoid router).
Route routeReference(const float* logits, const std::vector<float>& bias, int groups, int topGroups,
                     bool biased, bool renormalize, float scaling) {
    const int E = static_cast<int>(bias.size());
    std::vector<float> scores(E), choice(E);
    for (int e = 0; e < E; ++e) {
        scores[e] = cpu::sigmoid(logits[e]);
        choice[e] = scores[e] + bias[e];
    }
    Route route;
    route.gap = minGap(choice);
    if (groups > 1) {
        const int perGroup = E / groups;
        std::vector<float> groupScore(groups);
        for (int gi = 0; gi < groups; ++gi) {
            const auto best = topIndices(choice.data() + gi * perGroup, perGroup, 2);
            groupScore[gi] = choice[gi * perGroup + best[0]] + choice[gi * perGroup + best[1]];
        }
        route.gap = std::min(route.gap, minGap(groupScore));
        std::vector<bool> kept(groups, false);
        for (int32_t gi : topIndices(groupScore.data(), groups, topGroups))
            kept[gi] = true;
        for (int e = 0; e < E; ++e)
            if (!kept[e / perGroup])
                choice[e] = -INFINITY;
    }
    route.ids = topIndices(choice.data(), E, kTopK);
    float sum = 0.0f;
    for (int32_t e : route.ids) {
        route.weights.push_back(biased ? scores[e] + bias[e] : scores[e]);
        sum += route.weights.back();
    }
    for (float& w : route.weights)
        w = (renormalize ? w / (sum + 1e-20f) : w) * scaling;
    return route;
}

void testMoe(Report& report) {
    Rng rng(4);
    const int T = 4;
    struct SelectCase {
        const char* name;
        int groups, topGroups;
        bool biased, renormalize;
        int sharedSlots;
    };
    for (const SelectCase sc :
         {SelectCase{"moe_select_g1_unbiased", 1, 1, false, true, 0},
          SelectCase{"moe_select_g1_biased", 1, 1, true, true, 0},
          SelectCase{"moe_select_g1_no_renorm", 1, 1, false, false, 0},
          SelectCase{"moe_select_g1_biased_shared", 1, 1, true, true, 1},
          SelectCase{"moe_select_g8top4_unbiased", 8, 4, false, true, 0},
          SelectCase{"moe_select_g8top4_biased_shared", 8, 4, true, true, 1}}) {
        // Logits and biases drawn until no two candidate values lie within 1e-5 of each other,
        // so the choice cannot depend on rounding.
        std::vector<float> logits(sz(T) * kExperts), bias;
        std::vector<Route> want;
        for (int attempt = 0;; ++attempt) {
            if (attempt == 1000)
                throw std::runtime_error("no tie-free router inputs found");
            bias = randomFloats(kExperts, rng, 0.0f, 0.1f);
            want.clear();
            float gap = INFINITY;
            for (int t = 0; t < T; ++t) {
                std::vector<int> perm(kExperts);
                std::iota(perm.begin(), perm.end(), 0);
                for (int i = kExperts - 1; i > 0; --i)
                    std::swap(perm[i], perm[rng.below(i + 1)]);
                for (int e = 0; e < kExperts; ++e)
                    logits[sz(t) * kExperts + e] =
                        -3.0f + 6.0f * static_cast<float>(perm[e]) / (kExperts - 1);
                want.push_back(routeReference(logits.data() + t * kExperts, bias, sc.groups,
                                              sc.topGroups, sc.biased, sc.renormalize, 2.446f));
                gap = std::min(gap, want.back().gap);
            }
            if (gap > 1e-5f)
                break;
        }
        const int slots = kTopK + sc.sharedSlots;
        Device<float> dLogits(logits), dBias(bias), dWeights(sz(T) * slots);
        Device<int32_t> dIds(sz(T) * slots);
        const cu::MoeSelectArgs a{.logits = dLogits.get(),
                                  .correctionBias = dBias.get(),
                                  .tokens = T,
                                  .experts = kExperts,
                                  .topK = kTopK,
                                  .groups = sc.groups,
                                  .topGroups = sc.topGroups,
                                  .sigmoid = true,
                                  .grouped = sc.groups > 1,
                                  .biasedWeights = sc.biased,
                                  .renormalize = sc.renormalize,
                                  .scaling = 2.446f,
                                  .sharedSlots = sc.sharedSlots,
                                  .ids = dIds.get(),
                                  .weights = dWeights.get()};
        cu::launchMoeSelect(a, nullptr);
        finish(std::string("launchMoeSelect ") + sc.name);
        const auto ids = dIds.download();
        const auto weights = dWeights.download();
        long long idMismatches = 0;
        double weightErr = 0;
        for (int t = 0; t < T; ++t) {
            for (int j = 0; j < kTopK; ++j) {
                idMismatches += ids[t * slots + j] != want[t].ids[j];
                weightErr = std::max(
                    weightErr,
                    static_cast<double>(std::fabs(weights[t * slots + j] - want[t].weights[j])));
            }
            for (int j = kTopK; j < slots; ++j) {
                idMismatches += ids[t * slots + j] != kExperts + (j - kTopK);
                weightErr = std::max(weightErr,
                                     static_cast<double>(std::fabs(weights[t * slots + j] - 1.0f)));
            }
        }
        report.equal(std::string(sc.name) + "_id_mismatches", idMismatches, 0);
        report.result(std::string(sc.name) + "_weights (max abs)", weightErr, 1e-6);
    }

    // Decode's router product and choice in one launch, three times in a row (the counter that
    // finds the last block must come back to zero): the logits against double-precision dots
    // over the same bf16 router and normalised input, the choice against the reference applied
    // to the logits the kernel produced. At the real sizes, and at 384 experts over 3,000
    // columns (more than the kernel holds in registers).
    for (const auto& [experts, hidden] : {std::pair{kExperts, kHidden}, std::pair{384, 3000}}) {
        const auto routerBits = randomBf16(sz(experts) * hidden, rng, 0.05f);
        const auto routerF = widen(routerBits);
        Bf16Buffer dRouter(routerBits);
        const auto x = randomFloats(sz(hidden), rng, -2, 2);
        const auto norm = randomFloats(sz(hidden), rng, 0.5f, 1.5f);
        const auto bias = randomFloats(sz(experts), rng, 0.0f, 0.1f);
        const int slots = kTopK + 1;
        Device<float> dx(x), dNorm(norm), dBias(bias), dLogits(sz(experts)), dWeights(slots);
        Device<int32_t> dIds(slots);
        Device<unsigned> dDone(std::vector<unsigned>{0u});
        Device<float> dNormalized(sz(hidden));
        cu::MoeRouteArgs r{.router = bf(dRouter),
                           .hidden = hidden,
                           .logits = dLogits.get(),
                           .x = dx.get(),
                           .normWeight = dNorm.get(),
                           .normEps = 1e-6f,
                           .blocksDone = dDone.get(),
                           .select = {.correctionBias = dBias.get(),
                                      .tokens = 1,
                                      .experts = experts,
                                      .topK = kTopK,
                                      .biasedWeights = false,
                                      .renormalize = true,
                                      .scaling = 2.446f,
                                      .sharedSlots = 1,
                                      .ids = dIds.get(),
                                      .weights = dWeights.get()},
                           .normalizedOut = dNormalized.get()};
        double sum = 0;
        for (float v : x)
            sum += static_cast<double>(v) * v;
        const double inv = 1.0 / std::sqrt(sum / hidden + 1e-6);
        std::vector<double> xn(sz(hidden));
        for (int i = 0; i < hidden; ++i)
            xn[sz(i)] = norm[sz(i)] * (x[sz(i)] * inv);
        const auto wantLogits = refGemv({&routerF}, experts, hidden, xn, 0);
        long long mismatches = 0;
        double logitErr = 0, weightErr = 0;
        std::vector<int32_t> firstIds;
        for (int launch = 0; launch < 3; ++launch) {
            cu::launchMoeRoute(r, nullptr);
            finish("launchMoeRoute");
            const auto logits = dLogits.download();
            logitErr = std::max(logitErr, relL2(logits, wantLogits));
            const Route want = routeReference(logits.data(), bias, 1, 1, false, true, 2.446f);
            const auto ids = dIds.download();
            const auto weights = dWeights.download();
            for (int j = 0; j < kTopK; ++j) {
                mismatches += ids[sz(j)] != want.ids[sz(j)];
                weightErr =
                    std::max(weightErr,
                             static_cast<double>(std::fabs(weights[sz(j)] - want.weights[sz(j)])));
            }
            mismatches += ids[sz(kTopK)] != experts;
            if (launch == 0)
                firstIds = ids;
            mismatches += ids != firstIds;
            mismatches += dDone.download()[0] != 0u;
        }
        const std::string name =
            "moe_route_" + std::to_string(experts) + "x" + std::to_string(hidden);
        report.result(name + "_logits", logitErr, 1e-5);
        report.equal(name + "_id_mismatches_and_counter", mismatches, 0);
        report.result(name + "_weights (max abs)", weightErr, 1e-6);
        report.result(name + "_normalized_input", relL2(dNormalized.download(), xn), 1e-6);
    }

    // Combine: x[t] += sum_j w[t][j] y[t][j].
    {
        const int tokens = 3, slots = kTopK + 1;
        const auto x = randomFloats(sz(tokens) * kHidden, rng, -1, 1);
        const auto y = randomFloats(sz(tokens) * slots * kHidden, rng, -1, 1);
        const auto w = randomFloats(sz(tokens) * slots, rng, 0, 1);
        Device<float> dx(x), dy(y), dw(w);
        cu::launchMoeCombine(dx.get(), dy.get(), dw.get(), tokens, slots, kHidden, nullptr);
        finish("launchMoeCombine");
        std::vector<double> want(x.begin(), x.end());
        for (int t = 0; t < tokens; ++t)
            for (int j = 0; j < slots; ++j)
                for (int i = 0; i < kHidden; ++i)
                    want[t * kHidden + i] += static_cast<double>(w[t * slots + j]) *
                                             y[(sz(t) * slots + j) * kHidden + i];
        report.result("moe_combine", relL2(dx.download(), want), 1e-6);
    }

    // Gather (repeated rows allowed) and scatter-add (unique rows): exact.
    {
        const int sourceRows = 64, count = 10;
        const auto x = randomFloats(sz(sourceRows) * kHidden, rng, -1, 1);
        std::vector<int32_t> rows;
        for (int i = 0; i < count; ++i)
            rows.push_back(rng.below(sourceRows));
        rows[3] = rows[1];
        Device<float> dx(x), dOut(sz(count) * kHidden);
        Device<int32_t> dRows(rows);
        cu::launchGatherRows(dx.get(), dRows.get(), count, kHidden, dOut.get(), nullptr);
        finish("launchGatherRows");
        std::vector<float> want;
        for (int32_t row : rows)
            want.insert(want.end(), x.begin() + static_cast<int64_t>(row) * kHidden,
                        x.begin() + static_cast<int64_t>(row + 1) * kHidden);
        report.result("gather_rows (max abs)", maxAbs(dOut.download(), want), 0.0);

        const auto unique = distinctIds(count, sourceRows, rng);
        const auto w = randomFloats(count, rng, -1, 1);
        const auto y = randomFloats(sz(count) * kHidden, rng, -1, 1);
        Device<int32_t> dUnique(unique);
        Device<float> dw(w), dy(y);
        cu::launchScatterAddRows(dx.get(), dUnique.get(), dw.get(), dy.get(), count, kHidden,
                                 nullptr);
        finish("launchScatterAddRows");
        std::vector<float> wantX = x;
        for (int i = 0; i < count; ++i)
            for (int c = 0; c < kHidden; ++c) {
                float& v = wantX[sz(unique[i]) * kHidden + c];
                v = std::fma(w[i], y[sz(i) * kHidden + c], v);
            }
        report.result("scatter_add_rows (max abs)", maxAbs(dx.download(), wantX), 0.0);
    }

    // Grouped experts for many tokens: pairs grouped by expert on the GPU, then every expert's
    // SwiGLU (gate and up, then down) in two launches, in every form, against a double-precision
    // reference of the kernels' numerics: the inputs are one bf16 term (rounded here, once), the
    // products exact sums over bf16 values, the SwiGLU activations rounded to bf16 before the
    // down projection. The groups are uneven: group 0 gets most tokens (one tiled pass, its
    // second 64-pair half partly filled), group 5 none, the last ("shared") group every token
    // (several passes of 32 and of 128 pairs, the last partial), the others a few dozen. (In the
    // wgmma form's 128-pair tiles a consumer warpgroup of 64 pairs is full, partly filled or
    // idle.)
    // Two steps, so that the check models the rounding exactly rather than at bf16's 1e-2:
    // 1. Every activation the kernel wrote must be a bf16 rounding (either neighbour) of a value
    //    within fp32 accumulation error of the exact silu(gate x) * (up x). (A reference that
    //    rounded its own exact value would differ from the kernel's fp32 value in about 3 of
    //    10^4 activations that lie next to a rounding boundary: one bf16 step each, ~2e-5 of
    //    the output.)
    // 2. The down projection must match the double-precision product of the kernel's own bf16
    //    activations (fp32 accumulation over 1024 terms: ~1e-6).
    {
        const int tokens = 150, routed = 2, slots = routed + 1, groups = 9;
        const int pairs = tokens * slots;
        std::vector<int32_t> ids;
        for (int t = 0; t < tokens; ++t) {
            std::vector<int32_t> chosen;
            if (rng.below(5) < 3)
                chosen.push_back(0);
            while (static_cast<int>(chosen.size()) < routed) {
                const int32_t e = rng.below(groups - 1);
                if (e != 5 && std::find(chosen.begin(), chosen.end(), e) == chosen.end())
                    chosen.push_back(e);
            }
            chosen.push_back(groups - 1);
            ids.insert(ids.end(), chosen.begin(), chosen.end());
        }
        std::vector<uint16_t> xBits(sz(tokens) * kHidden);
        for (uint16_t& v : xBits)
            v = floatToBf16(rng.uniform(-1, 1));
        const size_t upSize = sz(2) * kExpertInner * kHidden, downSize = sz(kHidden) * kExpertInner;
        const auto upW = randomBf16(upSize * groups, rng, 0.03f);
        const auto downW = randomBf16(downSize * groups, rng, 0.03f);
        Bf16Buffer dUp(upW), dDown(downW), dx(xBits);
        std::vector<const cu::bf16*> upTable, downTable;
        for (int e = 0; e < groups; ++e) {
            upTable.push_back(bf(dUp) + upSize * sz(e));
            downTable.push_back(bf(dDown) + downSize * sz(e));
        }
        Device<const cu::bf16*> dUpTable(upTable), dDownTable(downTable);
        Device<int32_t> dIds(ids), counts(groups), start(groups + 1), cursor(groups), order(pairs);
        Bf16Buffer act(sz(pairs) * kExpertInner);
        Device<float> out(sz(pairs) * kHidden);
        cu::launchMoeGroupPairs(dIds.get(), pairs, groups, counts.get(), start.get(), cursor.get(),
                                order.get(), nullptr);
        finish("launchMoeGroupPairs");
        Device<int32_t> tileCounter(1);
        struct ExpertRun {
            std::vector<uint16_t> act;  // [position in group order][inner]
            std::vector<float> out;     // [pair][hidden]
        };
        auto runExperts = [&](bool tiled, bool counter) {
            // NaN everywhere first (all bits set), so that an entry a launch leaves unwritten
            // fails the checks.
            CUDA_CHECK(cudaMemset(act.get(), 0xFF, act.size() * sizeof(uint16_t)));
            CUDA_CHECK(cudaMemset(out.get(), 0xFF, out.size() * sizeof(float)));
            cu::ExpertGemmArgs up;
            up.tiled = tiled;
            up.tileCounter = counter ? tileCounter.get() : nullptr;
            up.table = dUpTable.get();
            up.groups = groups;
            up.rows = kExpertInner;
            up.cols = kHidden;
            up.groupStart = start.get();
            up.order = order.get();
            up.x = bf(dx);
            up.xStride = kHidden;
            up.inputBySlot = true;
            up.slotsPerRow = slots;
            up.swiglu = true;
            up.act = reinterpret_cast<cu::bf16*>(act.get());
            cu::launchExpertGemm(up, nullptr);
            finish("launchExpertGemm (gate, up)");
            cu::ExpertGemmArgs down = up;
            down.table = dDownTable.get();
            down.rows = kHidden;
            down.cols = kExpertInner;
            down.x = bf(act);
            down.xStride = kExpertInner;
            down.inputBySlot = false;
            down.swiglu = false;
            down.act = nullptr;
            down.out = out.get();
            cu::launchExpertGemm(down, nullptr);
            finish("launchExpertGemm (down)");
            return ExpertRun{act.download(), out.download()};
        };
        CUDA_CHECK(cu::selectExpertGemmWgmma(false));  // the tiled form on mma.sync
        const ExpertRun direct = runExperts(false, true);
        const ExpertRun tiled = runExperts(true, true);

        const auto starts = start.download();
        const auto ordered = order.download();
        int64_t badGroups = 0;
        for (int e = 0; e < groups; ++e) {
            const int n = static_cast<int>(std::count(ids.begin(), ids.end(), e));
            badGroups += starts[sz(e) + 1] - starts[sz(e)] != n;
            for (int s2 = starts[sz(e)]; s2 < starts[sz(e) + 1]; ++s2)
                badGroups += ids[sz(ordered[sz(s2)])] != e;
        }
        report.equal("moe_group_pairs_misplaced", badGroups, 0);

        // The exact gate and up products of every pair, and the sums of their terms' magnitudes
        // (the scale of fp32 accumulation error).
        const auto x = widen(xBits), upF = widen(upW), downF = widen(downW);
        const size_t pairRows = sz(pairs) * kExpertInner;
        std::vector<double> gate(pairRows), upv(pairRows), gateAbs(pairRows), upAbs(pairRows);
        for (int p = 0; p < pairs; ++p) {
            const float* xr = x.data() + sz(p / slots) * kHidden;
            for (int i = 0; i < kExpertInner; ++i) {
                const float* gw = upF.data() + upSize * sz(ids[sz(p)]) + sz(i) * kHidden;
                const float* uw = gw + sz(kExpertInner) * kHidden;
                double gs = 0, us = 0, ga = 0, ua = 0;
                for (int k = 0; k < kHidden; ++k) {
                    const double gt = static_cast<double>(gw[k]) * xr[k];
                    const double ut = static_cast<double>(uw[k]) * xr[k];
                    gs += gt;
                    us += ut;
                    ga += std::fabs(gt);
                    ua += std::fabs(ut);
                }
                const size_t at = sz(p) * kExpertInner + sz(i);
                gate[at] = gs;
                upv[at] = us;
                gateAbs[at] = ga;
                upAbs[at] = ua;
            }
        }
        auto check = [&](const std::string& name, const ExpertRun& r) {
            // fp32 accumulation error bound per product, relative to the sum of its terms'
            // magnitudes: generous for 2304 terms, far below what a wrong row or k slice gives.
            constexpr double kAccumulation = 1e-5;
            int64_t outside = 0;
            std::vector<double> want(sz(pairs) * kHidden);
            std::vector<double> a(kExpertInner);
            for (int s2 = 0; s2 < pairs; ++s2) {
                const int p = ordered[sz(s2)];
                for (int i = 0; i < kExpertInner; ++i) {
                    const size_t at = sz(p) * kExpertInner + sz(i);
                    const double g = gate[at], u = upv[at];
                    const double dg = kAccumulation * gateAbs[at], du = kAccumulation * upAbs[at];
                    const double silu = g / (1.0 + std::exp(-g)), v = silu * u;
                    // |silu'| <= 1.1; 1e-6 |v| for the fp32 silu and product.
                    const double dv =
                        1.1 * dg * (std::fabs(u) + du) + std::fabs(silu) * du + 1e-6 * std::fabs(v);
                    a[sz(i)] = bf16ToFloat(r.act[sz(s2) * kExpertInner + sz(i)]);
                    const double halfStep =
                        a[sz(i)] == 0 ? 0 : std::ldexp(1.0, std::ilogb(a[sz(i)]) - 8);
                    outside += !(std::fabs(a[sz(i)] - v) <= halfStep + dv);  // NaN counts
                }
                const float* dw = downF.data() + downSize * sz(ids[sz(p)]);
                for (int n = 0; n < kHidden; ++n) {
                    double sum = 0;
                    for (int i = 0; i < kExpertInner; ++i)
                        sum += static_cast<double>(dw[sz(n) * kExpertInner + sz(i)]) * a[sz(i)];
                    want[sz(p) * kHidden + sz(n)] = sum;
                }
            }
            report.equal(name + "_act_outside_bf16_rounding", outside, 0);
            report.result(name, relL2(r.out, want), 1e-5);
        };
        check("moe_grouped_swiglu", direct);
        check("moe_grouped_swiglu_tiled", tiled);

        // The tiled form on wgmma where the device has it: once with a block per multiprocessor
        // (most get one tile or none), then on 3 blocks, each running ~25 tiles in turn through
        // its stages (tiles drawn from the counter, then in fixed shares). Which block computes a
        // tile does not change its sums, so those runs must match the first bit for bit.
        if (cu::expertGemmWgmmaAvailable()) {
            CUDA_CHECK(cu::selectExpertGemmWgmma(true));
            const ExpertRun wgmma = runExperts(true, true);
            check("moe_grouped_swiglu_tiled_wgmma", wgmma);
            for (const bool counter : {true, false}) {
                CUDA_CHECK(cu::selectExpertGemmWgmma(true, 3));
                const ExpertRun few = runExperts(true, counter);
                long long differences = 0;
                for (size_t i = 0; i < few.act.size(); ++i)
                    differences += few.act[i] != wgmma.act[i];
                for (size_t i = 0; i < few.out.size(); ++i)
                    differences += !(few.out[i] == wgmma.out[i]);  // NaN counts
                report.equal(std::string("moe_grouped_swiglu_tiled_wgmma_3_blocks_") +
                                 (counter ? "counter" : "shares") + "_differences",
                             differences, 0);
            }
        } else {
            std::printf(
                "SKIP moe_grouped_swiglu_tiled_wgmma: not an sm_90a build on a 9.0 device\n");
        }
        CUDA_CHECK(cu::configureExpertGemm());  // back to the device's own choice
    }
}

// ---- 5. sampling ----
int32_t sampleOnce(const Device<float>& logits, int vocab, const cu::SampleParams& params,
                   const uint32_t* seen) {
    Device<cu::SampleParams> dParams(std::vector<cu::SampleParams>{params});
    Device<int32_t> token(1);
    cu::launchSample(logits.get(), vocab, dParams.get(), seen, token.get(), nullptr);
    finish("launchSample");
    return token.download()[0];
}

int32_t argmax(const std::vector<float>& v) {
    return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());  // first max
}

// Empirical frequencies of `draws` stratified samples against the probabilities `want`.
double distributionError(const std::vector<float>& logits, const cu::SampleParams& base,
                         const std::vector<double>& want) {
    const int draws = 4000, V = static_cast<int>(logits.size());
    std::vector<cu::SampleParams> params(draws, base);
    for (int i = 0; i < draws; ++i)
        params[i].uniform = (static_cast<float>(i) + 0.5f) / draws;
    Device<float> dLogits(logits);
    Device<cu::SampleParams> dParams(params);
    Device<int32_t> tokens(draws);
    for (int i = 0; i < draws; ++i)
        cu::launchSample(dLogits.get(), V, dParams.get() + i, nullptr, tokens.get() + i, nullptr);
    finish("launchSample distribution");
    std::vector<double> freq(sz(V), 0.0);
    for (int32_t t : tokens.download()) {
        if (t < 0 || t >= V)
            return INFINITY;
        freq[sz(t)] += 1.0 / draws;
    }
    return maxAbs(freq, want);
}

void testSample(Report& report) {
    Rng rng(5);
    std::vector<float> logits = randomFloats(kVocab, rng, -5, 5);

    // Greedy with a planted tie: the lower index wins.
    logits[1000] = logits[150000] = 12.0f;
    Device<float> dTie(logits);
    const cu::SampleParams greedy{};
    report.equal("sample_greedy_tie", sampleOnce(dTie, kVocab, greedy, nullptr), argmax(logits));

    // A unique maximum, far above the rest.
    logits[1000] = logits[150000] = 0.0f;
    logits[77777] = 12.0f;
    Device<float> dLogits(logits);
    report.equal("sample_greedy", sampleOnce(dLogits, kVocab, greedy, nullptr), 77777);
    const cu::SampleParams topK1{.temperature = 1.0f, .uniform = 0.999f, .topK = 1};
    report.equal("sample_topk1", sampleOnce(dLogits, kVocab, topK1, nullptr), 77777);
    const cu::SampleParams tinyP{.temperature = 1.0f, .topP = 1e-6f, .uniform = 0.5f};
    report.equal("sample_tiny_top_p", sampleOnce(dLogits, kVocab, tinyP, nullptr), 77777);

    // Repetition penalty over the seen bitmap: the maximum (positive) is seen and drops below
    // the runner-up; with all-negative logits, a seen maximum is multiplied down.
    std::vector<int32_t> seenIds = distinctIds(50, kVocab, rng);
    seenIds.push_back(77777);
    std::vector<uint32_t> wantBits(sz((kVocab + 31) / 32), 0u);
    for (int32_t id : seenIds)
        wantBits[sz(id >> 5)] |= 1u << (id & 31);
    Device<uint32_t> seen(wantBits.size());
    CUDA_CHECK(cudaMemset(seen.get(), 0, wantBits.size() * sizeof(uint32_t)));
    Device<int32_t> dSeenIds(seenIds);
    cu::launchMarkSeen(seen.get(), dSeenIds.get(), static_cast<int>(seenIds.size()), nullptr);
    finish("launchMarkSeen");
    long long bitMismatches = 0;
    const auto gotBits = seen.download();
    for (size_t i = 0; i < wantBits.size(); ++i)
        bitMismatches += gotBits[i] != wantBits[i];
    report.equal("mark_seen_bitmap_mismatches", bitMismatches, 0);
    const float penalty = 3.0f;
    auto penalised = [&](std::vector<float> v) {
        for (int32_t id : seenIds) {
            float& x = v[sz(id)];
            x = x > 0.0f ? x / penalty : x * penalty;
        }
        return v;
    };
    const cu::SampleParams rep{.repetitionPenalty = penalty};
    const int32_t wantRep = argmax(penalised(logits));
    report.equal("sample_repetition_penalty_changes_max", wantRep != 77777 ? 1 : 0, 1);
    report.equal("sample_repetition_penalty", sampleOnce(dLogits, kVocab, rep, seen.get()),
                 wantRep);
    std::vector<float> negative = randomFloats(kVocab, rng, -10, -2);
    negative[77777] = -1.0f;  // seen: becomes -3
    negative[4242] = -1.2f;   // unseen runner-up
    const int32_t wantNeg = argmax(penalised(negative));
    Device<float> dNegative(negative);
    report.equal("sample_repetition_penalty_negative",
                 sampleOnce(dNegative, kVocab, rep, seen.get()), wantNeg);

    // Distributions over 16 tokens: stratified draws against the softmax (restricted to the
    // top-k or the nucleus where asked).
    const std::vector<float> small = randomFloats(16, rng, -2, 2);
    auto softmax = [&](float temperature, int topK, double topP) {
        std::vector<int32_t> order(small.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(),
                  [&](int32_t a, int32_t b) { return small[a] > small[b]; });
        std::vector<double> p(small.size(), 0.0);
        double total = 0;
        for (size_t i = 0; i < small.size(); ++i)
            total += p[i] = std::exp(static_cast<double>(small[i]) / temperature);
        size_t keep = topK > 0 ? sz(topK) : small.size();
        double kept = 0;
        for (size_t i = 0; i < keep; ++i)
            kept += p[sz(order[i])];
        double running = 0;
        for (size_t i = 0; i < keep; ++i) {
            running += p[sz(order[i])];
            if (running >= topP * kept) {
                keep = i + 1;
                break;
            }
        }
        std::vector<double> out(small.size(), 0.0);
        double mass = 0;
        for (size_t i = 0; i < keep; ++i)
            mass += p[sz(order[i])];
        for (size_t i = 0; i < keep; ++i)
            out[sz(order[i])] = p[sz(order[i])] / mass;
        return out;
    };
    const cu::SampleParams plain{.temperature = 1.0f};
    report.result("sample_distribution_t1 (max abs freq)",
                  distributionError(small, plain, softmax(1.0f, 0, 1.0)), 0.01);
    cu::SampleParams k5 = plain;
    k5.temperature = 0.7f;
    k5.topK = 5;
    report.result("sample_distribution_t0.7_topk5 (max abs freq)",
                  distributionError(small, k5, softmax(0.7f, 5, 1.0)), 0.01);
    cu::SampleParams p8 = plain;
    p8.topP = 0.8f;
    report.result("sample_distribution_top_p0.8 (max abs freq)",
                  distributionError(small, p8, softmax(1.0f, 0, 0.8)), 0.01);

    // Greedy over a vocabulary that is not a multiple of a float4, with the maximum on the last
    // token, then tied with an earlier token of another block.
    const int oddVocab = 100003;
    std::vector<float> odd = randomFloats(oddVocab, rng, -5, 5);
    odd[sz(oddVocab - 1)] = 9.0f;
    report.equal("sample_greedy_last_token",
                 sampleOnce(Device<float>(odd), oddVocab, greedy, nullptr), oddVocab - 1);
    odd[7] = 9.0f;
    report.equal("sample_greedy_tie_across_blocks",
                 sampleOnce(Device<float>(odd), oddVocab, greedy, nullptr), 7);

    // Exact choices against sample_kernels.cu's definition, computed here: a token `d` below the
    // top weighs 2^(31 - d log2 e) rounded, by the kernel's float operations (the same Taylor
    // polynomial, so the weights agree bit for bit); top-k keeps z >= the k-th largest z of the
    // weighted tokens; top-p the z >= the largest value whose kept weight at or above it reaches
    // ceil(topP kept); the draw is the first token in id order whose running kept weight exceeds
    // floor(uniform kept).
    auto weightBelowTop = [](float d) -> uint64_t {
        if (!(d <= 23.0f))
            return 0;
        const float exponent = std::fma(-d, 1.44269504f, 31.0f);
        const float shifted = exponent + 12582912.0f;
        const float n = shifted - 12582912.0f;
        const float f = exponent - n;
        float power = std::fma(0.000154035297f, f, 0.00133335579f);
        power = std::fma(power, f, 0.00961812865f);
        power = std::fma(power, f, 0.0555041097f);
        power = std::fma(power, f, 0.240226507f);
        power = std::fma(power, f, 0.693147182f);
        power = std::fma(power, f, 1.0f);
        return static_cast<uint64_t>(std::nearbyint(std::ldexp(power, static_cast<int>(n))));
    };
    auto referenceChoice = [&](const std::vector<float>& values, const cu::SampleParams& p,
                               const std::vector<uint32_t>& seenBits) {
        const int V = static_cast<int>(values.size());
        const float inverseT = 1.0f / p.temperature;
        std::vector<float> z(sz(V));
        float top = -INFINITY;
        for (int i = 0; i < V; ++i) {
            float v = values[sz(i)];
            if (!seenBits.empty() && ((seenBits[sz(i >> 5)] >> (i & 31)) & 1u))
                v = v > 0.0f ? v / p.repetitionPenalty : v * p.repetitionPenalty;
            z[sz(i)] = v * inverseT;
            top = std::max(top, z[sz(i)]);
        }
        std::vector<uint64_t> weight(sz(V));
        std::vector<int32_t> order;  // the weighted tokens, by z descending
        for (int i = 0; i < V; ++i) {
            weight[sz(i)] = weightBelowTop(top - z[sz(i)]);
            if (weight[sz(i)] > 0)
                order.push_back(i);
        }
        std::sort(order.begin(), order.end(),
                  [&](int32_t a, int32_t b) { return z[sz(a)] > z[sz(b)]; });
        auto keptAtLeast = [&](float threshold) {
            uint64_t sum = 0;
            for (int32_t i : order)
                sum += z[sz(i)] >= threshold ? weight[sz(i)] : 0;
            return sum;
        };
        float threshold = -INFINITY;
        if (p.topK > 0 && sz(p.topK) < order.size())
            threshold = z[sz(order[sz(p.topK - 1)])];
        uint64_t kept = keptAtLeast(threshold);
        if (p.topP < 1.0f) {
            const double nucleus =
                std::ceil(static_cast<double>(p.topP) * static_cast<double>(kept));
            const uint64_t need = std::max<uint64_t>(1, static_cast<uint64_t>(nucleus));
            uint64_t running = 0;
            for (size_t j = 0; j < order.size(); ++j) {
                running += weight[sz(order[j])];
                if (running >= need) {
                    threshold = z[sz(order[j])];
                    break;
                }
            }
            kept = keptAtLeast(threshold);
        }
        const double drawn = static_cast<double>(p.uniform) * static_cast<double>(kept);
        const uint64_t target = std::min<uint64_t>(kept - 1, static_cast<uint64_t>(drawn));
        uint64_t running = 0;
        for (int i = 0; i < V; ++i) {
            running += z[sz(i)] >= threshold ? weight[sz(i)] : 0;
            if (running > target)
                return i;
        }
        return -1;
    };
    struct ChoiceCase {
        const char* name;
        const std::vector<float>* logits;
        float temperature;
        int topK;
        float topP;
        bool penalised;
    };
    // Flat logits (the nucleus and the top-k boundary deep in the vocabulary), logits shaped
    // like a language model's (a few clear leaders over a broad bulk), 21 values tied in large
    // groups, an odd vocabulary with penalties, and a tiny one. Boundaries in bins of more than
    // 4,096 tokens take the radix-selection path: the tied cases, the flat ones at temperature
    // 8 and the peaked one at top-p 0.99999.
    const std::vector<float> flat = randomFloats(kVocab, rng, -5, 5);
    std::vector<float> peaked = randomFloats(kVocab, rng, -6, 6);
    for (float& x : peaked)
        x = x * std::fabs(x) / 6.0f;
    for (int i = 0; i < 40; ++i)
        peaked[sz(rng.below(kVocab))] = rng.uniform(8, 16);
    std::vector<float> tied = randomFloats(kVocab, rng, -5, 5);
    for (float& x : tied)
        x = std::round(2.0f * x) / 2.0f;
    std::vector<uint32_t> oddBits(sz((oddVocab + 31) / 32), 0u);
    for (int32_t id : distinctIds(3000, oddVocab, rng))
        oddBits[sz(id >> 5)] |= 1u << (id & 31);
    const std::vector<ChoiceCase> choiceCases = {
        {"flat_t1", &flat, 1.0f, 0, 1.0f, false},
        {"flat_t1_k1", &flat, 1.0f, 1, 1.0f, false},
        {"flat_t1_k50", &flat, 1.0f, 50, 1.0f, false},
        {"flat_t1_k3000", &flat, 1.0f, 3000, 1.0f, false},
        {"flat_t1_k_all", &flat, 1.0f, 200000, 1.0f, false},
        {"flat_t1_p0.9", &flat, 1.0f, 0, 0.9f, false},
        {"flat_t1_p0.3", &flat, 1.0f, 0, 0.3f, false},
        {"flat_t1_k50_p0.9", &flat, 1.0f, 50, 0.9f, false},
        {"flat_t1_k3000_p0.95", &flat, 1.0f, 3000, 0.95f, false},
        {"flat_t0.5_p0.9", &flat, 0.5f, 0, 0.9f, false},
        {"flat_t2", &flat, 2.0f, 0, 1.0f, false},
        {"peaked_t0.8_p0.95", &peaked, 0.8f, 0, 0.95f, false},
        {"peaked_t1_k40_p0.9", &peaked, 1.0f, 40, 0.9f, false},
        {"peaked_t1", &peaked, 1.0f, 0, 1.0f, false},
        {"peaked_t1_p0.999", &peaked, 1.0f, 0, 0.999f, false},
        {"peaked_t1_p0.99999", &peaked, 1.0f, 0, 0.99999f, false},  // in the tail bin
        {"flat_t8_p0.5", &flat, 8.0f, 0, 0.5f, false},              // bins of ~8,000
        {"flat_t8_k10000_p0.6", &flat, 8.0f, 10000, 0.6f, false},
        {"tied_t1_k20000", &tied, 1.0f, 20000, 1.0f, false},
        {"tied_t1_p0.5", &tied, 1.0f, 0, 0.5f, false},
        {"tied_t1_k20000_p0.7", &tied, 1.0f, 20000, 0.7f, false},
        {"odd_penalised_t0.9_k100_p0.8", &odd, 0.9f, 100, 0.8f, true},
        {"odd_penalised_t1", &odd, 1.0f, 0, 1.0f, true},
        {"tiny_t1_k3_p0.7", &small, 1.0f, 3, 0.7f, false},
    };
    Device<uint32_t> dOddBits(oddBits);
    const std::vector<uint32_t> noBits;
    for (const ChoiceCase& c : choiceCases) {
        const int V = static_cast<int>(c.logits->size());
        Device<float> dValues(*c.logits);
        long long mismatches = 0;
        for (int draw = 0; draw < 8; ++draw) {
            const cu::SampleParams params{.temperature = c.temperature,
                                          .topP = c.topP,
                                          .repetitionPenalty = c.penalised ? 1.3f : 1.0f,
                                          .uniform = draw == 0   ? 0.0f
                                                     : draw == 1 ? 0.99999994f
                                                                 : rng.uniform(0, 1),
                                          .topK = c.topK};
            const int32_t want = referenceChoice(*c.logits, params, c.penalised ? oddBits : noBits);
            const int32_t got =
                sampleOnce(dValues, V, params, c.penalised ? dOddBits.get() : nullptr);
            mismatches += got != want ? 1 : 0;
        }
        report.equal(std::string("sample_choice_") + c.name + " (mismatches of 8)", mismatches, 0);
    }
}

// ---- 6. MLA prefill attention, expanded form ----
// 150 queries after a 1,000-row context (pages of 64 rows), keys expanded in segments of 128 rows
// so the softmax state crosses segments; against a double-precision reference that sees the
// same bf16 queries, keys and values (the kernel's only other rounding is P to bf16).
void testMlaFlash(Report& report) {
    Rng rng(6);
    const int H = kMlaHeads, width = kLatent + kRope, qk = kNope + kRope, kvw = kNope + kValue;
    const int pageRows = 64, past = 1000, T = 150, keys = past + T, segment = 128;
    // Segments of 1,024 rows: 8 tiles of 128 keys stream through the kernels' two stages (four
    // rounds each), then a short segment.
    static_assert(keys > 1024 && keys < 2048, "a long segment of 8 tiles, then a short one");
    const int pageCount = (keys + pageRows - 1) / pageRows;
    std::vector<std::vector<uint16_t>> pages;
    std::vector<Bf16Buffer> dPages;
    std::vector<cu::bf16*> pagePtrs;
    for (int p = 0; p < pageCount; ++p) {
        pages.push_back(randomBf16(sz(pageRows) * width, rng, 1.0f));
        dPages.emplace_back(pages.back());
        pagePtrs.push_back(reinterpret_cast<cu::bf16*>(dPages.back().get()));
    }
    Device<cu::bf16*> dPageTable(pagePtrs);
    cu::LatentCache cache{dPageTable.get(), pageRows, width};
    // Expanded keys/values per row (what kv_b gives): random bf16 here; queries random bf16.
    const auto kvBits = randomBf16(sz(keys) * H * kvw, rng, 1.0f);
    const auto qBits = randomBf16(sz(T) * H * qk, rng, 1.0f);
    const auto kvF = widen(kvBits), qF = widen(qBits);
    Bf16Buffer dQ(qBits);
    Device<float> stateMax(sz(T) * H), stateSum(sz(T) * H), stateO(sz(T) * H * kValue);
    Device<float> out(sz(T) * H * kValue);
    CUDA_CHECK(cu::configureMlaFlashPrefill());
    const float scale = 1.0f / std::sqrt(static_cast<float>(qk));
    // Once with whole segments, once with each segment's keys split over 3 blocks per tile.
    const int maxSplits = 3;
    Device<float> partMax(sz(maxSplits) * T * H), partSum(sz(maxSplits) * T * H);
    Device<float> partO(sz(maxSplits) * T * H * kValue);
    Bf16Buffer ropeRows(sz(keys) * kRope);  // the wgmma form's scratch
    auto run = [&](int splits, int segmentRows) {
        for (int begin = 0; begin < keys; begin += segmentRows) {
            const int end = std::min(keys, begin + segmentRows);
            std::vector<uint16_t> seg(kvBits.begin() + sz(begin) * H * kvw,
                                      kvBits.begin() + sz(end) * H * kvw);
            Bf16Buffer dSeg(seg);
            cu::MlaFlashArgs a;
            a.q = bf(dQ);
            a.kv = bf(dSeg);
            a.cache = cache;
            a.queryPos0 = past;
            a.keyBegin = begin;
            a.keyEnd = end;
            a.tokens = T;
            a.heads = H;
            a.first = begin == 0;
            a.last = end == keys;
            a.scale = scale;
            a.stateMax = stateMax.get();
            a.stateSum = stateSum.get();
            a.stateO = stateO.get();
            a.out = out.get();
            a.outStride = static_cast<int64_t>(H) * kValue;
            a.splits = splits;
            a.partialMax = partMax.get();
            a.partialSum = partSum.get();
            a.partialO = partO.get();
            a.ropeRows = reinterpret_cast<cu::bf16*>(ropeRows.get());
            cu::launchMlaFlashPrefill(a, nullptr);
            finish("launchMlaFlashPrefill");
        }
        return out.download();
    };
    std::vector<double> want(sz(T) * H * kValue);
    std::vector<double> scores(keys);
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h) {
            const float* q = qF.data() + (sz(t) * H + h) * qk;
            const int visible = past + t + 1;
            double best = -1e300;
            for (int k = 0; k < visible; ++k) {
                const float* kv = kvF.data() + (sz(k) * H + h) * kvw;
                double dot = 0;
                for (int j = 0; j < kNope; ++j)
                    dot += static_cast<double>(q[j]) * kv[j];
                const uint16_t* ropeBits =
                    pages[sz(k / pageRows)].data() + sz(k % pageRows) * width + kLatent;
                for (int j = 0; j < kRope; ++j)
                    dot += static_cast<double>(q[kNope + j]) * bf16ToFloat(ropeBits[j]);
                scores[sz(k)] = dot * scale;
                best = std::max(best, scores[sz(k)]);
            }
            double sum = 0;
            for (int k = 0; k < visible; ++k) {
                scores[sz(k)] = std::exp(scores[sz(k)] - best);
                sum += scores[sz(k)];
            }
            for (int d = 0; d < kValue; ++d) {
                double acc = 0;
                for (int k = 0; k < visible; ++k)
                    acc += scores[sz(k)] * kvF[(sz(k) * H + h) * kvw + kNope + d];
                want[(sz(t) * H + h) * kValue + d] = acc / sum;
            }
        }
    // Both forms where the device has the wgmma one; segments of one tile (128 rows) and of
    // several (the whole context in one, so tiles stream through both shared-memory stages).
    for (const bool wgmma : {false, true}) {
        if (wgmma && !cu::mlaFlashWgmmaAvailable()) {
            std::printf("SKIP mla_flash_prefill wgmma form: not an sm_90a build on a 9.0 device\n");
            continue;
        }
        cu::selectMlaFlashWgmma(wgmma);
        const std::string form = wgmma ? "wgmma" : "mma.sync";
        report.result("mla_flash_prefill " + form + " (segments of 1 tile, paged)",
                      relL2(run(1, segment), want), 4e-3);
        report.result("mla_flash_prefill " + form + " (segments of 1 tile x 3 splits)",
                      relL2(run(maxSplits, segment), want), 4e-3);
        report.result("mla_flash_prefill " + form + " (segments of 8 tiles)",
                      relL2(run(1, 1024), want), 4e-3);
        report.result("mla_flash_prefill " + form + " (segments of 8 tiles x 2 splits)",
                      relL2(run(2, 1024), want), 4e-3);
    }
    CUDA_CHECK(cu::configureMlaFlashPrefill());  // back to the device's own choice
}

// ---- 7. the engine's prefill paths agree ----
// A 4-layer model with the real sizes (dense+KDA, MLA+MoE, KDA+MoE, MLA+MoE), random weights:
// 700 tokens prefilled in one call (flash attention, MoE expert by expert), in calls of 100
// (flash attention over a growing context, grouped MoE) and in calls of 8 (the absorbed
// attention, grouped MoE) give the same last logits within bf16 rounding.
void testPrefillPaths(Report& report) {
    using namespace folio::inference;
    auto config = parseModelConfig(kKimiLinear48BA3BConfigJson);
    if (!config.ok())
        throw std::runtime_error(config.error().message);
    ModelConfig c = *config;
    c.numLayers = 4;
    c.layerKinds = {LayerKind::Kda, LayerKind::Mla, LayerKind::Kda, LayerKind::Mla};
    EngineOptions options;
    options.backend = BackendKind::Cuda;
    options.prefillChunkTokens = 4096;
    auto engine = Engine::openRandom(c, 11, options);
    if (!engine.ok())
        throw std::runtime_error(engine.error().message);
    Rng rng(7);
    std::vector<int32_t> ids(700);
    for (int32_t& id : ids)
        id = rng.below(static_cast<int>(c.vocabSize));
    auto lastLogits = [&](int step) {
        auto seq = (*engine)->newSequence();
        if (!seq.ok())
            throw std::runtime_error(seq.error().message);
        std::vector<float> last;
        for (size_t at = 0; at < ids.size(); at += sz(step)) {
            const size_t n = std::min(sz(step), ids.size() - at);
            auto logits = (*engine)->prefill(*seq, std::span(ids).subspan(at, n));
            if (!logits.ok())
                throw std::runtime_error(logits.error().message);
            last = logits->values;
        }
        return last;
    };
    const auto whole = lastLogits(700), hundreds = lastLogits(100), eights = lastLogits(8);
    report.result("prefill_paths_700_vs_100 (rel L2)", relL2(hundreds, whole), 2e-2);
    report.result("prefill_paths_700_vs_8 (rel L2)", relL2(eights, whole), 2e-2);
}

// ---- 8. the CUDA engine against the CPU reference on the `small` fixture ----
// Issue 5's check: prompts whose lengths cross the flash kernel's minimum (16) and tiles (128),
// the KDA chunks (64) and the prefill segments, prefilled on CUDA in one call and in random
// splits, leave states (every KDA state and convolution window, every MLA cache row) within the
// bf16 tolerance of the fp32 CPU reference's after the whole prompt: 1.25 × the relative error
// an honest bf16 run of this model has (golden.json), as check-golden uses for its states. The
// whole and split CUDA runs must agree within the same bound, not more closely: a piece under 16
// tokens takes other kernels (the absorbed attention, the KDA step in fp32) than one call of the
// whole does (the flash kernel with bf16 probabilities, TF32 KDA), and this random model
// amplifies bf16-level differences (measured on the H200: up to 6e-2).
// Reads FOLIO_GOLDEN_DIR (default .golden) and skips, saying why, when the fixture is absent.
void testCpuParity(Report& report) {
    using namespace folio::inference;
    const char* env = std::getenv("FOLIO_GOLDEN_DIR");
    const std::filesystem::path dir =
        std::filesystem::path(env != nullptr ? env : ".golden") / "small";
    std::ifstream meta(dir / "golden.json");
    if (!meta || !std::filesystem::exists(dir / "model.safetensors")) {
        std::printf("SKIP cpu_parity: no golden fixture at %s (set FOLIO_GOLDEN_DIR)\n",
                    dir.string().c_str());
        return;
    }
    const std::string text((std::istreambuf_iterator<char>(meta)),
                           std::istreambuf_iterator<char>());
    auto json = parseJson(text);
    const JsonValue* honest = json.ok() ? json->find("bf16_reference_rel_l2_error") : nullptr;
    if (honest == nullptr)
        throw std::runtime_error("golden.json lacks bf16_reference_rel_l2_error");
    const double tolerance = 1.25 * honest->number();
    auto open = [&](BackendKind kind) {
        EngineOptions options;
        options.backend = kind;
        auto engine = Engine::open(dir, options);
        if (!engine.ok())
            throw std::runtime_error(engine.error().message);
        return std::move(engine).value();
    };
    auto cpu = open(BackendKind::Cpu);
    auto gpu = open(BackendKind::Cuda);
    auto stateAfter = [](Engine& engine, std::span<const int32_t> ids,
                         const std::vector<size_t>& cuts) {
        auto seq = engine.newSequence();
        if (!seq.ok())
            throw std::runtime_error(seq.error().message);
        size_t begin = 0;
        for (size_t i = 0; i <= cuts.size(); ++i) {
            const size_t end = i < cuts.size() ? cuts[i] : ids.size();
            auto logits = engine.prefill(*seq, ids.subspan(begin, end - begin));
            if (!logits.ok())
                throw std::runtime_error(logits.error().message);
            begin = end;
        }
        auto bytes = engine.saveState(*seq);
        if (!bytes.ok())
            throw std::runtime_error(bytes.error().message);
        auto decoded = decodeState(*bytes);
        if (!decoded.ok())
            throw std::runtime_error(decoded.error().message);
        std::map<std::string, std::vector<float>> byName;
        for (StateTensor& t : decoded->tensors)
            byName[t.name] = std::move(t.data);
        return byName;
    };
    // The worst relative L2 error over the KDA tensors and over the MLA tensors.
    auto compare = [](const std::map<std::string, std::vector<float>>& got,
                      const std::map<std::string, std::vector<float>>& want) {
        std::pair<double, double> worst{0.0, 0.0};
        if (got.size() != want.size())
            return std::pair<double, double>{INFINITY, INFINITY};
        for (const auto& [name, values] : want) {
            const auto it = got.find(name);
            if (it == got.end() || it->second.size() != values.size())
                return std::pair<double, double>{INFINITY, INFINITY};
            double& kind = name.rfind("kda.", 0) == 0 ? worst.first : worst.second;
            kind = std::max(kind, relL2(it->second, values));
        }
        return worst;
    };
    Rng rng(12);
    const int vocab = static_cast<int>(cpu->config().vocabSize);
    for (const int n : {1, 63, 64, 65, 1000, 5000}) {
        std::vector<int32_t> ids(sz(n));
        for (int32_t& id : ids)
            id = rng.below(vocab);
        std::vector<size_t> cuts;  // two to four random pieces
        for (int k = 1 + rng.below(3); k > 0 && n > 1; --k)
            cuts.push_back(sz(1 + rng.below(n - 1)));
        std::sort(cuts.begin(), cuts.end());
        cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
        const auto reference = stateAfter(*cpu, ids, {});
        const auto whole = stateAfter(*gpu, ids, {});
        const auto split = stateAfter(*gpu, ids, cuts);
        const auto [kdaWhole, mlaWhole] = compare(whole, reference);
        const auto [kdaSplit, mlaSplit] = compare(split, reference);
        const auto [kdaSelf, mlaSelf] = compare(split, whole);
        const std::string at = "cpu_parity_t" + std::to_string(n);
        report.result(at + "_kda_state_whole", kdaWhole, tolerance);
        report.result(at + "_mla_cache_whole", mlaWhole, tolerance);
        report.result(at + "_kda_state_split", kdaSplit, tolerance);
        report.result(at + "_mla_cache_split", mlaSplit, tolerance);
        report.result(at + "_split_vs_whole", std::max(kdaSelf, mlaSelf), tolerance);
    }
}

const char* gOnlySection = nullptr;  // folio-cuda-ops-test SECTION: run that section alone

void section(Report& report, const char* name, const std::function<void(Report&)>& body) {
    if (gOnlySection != nullptr && std::string(gOnlySection) != name)
        return;
    try {
        body(report);
    } catch (const std::exception& e) {
        report.error(name, e.what());
        cudaGetLastError();  // clear a sticky launch error for the next section
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1)
        gOnlySection = argv[1];
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("SKIP: no CUDA device\n");
        return 77;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    Report report;
    section(report, "basic", testBasic);
    section(report, "gemv", testGemv);
    section(report, "kda_d128", [](Report& r) { testKda(r, 128); });
    section(report, "kda_d64", [](Report& r) { testKda(r, 64); });
    section(report, "kda_chunked", testKdaChunked);
    section(report, "mla", testMla);
    section(report, "moe", testMoe);
    section(report, "sample", testSample);
    section(report, "mla_flash", testMlaFlash);
    section(report, "prefill_paths", testPrefillPaths);
    section(report, "cpu_parity", testCpuParity);
    std::printf("%s: %d failure(s)\n", report.failures() == 0 ? "OK" : "FAILED", report.failures());
    return report.failures() == 0 ? 0 : 1;
}
