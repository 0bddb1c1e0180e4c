// SPDX-License-Identifier: GPL-3.0-or-later
// MLA attention for prefill in the expanded form, flash-attention style on tensor cores: the
// keys' nope part and the values come from a segment of the latent cache expanded by one kv_b
// product (done by the caller), the keys' rope part straight from the cache. A block owns 128
// queries of one head; its 8 warps own 16 queries each and walk the segment's keys 64 at a time
// (copied with cp.async, double-buffered): S = Q Kᵀ (192 dims), an online softmax in registers,
// O += P V (128 dims), with mma.sync m16n8k16 (bf16 in, fp32 accumulate) and ldmatrix. The
// softmax state (max, sum, unnormalised O) carries from one segment to the next through global
// memory, so no query ever needs every key expanded at once. T × T scores are never stored.
// This mma.sync form serves GPUs other than compute capability 9.0 (and builds without sm_90a);
// on Hopper launchMlaFlashPrefill runs the wgmma form (mla_flash_wgmma.cu) instead.
#include "async_copy.cuh"
#include "kernels.h"
#include "mla_flash_common.cuh"
#include "mla_flash_wgmma.h"
#include "mma.cuh"

namespace folio::inference::cuda {
namespace {

using namespace flash;
constexpr int kQueries = kMlaFlashQueries, kKeys = 64, kWarps = kQueries / 16,
              kThreads = 32 * kWarps;
constexpr int kQkPitch = kQk + 8;  // bf16 per shared row (16-byte aligned, conflict-free)
constexpr int kValuePitch = kValue + 8;
constexpr int kKeyTiles = kKeys / 8;  // n-tiles of S

constexpr size_t kSharedBytes =
    sizeof(bf16) * (kQueries * kQkPitch + 2 * kKeys * kQkPitch + 2 * kKeys * kValuePitch);

// Set by configureMlaFlashPrefill: the device runs the wgmma form (mla_flash_wgmma.cu).
bool useWgmma = false;

// Copies keys [base, base + 64) of head h (nope from the expanded segment, rope from the cache)
// and their values into shared memory; rows at or past `end` become zeros.
__device__ __forceinline__ void loadKeyTile(const MlaFlashArgs& a, int h, int64_t base, int64_t end,
                                            bf16* keys, bf16* values) {
    constexpr int kKeyChunks = kQk / 8, kValueChunks = kValue / 8;
    for (int i = threadIdx.x; i < kKeys * kKeyChunks; i += kThreads) {
        const int row = i / kKeyChunks, c = i % kKeyChunks;
        const int64_t key = base + row;
        const bool valid = key < end;
        const int64_t safe = valid ? key : a.keyBegin;
        const bf16* src;
        if (c < kNope / 8) {
            src = a.kv + ((safe - a.keyBegin) * a.heads + h) * (kNope + kValue) + c * 8;
        } else {
            const bf16* row0 =
                a.cache.pages[safe / a.cache.pageRows] + (safe % a.cache.pageRows) * a.cache.width;
            src = row0 + (a.cache.width - kRope) + (c - kNope / 8) * 8;
        }
        copy16(keys + row * kQkPitch + c * 8, src, valid);
    }
    for (int i = threadIdx.x; i < kKeys * kValueChunks; i += kThreads) {
        const int row = i / kValueChunks, c = i % kValueChunks;
        const int64_t key = base + row;
        const bool valid = key < end;
        const int64_t safe = valid ? key : a.keyBegin;
        const bf16* src =
            a.kv + ((safe - a.keyBegin) * a.heads + h) * (kNope + kValue) + kNope + c * 8;
        copy16(values + row * kValuePitch + c * 8, src, valid);
    }
}

__global__ void __launch_bounds__(kThreads) flashPrefillKernel(MlaFlashArgs a) {
    extern __shared__ __align__(16) unsigned char shared[];
    bf16* qTile = reinterpret_cast<bf16*>(shared);
    bf16* keys[2] = {qTile + kQueries * kQkPitch, qTile + kQueries * kQkPitch + kKeys * kQkPitch};
    bf16* values[2] = {keys[1] + kKeys * kQkPitch,
                       keys[1] + kKeys * kQkPitch + kKeys * kValuePitch};

    const int h = blockIdx.y, q0 = blockIdx.x * kQueries;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
    const KeyRange range = keyRange(a, q0, kQueries, kKeys, static_cast<int>(blockIdx.z));
    const int64_t begin = range.begin, end = range.end;

    // Queries of this block (rows past the end are zeros).
    for (int i = threadIdx.x; i < kQueries * (kQk / 8); i += kThreads) {
        const int row = i / (kQk / 8), c = i % (kQk / 8);
        const bool valid = q0 + row < a.tokens;
        const bf16* src =
            a.q + (static_cast<int64_t>(valid ? q0 + row : 0) * a.heads + h) * kQk + c * 8;
        copy16(qTile + row * kQkPitch + c * 8, src, valid);
    }
    if (begin < end)
        loadKeyTile(a, h, begin, end, keys[0], values[0]);
    commitCopies();

    float o[kValueTiles][4];
    Rows rows = startRows(a, range, q0 + 16 * warp + g, h, tg, o);

    waitCopies<0>();
    __syncthreads();
    // Q fragments stay in registers for the whole segment.
    uint32_t qf[kQk / 16][4];
#pragma unroll
    for (int kk = 0; kk < kQk / 16; ++kk)
        ldmatrix4(qf[kk], qTile + (16 * warp + (lane & 15)) * kQkPitch + 16 * kk + (lane >> 4) * 8);

    const float scaleLog2 = a.scale * kLog2e;
    int buffer = 0;
    for (int64_t base = begin; base < end; base += kKeys) {
        if (base + kKeys < end)
            loadKeyTile(a, h, base + kKeys, end, keys[buffer ^ 1], values[buffer ^ 1]);
        commitCopies();
        const bf16* k = keys[buffer];
        const bf16* v = values[buffer];

        // S = Q Kᵀ for this warp's 16 queries and the tile's 64 keys.
        float s[kKeyTiles][4];
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j)
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < kQk / 16; ++kk) {
#pragma unroll
            for (int j = 0; j < kKeyTiles; j += 2) {
                uint32_t b[4];
                ldmatrix4(b, k + (8 * j + (lane & 7) + (lane >> 4) * 8) * kQkPitch + 16 * kk +
                                 ((lane >> 3) & 1) * 8);
                mma(s[j], qf[kk], b[0], b[1]);
                mma(s[j + 1], qf[kk], b[2], b[3]);
            }
        }
        const bool needsMask = base + kKeys > min(rows.posA, rows.posB) + 1 || base + kKeys > end;
        rescale(o, softmaxScores(s, base, end, needsMask, scaleLog2, tg, rows));
        // O += P V: P's accumulators become A fragments directly.
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk) {
            uint32_t p[4];
            probabilityFragment(s, kk, p);
#pragma unroll
            for (int j = 0; j < kValueTiles; j += 2) {
                uint32_t b[4];
                ldmatrix4Trans(b, v + (16 * kk + (lane & 7) + ((lane >> 3) & 1) * 8) * kValuePitch +
                                      8 * j + (lane >> 4) * 8);
                mma(o[j], p, b[0], b[1]);
                mma(o[j + 1], p, b[2], b[3]);
            }
        }
        waitCopies<0>();
        __syncthreads();
        buffer ^= 1;
    }
    finishRows(a, range, rows, h, tg, o);
}

