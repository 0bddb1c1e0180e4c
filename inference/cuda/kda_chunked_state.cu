// SPDX-License-Identifier: GPL-3.0-or-later
// Chunked KDA prefill, stage 2 ("state pass"): the only sequential part. One cluster of four
// blocks (256 threads each) per head; block `rank` owns value columns 32 rank .. 32 rank + 31 of
// the head's state S [128 keys][128 values], which it keeps in registers (fp32) for the whole
// call. Chunk after chunk, with the record of kda_chunked.cuh:
//   V' = U - W S                     (64 × 32, TF32 tensor cores)
//   O  = (Q e^Γ) S + A V'            (64 × 32, TF32 tensor cores)
//   S  = e^{Γ_last} S + K̃ᵀ V'         (128 × 32, TF32 tensor cores, fp32 accumulation)
// and the gated RMSNorm of O, whose per-row sum of squares over the head's 128 columns the four
// blocks exchange through distributed shared memory. Every operand of every product is TF32
// rounded to nearest (kda_chunked.cuh). The part of a record that all four blocks hold in shared
// memory (W, Q e^Γ, K̃ᵀ: 98,304 bytes) arrives by bulk copies, each block fetching a quarter and
// multicasting it to the cluster, into two stages (one chunk in use, the next in flight), each in
// two parts with their own barriers: W and Q e^Γ for the first products, K̃ᵀ for the second. A
// (the row tile of a warp's outputs, at most 8 fragments) and the decay go to registers straight
// from the record, a chunk ahead; U and the output gate are read per block. Per chunk the blocks
// meet at one cluster barrier, which both frees the stage just read and publishes the norm
// partials. Reads the records, the output gates, outNorm and the state; writes the state (in
// place, once, at the end), the layer's output rows and the convolution window (the last W - 1
// pre-convolution rows: stage 1 of the same call has finished reading it). Never touches the
// records it reads or anything of another head.
#include <cooperative_groups.h>

#include "device_math.cuh"
#include "device_query.h"
#include "kda_chunked.cuh"

namespace cg = cooperative_groups;

