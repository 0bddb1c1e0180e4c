// SPDX-License-Identifier: GPL-3.0-or-later
// The tiled grouped expert products of launchExpertGemm on Hopper's warpgroup tensor-core
// instructions (wgmma, sm_90a): the same contract and numerics as the mma.sync tiled kernel of
// moe_grouped.cu (one bf16 input term, fp32 accumulation, the SwiGLU output rounded to bf16 once).
//
// The work. For every group, D [pairs × outputs] = X [pairs × K] · Wᵀ with W row-major
// [outputs][K]: both operands are K-major and enter shared memory as they lie in global memory
// (the pairs' X rows gathered row by row: TMA cannot gather on Hopper, so cp.async).
// Which side is wgmma's M (64 rows per warpgroup, fixed) and which its N (8..256, fixed per
// instruction)? Weight rows always come in multiples of 64; pair counts do not (0 to ~500 per
// group, ~128 on average in 4K-token calls). With the weights on M, a tile of N pairs wastes up to
// N - 1 pair columns per group unless there is an instruction for every width; with the pairs on
// M, a warpgroup whose 64 rows all lie past its group's end skips its products, so a group wastes
// at most 63 rows (~20% at 4K-token calls) with one instruction shape. So the pairs are M.
// A tile is 128 pairs (two consumer warpgroups of 64) × 256 weight rows: one m64n256k16 per
// warpgroup and k16 step, the widest N, so every pair row copied serves 256 outputs and every
// weight row 128 pairs (the copies from L2 per product are what such tiles are short of; 256
// columns of fp32 accumulators are 128 registers a thread). For the gate/up product the 256 rows
// are 128 gate rows and the 128 up rows of the same features (table[e] is [gate; up]), so each
// thread holds both factors of its SwiGLU outputs: d[j] and d[j + 16].
//
// The block (384 threads) is warp-specialised, as the MLA prefill kernel is:
//  - a producer warpgroup copies each K step (64 columns, one 128-byte swizzled slab: 16 KiB of
//    pair rows, 32 KiB of weight rows) into one of 4 stages with cp.async, rows past the group's
//    end zero-filled without reading; each thread's copies arrive on the stage's "full" mbarrier
//    when they land (cp.async.mbarrier.arrive.noinc), and a stage is refilled only after both
//    consumers' arrivals on its "empty" mbarrier. It runs up to 4 stages ahead, across tiles: the
//    next tile's first stages arrive while the consumers finish the last one and store it;
//  - two consumer warpgroups wait for a stage (then fence.proxy.async: the copies are generic-proxy
//    writes the tensor cores read through the async proxy), issue its 4 wgmma asynchronously, and
//    release the previous stage once wgmma.wait_group 1 says its products are done, so the tensor
//    cores always have the next stage's products queued. At a tile's end they wait for all,
//    then store: silu(gate) · up rounded to bf16 (act, group order) or the fp32 product (out, the
//    pair's own row).
// No block-wide barrier runs in the loop. The producer gives registers to the consumers
// (setmaxnreg). Shared memory: 4 × 48 KiB stages + the tile list (~2 KiB) + barriers.
//
// Scheduling: one launch per product, one resident block per multiprocessor, each taking tiles in
// turn until none is left (persistent). Every block first lists the call's 128-pair passes from
// groupStart (group by group; an empty group has none); tile i is pass i / W of that list against
// weight tile i % W of its group (W = outputs / 256, or / 128 with SwiGLU). With tiles handed out
// in order (from tileCounter, one atomic per tile, so blocks that drew half-empty tiles take
// more), the blocks running at any moment hold neighbouring tiles: the W weight tiles of one
// pass, which share its pair rows, and the following passes of the same group, which share its
// weight tiles. So each weight tile comes from DRAM about once and its other reads hit L2.
// Without tileCounter, block b takes tiles b, b + gridDim.x, ... Built only for sm_90a;
// launchExpertGemm runs it where configureExpertGemm found a compute capability 9.0 device.
#include "async_copy.cuh"
#include "device_math.cuh"
#include "device_query.h"
#include "kernels.h"
#include "mbarrier.cuh"
#include "wgmma.cuh"

