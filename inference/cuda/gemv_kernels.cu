// SPDX-License-Identifier: GPL-3.0-or-later
// Matrix-vector products for the decode step, where the weights stream from memory once and
// the time is the bytes over the bandwidth, if enough loads are in flight from the start.
//
// The streaming form (rows of 256·C bf16, C in {4, 8, 9, 16}: every projection of the real
// model): the work is a list of dot products (row, item), item fastest. Each warp owns an equal,
// contiguous share of that list (whole rows when the items are combined) and walks it in batches
// of B dots: a lane loads its C 16-byte pieces of each of the batch's rows at once, and the next
// batch's loads are issued before this one is multiplied with the input held in shared memory
// (two batches, 16–36 loads per lane, in flight). The first batch is loaded before the block
// stages (and RMS-normalises) its inputs, so the prologue hides under the first loads; the
// residual and combine weight travel with the batch. The grid is as many warps as fit on the GPU
// at once, not one per few rows, so every warp does the same work and there is no partial last
// wave.
//
// The row form (any other width; the small test models and the KDA low-rank gates): a warp per
// few rows, the loads of a row stepping 256 columns at a time.
#include "device_math.cuh"
#include "device_query.h"
#include "kernels.h"

namespace folio::inference::cuda {
namespace {

__device__ __forceinline__ void accumulate8(const uint4 packed, const float* x, float& acc) {
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
    const float4 lo = *reinterpret_cast<const float4*>(x);
    const float4 hi = *reinterpret_cast<const float4*>(x + 4);
    const float xv[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 w = __bfloat1622float2(pairs[i]);
        acc = fmaf(w.x, xv[2 * i], acc);
        acc = fmaf(w.y, xv[2 * i + 1], acc);
    }
}

// Weights are read once per step: keep them out of L1 and first in line for eviction from L2,
// so the activations and the caches stay there.
__device__ __forceinline__ uint64_t evictFirstPolicy() {
    uint64_t policy;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    return policy;
}

__device__ __forceinline__ uint4 loadStreaming(const bf16* p, uint64_t policy) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p), "l"(policy));
    return v;
}

__device__ __forceinline__ float4 scaled(float4 x, float4 w, float inv) {
    return make_float4(w.x * (x.x * inv), w.y * (x.y * inv), w.z * (x.z * inv), w.w * (x.w * inv));
}
__device__ __forceinline__ float scaled(float x, float w, float inv) {
    return w * (x * inv);
}
__device__ __forceinline__ float squares(float4 x) {
    return x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
}
__device__ __forceinline__ float squares(float x) {
    return x * x;
}

// stageInputs in pieces of T (float4 when the inputs and weights are 16-byte aligned, else
// float). Every thread issues up to 8 loads before it stores any, so the block waits for memory
// a few times rather than once per piece.
template <typename T>
__device__ void stagePieces(const GemvArgs& a, int vectors, T* into, float* scratch) {
    constexpr int kDepth = 8;
    constexpr int kWidth = sizeof(T) / sizeof(float);
    const int perVector = a.cols / kWidth, total = vectors * perVector;
    const int64_t stride = a.xItemStride / kWidth;
    for (int base = 0; base < total; base += kDepth * blockDim.x) {
        T staged[kDepth];
#pragma unroll
        for (int j = 0; j < kDepth; ++j) {
            const int i = base + j * blockDim.x + threadIdx.x;
            if (i < total) {
                const int v = i / perVector;
                staged[j] = reinterpret_cast<const T*>(a.x)[v * stride + (i - v * perVector)];
            }
        }
#pragma unroll
        for (int j = 0; j < kDepth; ++j) {
            const int i = base + j * blockDim.x + threadIdx.x;
            if (i < total)
                into[i] = staged[j];
        }
    }
    __syncthreads();
    if (a.normWeight == nullptr)
        return;
    const T* weight = reinterpret_cast<const T*>(a.normWeight);
    for (int v = 0; v < vectors; ++v) {
        T* vector = into + v * perVector;
        float sum = 0.0f;
        for (int i = threadIdx.x; i < perVector; i += blockDim.x)
            sum += squares(vector[i]);
        const float inv = rsqrtf(blockSum(sum, scratch) / static_cast<float>(a.cols) + a.normEps);
        for (int base = 0; base < perVector; base += kDepth * blockDim.x) {
            T w[kDepth];
#pragma unroll
            for (int j = 0; j < kDepth; ++j) {
                const int i = base + j * blockDim.x + threadIdx.x;
                if (i < perVector)
                    w[j] = weight[i];
            }
#pragma unroll
            for (int j = 0; j < kDepth; ++j) {
                const int i = base + j * blockDim.x + threadIdx.x;
                if (i < perVector)
                    vector[i] = scaled(vector[i], w[j], inv);
            }
        }
    }
    __syncthreads();
}