// Merges the splits' partial states with the carried one (unless first): into the carried
// state, or (last) normalised into out. One block per (query, head), one thread per value dim.
__global__ void mlaFlashMergeKernel(MlaFlashArgs a) {
    const int t = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
    const int64_t at = static_cast<int64_t>(t) * a.heads + h;
    const int64_t stride = static_cast<int64_t>(a.tokens) * a.heads;
    float m = a.first ? -INFINITY : a.stateMax[at];
    for (int z = 0; z < a.splits; ++z)
        m = fmaxf(m, a.partialMax[z * stride + at]);
    const float ref = m == -INFINITY ? 0.0f : m;
    float sum = 0.0f, o = 0.0f;
    if (!a.first) {
        const float w = exp2f(a.stateMax[at] - ref);
        sum = a.stateSum[at] * w;
        o = a.stateO[at * kValue + d] * w;
    }
    for (int z = 0; z < a.splits; ++z) {
        const float w = exp2f(a.partialMax[z * stride + at] - ref);
        sum += a.partialSum[z * stride + at] * w;
        o += a.partialO[(z * stride + at) * kValue + d] * w;
    }
    if (a.last) {
        a.out[static_cast<int64_t>(t) * a.outStride + h * kValue + d] = sum > 0.0f ? o / sum : 0.0f;
        return;
    }
    __syncthreads();  // every thread has read the carried state before it is overwritten
    if (d == 0) {
        a.stateMax[at] = m;
        a.stateSum[at] = sum;
    }
    a.stateO[at * kValue + d] = o;
}

__global__ void queriesToBf16Kernel(const float* q, int64_t stride, int width, bf16* out) {
    const float* row = q + static_cast<int64_t>(blockIdx.x) * stride;
    bf16* dst = out + static_cast<int64_t>(blockIdx.x) * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        dst[i] = __float2bfloat16(row[i]);
}

}  // namespace

bool mlaFlashSupported(int nope, int rope, int valueDim) {
    return nope == kNope && rope == kRope && valueDim == kValue;
}

cudaError_t configureMlaFlashPrefill() {
    useWgmma = mlaFlashWgmmaAvailable();
    if (useWgmma) {
        const cudaError_t e = configureMlaFlashWgmma();
        if (e != cudaSuccess)
            return e;
    }
    return cudaFuncSetAttribute(flashPrefillKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(kSharedBytes));
}

void selectMlaFlashWgmma(bool wgmma) {
    useWgmma = wgmma && mlaFlashWgmmaAvailable();
}

void launchMlaQueriesToBf16(const float* q, int64_t stride, int tokens, int width, bf16* out,
                            cudaStream_t stream) {
    if (tokens > 0)
        queriesToBf16Kernel<<<tokens, 256, 0, stream>>>(q, stride, width, out);
}

void launchMlaFlashPrefill(const MlaFlashArgs& a, cudaStream_t stream) {
    if (!useWgmma || !launchMlaFlashWgmma(a, stream)) {
        const dim3 grid(static_cast<unsigned>((a.tokens + kQueries - 1) / kQueries),
                        static_cast<unsigned>(a.heads), static_cast<unsigned>(a.splits));
        flashPrefillKernel<<<grid, kThreads, kSharedBytes, stream>>>(a);
    }
    if (a.splits > 1)
        mlaFlashMergeKernel<<<dim3(a.tokens, a.heads), kValue, 0, stream>>>(a);
}

}  // namespace folio::inference::cuda