namespace folio::inference::cuda {
namespace {

constexpr int kPairs = 128;  // pairs per tile: 64 per consumer warpgroup (wgmma's M)
constexpr int kWidth = 256;  // weight rows per tile (wgmma's N)
constexpr int kSlab = 64;    // K per stage: one 128-byte swizzled slab
constexpr int kStages = 4;
constexpr int kProducerThreads = 128, kThreads = 3 * 128;
// setmaxnreg moves registers within the block's launch allocation (168 a thread at 384 threads):
// 72 keep the producer's addresses in registers, 216 hold a consumer's 128 accumulators.
constexpr int kProducerRegisters = 72, kConsumerRegisters = 216;
constexpr int kABytes = kPairs * 128, kBBytes = kWidth * 128, kStageBytes = kABytes + kBBytes;
constexpr int kMaxGroups = kMoeMaxExperts + 1;   // routed experts and a shared one
constexpr int kEmptyArrivals = 8;                // lane 0 of each consumer warp
constexpr int kCopyRows = kProducerThreads / 8;  // rows per round of a producer's copies

// After the stages.
struct Shared {
    uint64_t full[kStages], empty[kStages];
    uint64_t itemFull[2], itemEmpty[2];  // the tile numbers the producer passes to the consumers
    int item[2];
    int warpSums[kThreads / 32];
    int tileStart[kMaxGroups + 1];   // tiles of the groups before e
    int groupBegin[kMaxGroups + 1];  // groupStart, in shared memory
};
constexpr size_t kSharedBytes = 1024 + kStages * kStageBytes + sizeof(Shared);  // + alignment
static_assert(kSharedBytes <= 227 * 1024, "within a Hopper block's shared memory");
static_assert(kProducerThreads * kProducerRegisters + 256 * kConsumerRegisters <=
                  kThreads * (65536 / kThreads / 8 * 8),
              "the block's registers hold the producer and both consumers");
static_assert(kPairs == 2 * 64 && kWidth == 256, "two consumers of m64n256 products");
static_assert(kEmptyArrivals == (kThreads - kProducerThreads) / 32 &&
                  kCopyRows * 8 == kProducerThreads && kPairs % kCopyRows == 0,
              "a consumer warp's lane 0 releases stages; copies of whole 128-byte rows");

// Device code exists only in the sm_90a pass (other targets' passes would find it unused).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The producer warpgroup's own barrier (barrier 0 is __syncthreads').
__device__ __forceinline__ void producerSync() {
    asm volatile("bar.sync 1, %0;\n" ::"n"(kProducerThreads) : "memory");
}

// Every block lists the call's tiles itself (no extra launch, no scratch): tileStart[e] is the
// number of 128-pair passes of the groups before e, groupBegin[e] = groupStart[e]. Each thread
// sums a few consecutive groups, then the threads' sums are scanned. Returns the total.
__device__ __forceinline__ int listTiles(const ExpertGemmArgs& a, Shared& sh) {
    constexpr int kMaxGroupsPerThread = (kMaxGroups + kThreads - 1) / kThreads;
    const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
    const int per = (a.groups + kThreads - 1) / kThreads;
    int tiles[kMaxGroupsPerThread];
    int sum = 0;
#pragma unroll
    for (int i = 0; i < kMaxGroupsPerThread; ++i) {
        const int e = tid * per + i;
        tiles[i] = 0;
        if (i < per && e < a.groups) {
            const int begin = a.groupStart[e];
            sh.groupBegin[e] = begin;
            tiles[i] = (a.groupStart[e + 1] - begin + kPairs - 1) / kPairs;
            sum += tiles[i];
        }
    }
    int inclusive = sum;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
        const int v = __shfl_up_sync(0xffffffffu, inclusive, offset);
        if (lane >= offset)
            inclusive += v;
    }
    if (lane == 31)
        sh.warpSums[warp] = inclusive;
    __syncthreads();
    int run = inclusive - sum, total = 0;
#pragma unroll
    for (int w = 0; w < kThreads / 32; ++w) {
        const int s = sh.warpSums[w];
        run += w < warp ? s : 0;
        total += s;
    }
#pragma unroll
    for (int i = 0; i < kMaxGroupsPerThread; ++i) {
        const int e = tid * per + i;
        if (i < per && e < a.groups) {
            sh.tileStart[e] = run;
            run += tiles[i];
        }
    }
    if (tid == 0) {
        sh.tileStart[a.groups] = total;
        sh.groupBegin[a.groups] = a.groupStart[a.groups];
    }
    __syncthreads();
    return total;
}

struct Tile {
    int group, begin, count;  // the group and its pairs [begin, begin + count) in group order
    int pass;                 // the tile's first pair within the group
    int rowBase;              // its first output feature
};

// Tile `item` (< the total times `widths`): pass item / widths of the group that holds it (the
// last group whose first pass is at or before it; empty groups have no passes), against weight
// tile item % widths.
template <int kFeatures>
__device__ __forceinline__ Tile findTile(const Shared& sh, int groups, int widths, int item) {
    const int pass = item / widths;
    int lo = 0, hi = groups - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (sh.tileStart[mid] <= pass)
            lo = mid;
        else
            hi = mid - 1;
    }
    Tile t;
    t.group = lo;
    t.begin = sh.groupBegin[lo];
    t.count = sh.groupBegin[lo + 1] - t.begin;
    t.pass = (pass - sh.tileStart[lo]) * kPairs;
    t.rowBase = (item - pass * widths) * kFeatures;
    return t;
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <bool kSwiglu>
__global__ void __launch_bounds__(kThreads, 1) expertWgmmaKernel(const ExpertGemmArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int kFeatures = kSwiglu ? kWidth / 2 : kWidth;  // output features per tile
    extern __shared__ unsigned char sharedRaw[];
    unsigned char* stages = reinterpret_cast<unsigned char*>(
        (reinterpret_cast<uintptr_t>(sharedRaw) + 1023) & ~static_cast<uintptr_t>(1023));
    Shared& sh = *reinterpret_cast<Shared*>(stages + kStages * kStageBytes);
    const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
    const int role = warp >> 2;  // 0: producer, 1 and 2: consumers

    if (tid == 0) {
        for (int s = 0; s < kStages; ++s) {
            barrierInit(&sh.full[s], kProducerThreads);
            barrierInit(&sh.empty[s], kEmptyArrivals);
        }
        for (int s = 0; s < 2; ++s) {
            barrierInit(&sh.itemFull[s], 1);
            barrierInit(&sh.itemEmpty[s], kEmptyArrivals);
        }
    }
    const int tiles = listTiles(a, sh);  // its barriers also publish the initialisations
    const int widths = a.rows / kFeatures, items = tiles * widths, kSteps = a.cols / kSlab;
    if (items == 0)
        return;

    if (role == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegisters));
        // This thread copies 16-byte chunk tid % 8 of rows tid / 8 + 16 m of both tiles (8 pair
        // rows, 16 weight rows); the swizzle is the same for every m.
        const int copyRow = tid >> 3, copyChunk = tid & 7;
        const uint32_t copyOffset = swizzled(copyRow, copyChunk);
        const int64_t rowStep = static_cast<int64_t>(kCopyRows) * a.cols;
        int q = 0;  // stages filled so far
        for (int n = 0;; ++n) {
            const int slot = n & 1;
            if (tid == 0) {
                if (n >= 2)
                    barrierWait(&sh.itemEmpty[slot], ((n >> 1) - 1) & 1);
                sh.item[slot] = a.tileCounter != nullptr
                                    ? atomicAdd(a.tileCounter, 1)
                                    : static_cast<int>(blockIdx.x + n * gridDim.x);
                barrierArrive(&sh.itemFull[slot]);  // a tile number past the end stops everyone
            }
            producerSync();
            const int item = sh.item[slot];
            if (item >= items)
                break;
            const Tile t = findTile<kFeatures>(sh, a.groups, widths, item);
            const bf16* w = a.table[t.group];
            const bf16* weightsLow = w + static_cast<int64_t>(t.rowBase + copyRow) * a.cols;
            const bf16* weightsHigh =
                kSwiglu ? w + static_cast<int64_t>(a.rows + t.rowBase + copyRow) * a.cols
                        : weightsLow + (kWidth / 2) * static_cast<int64_t>(a.cols);
            weightsLow += 8 * copyChunk;
            weightsHigh += 8 * copyChunk;
            const bf16* xRows[kPairs / kCopyRows];
            uint32_t valid = 0;
#pragma unroll
            for (int m = 0; m < kPairs / kCopyRows; ++m) {
                const int pos = t.pass + copyRow + kCopyRows * m;
                int64_t row = 0;  // rows past the group's end: zero-filled, nothing read
                if (pos < t.count) {
                    valid |= 1u << m;
                    const int sorted = t.begin + pos;
                    row = a.inputBySlot ? a.order[sorted] / a.slotsPerRow : sorted;
                }
                xRows[m] = a.x + row * a.xStride + 8 * copyChunk;
            }
            for (int k = 0; k < kSteps; ++k, ++q) {
                const int s = q % kStages, round = q / kStages;
                if (round > 0)
                    barrierWait(&sh.empty[s], (round - 1) & 1);
                unsigned char* stage = stages + s * kStageBytes;
                const int k0 = k * kSlab;
#pragma unroll
                for (int m = 0; m < kPairs / kCopyRows; ++m)
                    copy16(stage + copyOffset + m * kCopyRows * 128, xRows[m] + k0,
                           (valid >> m) & 1);
#pragma unroll
                for (int m = 0; m < kWidth / kCopyRows; ++m) {
                    const bf16* rows = m < kPairs / kCopyRows ? weightsLow : weightsHigh;
                    copy16(stage + kABytes + copyOffset + m * kCopyRows * 128,
                           rows + (m % (kPairs / kCopyRows)) * rowStep + k0, true);
                }
                barrierArriveOnCopies(&sh.full[s]);
            }
        }
        commitCopies();
        waitCopies<0>();  // nothing of this thread's stays in flight after it leaves
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegisters));
    const int consumer = role - 1, g = lane >> 2, tg = lane & 3;
    float d[kWidth / 8][4];
