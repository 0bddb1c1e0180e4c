// SPDX-License-Identifier: GPL-3.0-or-later
// Chunked KDA prefill (head size 128), shared by its two kernels and their host side:
//   kda_chunked_local.cu  stage 1, one block per (chunk of 64 tokens, head): everything that does
//                         not depend on the recurrent state; writes one record per (chunk, head);
//   kda_chunked_state.cu  stage 2, one cluster of four blocks per head: the state pass over the
//                         records, chunk after chunk, with the outputs and the gated RMSNorm;
//   kda_chunked.cu        the launchers of kernels.h.
// This header holds the sizes, the record layout (the only contract between the two stages) and
// the few PTX instructions the kernels use. It owns no memory and launches nothing.
//
// Fragment order. Tensor-core operands in the records and in the state pass's shared memory are
// stored the way mma.sync m16n8k8 (TF32) takes them: per 16 × 8 (rows m × reduction k) A tile,
// 32 lanes × 4 values, lane = 4 g + tg holding, in this order,
//   (m = g, k = 2 tg), (m = g + 8, k = 2 tg), (m = g, k = 2 tg + 1), (m = g + 8, k = 2 tg + 1);
// and per 8 × 8 (k × n) B tile, lane holding (k = 2 tg, n = g), (k = 2 tg + 1, n = g). That is
// PTX's fragment layout with the reduction index permuted inside each group of 8 (PTX slot tg is
// column 2 tg here, slot tg + 4 is column 2 tg + 1); a product is unchanged when both operands use
// the same permutation, and with it the accumulator (c0, c1, c2, c3) of one product at a lane is,
// as (c0, c2, c1, c3), the same lane's A fragment of a product that reduces over its columns. So a
// warp writes what it computed as one 16-byte store per lane and a consumer reads a tile as one
// conflict-free (shared) or coalesced (global) 16-byte load per lane.
//
// Precision. Every tensor-core product of both stages, those that feed the state and those that
// feed only the outputs, takes TF32 operands rounded to nearest (unit roundoff 2^-11) and
// accumulates in fp32; everything else is fp32. No operand is bf16.
//
// Record of (chunk c, head h), at chunks + (c * heads + h) * kRecordFloats (16-byte aligned):
//   W      A tiles of W [64 tokens][128 keys]: [4 m][16 k][32 lanes][4] fp32, TF32-rounded;
//   Qg     A tiles of Q e^Γ [64][128]: [4][16][32][4], TF32-rounded;
//   Kt     A tiles of K̃ᵀ [128 keys][64 tokens], K̃ = K e^{Γ_last - Γ}: [8][8][32][4], TF32-rounded;
//          (W .. Kt, kSharedFloats, are what the four blocks of a head all hold in shared memory,
//          in two parts: W and Qg, needed first, then Kt; per part one bulk copy per block,
//          multicast to the cluster)
//   A      A tiles of A [64][64] on and below the block diagonal only: tile (m, k) for
//          k < 2 (m + 1), 20 in all, at tile m (m + 1) + k: [20][32][4], TF32-rounded (the tiles
//          above are zero and not stored);
//   decay  e^{Γ_last} [128] fp32;
//          (A and decay every block of the head loads into registers, a chunk ahead)
//   U      accumulator tiles of U [64 tokens][128 values]: [4 m][16 n][32][4] fp32 in (c0, c1,
//          c2, c3) order: row g (+ 8 for c2, c3), column 2 tg (+ 1 for c1, c3).
// Padded rows of a short last chunk are zero in W, Kt, Qg, A and U; decay is that of its last
// real token.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.h"

