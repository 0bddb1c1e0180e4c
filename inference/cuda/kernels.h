// SPDX-License-Identifier: GPL-3.0-or-later
// The CUDA backend's kernels, as host-side launchers on a stream. Weights are bf16, activations
// and the KDA state fp32, the MLA cache bf16 in pages. Launchers only enqueue work: they never
// synchronise and never allocate; the caller checks cudaGetLastError() after launching.
// Kernels that run inside the captured decode step read the sequence length from device memory
// (`length`), so one captured graph serves every step. The decode kernels are launched as
// programmatic dependents (dependent_launch.cuh): each waits for the grid before it ahead of
// any read of its results, so callers see the usual stream order.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace folio::inference::cuda {

using bf16 = __nv_bfloat16;

// ---- element-wise and normalisation (basic_kernels.cu) ----
void launchEmbed(const bf16* table, const int32_t* ids, int tokens, int hidden, float* out,
                 cudaStream_t stream);
void launchRmsNorm(const float* x, const float* weight, int rows, int cols, float eps, float* out,
                   cudaStream_t stream);
void launchToBf16(const float* x, int64_t count, bf16* out, cudaStream_t stream);
// hi = bf16(x), lo = bf16(x - hi): two bf16 terms that carry ~16 bits of x's mantissa.
void launchSplitBf16(const float* x, int64_t count, bf16* hi, bf16* lo, cudaStream_t stream);
void launchToFloat(const bf16* x, int64_t count, float* out, cudaStream_t stream);
void launchAdd(float* x, const float* delta, int64_t count, cudaStream_t stream);
void launchSwiglu(const float* gateUp, int rows, int inner, float* out, cudaStream_t stream);
void launchAdvanceLength(int32_t* length, int tokens, cudaStream_t stream);
void launchFillRandomBf16(bf16* out, int64_t count, uint64_t seed, float scale,
                          cudaStream_t stream);
void launchFillFloat(float* out, int64_t count, float value, cudaStream_t stream);

// ---- matrix-vector products for one token (gemv_kernels.cu) ----
// y[item][n] = residual[item][n] + sum_k W_item[n][k] * xin[item][k], with
//   W_item = table ? table[ids ? ids[item] : item] : matrix,
//   xin    = x, optionally RMS-normalised on load with normWeight (one row of length K).
// With `up` set (SwiGLU pairs), y = silu(W x) * (Up x) instead, rows from the two matrices.
struct GemvArgs {
    const bf16* matrix = nullptr;
    const bf16* const* table = nullptr;
    const bf16* up = nullptr;
    const bf16* const* upTable = nullptr;
    const int32_t* ids = nullptr;
    int rows = 0, cols = 0, items = 1;
    const float* x = nullptr;
    int64_t xItemStride = 0;
    const float* normWeight = nullptr;
    float normEps = 0;
    const float* residual = nullptr;
    float* y = nullptr;
    int64_t yItemStride = 0;
};
void launchGemv(const GemvArgs& args, cudaStream_t stream);

// ---- KDA (kda_kernels.cu) ----
// Runs `tokens` steps of the KDA recurrence for every head: the short convolution with its
// window, SiLU, the forget gate, beta, L2 normalisation, the delta rule, the gated RMSNorm.
// proj rows: q [P] | k [P] | v [P] | beta logits [H] ...; gates rows: f [P] | output gate [P].
struct KdaStepArgs {
    const float* proj = nullptr;
    int64_t projStride = 0;
    const float* gates = nullptr;
    int64_t gatesStride = 0;
    const float* convTaps = nullptr;   // [3][P][W]
    float* convWindow = nullptr;       // [3][W-1][P]
    float* state = nullptr;            // [H][d][d]
    const float* decayRate = nullptr;  // [H]: exp(A_log)
    const float* dtBias = nullptr;     // [P]
    const float* outNorm = nullptr;    // [d]
    float eps = 0;
    float* out = nullptr;  // [tokens][P]
    int tokens = 0, heads = 0, headDim = 0, convWidth = 0;
    // The launch before this one on the stream did not write the state (decode: it was written a
    // whole step earlier), so its copies may start while that kernel finishes.
    bool stateSettled = false;
};
bool kdaHeadDimSupported(int headDim);
void launchKdaSteps(const KdaStepArgs& args, cudaStream_t stream);