#pragma unroll
    for (int j = 0; j < kWidth / 8; ++j)
        d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.0f;
    int q = 0;  // stages consumed so far
    for (int n = 0;; ++n) {
        const int slot = n & 1;
        barrierWait(&sh.itemFull[slot], (n >> 1) & 1);
        const int item = sh.item[slot];
        __syncwarp();
        if (lane == 0)
            barrierArrive(&sh.itemEmpty[slot]);
        if (item >= items)
            break;
        const Tile t = findTile<kFeatures>(sh, a.groups, widths, item);
        // Whether this consumer's 64 pairs hold any of the group's: the same for the warpgroup,
        // and taken from lane 0 so that the compiler sees a warp-uniform branch around the wgmma
        // (which it would otherwise serialise).
        const bool active = __shfl_sync(0xffffffffu, t.pass + 64 * consumer < t.count, 0);
        if (!active) {  // nothing to multiply: pass the stages back as they arrive
            for (int k = 0; k < kSteps; ++k, ++q) {
                barrierWait(&sh.full[q % kStages], (q / kStages) & 1);
                if (lane == 0)
                    barrierArrive(&sh.empty[q % kStages]);
            }
            continue;
        }
        for (int k = 0; k < kSteps; ++k, ++q) {
            const int s = q % kStages;
            barrierWait(&sh.full[s], (q / kStages) & 1);
            fenceForTensorCores();
            // Descriptors: this consumer's 64 pair rows and the 256 weight rows, K-major with
            // 8-row groups 1 KB apart; a k16 step is 32 bytes (+2) within the slab.
            const unsigned char* stage = stages + s * kStageBytes;
            const uint64_t pairDesc =
                descriptor(sharedAddress(stage + consumer * 64 * 128), 16, 1024);
            const uint64_t weightDesc = descriptor(sharedAddress(stage + kABytes), 16, 1024);
            pinAccumulators(d);
            wgmmaFence();
#pragma unroll
            for (int kk = 0; kk < kSlab / 16; ++kk)
                wgmmaShared(d, pairDesc + 2 * kk, weightDesc + 2 * kk, (k | kk) != 0);
            wgmmaCommit();
            wgmmaWait<1>();  // the previous stage's products are done: release it
            if (k > 0 && lane == 0)
                barrierArrive(&sh.empty[(q - 1) % kStages]);
        }
        wgmmaWait<0>();
        pinAccumulators(d);
        if (lane == 0)
            barrierArrive(&sh.empty[(q - 1) % kStages]);
        // Accumulators: pair rows 16 (warp % 4) + g and + 8 of this consumer's 64; columns
        // 8 j + 2 tg and + 1 of the tile's 256 weight rows.
        const int pos0 = t.pass + 64 * consumer + 16 * (warp & 3) + g;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int pos = pos0 + 8 * h;
            if (pos >= t.count)
                continue;
            if constexpr (kSwiglu) {
                bf16* dst =
                    a.act + static_cast<int64_t>(t.begin + pos) * a.rows + t.rowBase + 2 * tg;
#pragma unroll
                for (int j = 0; j < kWidth / 16; ++j) {
                    const float v0 = siluf(d[j][2 * h]) * d[j + kWidth / 16][2 * h];
                    const float v1 = siluf(d[j][2 * h + 1]) * d[j + kWidth / 16][2 * h + 1];
                    *reinterpret_cast<__nv_bfloat162*>(dst + 8 * j) = __floats2bfloat162_rn(v0, v1);
                }
            } else {
                float* dst = a.out + static_cast<int64_t>(a.order[t.begin + pos]) * a.rows +
                             t.rowBase + 2 * tg;
#pragma unroll
                for (int j = 0; j < kWidth / 8; ++j)
                    *reinterpret_cast<float2*>(dst + 8 * j) =
                        make_float2(d[j][2 * h], d[j][2 * h + 1]);
            }
        }
    }
