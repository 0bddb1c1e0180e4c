// SPDX-License-Identifier: GPL-3.0-or-later
#include "weight_plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "../safetensors.h"
#include "cuda_check.h"

namespace folio::inference::cuda {
namespace {

constexpr uint64_t kAlignment = 256;
constexpr uint64_t kStagingBytes = 64ull << 20;

uint64_t alignUp(uint64_t n) {
    return (n + kAlignment - 1) / kAlignment * kAlignment;
}

}  // namespace

uint64_t WeightPlan::reserve(uint64_t bytes) {
    const uint64_t offset = alignUp(total_);
    total_ = offset + bytes;
    return offset;
}

void WeightPlan::matrix(Matrix& m, int rows, int cols,
                        std::initializer_list<const TensorView*> parts) {
    m.rows = rows;
    m.cols = cols;
    const uint64_t offset = reserve(static_cast<uint64_t>(rows) * cols * sizeof(bf16));
    matrixOffsets_.emplace_back(&m, offset);
    uint64_t at = offset;
    if (random_) {
        Piece p;
        p.offset = at;
        p.bytes = static_cast<uint64_t>(rows) * cols * sizeof(bf16);
        p.source = Source::RandomBf16;
        p.value = 1.0f / std::sqrt(static_cast<float>(cols));
        pieces_.push_back(p);
        return;
    }
    for (const TensorView* t : parts) {
        Piece p;
        p.offset = at;
        p.bytes = t->elements * sizeof(bf16);
        p.source = Source::Bf16Tensor;
        p.tensor = t;
        pieces_.push_back(p);
        at += p.bytes;
    }
}

void WeightPlan::vector(float*& target, int64_t count, const TensorView* tensor, Source source,
                        float fallback) {
    Piece p;
    p.offset = reserve(static_cast<uint64_t>(count) * sizeof(float));
    p.bytes = static_cast<uint64_t>(count) * sizeof(float);
    p.source = random_ || tensor == nullptr ? Source::ConstF32 : source;
    p.tensor = tensor;
    p.value = fallback;
    p.fixup = reinterpret_cast<void**>(&target);
    pieces_.push_back(p);
}

void WeightPlan::table(bf16**& target, const std::vector<const Matrix*>& matrices,
                       int64_t deltaElements) {
    Piece p;
    p.offset = reserve(matrices.size() * sizeof(bf16*));
    p.bytes = matrices.size() * sizeof(bf16*);
    p.source = Source::PointerTable;
    for (const Matrix* m : matrices) {
        const auto found = std::find_if(matrixOffsets_.begin(), matrixOffsets_.end(),
                                        [&](const auto& e) { return e.first == m; });
        p.pointerOffsets.push_back(found->second);
        p.pointerDeltas.push_back(deltaElements);
    }
    p.fixup = reinterpret_cast<void**>(&target);
    pieces_.push_back(p);
}

void WeightPlan::widened(float*& target, const Matrix& source) {
    Piece p;
    p.bytes = static_cast<uint64_t>(source.rows) * source.cols * sizeof(float);
    p.offset = reserve(p.bytes);
    p.source = Source::WidenedMatrix;
    const auto found = std::find_if(matrixOffsets_.begin(), matrixOffsets_.end(),
                                    [&](const auto& e) { return e.first == &source; });
    p.pointerOffsets.push_back(found->second);
    p.fixup = reinterpret_cast<void**>(&target);
    pieces_.push_back(p);
}

WeightPlan::WeightPlan(const ModelConfig& c, const ModelWeights* w, ModelDevice& model)
    : random_(w == nullptr) {
    const int D = static_cast<int>(c.hiddenSize), V = static_cast<int>(c.vocabSize);
    matrix(model.embed, V, D, {w ? &w->embedTokens : nullptr});
    matrix(model.lmHead, V, D, {w ? &w->lmHead : nullptr});
    vector(model.finalNorm, D, w ? &w->finalNorm : nullptr, Source::F32Tensor, 1.0f);
    model.layers.resize(static_cast<size_t>(c.numLayers));
    for (int64_t i = 0; i < c.numLayers; ++i) {
        LayerDevice& L = model.layers[static_cast<size_t>(i)];
        const LayerWeights* lw = w ? &w->layers[static_cast<size_t>(i)] : nullptr;
        L.kind = c.layerKind(i);
        vector(L.inputNorm, D, lw ? &lw->inputNorm : nullptr, Source::F32Tensor, 1.0f);
        vector(L.postAttentionNorm, D, lw ? &lw->postAttentionNorm : nullptr, Source::F32Tensor,
               1.0f);
        if (L.kind == LayerKind::Kda) {
            const int H = static_cast<int>(c.kdaNumHeads), d = static_cast<int>(c.kdaHeadDim);
            const int P = H * d, W = static_cast<int>(c.convKernelSize);
            KdaDevice& k = L.kda;
            if (lw) {
                const KdaWeights& kw = lw->kda;
                matrix(k.inProj, 3 * P + H + 2 * d, D,
                       {&kw.qProj, &kw.kProj, &kw.vProj, &kw.bProj, &kw.fA, &kw.gA});
            } else {
                matrix(k.inProj, 3 * P + H + 2 * d, D, {});
            }
            matrix(k.fB, P, d, {lw ? &lw->kda.fB : nullptr});
            matrix(k.gB, P, d, {lw ? &lw->kda.gB : nullptr});
            matrix(k.oProj, D, P, {lw ? &lw->kda.oProj : nullptr});
            // Three conv tap tensors [P,1,W], consecutive: [3][P][W].
            float* taps[3] = {};
            const TensorView* tapTensors[3] = {lw ? &lw->kda.qConv : nullptr,
                                               lw ? &lw->kda.kConv : nullptr,
                                               lw ? &lw->kda.vConv : nullptr};
            for (int part = 0; part < 3; ++part)
                vector(taps[part], static_cast<int64_t>(P) * W, tapTensors[part], Source::F32Tensor,
                       1.0f / static_cast<float>(W));
            k.convTaps = nullptr;
            pieces_[pieces_.size() - 3].fixup = reinterpret_cast<void**>(&k.convTaps);
            pieces_[pieces_.size() - 2].fixup = nullptr;
            pieces_[pieces_.size() - 1].fixup = nullptr;
            vector(k.decayRate, H, lw ? &lw->kda.aLog : nullptr, Source::ExpF32Tensor, 1.0f);
            vector(k.dtBias, P, lw ? &lw->kda.dtBias : nullptr, Source::F32Tensor, 0.0f);
            vector(k.outNorm, d, lw ? &lw->kda.oNorm : nullptr, Source::F32Tensor, 1.0f);
            table(k.lowRankTable, {&k.fB, &k.gB}, 0);
        } else {
            const int H = static_cast<int>(c.numAttentionHeads);
            const int nope = static_cast<int>(c.qkNopeHeadDim),
                      rope = static_cast<int>(c.qkRopeHeadDim);
            const int dv = static_cast<int>(c.vHeadDim), r = static_cast<int>(c.kvLoraRank);
            MlaDevice& a = L.mla;
            if (lw)
                matrix(a.inProj, H * (nope + rope) + r + rope, D, {&*lw->mla.qProj, &lw->mla.kvA});
            else
                matrix(a.inProj, H * (nope + rope) + r + rope, D, {});
            matrix(a.kvB, H * (nope + dv), r, {lw ? &lw->mla.kvB : nullptr});
            matrix(a.oProj, D, H * dv, {lw ? &lw->mla.oProj : nullptr});
            vector(a.latentNorm, r, lw ? &lw->mla.kvANorm : nullptr, Source::F32Tensor, 1.0f);
        }
        FfnDevice& f = L.ffn;
        f.moe = c.isMoeLayer(i);
        auto mlp = [&](MlpDevice& m, int inner, const MlpWeights* mw) {
            if (mw)
                matrix(m.gateUp, 2 * inner, D, {&mw->gate, &mw->up});
            else
                matrix(m.gateUp, 2 * inner, D, {});
            matrix(m.down, D, inner, {mw ? &mw->down : nullptr});
        };
        if (!f.moe) {
            mlp(f.dense, static_cast<int>(c.intermediateSize), lw ? &lw->dense : nullptr);
            continue;
        }
        const int E = static_cast<int>(c.numExperts), I = static_cast<int>(c.moeIntermediateSize);
        matrix(f.router, E, D, {lw ? &lw->experts.router : nullptr});
        widened(f.routerF32, f.router);
        vector(f.correctionBias, E, lw ? &lw->experts.correctionBias : nullptr, Source::F32Tensor,
               0.0f);
        f.experts.resize(static_cast<size_t>(E));
        for (int e = 0; e < E; ++e)
            mlp(f.experts[static_cast<size_t>(e)], I,
                lw ? &lw->experts.experts[static_cast<size_t>(e)] : nullptr);
        f.hasShared = c.numSharedExperts > 0;
        if (f.hasShared)
            mlp(f.shared, I * static_cast<int>(c.numSharedExperts),
                lw && lw->experts.shared ? &*lw->experts.shared : nullptr);
        // One shared expert has the routed experts' shape: it joins the tables as entry E, so
        // that decode runs it in the same launches as the chosen experts.
        f.sharedInTable = c.numSharedExperts == 1;
        std::vector<const Matrix*> gates, downs;
        for (const MlpDevice& m : f.experts) {
            gates.push_back(&m.gateUp);
            downs.push_back(&m.down);
        }
        if (f.sharedInTable) {
            gates.push_back(&f.shared.gateUp);
            downs.push_back(&f.shared.down);
        }
        table(f.gateTable, gates, 0);
        table(f.upTable, gates, static_cast<int64_t>(I) * D);
        table(f.downTable, downs, 0);
    }
}

Result<std::shared_ptr<void>> WeightPlan::materialise(
    uint64_t seed, const std::function<void(uint64_t, uint64_t)>& onProgress, cudaStream_t stream) {
    void* raw = nullptr;
    {
        const cudaError_t status = cudaMalloc(&raw, total_);
        if (status != cudaSuccess) {
            cudaGetLastError();
            size_t freeBytes = 0, totalBytes = 0;
            cudaMemGetInfo(&freeBytes, &totalBytes);
            return makeError(ErrorCode::OutOfMemory, "the model's weights need ",
                             total_ / (1 << 20), " MiB of GPU memory but only ",
                             freeBytes / (1 << 20), " MiB of ", totalBytes / (1 << 20),
                             " MiB are free; use a GPU with more memory or a smaller model");
        }
    }
    std::shared_ptr<void> memory(raw, [](void* p) { cudaFree(p); });
    auto* base = static_cast<std::byte*>(raw);
    for (const Piece& p : pieces_) {
        if (p.fixup != nullptr)
            *p.fixup = base + p.offset;
    }
    for (const auto& [m, offset] : matrixOffsets_)
        m->data = reinterpret_cast<bf16*>(base + offset);

    // Two pinned staging buffers, alternating, so conversion overlaps the copies.
    std::byte* staging[2] = {nullptr, nullptr};
    cudaEvent_t done[2] = {nullptr, nullptr};
    auto release = [&] {
        for (int i = 0; i < 2; ++i) {
            if (done[i])
                cudaEventDestroy(done[i]);
            if (staging[i])
                cudaFreeHost(staging[i]);
        }
    };
    struct Guard {
        std::function<void()> f;
        ~Guard() { f(); }
    } guard{release};
    for (int i = 0; i < 2; ++i) {
        FOLIO_CUDA_TRY(cudaMallocHost(reinterpret_cast<void**>(&staging[i]), kStagingBytes));
        FOLIO_CUDA_TRY(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
    }
    int next = 0;
    uint64_t uploaded = 0;
    std::vector<float> widened;
    auto copyOut = [&](uint64_t dst, const void* src, uint64_t bytes) -> Status {
        for (uint64_t at = 0; at < bytes; at += kStagingBytes) {
            const uint64_t n = std::min(kStagingBytes, bytes - at);
            FOLIO_CUDA_TRY(cudaEventSynchronize(done[next]));
            std::memcpy(staging[next], static_cast<const std::byte*>(src) + at, n);
            FOLIO_CUDA_TRY(
                cudaMemcpyAsync(base + dst + at, staging[next], n, cudaMemcpyHostToDevice, stream));
            FOLIO_CUDA_TRY(cudaEventRecord(done[next], stream));
            next ^= 1;
        }
        return {};
    };
    uint64_t pieceIndex = 0;
    for (const Piece& p : pieces_) {
        ++pieceIndex;
        switch (p.source) {
            case Source::RandomBf16:
                launchFillRandomBf16(reinterpret_cast<bf16*>(base + p.offset),
                                     static_cast<int64_t>(p.bytes / sizeof(bf16)),
                                     seed * 0x9e3779b97f4a7c15ull + pieceIndex, p.value, stream);
                FOLIO_CUDA_TRY(cudaGetLastError());
                break;
            case Source::ConstF32:
                launchFillFloat(reinterpret_cast<float*>(base + p.offset),
                                static_cast<int64_t>(p.bytes / sizeof(float)), p.value, stream);
                FOLIO_CUDA_TRY(cudaGetLastError());
                break;
            case Source::WidenedMatrix:
                launchToFloat(reinterpret_cast<const bf16*>(base + p.pointerOffsets[0]),
                              static_cast<int64_t>(p.bytes / sizeof(float)),
                              reinterpret_cast<float*>(base + p.offset), stream);
                FOLIO_CUDA_TRY(cudaGetLastError());
                break;
            case Source::PointerTable: {
                std::vector<bf16*> pointers;
                for (size_t i = 0; i < p.pointerOffsets.size(); ++i)
                    pointers.push_back(reinterpret_cast<bf16*>(base + p.pointerOffsets[i]) +
                                       p.pointerDeltas[i]);
                FOLIO_TRY(copyOut(p.offset, pointers.data(), p.bytes));
                break;
            }
            case Source::Bf16Tensor: {
                const TensorView& t = *p.tensor;
                if (t.dtype == DType::BF16) {
                    FOLIO_TRY(copyOut(p.offset, t.data, p.bytes));
                } else {
                    // Widen then narrow, a block at a time.
                    constexpr uint64_t kBlock = 1 << 20;
                    std::vector<uint16_t> narrow;
                    for (uint64_t at = 0; at < t.elements; at += kBlock) {
                        const uint64_t n = std::min(kBlock, t.elements - at);
                        widened.resize(n);
                        narrow.resize(n);
                        convertToFloat(t, at, n, widened.data());
                        for (uint64_t j = 0; j < n; ++j)
                            narrow[j] = floatToBf16(widened[j]);
                        FOLIO_TRY(copyOut(p.offset + at * 2, narrow.data(), n * 2));
                    }
                }
                break;
            }
            case Source::F32Tensor:
            case Source::ExpF32Tensor: {
                std::vector<float> values = toFloatVector(*p.tensor);
                if (p.source == Source::ExpF32Tensor) {
                    for (float& v : values)
                        v = std::exp(v);
                }
                FOLIO_TRY(copyOut(p.offset, values.data(), p.bytes));
                break;
            }
        }
        uploaded += p.bytes;
        if (onProgress)
            onProgress(uploaded, total_);
    }
    FOLIO_CUDA_TRY(cudaStreamSynchronize(stream));
    return memory;
}

}  // namespace folio::inference::cuda