// Copies the inputs the block needs into shared memory (one vector, or one per item), RMS-
// normalised when asked. Ends with a block barrier.
__device__ void stageInputs(const GemvArgs& a, int vectors, float* xs, float* scratch) {
    const bool aligned = reinterpret_cast<uintptr_t>(a.x) % 16 == 0 && a.xItemStride % 4 == 0 &&
                         reinterpret_cast<uintptr_t>(a.normWeight) % 16 == 0;
    if (aligned)
        stagePieces(a, vectors, reinterpret_cast<float4*>(xs), scratch);
    else
        stagePieces(a, vectors, xs, scratch);
}

__device__ __forceinline__ const bf16* matrixOf(const GemvArgs& a, int item) {
    if (a.table == nullptr)
        return a.matrix;
    return a.table[a.ids != nullptr ? a.ids[item] : item];
}

__device__ __forceinline__ const bf16* upMatrixOf(const GemvArgs& a, int item) {
    if (a.upTable == nullptr)
        return a.up;
    return a.upTable[a.ids != nullptr ? a.ids[item] : item];
}

constexpr int kStreamWarps = 4;
constexpr int kStreamThreads = 32 * kStreamWarps;

// One batch of B dot products in registers: the lane's pieces of each weight row (and of the
// up row for SwiGLU), and what the epilogue needs, loaded with the weights so that writing a
// result never waits for memory.
template <int C, int B, bool kSwiglu>
struct Batch {
    uint4 w[B][C];
    uint4 u[B][kSwiglu ? C : 1];
    float residual[B];
    float weight[B];  // the item's combine weight
};

template <int C, int B, bool kSwiglu, bool kCombine>
__device__ __forceinline__ void loadBatch(const GemvArgs& a, int dot0, int end, int lane,
                                          uint64_t policy, Batch<C, B, kSwiglu>& batch) {
    constexpr int kCols = 256 * C;
#pragma unroll
    for (int b = 0; b < B; ++b) {
        const int dot = min(dot0 + b, end - 1);
        const int row = dot / a.items, item = dot - row * a.items;
        const int64_t offset = static_cast<int64_t>(row) * kCols + lane * 8;
        const bf16* W = matrixOf(a, item) + offset;
#pragma unroll
        for (int c = 0; c < C; ++c)
            batch.w[b][c] = loadStreaming(W + 256 * c, policy);
        if constexpr (kSwiglu) {
            const bf16* U = upMatrixOf(a, item) + offset;
#pragma unroll
            for (int c = 0; c < C; ++c)
                batch.u[b][c] = loadStreaming(U + 256 * c, policy);
        }
        const int64_t at = kCombine ? row : item * a.yItemStride + row;
        batch.residual[b] = a.residual != nullptr ? a.residual[at] : 0.0f;
        if constexpr (kCombine)
            batch.weight[b] = a.combineWeights[item];
    }
}

// Multiplies a loaded batch with the staged inputs and writes (or, combining, accumulates) the
// results; `combined` carries a row's weighted sum across batches.
template <int C, int B, bool kSwiglu, bool kCombine>
__device__ __forceinline__ void finishBatch(const GemvArgs& a, int dot0, int end, int lane,
                                            const float* xs, const Batch<C, B, kSwiglu>& batch,
                                            float& combined) {
    constexpr int kCols = 256 * C;
#pragma unroll
    for (int b = 0; b < B; ++b) {
        const int dot = dot0 + b;
        if (dot >= end)
            break;
        const int row = dot / a.items, item = dot - row * a.items;
        const float* x = xs + (a.xItemStride == 0 ? 0 : item * kCols) + lane * 8;
        float acc = 0.0f, accUp = 0.0f;
#pragma unroll
        for (int c = 0; c < C; ++c) {
            accumulate8(batch.w[b][c], x + 256 * c, acc);
            if constexpr (kSwiglu)
                accumulate8(batch.u[b][c], x + 256 * c, accUp);
        }
        float value = warpSum(acc);
        if constexpr (kSwiglu)
            value = siluf(value) * warpSum(accUp);
        if constexpr (kCombine) {
            combined = fmaf(batch.weight[b], value, combined);
            if (item == a.items - 1) {
                if (lane == 0)
                    a.y[row] = batch.residual[b] + combined;
                combined = 0.0f;
            }
        } else if (lane == 0) {
            a.y[item * a.yItemStride + row] = batch.residual[b] + value;
        }
    }
}

