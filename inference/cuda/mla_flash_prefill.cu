// SPDX-License-Identifier: GPL-3.0-or-later
// MLA attention for prefill in the expanded form, flash-attention style on tensor cores: the
// keys' nope part and the values come from a segment of the latent cache expanded by one kv_b
// product (done by the caller), the keys' rope part straight from the cache. A block owns 128
// queries of one head; its 8 warps own 16 queries each and walk the segment's keys 64 at a time
// (copied with cp.async, double-buffered): S = Q Kᵀ (192 dims), an online softmax in registers,
// O += P V (128 dims), with mma.sync m16n8k16 (bf16 in, fp32 accumulate) and ldmatrix. The
// softmax state (max, sum, unnormalised O) carries from one segment to the next through global
// memory, so no query ever needs every key expanded at once. T × T scores are never stored.
#include "kernels.h"
#include "mma.cuh"

namespace folio::inference::cuda {
namespace {

constexpr int kNope = 128, kRope = 64, kQk = kNope + kRope, kValue = 128;
constexpr int kQueries = kMlaFlashQueries, kKeys = 64, kWarps = kQueries / 16,
              kThreads = 32 * kWarps;
constexpr int kQkPitch = kQk + 8;  // bf16 per shared row (16-byte aligned, conflict-free)
constexpr int kValuePitch = kValue + 8;
constexpr int kKeyTiles = kKeys / 8;     // n-tiles of S
constexpr int kValueTiles = kValue / 8;  // n-tiles of O
constexpr float kLog2e = 1.4426950408889634f;

constexpr size_t kSharedBytes =
    sizeof(bf16) * (kQueries * kQkPitch + 2 * kKeys * kQkPitch + 2 * kKeys * kValuePitch);

__device__ __forceinline__ uint32_t sharedAddress(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zero-filled when !valid.
__device__ __forceinline__ void copy16(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(dst)),
                 "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void commitCopies() {
    asm volatile("cp.async.commit_group;\n" ::);
}
template <int kPending>
__device__ __forceinline__ void waitCopies() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix4(uint32_t r[4], const bf16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
}
__device__ __forceinline__ void ldmatrix4Trans(uint32_t r[4], const bf16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
}

__device__ __forceinline__ uint32_t packFloats(float low, float high) {
    return pack2(__float2bfloat16(low), __float2bfloat16(high));
}

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
    // This block's keys: the segment's, or with splits one part of them, whose softmax state
    // goes to its own partial buffers (merged by mlaFlashMergeKernel).
    int64_t begin = a.keyBegin, keyEnd = a.keyEnd;
    bool first = a.first, last = a.last;
    float *stMax = a.stateMax, *stSum = a.stateSum, *stO = a.stateO;
    if (a.splits > 1) {
        const int64_t per =
            ((a.keyEnd - a.keyBegin + a.splits - 1) / a.splits + kKeys - 1) / kKeys * kKeys;
        begin = a.keyBegin + blockIdx.z * per;
        keyEnd = min(a.keyEnd, begin + per);
        first = true;
        last = false;
        const int64_t offset = static_cast<int64_t>(blockIdx.z) * a.tokens * a.heads;
        stMax = a.partialMax + offset;
        stSum = a.partialSum + offset;
        stO = a.partialO + offset * kValue;
    }
    // The last key any query of this block may see, and the keys this block offers.
    const int64_t lastVisible = a.queryPos0 + min(q0 + kQueries, a.tokens) - 1;
    const int64_t end = min(keyEnd, lastVisible + 1);

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