// KDA for prefill in the chunked form (kda_chunked*.cu; head size 128, conv width <= 4, compute
// capability 9.0 or later): the same inputs, state, window and outputs as launchKdaSteps
// (headDim unused), plus `chunks`: kdaChunkedScratchFloats floats of scratch, 16-byte aligned,
// for the records the two stages pass (138.5 KiB per chunk of 64 tokens and head: 2.2 KB per token
// and head, 277 MiB for a call of 4,096 tokens of 32 heads).
struct KdaChunkedArgs : KdaStepArgs {
    float* chunks = nullptr;
};
bool kdaChunkedSupported(int headDim, int convWidth);
int64_t kdaChunkedScratchFloats(int tokens, int heads);
// Allows the kernels their shared memory; once, before any launch. Succeeds (and does nothing)
// on devices that do not run them.
cudaError_t configureKdaChunked();
// The two stages, for timing them apart: Local (every chunk on its own: gate, norms, the
// intra-chunk solve; reads the window) must precede State (the sequential pass over the chunks:
// state, outputs, window slide). launchKdaChunked runs both.
enum class KdaChunkedStage { Local, State };
// How many heads' state passes (one cluster of four blocks each) the device runs at once, after
// configureKdaChunked; fewer than the layer's heads means the pass runs in several waves.
int kdaChunkedHeadsAtOnce(int heads);
void launchKdaChunkedStage(const KdaChunkedArgs& args, KdaChunkedStage stage, cudaStream_t stream);
void launchKdaChunked(const KdaChunkedArgs& args, cudaStream_t stream);

// ---- MLA (mla_kernels.cu) ----
// The latent cache of one layer: rows of kvLoraRank + ropeDim bf16 in pages of pageRows rows.
struct LatentCache {
    bf16* const* pages = nullptr;  // device array of page pointers
    int pageRows = 0;
    int width = 0;  // kvLoraRank + ropeDim
};
// Normalises the latent part of the kv_a projections of `tokens` new tokens and writes the rows
// at positions length .. length + tokens - 1.
void launchMlaAppend(const float* kvA, int64_t kvAStride, const float* latentNorm, float eps,
                     int latentRank, LatentCache cache, const int32_t* length, int tokens,
                     cudaStream_t stream);
// launchMlaAppend and, in the same launch (the two are independent), the query absorption
// qLatent[t][h][:] = W_UK_h^T q_nope[t][h] (q rows: [H][nope + rope] with stride qStride).
void launchMlaAppendAndAbsorb(const float* kvA, int64_t kvAStride, const float* latentNorm,
                              float eps, LatentCache cache, const int32_t* length, const float* q,
                              int64_t qStride, const bf16* kvB, int heads, int nope, int rope,
                              int valueDim, int latentRank, int tokens, float* qLatent,
                              cudaStream_t stream);
// Attention of `tokens` queries (the last `tokens` positions of the cache, length counted
// before they were appended) over the cache, split over the sequence into up to `splits` parts
// (the kernels use fewer where the context is short; the grid is sized for `splits`), whose
// partial results are merged afterwards.
struct MlaAttentionArgs {
    const float* qLatent = nullptr;  // [T][H][r]
    const float* q = nullptr;        // for q_pe: [T][H][nope + rope], stride qStride
    int64_t qStride = 0;
    LatentCache cache;
    const int32_t* length = nullptr;  // length before the new tokens
    int tokens = 0, heads = 0, nope = 0, rope = 0, latentRank = 0, splits = 1;
    float scale = 1;
    float* partial = nullptr;  // T * splits * H * (r + 2) floats: see mlaSplitOutputs
    float* out = nullptr;      // [T][H][r]
};
// The splits' results in `partial`: each split's unnormalised outputs [T][splits][H][r], then
// the softmax's running maximum [T][H][splits] and sum [T][H][splits]. The splits that saw rows
// come first; the others leave their outputs unwritten, a maximum of -inf and a sum of 0.
__host__ __device__ inline float* mlaSplitOutputs(const MlaAttentionArgs& a, int t, int split) {
    return a.partial + (static_cast<int64_t>(t) * a.splits + split) * a.heads * a.latentRank;
}
__host__ __device__ inline float* mlaSplitMaxima(const MlaAttentionArgs& a, int t, int head) {
    return a.partial + static_cast<int64_t>(a.tokens) * a.splits * a.heads * a.latentRank +
           (static_cast<int64_t>(t) * a.heads + head) * a.splits;
}
__host__ __device__ inline float* mlaSplitSums(const MlaAttentionArgs& a, int t, int head) {
    return mlaSplitMaxima(a, t, head) + static_cast<int64_t>(a.tokens) * a.heads * a.splits;
}
size_t mlaAttentionSharedBytes(int heads, int latentRank, int rope);
// Allows the attention kernel its shared memory; once, before any launch or capture.
cudaError_t configureMlaAttention(size_t sharedBytes);
// Runs on tensor cores when the shape is the real model's (see mla_tensor_core.cu).
void launchMlaAttention(const MlaAttentionArgs& args, cudaStream_t stream);
bool mlaTensorCoreShape(int heads, int latentRank, int rope);
cudaError_t configureMlaTensorCoreAttention();
void launchMlaTensorCoreAttention(const MlaAttentionArgs& args, cudaStream_t stream);
// The Hopper form of the tensor-core attention (mla_decode_wgmma.cu): whether this build has it
// and the device can run it; configureMlaAttention selects it where it can, tests switch between
// the forms; the launcher returns false (and launches nothing) when the form is not selected.
bool mlaDecodeWgmmaAvailable();
cudaError_t configureMlaDecodeWgmma();
void selectMlaDecodeWgmma(bool wgmma);
bool launchMlaDecodeWgmma(const MlaAttentionArgs& args, cudaStream_t stream);
// out[t][h][:] = W_UV_h oLatent[t][h]
void launchMlaUpValue(const float* oLatent, const bf16* kvB, int heads, int nope, int valueDim,
                      int latentRank, int tokens, float* out, cudaStream_t stream);