namespace folio::inference::cuda::kdachunk {

inline constexpr int kD = 128;   // key and value size of a head
inline constexpr int kC = 64;    // tokens per chunk
inline constexpr int kSub = 16;  // tokens per sub-chunk (the rows of one m16 tile)
inline constexpr int kMaxConvWidth = 4;
inline constexpr int kClusterBlocks = 4;           // state pass: blocks per head
inline constexpr int kCols = kD / kClusterBlocks;  // value columns of one state-pass block

// Diagonal sub-chunk blocks factor e^{Γ_r - Γ_j} as e^{Γ_r - Γ_0} e^{Γ_0 - Γ_j} (Γ_0 the
// sub-chunk's first row) when a channel's log-decay falls by at most this much across the
// sub-chunk, so neither factor leaves [e^-40, e^40]; steeper channels are summed directly.
inline constexpr float kStrongSpan = 40.0f;

// Record layout, in floats.
inline constexpr int kWFloats = kC * kD;
inline constexpr int kQgFloats = kC * kD;
inline constexpr int kKtFloats = kD * kC;
inline constexpr int kATiles = 20;  // Σ_{m<4} 2 (m + 1)
inline constexpr int kAFloats = kATiles * 32 * 4;
inline constexpr int kDecayFloats = kD;
inline constexpr int kUFloats = kC * kD;
inline constexpr int kWAt = 0;
inline constexpr int kQgAt = kWAt + kWFloats;
inline constexpr int kKtAt = kQgAt + kQgFloats;  // the second part starts here
inline constexpr int kSharedFloats = kKtAt + kKtFloats;
inline constexpr int kAAt = kSharedFloats;
inline constexpr int kDecayAt = kAAt + kAFloats;
inline constexpr int kUAt = kDecayAt + kDecayFloats;
inline constexpr int kRecordFloats = kUAt + kUFloats;  // 35,456: 138.5 KiB
// The two parts of the shared section, and one block's share of each in bytes (a bulk copy
// needs a multiple of 16).
inline constexpr int kFirstQuarterBytes = (kKtAt - kWAt) * 4 / kClusterBlocks;
inline constexpr int kSecondQuarterBytes = (kSharedFloats - kKtAt) * 4 / kClusterBlocks;
static_assert(kFirstQuarterBytes % 16 == 0 && kSecondQuarterBytes % 16 == 0 && kAAt % 4 == 0 &&
              kDecayAt % 4 == 0 && kUAt % 4 == 0 && kRecordFloats % 4 == 0);

// The index of A tile (m, k), k < 2 (m + 1), among the stored ones.
__host__ __device__ constexpr int aTile(int m, int k) {
    return m * (m + 1) + k;
}
static_assert(aTile(3, 7) + 1 == kATiles);
// The 16-row block of tile t in that order: the m with aTile(m, 0) <= t < aTile(m + 1, 0).
__host__ __device__ constexpr int tileRowBlock(int t) {
    int m = 0;
    while ((m + 1) * (m + 2) <= t)
        ++m;
    return m;
}
static_assert(tileRowBlock(aTile(2, 5)) == 2 && tileRowBlock(aTile(3, 0)) == 3);

// ---- device helpers ----

// fp32 -> TF32, rounded to nearest (the tensor cores would otherwise truncate: a biased error
// that the state would accumulate).
__device__ __forceinline__ uint32_t tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}
__device__ __forceinline__ float roundTf32(float x) {
    return __uint_as_float(tf32(x));
}

// d += a b, m16n8k8, TF32 operands, fp32 accumulation.
__device__ __forceinline__ void mmaTf32(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t sharedAddress(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

}  // namespace folio::inference::cuda::kdachunk

// The stages' host entry points (kda_chunked_local.cu, kda_chunked_state.cu).
namespace folio::inference::cuda::kdachunk {
// True when the current device runs the kernel: compute capability 9.0 or later and a binary of
// the kernel built for such a target.
bool localKernelRuns();
bool stateKernelRuns();
// How many clusters (heads) of the state pass the device runs at once (after configureState).
int stateClustersAtOnce(int heads);
cudaError_t configureLocal();
cudaError_t configureState();
void launchLocal(const KdaChunkedArgs& args, cudaStream_t stream);
void launchState(const KdaChunkedArgs& args, cudaStream_t stream);
}  // namespace folio::inference::cuda::kdachunk