namespace folio::inference::cuda::kdachunk {
namespace {

constexpr int kThreads = 256;
constexpr int kStageBytes = kSharedFloats * 4;  // 98,304
// Shared memory, bytes: two stages, then S and V' as B fragments ([k tile][n-tile pair][lane]
// [4]: b0, b1 of n tile 2p, then of 2p + 1), the norm partials [2 chunks][2 halves][64 rows] and
// the barriers [stage][part].
constexpr int kSfAt = 2 * kStageBytes;
constexpr int kVfAt = kSfAt + kD * kCols * 4;
constexpr int kPartialAt = kVfAt + kC * kCols * 4;
constexpr int kBarAt = kPartialAt + 2 * 2 * kC * 4;
constexpr int kStateShared = kBarAt + 4 * 8;
static_assert(kStateShared <= 227 * 1024, "one block per multiprocessor");  // 222,240
static_assert(kStageBytes % 128 == 0 && kBarAt % 8 == 0);

// Where element (k, n) of a B operand [k][32 columns] sits in fragment order (floats).
__device__ __forceinline__ int bFragment(int k, int n) {
    const int lane = 4 * (n & 7) + ((k & 7) >> 1);
    return (((k >> 3) * 2 + (n >> 4)) * 32 + lane) * 4 + ((n >> 3) & 1) * 2 + (k & 1);
}

__device__ __forceinline__ void clusterArrive() {
    asm volatile("barrier.cluster.arrive.release;\n" ::: "memory");
}
__device__ __forceinline__ void clusterWait() {
    asm volatile("barrier.cluster.wait.acquire;\n" ::: "memory");
}

// Waits for a stage's bytes. A copy of 96 KiB lands within microseconds; after 2^24 polls (a
// third of a second at the least, longer under slow tools) something is broken, and the kernel
// traps rather than hang the device. A trap is a sticky error: the CUDA context is lost, the
// caller gets a launch failure and every later CUDA call fails, so the engine must be reopened.
__device__ __forceinline__ void waitStage(uint32_t bar, uint32_t parity) {
    uint32_t done = 0, polls = 0;
    do {
        if (++polls == (1u << 24))
            __trap();
        asm volatile(
            "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
            " selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } while (done == 0);
}

__global__ void __cluster_dims__(kClusterBlocks, 1, 1) __launch_bounds__(kThreads, 1)
    stateKernel(KdaChunkedArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ __align__(128) unsigned char smem[];
    float* Sf = reinterpret_cast<float*>(smem + kSfAt);
    float* Vf = reinterpret_cast<float*>(smem + kVfAt);
    float* partial = reinterpret_cast<float*>(smem + kPartialAt);
    uint64_t* bars = reinterpret_cast<uint64_t*>(smem + kBarAt);

    cg::cluster_group cluster = cg::this_cluster();
    const int rank = static_cast<int>(cluster.block_rank());
    const int head = blockIdx.x / kClusterBlocks, tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, tg = lane & 3;
    const int mw = warp >> 1, pair = warp & 1;  // V' and O: row tile mw, n tiles 2 pair, + 1
    const int H = a.heads, P = H * kD, c0 = rank * kCols;
    const int chunks = (a.tokens + kC - 1) / kC;
    auto record = [&](int chunk) {
        return a.chunks + (static_cast<int64_t>(chunk) * H + head) * kRecordFloats;
    };

    if (tid == 0) {
        for (int i = 0; i < 4; ++i)
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(sharedAddress(&bars[i]))
                         : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }

    // The convolution window slides to the last W - 1 pre-convolution rows (of the old window
    // and the new tokens); this block takes its 32 channels of q, k and v.
    if (a.convWidth > 1 && tid < 3 * kCols) {
        const int history = a.convWidth - 1, part = tid / kCols;
        const int ch = head * kD + c0 + tid % kCols;
        float keep[kMaxConvWidth - 1];
        for (int e = 0; e < history; ++e) {
            const int x = a.tokens + e;
            keep[e] =
                x < history
                    ? a.convWindow[(static_cast<int64_t>(part) * history + x) * P + ch]
                    : a.proj[static_cast<int64_t>(x - history) * a.projStride + part * P + ch];
        }
        for (int e = 0; e < history; ++e)
            a.convWindow[(static_cast<int64_t>(part) * history + e) * P + ch] = keep[e];
    }

    // The state: warp w holds keys 16 w + g (+ 8) × columns 8 nt + 2 tg (+ 1), nt = 0..3, as the
    // accumulator tiles of S += K̃ᵀ V'.
    float* state = a.state + static_cast<int64_t>(head) * kD * kD;
    float s[4][4];
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int key = 16 * warp + g + 8 * h, col = 8 * nt + 2 * tg;
            const float2 v =
                *reinterpret_cast<const float2*>(state + static_cast<int64_t>(key) * kD + c0 + col);
            s[nt][2 * h] = v.x;
            s[nt][2 * h + 1] = v.y;
            Sf[bFragment(key, col)] = roundTf32(v.x);
            Sf[bFragment(key, col + 1)] = roundTf32(v.y);
        }
    float outScale[2][2];
#pragma unroll
    for (int q = 0; q < 2; ++q)
#pragma unroll
        for (int e = 0; e < 2; ++e)
            outScale[q][e] = a.outNorm[c0 + 8 * (2 * pair + q) + 2 * tg + e];

    // Every barrier initialised (and visible to the cluster) before any copy can signal one.
    clusterArrive();
    clusterWait();

    const uint32_t stageAddress = sharedAddress(smem);
    auto issue = [&](int chunk) {  // thread 0: this block's quarters of a chunk, to all four
        const int stage = chunk & 1;
        const uint16_t everyone = (1u << kClusterBlocks) - 1;
#pragma unroll
        for (int part = 0; part < 2; ++part) {
            const uint32_t bar = sharedAddress(&bars[stage * 2 + part]);
            const uint32_t bytes = part == 0 ? kFirstQuarterBytes : kSecondQuarterBytes;
            asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar),
                         "r"(bytes * kClusterBlocks)
                         : "memory");
            const uint32_t offset = (part == 0 ? kWAt : kKtAt) * 4 + rank * bytes;
            const char* src = reinterpret_cast<const char*>(record(chunk)) + offset;
            asm volatile(
                "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::"
                "cluster [%0], [%1], %2, [%3], %4;\n" ::"r"(stageAddress + stage * kStageBytes +
                                                            offset),
                "l"(src), "r"(bytes), "r"(bar), "h"(everyone)
                : "memory");
        }
    };
    if (tid == 0) {
        issue(0);
        if (chunks > 1)
            issue(1);
    }

    // U at this thread's V' positions: tiles (mw, 4 rank + 2 pair + q), (c0, c1, c2, c3).
    auto loadU = [&](int chunk, float4(&u)[2]) {
        const float4* src = reinterpret_cast<const float4*>(record(chunk) + kUAt);
#pragma unroll
        for (int q = 0; q < 2; ++q)
            u[q] = __ldg(&src[(mw * 16 + 4 * rank + 2 * pair + q) * 32 + lane]);
    };
    float4 uNext[2];
    loadU(0, uNext);
    // A at this warp's row tile (mw, tiles ks < 2 (mw + 1): A is zero above them) and the decay
    // of this warp's state rows 16 warp + g (+ 8); loaded for the next chunk once this one's are
    // used.
    float4 aFrag[8];
    float2 decay;
    auto loadA = [&](int chunk) {
        const float* src = record(chunk);
        const float4* af = reinterpret_cast<const float4*>(src + kAAt);
#pragma unroll
        for (int ks = 0; ks < 8; ++ks)
            aFrag[ks] = ks < 2 * (mw + 1) ? __ldg(&af[aTile(mw, ks) * 32 + lane])
                                          : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        decay = make_float2(__ldg(src + kDecayAt + 16 * warp + g),
                            __ldg(src + kDecayAt + 16 * warp + g + 8));
    };
    loadA(0);