// ---- MLA prefill attention, expanded form (mla_flash_prefill.cu) ----
// Causal attention of `tokens` queries at positions queryPos0 .. queryPos0 + tokens - 1 over the
// keys [keyBegin, keyEnd) of one segment: q [T][H][nope + rope] bf16; kv [keyEnd - keyBegin][H]
// [nope + value] bf16 (the segment's latent rows times kv_b); the keys' rope part from the
// cache. Segments run in order, first to last; between them the softmax state (stateMax,
// stateSum: [T][H]; stateO: [T][H][value]) carries over; the last writes out[t][h * value + d]
// (row stride outStride), normalised. Shapes: nope 128, rope 64, value 128 (mlaFlashSupported).
struct MlaFlashArgs {
    const bf16* q = nullptr;
    const bf16* kv = nullptr;
    LatentCache cache;
    int64_t queryPos0 = 0, keyBegin = 0, keyEnd = 0;
    int tokens = 0, heads = 0;
    bool first = true, last = true;
    float scale = 1;
    float* stateMax = nullptr;
    float* stateSum = nullptr;
    float* stateO = nullptr;
    float* out = nullptr;
    int64_t outStride = 0;
    // Few queries over many keys: the segment's keys split over `splits` blocks per query tile,
    // each writing partial states ([splits][T][H], [splits][T][H][value]), then merged.
    int splits = 1;
    float* partialMax = nullptr;
    float* partialSum = nullptr;
    float* partialO = nullptr;
    // Scratch of at least (keyEnd - keyBegin) × rope bf16: the wgmma form gathers the segment's
    // rope parts there from the cache's pages, so its tensor-memory copies see one dense array.
    bf16* ropeRows = nullptr;
};
// Queries per block of the prefill attention kernel (16 per warp).
inline constexpr int kMlaFlashQueries = 128;
bool mlaFlashSupported(int nope, int rope, int valueDim);
// Allows the kernel its shared memory; once, before any launch.
cudaError_t configureMlaFlashPrefill();
void launchMlaFlashPrefill(const MlaFlashArgs& args, cudaStream_t stream);
// out[t][0 .. width) = bf16(q[t * stride + 0 .. width))
void launchMlaQueriesToBf16(const float* q, int64_t stride, int tokens, int width, bf16* out,
                            cudaStream_t stream);

// ---- MoE (moe_kernels.cu) ----
inline constexpr int kMoeMaxExperts = 1024;
inline constexpr int kMoeMaxGroups = 64;
inline constexpr int kMoeMaxTopK = 64;  // experts chosen per token
struct MoeSelectArgs {
    const float* logits = nullptr;          // [T][E]
    const float* correctionBias = nullptr;  // [E]
    int tokens = 0, experts = 0, topK = 0, groups = 1, topGroups = 1;
    bool sigmoid = true, grouped = true, biasedWeights = false, renormalize = true;
    float scaling = 1;
    int sharedSlots = 0;     // appended after the top-k with the id `experts` and weight 1
    int32_t* ids = nullptr;  // [T][topK + sharedSlots]
    float* weights = nullptr;
};
void launchMoeSelect(const MoeSelectArgs& args, cudaStream_t stream);
// One token's router product and choice in one launch (decode): logits[e] = router row e ·
// RMSNorm(x) (bf16 router [experts][hidden], hidden a multiple of 8), then the choice of
// launchMoeSelect over those logits (select.tokens = 1; select.logits is ignored).
// `blocksDone` is a device counter that must be zero before the first launch; each launch
// leaves it zero.
struct MoeRouteArgs {
    const bf16* router = nullptr;
    int hidden = 0;
    float* logits = nullptr;
    const float* x = nullptr;
    const float* normWeight = nullptr;
    float normEps = 0;
    unsigned* blocksDone = nullptr;
    MoeSelectArgs select;
    // Optional: RMSNorm(x) (the router's input, hidden floats) written here, for the experts'
    // products to read instead of normalising x again.
    float* normalizedOut = nullptr;
};
void launchMoeRoute(const MoeRouteArgs& args, cudaStream_t stream);
// x[t][:] += sum_j weights[t][j] * y[t][j][:]
void launchMoeCombine(float* x, const float* y, const float* weights, int tokens, int slots,
                      int hidden, cudaStream_t stream);

