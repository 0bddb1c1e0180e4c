// SPDX-License-Identifier: GPL-3.0-or-later
// What the two MLA prefill attention kernels (mma.sync in mla_flash_prefill.cu, wgmma in
// mla_flash_wgmma.cu) share: the keys a block walks (a segment, or one split of it), and the
// per-thread online softmax over accumulator tiles in the m16n8 layout that both instruction
// families produce — a thread owns query rows g and g + 8 of its warp's 16 and, in every group
// of 8 columns, columns 2 tg and 2 tg + 1 (g = lane / 4, tg = lane % 4). The softmax state
// (max, sum, unnormalised O) is carried between segments through global memory; scores are in
// the log2 domain. Nothing here touches shared memory or synchronises a block.
#pragma once

#include <cmath>

#include "kernels.h"

namespace folio::inference::cuda::flash {

constexpr int kNope = 128, kRope = 64, kQk = kNope + kRope, kValue = 128;
constexpr int kValueTiles = kValue / 8;  // 8-column groups of O
constexpr float kLog2e = 1.4426950408889634f;

// The keys a block walks and where its softmax state lives.
struct KeyRange {
    int64_t begin = 0, end = 0;  // [begin, end): this block's keys that any of its queries sees
    bool first = true, last = true;
    float *max = nullptr, *sum = nullptr, *o = nullptr;
};

// The segment's keys, or with splits (a.splits > 1) split z of them (rounded to keyTile), whose
// state goes to that split's partial buffers; cut at the last key the block's queries see.
__device__ __forceinline__ KeyRange keyRange(const MlaFlashArgs& a, int q0, int queries,
                                             int keyTile, int split) {
    KeyRange r;
    r.begin = a.keyBegin;
    int64_t keyEnd = a.keyEnd;
    r.first = a.first;
    r.last = a.last;
    r.max = a.stateMax;
    r.sum = a.stateSum;
    r.o = a.stateO;
    if (a.splits > 1) {
        const int64_t per =
            ((a.keyEnd - a.keyBegin + a.splits - 1) / a.splits + keyTile - 1) / keyTile * keyTile;
        r.begin = a.keyBegin + split * per;
        keyEnd = min(a.keyEnd, r.begin + per);
        r.first = true;
        r.last = false;
        const int64_t offset = static_cast<int64_t>(split) * a.tokens * a.heads;
        r.max = a.partialMax + offset;
        r.sum = a.partialSum + offset;
        r.o = a.partialO + offset * kValue;
    }
    const int64_t lastVisible = a.queryPos0 + min(q0 + queries, a.tokens) - 1;
    r.end = min(keyEnd, lastVisible + 1);
    return r;
}

// One thread's two query rows and their running softmax state.
struct Rows {
    int rowA = 0, rowB = 0;          // query indices within the call
    int64_t posA = 0, posB = 0;      // their positions in the sequence
    int64_t stateA = 0, stateB = 0;  // their (query, head) index in the state buffers
    float maxA = -INFINITY, maxB = -INFINITY;
    float sumA = 0.0f, sumB = 0.0f;  // per-thread partial sums until finish()
};

// Rows rowA and rowA + 8 of head h; O zeroed, or the carried state loaded when !range.first.
__device__ __forceinline__ Rows startRows(const MlaFlashArgs& a, const KeyRange& range, int rowA,
                                          int h, int tg, float (&o)[kValueTiles][4]) {
    Rows r;
    r.rowA = rowA;
    r.rowB = rowA + 8;
    r.posA = a.queryPos0 + r.rowA;
    r.posB = a.queryPos0 + r.rowB;
    r.stateA = static_cast<int64_t>(r.rowA) * a.heads + h;
    r.stateB = static_cast<int64_t>(r.rowB) * a.heads + h;
#pragma unroll
    for (int j = 0; j < kValueTiles; ++j)
        o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    if (range.first)
        return r;
    // Each thread keeps a partial sum of its row; the carried (whole) sum re-enters once.
    const bool validA = r.rowA < a.tokens, validB = r.rowB < a.tokens;
    if (validA) {
        r.maxA = range.max[r.stateA];
        r.sumA = tg == 0 ? range.sum[r.stateA] : 0.0f;
    }
    if (validB) {
        r.maxB = range.max[r.stateB];
        r.sumB = tg == 0 ? range.sum[r.stateB] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kValueTiles; ++j) {
        const int d = 8 * j + 2 * tg;
        if (validA) {
            o[j][0] = range.o[r.stateA * kValue + d];
            o[j][1] = range.o[r.stateA * kValue + d + 1];
        }
        if (validB) {
            o[j][2] = range.o[r.stateB * kValue + d];
            o[j][3] = range.o[r.stateB * kValue + d + 1];
        }
    }
    return r;
}

// The online softmax over one tile of raw scores s (kKeyTiles groups of 8 keys from `base`):
// masked causally and at `end` when needsMask, scaled into the log2 domain inside the exponent
// (one FFMA per score), exponentiated against the new running max. s then holds the
// unnormalised probabilities; the returned factors rescale O (and have rescaled the sums).
struct Keep {
    float a, b;
};
template <int kKeyTiles>
__device__ __forceinline__ Keep softmaxScores(float (&s)[kKeyTiles][4], int64_t base, int64_t end,
                                              bool needsMask, float scaleLog2, int tg, Rows& r) {
    if (needsMask) {
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int64_t key = base + 8 * j + 2 * tg + (e & 1);
                if (key > (e < 2 ? r.posA : r.posB) || key >= end)
                    s[j][e] = -INFINITY;
            }
    }
    float tileMaxA = -INFINITY, tileMaxB = -INFINITY;
#pragma unroll
    for (int j = 0; j < kKeyTiles; ++j) {
        tileMaxA = fmaxf(tileMaxA, fmaxf(s[j][0], s[j][1]));
        tileMaxB = fmaxf(tileMaxB, fmaxf(s[j][2], s[j][3]));
    }
    tileMaxA = fmaxf(tileMaxA, __shfl_xor_sync(0xffffffffu, tileMaxA, 1));
    tileMaxA = fmaxf(tileMaxA, __shfl_xor_sync(0xffffffffu, tileMaxA, 2));
    tileMaxB = fmaxf(tileMaxB, __shfl_xor_sync(0xffffffffu, tileMaxB, 1));
    tileMaxB = fmaxf(tileMaxB, __shfl_xor_sync(0xffffffffu, tileMaxB, 2));
    // The scale is positive, so the max of the scaled scores is the scaled max.
    const float newMaxA = fmaxf(r.maxA, tileMaxA * scaleLog2);
    const float newMaxB = fmaxf(r.maxB, tileMaxB * scaleLog2);
    // A row that has seen no key yet keeps -inf as its max; use 0 as the reference then.
    const float refA = newMaxA == -INFINITY ? 0.0f : newMaxA;
    const float refB = newMaxB == -INFINITY ? 0.0f : newMaxB;
    const Keep keep{exp2f(r.maxA - refA), exp2f(r.maxB - refB)};
    r.maxA = newMaxA;
    r.maxB = newMaxB;
    float rowSumA = 0.0f, rowSumB = 0.0f;
#pragma unroll
    for (int j = 0; j < kKeyTiles; ++j) {
        s[j][0] = exp2f(fmaf(s[j][0], scaleLog2, -refA));
        s[j][1] = exp2f(fmaf(s[j][1], scaleLog2, -refA));
        s[j][2] = exp2f(fmaf(s[j][2], scaleLog2, -refB));
        s[j][3] = exp2f(fmaf(s[j][3], scaleLog2, -refB));
        rowSumA += s[j][0] + s[j][1];
        rowSumB += s[j][2] + s[j][3];
    }
    r.sumA = r.sumA * keep.a + rowSumA;  // per thread partial; reduced over the quad at the end
    r.sumB = r.sumB * keep.b + rowSumB;
    return keep;
}