// Two batches alternate: the next one's loads are in flight while this one is multiplied, so
// the memory system never waits for the arithmetic.
template <int C, int B, bool kSwiglu, bool kCombine>
__global__ void __launch_bounds__(kStreamThreads) streamingGemvKernel(GemvArgs a, int dotsPerWarp) {
    static_assert(!(kSwiglu && kCombine), "a SwiGLU product is not combined");
    extern __shared__ float xs[];
    __shared__ float scratch[32];
    const int lane = threadIdx.x & 31;
    const int warp = blockIdx.x * kStreamWarps + (threadIdx.x >> 5);
    const int totalDots = a.rows * a.items;
    const int first = warp * dotsPerWarp, end = min(totalDots, first + dotsPerWarp);
    const uint64_t policy = evictFirstPolicy();
    Batch<C, B, kSwiglu> even, odd;
    if (first < end)
        loadBatch<C, B, kSwiglu, kCombine>(a, first, end, lane, policy, even);
    stageInputs(a, a.xItemStride == 0 ? 1 : a.items, xs, scratch);
    float combined = 0.0f;
    for (int dot0 = first; dot0 < end; dot0 += 2 * B) {
        if (dot0 + B < end)
            loadBatch<C, B, kSwiglu, kCombine>(a, dot0 + B, end, lane, policy, odd);
        finishBatch<C, B, kSwiglu, kCombine>(a, dot0, end, lane, xs, even, combined);
        if (dot0 + B >= end)
            break;
        if (dot0 + 2 * B < end)
            loadBatch<C, B, kSwiglu, kCombine>(a, dot0 + 2 * B, end, lane, policy, even);
        finishBatch<C, B, kSwiglu, kCombine>(a, dot0 + B, end, lane, xs, odd, combined);
    }
}

template <int C, int B, bool kSwiglu, bool kCombine>
void launchStreaming(const GemvArgs& a, cudaStream_t stream) {
    auto kernel = streamingGemvKernel<C, B, kSwiglu, kCombine>;
    const int vectors = a.xItemStride == 0 ? 1 : a.items;
    const size_t shared = sizeof(float) * static_cast<size_t>(vectors) * a.cols;
    if (shared > 48 * 1024)
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(shared));
    int resident = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, kStreamThreads, shared) !=
            cudaSuccess ||
        resident < 1)
        resident = 1;
    // As many warps as fit at once, each with an equal share; whole rows when combining.
    const int units = kCombine ? a.rows : a.rows * a.items;
    const int warpsAtOnce = currentMultiprocessorCount() * resident * kStreamWarps;
    int perWarp = (units + warpsAtOnce - 1) / warpsAtOnce;
    if (kCombine)
        perWarp *= a.items;
    else
        perWarp = (perWarp + B - 1) / B * B;  // whole batches, except for the last warp
    const int warps = (a.rows * a.items + perWarp - 1) / perWarp;
    const int blocks = (warps + kStreamWarps - 1) / kStreamWarps;
    kernel<<<blocks, kStreamThreads, shared, stream>>>(a, perWarp);
}

// C × B (× 2 with SwiGLU) 16-byte loads per lane per batch, two batches in flight.
template <bool kSwiglu, bool kCombine>
bool launchStreamingFor(const GemvArgs& a, cudaStream_t stream) {
    switch (a.cols) {
        case 1024:
            launchStreaming<4, kSwiglu ? 1 : 2, kSwiglu, kCombine>(a, stream);
            return true;
        case 2048:
            launchStreaming<8, 1, kSwiglu, kCombine>(a, stream);
            return true;
        case 2304:
            launchStreaming<9, 1, kSwiglu, kCombine>(a, stream);
            return true;
        case 4096:
            if constexpr (kSwiglu)
                return false;  // 64 pieces per batch pair would not fit in registers
            else
                launchStreaming<16, 1, kSwiglu, kCombine>(a, stream);
            return true;
        default:
            return false;
    }
}

constexpr int kRowWarps = 8;
constexpr int kRowThreads = kRowWarps * 32;