// Gathers rows: out[i] = x[rows[i]]; scatter-add: x[rows[i]] += weight[i] * y[i] (rows unique).
void launchGatherRows(const float* x, const int32_t* rows, int count, int width, float* out,
                      cudaStream_t stream);
void launchScatterAddRows(float* x, const int32_t* rows, const float* weights, const float* y,
                          int count, int width, cudaStream_t stream);

// ---- MoE for many tokens (moe_grouped.cu) ----
// Groups the (token, slot) pairs by their expert id on the GPU: groupStart [groups + 1] gets each
// group's first position in `order` [pairs], which lists pair indices group by group. `counts`
// and `cursor` are [groups] of scratch.
void launchMoeGroupPairs(const int32_t* ids, int pairs, int groups, int32_t* counts,
                         int32_t* groupStart, int32_t* cursor, int32_t* order, cudaStream_t stream);
// One grouped product per launch, every group (expert) at once, on tensor cores. For group e,
// position s in [groupStart[e], groupStart[e + 1]) is pair order[s]; its input row is
// x[order[s] / slotsPerRow] (inputBySlot) or x[s]. With swiglu, table[e] holds [gate; up]
// ([2 rows, cols]) and act[s][rows] gets bf16(silu(gate x) * (up x)); without, table[e] is
// [rows, cols] and out[order[s]][rows] gets W x (fp32). The inputs are one bf16 term each (the
// caller rounds fp32 activations once, unlike the attention projections' hi + lo pairs), the
// products accumulate in fp32; so the usual pair of launches is x -> act (swiglu) and act -> out.
// rows % 64 == 0, cols % 16 == 0.
struct ExpertGemmArgs {
    const bf16* const* table = nullptr;
    int groups = 0, rows = 0, cols = 0;
    const int32_t* groupStart = nullptr;
    const int32_t* order = nullptr;
    const bf16* x = nullptr;  // one bf16 term per activation
    int64_t xStride = 0;
    bool inputBySlot = false;
    int slotsPerRow = 1;
    bool swiglu = false;
    // Many pairs per group (long prompts): 64 × 128 tiles through shared memory; needs
    // cols % 32 == 0. Where configureExpertGemm chose the Hopper form (moe_grouped_wgmma.cu),
    // 128 pairs × 256 weight rows on wgmma instead, for shapes with rows % 256 == 0 (with swiglu
    // rows % 128 == 0), cols % 64 == 0 and groups <= kMoeMaxExperts + 1.
    bool tiled = false;
    // The Hopper form's tile counter: one int32 of scratch (the launcher zeroes it) from which
    // its blocks draw tiles in turn. Without it each block takes a fixed share.
    int32_t* tileCounter = nullptr;
    bf16* act = nullptr;  // swiglu: [pairs][rows], in group order (position s)
    float* out = nullptr;
};
void launchExpertGemm(const ExpertGemmArgs& args, cudaStream_t stream);
// Allows the Hopper form of the tiled products its shared memory and makes launchExpertGemm use
// it where it can run (an sm_90a build on a compute capability 9.0 device); once, before any
// launch.
cudaError_t configureExpertGemm();
// Tests: whether the Hopper form can run here; selectExpertGemmWgmma configures as
// configureExpertGemm does, then keeps the Hopper form only when `wgmma`, its grid capped at
// maxBlocks blocks (0: one per multiprocessor) so that blocks take several tiles in turn.
bool expertGemmWgmmaAvailable();
cudaError_t selectExpertGemmWgmma(bool wgmma, int maxBlocks = 0);
// The Hopper form itself (moe_grouped_wgmma.cu), tried first by launchExpertGemm for tiled
// products: false, launching nothing, when it is not selected or does not take the shape.
bool launchExpertGemmWgmma(const ExpertGemmArgs& args, cudaStream_t stream);

// ---- sampling (sample_kernels.cu) ----
struct SampleParams {
    float temperature = 0, topP = 1, repetitionPenalty = 1, uniform = 0;
    int32_t topK = 0;
    int32_t inputToken = 0;  // the token the step appends (read by the embedding)
};
// Picks the next token from logits [V]; `seen` is a bitmap of the context's tokens (for the
// repetition penalty). Writes the id to *token. Vocabularies up to 196,608 tokens
// (sampleVocabSupported); launches nothing for others.
bool sampleVocabSupported(int vocab);
void launchSample(const float* logits, int vocab, const SampleParams* params, const uint32_t* seen,
                  int32_t* token, cudaStream_t stream);
void launchMarkSeen(uint32_t* seen, const int32_t* ids, int count, cudaStream_t stream);

}  // namespace folio::inference::cuda