__device__ __forceinline__ void rescale(float (&o)[kValueTiles][4], Keep keep) {
#pragma unroll
    for (int j = 0; j < kValueTiles; ++j) {
        o[j][0] *= keep.a;
        o[j][1] *= keep.a;
        o[j][2] *= keep.b;
        o[j][3] *= keep.b;
    }
}

__device__ __forceinline__ uint32_t packBf16(float low, float high) {
    __nv_bfloat162 v = __floats2bfloat162_rn(low, high);
    return *reinterpret_cast<uint32_t*>(&v);
}

// Probabilities of keys [16 kk, 16 kk + 16) as the A operand of P V (m16n8k16 / wgmma layout).
template <int kKeyTiles>
__device__ __forceinline__ void probabilityFragment(const float (&s)[kKeyTiles][4], int kk,
                                                    uint32_t p[4]) {
    p[0] = packBf16(s[2 * kk][0], s[2 * kk][1]);
    p[1] = packBf16(s[2 * kk][2], s[2 * kk][3]);
    p[2] = packBf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    p[3] = packBf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

// After the block's last key: the state carried to the next segment (or the split's partial
// state), or when range.last the normalised output.
__device__ __forceinline__ void finishRows(const MlaFlashArgs& a, const KeyRange& range,
                                           const Rows& r, int h, int tg,
                                           const float (&o)[kValueTiles][4]) {
    float fullA = r.sumA + __shfl_xor_sync(0xffffffffu, r.sumA, 1);
    fullA += __shfl_xor_sync(0xffffffffu, fullA, 2);
    float fullB = r.sumB + __shfl_xor_sync(0xffffffffu, r.sumB, 1);
    fullB += __shfl_xor_sync(0xffffffffu, fullB, 2);
    const bool validA = r.rowA < a.tokens, validB = r.rowB < a.tokens;
    if (!range.last) {
        if (tg == 0) {
            if (validA) {
                range.max[r.stateA] = r.maxA;
                range.sum[r.stateA] = fullA;
            }
            if (validB) {
                range.max[r.stateB] = r.maxB;
                range.sum[r.stateB] = fullB;
            }
        }
#pragma unroll
        for (int j = 0; j < kValueTiles; ++j) {
            const int d = 8 * j + 2 * tg;
            if (validA)
                *reinterpret_cast<float2*>(range.o + r.stateA * kValue + d) =
                    make_float2(o[j][0], o[j][1]);
            if (validB)
                *reinterpret_cast<float2*>(range.o + r.stateB * kValue + d) =
                    make_float2(o[j][2], o[j][3]);
        }
        return;
    }
    const float invA = fullA > 0.0f ? 1.0f / fullA : 0.0f;
    const float invB = fullB > 0.0f ? 1.0f / fullB : 0.0f;
#pragma unroll
    for (int j = 0; j < kValueTiles; ++j) {
        const int d = 8 * j + 2 * tg;
        if (validA)
            *reinterpret_cast<float2*>(a.out + static_cast<int64_t>(r.rowA) * a.outStride +
                                       h * kValue + d) =
                make_float2(o[j][0] * invA, o[j][1] * invA);
        if (validB)
            *reinterpret_cast<float2*>(a.out + static_cast<int64_t>(r.rowB) * a.outStride +
                                       h * kValue + d) =
                make_float2(o[j][2] * invB, o[j][3] * invB);
    }
}

}  // namespace folio::inference::cuda::flash