    float o[2][4];     // O of the chunk in flight: rows 16 mw + g (+ 8), its 2 n tiles
    float gate[2][4];  // the output gate at the same places
    // The gated RMSNorm of chunk `chunk`, once every block's partials of it are visible.
    // Lane tg reads block tg's two partials of a row; the row's four lanes add them up.
    static_assert(kClusterBlocks == 4, "one block per lane of a row's quad");
    const float* peerPartial = cluster.map_shared_rank(partial, tg);
    auto finish = [&](int chunk) {
        float total[2];
        const int slot = chunk & 1;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = 16 * mw + g + 8 * h;
            float sum =
                peerPartial[(slot * 2 + 0) * kC + row] + peerPartial[(slot * 2 + 1) * kC + row];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            total[h] = sum;
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = chunk * kC + 16 * mw + g + 8 * h;
            if (t >= a.tokens)
                continue;
            const float inv = rsqrtf(total[h] / static_cast<float>(kD) + a.eps);
#pragma unroll
            for (int q = 0; q < 2; ++q) {
                float2 y;
                y.x = outScale[q][0] * (o[q][2 * h] * inv) * sigmoidf(gate[q][2 * h]);
                y.y = outScale[q][1] * (o[q][2 * h + 1] * inv) * sigmoidf(gate[q][2 * h + 1]);
                *reinterpret_cast<float2*>(a.out + static_cast<int64_t>(t) * P + head * kD + c0 +
                                           8 * (2 * pair + q) + 2 * tg) = y;
            }
        }
    };

    for (int chunk = 0; chunk < chunks; ++chunk) {
        if (chunk > 0) {
            clusterWait();  // every block is done with chunk - 1: its stage and partials
            if (tid == 0 && chunk + 1 < chunks)
                issue(chunk + 1);
            finish(chunk - 1);
        }
        const int stage = chunk & 1;
        const unsigned char* st = smem + stage * kStageBytes;
        float4 u[2] = {uNext[0], uNext[1]};
        if (chunk + 1 < chunks)
            loadU(chunk + 1, uNext);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = chunk * kC + 16 * mw + g + 8 * h;
#pragma unroll
            for (int q = 0; q < 2; ++q)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    gate[q][2 * h + e] =
                        t < a.tokens ? a.gates[static_cast<int64_t>(t) * a.gatesStride + P +
                                               head * kD + c0 + 8 * (2 * pair + q) + 2 * tg + e]
                                     : 0.0f;
        }
        const uint32_t parity = static_cast<uint32_t>((chunk >> 1) & 1);
        waitStage(sharedAddress(&bars[stage * 2]), parity);

        // V' = U - W S and O = (Q e^Γ) S: row tile mw, n tiles 2 pair and 2 pair + 1.
        {
            const float4* wf = reinterpret_cast<const float4*>(st + kWAt * 4);
            const float4* qf = reinterpret_cast<const float4*>(st + kQgAt * 4);
            const float4* sf = reinterpret_cast<const float4*>(Sf);
            float ws[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
            for (int q = 0; q < 2; ++q)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    o[q][e] = 0.0f;
#pragma unroll 4
            for (int ks = 0; ks < kD / 8; ++ks) {
                const float4 w = wf[(mw * 16 + ks) * 32 + lane];
                const float4 qg = qf[(mw * 16 + ks) * 32 + lane];
                const float4 b = sf[(ks * 2 + pair) * 32 + lane];
                const uint32_t aw[4] = {__float_as_uint(w.x), __float_as_uint(w.y),
                                        __float_as_uint(w.z), __float_as_uint(w.w)};
                const uint32_t aq[4] = {__float_as_uint(qg.x), __float_as_uint(qg.y),
                                        __float_as_uint(qg.z), __float_as_uint(qg.w)};
                mmaTf32(ws[0], aw, __float_as_uint(b.x), __float_as_uint(b.y));
                mmaTf32(ws[1], aw, __float_as_uint(b.z), __float_as_uint(b.w));
                mmaTf32(o[0], aq, __float_as_uint(b.x), __float_as_uint(b.y));
                mmaTf32(o[1], aq, __float_as_uint(b.z), __float_as_uint(b.w));
            }
#pragma unroll
            for (int q = 0; q < 2; ++q) {
                const float uq[4] = {u[q].x, u[q].y, u[q].z, u[q].w};
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int token = 16 * mw + g + 8 * (e >> 1);
                    const int col = 8 * (2 * pair + q) + 2 * tg + (e & 1);
                    Vf[bFragment(token, col)] = roundTf32(uq[e] - ws[q][e]);
                }
            }
        }
        __syncthreads();  // V' complete; every read of S's fragments done

