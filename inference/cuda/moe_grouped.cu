// SPDX-License-Identifier: GPL-3.0-or-later
// MoE for many tokens at once, with no host round trip: the (token, slot) pairs chosen by the
// router are grouped by expert on the GPU (count, scan, place), then each expert's SwiGLU MLP
// runs as a grouped product on tensor cores — one launch for every expert's gate and up rows,
// one for every expert's down rows. A block owns 64 output rows of one expert and walks that
// expert's pairs 32 at a time, so each weight is read once per 32 pairs (once in all for a short
// question). Activations enter as two bf16 terms (hi + lo), accumulation is fp32.
#include "device_math.cuh"
#include "kernels.h"
#include "mma.cuh"

namespace folio::inference::cuda {
namespace {

constexpr int kWarps = 4;  // 16 output rows each
constexpr int kRowsPerBlock = 16 * kWarps;
constexpr int kPairTiles = 4;  // 8 pairs each: 32 pairs per pass over the weights
constexpr int kPairsPerPass = 8 * kPairTiles;

__global__ void countKernel(const int32_t* ids, int pairs, int32_t* counts) {
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p < pairs)
        atomicAdd(&counts[ids[p]], 1);
}

// One thread: the groups are few (experts + shared), the scan is a few hundred additions.
__global__ void scanKernel(const int32_t* counts, int groups, int32_t* start, int32_t* cursor) {
    int32_t sum = 0;
    for (int e = 0; e < groups; ++e) {
        start[e] = sum;
        cursor[e] = sum;
        sum += counts[e];
    }
    start[groups] = sum;
}

// Order within a group is arbitrary: every pair's result lands in its own row.
__global__ void placeKernel(const int32_t* ids, int pairs, int32_t* cursor, int32_t* order) {
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p < pairs)
        order[atomicAdd(&cursor[ids[p]], 1)] = p;
}

// Rows of the B operand (one pair per column n = g) for pair tile j of this pass.
struct PairRows {
    const bf16* hi[kPairTiles];
    const bf16* lo[kPairTiles];
};

template <bool kSwiglu>
__global__ void __launch_bounds__(32 * kWarps) groupedKernel(ExpertGemmArgs a) {
    const int expert = blockIdx.y;
    const int begin = a.groupStart[expert], count = a.groupStart[expert + 1] - begin;
    if (count == 0)
        return;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
    const int row0 = blockIdx.x * kRowsPerBlock + 16 * warp;  // this warp's output rows
    const bf16* w = a.table[expert];
    const bf16* gate = w + static_cast<int64_t>(row0) * a.cols;
    const bf16* up = w + (static_cast<int64_t>(a.rows) + row0) * a.cols;  // swiglu only

    for (int pass = 0; pass < count; pass += kPairsPerPass) {
        const int inPass = min(kPairsPerPass, count - pass);
        const int tiles = (inPass + 7) / 8;
        PairRows in;
#pragma unroll
        for (int j = 0; j < kPairTiles; ++j) {
            const int pos = pass + 8 * j + g;  // this lane's pair within the group
            const int sorted = begin + min(pos, count - 1);
            const int64_t row = a.inputBySlot ? a.order[sorted] / a.slotsPerRow : sorted;
            in.hi[j] = a.xHi + row * a.xStride;
            in.lo[j] = a.xLo + row * a.xStride;
        }
        float accGate[kPairTiles][4] = {}, accUp[kPairTiles][4] = {};
#pragma unroll 2
        for (int k0 = 0; k0 < a.cols; k0 += 16) {
            uint32_t aGate[4], aUp[4];
            loadA(gate, a.cols, 0, k0, g, tg, aGate);
            if constexpr (kSwiglu)
                loadA(up, a.cols, 0, k0, g, tg, aUp);
#pragma unroll
            for (int j = 0; j < kPairTiles; ++j) {
                if (j >= tiles)
                    break;
                const uint32_t h0 = load2(in.hi[j] + k0 + 2 * tg);
                const uint32_t h1 = load2(in.hi[j] + k0 + 8 + 2 * tg);
                const uint32_t l0 = load2(in.lo[j] + k0 + 2 * tg);
                const uint32_t l1 = load2(in.lo[j] + k0 + 8 + 2 * tg);
                mma(accGate[j], aGate, h0, h1);
                mma(accGate[j], aGate, l0, l1);
                if constexpr (kSwiglu) {
                    mma(accUp[j], aUp, h0, h1);
                    mma(accUp[j], aUp, l0, l1);
                }
            }
        }
        // C fragment: rows (output features) g, g + 8; columns (pairs) 2 tg, 2 tg + 1.
#pragma unroll
        for (int j = 0; j < kPairTiles; ++j) {
            if (j >= tiles)
                break;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int pos = pass + 8 * j + 2 * tg + (e & 1);
                if (pos >= count)
                    continue;
                const int feature = row0 + g + (e >> 1) * 8;
                const int sorted = begin + pos;
                if constexpr (kSwiglu) {
                    const float v = siluf(accGate[j][e]) * accUp[j][e];
                    const bf16 hi = __float2bfloat16(v);
                    const int64_t at = static_cast<int64_t>(sorted) * a.rows + feature;
                    a.outHi[at] = hi;
                    a.outLo[at] = __float2bfloat16(v - __bfloat162float(hi));
                } else {
                    const int64_t outRow = a.order[sorted];  // back to the pair's own row
                    a.out[outRow * a.rows + feature] = accGate[j][e];
                }
            }
        }
    }
}

}  // namespace

void launchMoeGroupPairs(const int32_t* ids, int pairs, int groups, int32_t* counts,
                         int32_t* groupStart, int32_t* cursor, int32_t* order,
                         cudaStream_t stream) {
    cudaMemsetAsync(counts, 0, sizeof(int32_t) * static_cast<size_t>(groups), stream);
    if (pairs > 0)
        countKernel<<<(pairs + 255) / 256, 256, 0, stream>>>(ids, pairs, counts);
    scanKernel<<<1, 1, 0, stream>>>(counts, groups, groupStart, cursor);
    if (pairs > 0)
        placeKernel<<<(pairs + 255) / 256, 256, 0, stream>>>(ids, pairs, cursor, order);
}

void launchExpertGemm(const ExpertGemmArgs& a, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(a.rows / kRowsPerBlock), static_cast<unsigned>(a.groups));
    if (a.swiglu)
        groupedKernel<true><<<grid, 32 * kWarps, 0, stream>>>(a);
    else
        groupedKernel<false><<<grid, 32 * kWarps, 0, stream>>>(a);
}

}  // namespace folio::inference::cuda