// The row form: warp w of block (bx, item) owns rows (bx·8 + w)·R … + R of that item; with
// `combineWeights` the grid has one item column and each warp sums every item for its rows.
template <int kRowsPerWarp, bool kSwiglu>
__global__ void __launch_bounds__(kRowThreads) rowGemvKernel(GemvArgs a) {
    extern __shared__ float xs[];
    __shared__ float scratch[32];
    const bool combine = a.combineWeights != nullptr;
    const int vectors = combine && a.xItemStride != 0 ? a.items : 1;
    const int firstItem = combine ? 0 : blockIdx.y;
    GemvArgs shifted = a;
    shifted.x = a.x + firstItem * a.xItemStride;
    stageInputs(shifted, vectors, xs, scratch);

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = (blockIdx.x * kRowWarps + warp) * kRowsPerWarp;
    if (row0 >= a.rows)
        return;
    float total[kRowsPerWarp] = {};
    const int lastItem = combine ? a.items - 1 : firstItem;
    for (int item = firstItem; item <= lastItem; ++item) {
        const bf16* W = matrixOf(a, item);
        const bf16* U = kSwiglu ? upMatrixOf(a, item) : nullptr;
        const float* x = xs + (vectors > 1 ? item * a.cols : 0);
        float acc[kRowsPerWarp] = {}, accUp[kRowsPerWarp] = {};
        for (int k = lane * 8; k < a.cols; k += 32 * 8) {
            uint4 w[kRowsPerWarp], u[kRowsPerWarp];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
                const int64_t at = static_cast<int64_t>(min(row0 + r, a.rows - 1)) * a.cols + k;
                w[r] = __ldg(reinterpret_cast<const uint4*>(W + at));
                if constexpr (kSwiglu)
                    u[r] = __ldg(reinterpret_cast<const uint4*>(U + at));
            }
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
                accumulate8(w[r], x + k, acc[r]);
                if constexpr (kSwiglu)
                    accumulate8(u[r], x + k, accUp[r]);
            }
        }
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            float value = warpSum(acc[r]);
            if constexpr (kSwiglu)
                value = siluf(value) * warpSum(accUp[r]);
            total[r] = combine ? fmaf(a.combineWeights[item], value, total[r]) : value;
        }
    }
    const int64_t base = combine ? 0 : firstItem * a.yItemStride;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        if (lane == 0 && row0 + r < a.rows) {
            const int64_t at = base + row0 + r;
            a.y[at] = a.residual != nullptr ? a.residual[at] + total[r] : total[r];
        }
    }
}

template <int kRowsPerWarp>
void launchRows(const GemvArgs& a, cudaStream_t stream) {
    const bool combine = a.combineWeights != nullptr;
    const unsigned blocks = (a.rows + kRowWarps * kRowsPerWarp - 1) / (kRowWarps * kRowsPerWarp);
    const dim3 grid(blocks, combine ? 1 : a.items);
    const int vectors = combine && a.xItemStride != 0 ? a.items : 1;
    const size_t shared = sizeof(float) * static_cast<size_t>(vectors) * a.cols;
    if (a.up != nullptr || a.upTable != nullptr) {
        auto kernel = rowGemvKernel<kRowsPerWarp, true>;
        if (shared > 48 * 1024)
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(shared));
        kernel<<<grid, kRowThreads, shared, stream>>>(a);
    } else {
        auto kernel = rowGemvKernel<kRowsPerWarp, false>;
        if (shared > 48 * 1024)
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(shared));
        kernel<<<grid, kRowThreads, shared, stream>>>(a);
    }
}

}  // namespace

void launchGemv(const GemvArgs& a, cudaStream_t stream) {
    const bool swiglu = a.up != nullptr || a.upTable != nullptr;
    const bool combine = a.combineWeights != nullptr;
    const bool streamed = swiglu    ? launchStreamingFor<true, false>(a, stream)
                          : combine ? launchStreamingFor<false, true>(a, stream)
                                    : launchStreamingFor<false, false>(a, stream);
    if (streamed)
        return;
    // Enough blocks to cover every SM a few times; more rows per warp when there are plenty.
    const int64_t rowsTotal = static_cast<int64_t>(a.rows) * a.items;
    if (rowsTotal >= 4 * kRowWarps * 1024)
        launchRows<4>(a, stream);
    else if (rowsTotal >= 2 * kRowWarps * 512)
        launchRows<2>(a, stream);
    else
        launchRows<1>(a, stream);
}

}  // namespace folio::inference::cuda