        // S = e^{Γ_last} S + K̃ᵀ V' (keys 16 warp .. + 15, all 32 columns), O += A V'.
        waitStage(sharedAddress(&bars[stage * 2 + 1]), parity);
        {
            const float4* kt = reinterpret_cast<const float4*>(st + kKtAt * 4);
            const float4* vf = reinterpret_cast<const float4*>(Vf);
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                s[nt][0] *= decay.x;
                s[nt][1] *= decay.x;
                s[nt][2] *= decay.y;
                s[nt][3] *= decay.y;
            }
#pragma unroll
            for (int ks = 0; ks < kC / 8; ++ks) {
                const float4 k = kt[(warp * 8 + ks) * 32 + lane];
                const uint32_t ak[4] = {__float_as_uint(k.x), __float_as_uint(k.y),
                                        __float_as_uint(k.z), __float_as_uint(k.w)};
                const float4 v0 = vf[(ks * 2 + 0) * 32 + lane], v1 = vf[(ks * 2 + 1) * 32 + lane];
                mmaTf32(s[0], ak, __float_as_uint(v0.x), __float_as_uint(v0.y));
                mmaTf32(s[1], ak, __float_as_uint(v0.z), __float_as_uint(v0.w));
                mmaTf32(s[2], ak, __float_as_uint(v1.x), __float_as_uint(v1.y));
                mmaTf32(s[3], ak, __float_as_uint(v1.z), __float_as_uint(v1.w));
            }
#pragma unroll
            for (int ks = 0; ks < 8; ++ks) {
                if (ks < 2 * (mw + 1)) {  // A is zero above its block diagonal
                    const uint32_t aa[4] = {
                        __float_as_uint(aFrag[ks].x), __float_as_uint(aFrag[ks].y),
                        __float_as_uint(aFrag[ks].z), __float_as_uint(aFrag[ks].w)};
                    const float4 b = vf[(ks * 2 + pair) * 32 + lane];
                    mmaTf32(o[0], aa, __float_as_uint(b.x), __float_as_uint(b.y));
                    mmaTf32(o[1], aa, __float_as_uint(b.z), __float_as_uint(b.w));
                }
            }
            if (chunk + 1 < chunks)
                loadA(chunk + 1);
#pragma unroll
            for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    Sf[bFragment(16 * warp + g + 8 * (e >> 1), 8 * nt + 2 * tg + (e & 1))] =
                        roundTf32(s[nt][e]);
            // This block's share of each O row's sum of squares (its two warps per row tile).
            float rows[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float sq = 0.0f;
#pragma unroll
                for (int q = 0; q < 2; ++q)
                    sq += o[q][2 * h] * o[q][2 * h] + o[q][2 * h + 1] * o[q][2 * h + 1];
                sq += __shfl_xor_sync(0xffffffffu, sq, 1);
                sq += __shfl_xor_sync(0xffffffffu, sq, 2);
                rows[h] = sq;
            }
            if (tg == 0) {
                partial[((chunk & 1) * 2 + pair) * kC + 16 * mw + g] = rows[0];
                partial[((chunk & 1) * 2 + pair) * kC + 16 * mw + g + 8] = rows[1];
            }
        }
        clusterArrive();  // this block is done with the stage; its partials are published
    }
    clusterWait();
    finish(chunks - 1);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int key = 16 * warp + g + 8 * h, col = 8 * nt + 2 * tg;
            *reinterpret_cast<float2*>(state + static_cast<int64_t>(key) * kD + c0 + col) =
                make_float2(s[nt][2 * h], s[nt][2 * h + 1]);
        }
    // No block leaves while another may still read its partials.
    clusterArrive();
    clusterWait();
#endif
}

}  // namespace

bool stateKernelRuns() {
    cudaFuncAttributes attributes{};
    if (currentComputeCapability() < 90 ||
        cudaFuncGetAttributes(&attributes, stateKernel) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return attributes.binaryVersion >= 90;
}

int stateClustersAtOnce(int heads) {
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(heads * kClusterBlocks));
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = kStateShared;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, stateKernel, &config) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return clusters;
}

cudaError_t configureState() {
    return cudaFuncSetAttribute(stateKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                kStateShared);
}

void launchState(const KdaChunkedArgs& a, cudaStream_t stream) {
    stateKernel<<<static_cast<unsigned>(a.heads * kClusterBlocks), kThreads, kStateShared,
                  stream>>>(a);
}

}  // namespace folio::inference::cuda::kdachunk