#endif
}

bool useWgmma = false;   // configureExpertGemm / selectExpertGemmWgmma
int residentBlocks = 0;  // one block per multiprocessor
int blockCap = 0;        // tests: at most this many blocks (0: no cap)

}  // namespace

bool expertGemmWgmmaAvailable() {
#if defined(FOLIO_CUDA_SM90A)
    return currentComputeCapability() == 90;
#else
    return false;
#endif
}

cudaError_t configureExpertGemm() {
    useWgmma = false;
    blockCap = 0;
    if (!expertGemmWgmmaAvailable())
        return cudaSuccess;
    int device = 0;
    cudaError_t e = cudaGetDevice(&device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&residentBlocks, cudaDevAttrMultiProcessorCount, device);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(expertWgmmaKernel<true>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(kSharedBytes));
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(expertWgmmaKernel<false>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(kSharedBytes));
    useWgmma = e == cudaSuccess && residentBlocks > 0;
    return e;
}

cudaError_t selectExpertGemmWgmma(bool wgmma, int maxBlocks) {
    const cudaError_t e = configureExpertGemm();
    useWgmma = useWgmma && wgmma;
    blockCap = maxBlocks;
    return e;
}

bool launchExpertGemmWgmma(const ExpertGemmArgs& a, cudaStream_t stream) {
    const int features = a.swiglu ? kWidth / 2 : kWidth;
    if (!useWgmma || !a.tiled || a.groups > kMaxGroups || a.rows % features != 0 ||
        a.cols % kSlab != 0)
        return false;
    int blocks = residentBlocks;
    if (blockCap > 0 && blockCap < blocks)
        blocks = blockCap;
    // A counter that could not be zeroed would send every block away: launch nothing (the
    // caller's error check reports the failure).
    if (a.tileCounter != nullptr &&
        cudaMemsetAsync(a.tileCounter, 0, sizeof(int32_t), stream) != cudaSuccess)
        return false;
    if (a.swiglu)
        expertWgmmaKernel<true><<<blocks, kThreads, kSharedBytes, stream>>>(a);
    else
        expertWgmmaKernel<false><<<blocks, kThreads, kSharedBytes, stream>>>(a);
    return true;
}

}  // namespace folio::inference::cuda