    // This thread's two query rows (g and g + 8 of the warp's 16) and their softmax state.
    const int rowA = q0 + 16 * warp + g, rowB = rowA + 8;
    const int64_t posA = a.queryPos0 + rowA, posB = a.queryPos0 + rowB;
    float maxA = -INFINITY, maxB = -INFINITY, sumA = 0.0f, sumB = 0.0f;
    float o[kValueTiles][4];
#pragma unroll
    for (int j = 0; j < kValueTiles; ++j)
        o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    const int64_t stateA = static_cast<int64_t>(rowA) * a.heads + h;
    const int64_t stateB = static_cast<int64_t>(rowB) * a.heads + h;
    if (!first) {
        // Each thread keeps a partial sum of its row; the carried (whole) sum re-enters once.
        if (rowA < a.tokens) {
            maxA = stMax[stateA];
            sumA = tg == 0 ? stSum[stateA] : 0.0f;
        }
        if (rowB < a.tokens) {
            maxB = stMax[stateB];
            sumB = tg == 0 ? stSum[stateB] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < kValueTiles; ++j) {
            const int d = 8 * j + 2 * tg;
            if (rowA < a.tokens) {
                o[j][0] = stO[stateA * kValue + d];
                o[j][1] = stO[stateA * kValue + d + 1];
            }
            if (rowB < a.tokens) {
                o[j][2] = stO[stateB * kValue + d];
                o[j][3] = stO[stateB * kValue + d + 1];
            }
        }
    }

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
        // Causal mask and the end of the segment, then the online softmax (log2 domain).
        const bool needsMask = base + kKeys > min(posA, posB) + 1 || base + kKeys > end;
        float tileMaxA = -INFINITY, tileMaxB = -INFINITY;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int64_t key = base + 8 * j + 2 * tg + (e & 1);
                const int64_t pos = e < 2 ? posA : posB;
                float value = s[j][e] * scaleLog2;
                if (needsMask && (key > pos || key >= end))
                    value = -INFINITY;
                s[j][e] = value;
            }
            tileMaxA = fmaxf(tileMaxA, fmaxf(s[j][0], s[j][1]));
            tileMaxB = fmaxf(tileMaxB, fmaxf(s[j][2], s[j][3]));
        }
        tileMaxA = fmaxf(tileMaxA, __shfl_xor_sync(0xffffffffu, tileMaxA, 1));
        tileMaxA = fmaxf(tileMaxA, __shfl_xor_sync(0xffffffffu, tileMaxA, 2));
        tileMaxB = fmaxf(tileMaxB, __shfl_xor_sync(0xffffffffu, tileMaxB, 1));
        tileMaxB = fmaxf(tileMaxB, __shfl_xor_sync(0xffffffffu, tileMaxB, 2));
        const float newMaxA = fmaxf(maxA, tileMaxA), newMaxB = fmaxf(maxB, tileMaxB);
        // A row that has seen no key yet keeps -inf as its max; use 0 as the reference then.
        const float refA = newMaxA == -INFINITY ? 0.0f : newMaxA;
        const float refB = newMaxB == -INFINITY ? 0.0f : newMaxB;
        const float keepA = exp2f(maxA - refA), keepB = exp2f(maxB - refB);
        maxA = newMaxA;
        maxB = newMaxB;
        float rowSumA = 0.0f, rowSumB = 0.0f;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
            s[j][0] = exp2f(s[j][0] - refA);
            s[j][1] = exp2f(s[j][1] - refA);
            s[j][2] = exp2f(s[j][2] - refB);
            s[j][3] = exp2f(s[j][3] - refB);
            rowSumA += s[j][0] + s[j][1];
            rowSumB += s[j][2] + s[j][3];
        }
        sumA = sumA * keepA + rowSumA;  // per thread partial; reduced over the quad at the end
        sumB = sumB * keepB + rowSumB;
#pragma unroll
        for (int j = 0; j < kValueTiles; ++j) {
            o[j][0] *= keepA;
            o[j][1] *= keepA;
            o[j][2] *= keepB;
            o[j][3] *= keepB;
        }
        // O += P V: P's accumulators become A fragments directly.
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk) {
            uint32_t p[4];
            p[0] = packFloats(s[2 * kk][0], s[2 * kk][1]);
            p[1] = packFloats(s[2 * kk][2], s[2 * kk][3]);
            p[2] = packFloats(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            p[3] = packFloats(s[2 * kk + 1][2], s[2 * kk + 1][3]);
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

    float fullA = sumA + __shfl_xor_sync(0xffffffffu, sumA, 1);
    fullA += __shfl_xor_sync(0xffffffffu, fullA, 2);
    float fullB = sumB + __shfl_xor_sync(0xffffffffu, sumB, 1);
    fullB += __shfl_xor_sync(0xffffffffu, fullB, 2);
    if (!last) {
        // Carry each row's max, its whole sum and the unnormalised O to the next segment.
        if (tg == 0) {
            if (rowA < a.tokens) {
                stMax[stateA] = maxA;
                stSum[stateA] = fullA;
            }
            if (rowB < a.tokens) {
                stMax[stateB] = maxB;
                stSum[stateB] = fullB;
            }
        }
#pragma unroll
        for (int j = 0; j < kValueTiles; ++j) {
            const int d = 8 * j + 2 * tg;
            if (rowA < a.tokens) {
                stO[stateA * kValue + d] = o[j][0];
                stO[stateA * kValue + d + 1] = o[j][1];
            }
            if (rowB < a.tokens) {
                stO[stateB * kValue + d] = o[j][2];
                stO[stateB * kValue + d + 1] = o[j][3];
            }
        }
        return;
    }
    const float invA = fullA > 0.0f ? 1.0f / fullA : 0.0f;
    const float invB = fullB > 0.0f ? 1.0f / fullB : 0.0f;
#pragma unroll
    for (int j = 0; j < kValueTiles; ++j) {
        const int d = 8 * j + 2 * tg;
        if (rowA < a.tokens) {
            float* out = a.out + static_cast<int64_t>(rowA) * a.outStride + h * kValue + d;
            out[0] = o[j][0] * invA;
            out[1] = o[j][1] * invA;
        }
        if (rowB < a.tokens) {
            float* out = a.out + static_cast<int64_t>(rowB) * a.outStride + h * kValue + d;
            out[0] = o[j][2] * invB;
            out[1] = o[j][3] * invB;
        }
    }
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
    return cudaFuncSetAttribute(flashPrefillKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(kSharedBytes));
}

void launchMlaQueriesToBf16(const float* q, int64_t stride, int tokens, int width, bf16* out,
                            cudaStream_t stream) {
    if (tokens > 0)
        queriesToBf16Kernel<<<tokens, 256, 0, stream>>>(q, stride, width, out);
}

void launchMlaFlashPrefill(const MlaFlashArgs& a, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>((a.tokens + kQueries - 1) / kQueries),
                    static_cast<unsigned>(a.heads), static_cast<unsigned>(a.splits));
    flashPrefillKernel<<<grid, kThreads, kSharedBytes, stream>>>(a);
    if (a.splits > 1)
        mlaFlashMergeKernel<<<dim3(a.tokens, a.heads), kValue, 0, stream>>>(a);
}

}  // namespace folio::inference::cuda
