// SPDX-License-Identifier: GPL-3.0-or-later
// Choosing the next token on the GPU, so only its id reaches the host.
//
// What is chosen. v = the logit, divided (if positive) or multiplied (if negative) by the
// repetition penalty when the token is in the bitmap of seen tokens. Greedy (temperature <= 0): the
// largest v, ties to the lowest id. Otherwise z = v * (1 / temperature), top = max z, and a token
// weighs exp(z - top) in units of 2^-31, rounded to the nearest integer (exp by a polynomial,
// relative error below 2.3e-7): a token below 2^-32 of the top's weight weighs nothing and is never
// drawn, and every sum of weights is an exact integer, so no choice depends on the order of a sum.
// Among the tokens of nonzero weight, top-k keeps those whose z is at least the k-th largest z
// (ties at the boundary kept); top-p then keeps those whose z is at least the largest value u for
// which the kept weight at or above u reaches ceil(topP * the kept weight) (ties kept again). The
// draw: target = floor(uniform * the kept weight); the token is the first in id order whose running
// kept weight exceeds it.
//
// How. One cluster of eight blocks of 1,024 threads. Each warp holds a contiguous run of the
// vocabulary in registers, rows of 128 tokens (four consecutive per lane, read as float4), so the
// logits are read once. The blocks exchange partial results through distributed shared memory,
// one cluster barrier per exchange (and an arrival at the start, waited for before the first
// write to another block, so that every block has started):
//   1. maximum and arg-max; greedy ends here;
//   2. with top-k or top-p: a histogram of top - z (bins of 1/16 up to 15.9, then one bin for the
//      rest, which most tokens fall in and which is summed in registers; counts and weights)
//      brackets the thresholds to a range of bins;
//   3. the z of that range's tokens (at most 4,096) are gathered into every block, sorted there,
//      and give the exact thresholds. Past 4,096, radix selection on the bits of z within a bin
//      finds each threshold instead (four more barriers per threshold);
//   4. the kept weight per block locates the target's block, then its warp, which walks its rows.
// Nothing persists between launches, so the kernel replays in a CUDA graph as it is.
#include <cooperative_groups.h>

#include <climits>
#include <cstdint>

#include "kernels.h"

namespace cg = cooperative_groups;

namespace folio::inference::cuda {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kBlocks = 8;  // one cluster, the portable maximum
constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kRowTokens = 128;  // a warp's row: four consecutive tokens per lane
constexpr int kMaxRows = 6;
constexpr int kMaxVocab = kBlocks * kWarps * kRowTokens * kMaxRows;  // 196,608
constexpr int kBins = 256;  // of 1/16 below the top; the last one takes all from 15.9 on
constexpr int kTailBin = kBins - 1;
constexpr int kBinWarps = kBins / 32;
constexpr float kBinsPerUnit = 16.0f;
constexpr float kMaxDistance = 23.0f;  // beyond, exp(-d) * 2^31 < 0.5: no weight
constexpr float kLog2E = 1.44269504f;
constexpr int kCandidateCapacity = 4 * kThreads;
constexpr int kDigitLevels = 4;  // radix selection: 8 bits of z per level
static_assert(kWarps == 32, "block sums scan one value per warp in one warp");

// A block's histogram, in 32-bit counters (shared-memory atomics on 64 bits are loops): the
// weights split at bit 16. A block holds at most 24,576 tokens, so neither sum can overflow.
struct LocalHistogram {
    uint32_t count[kBins];
    uint32_t weightLow[kBins];   // sum of (weight & 0xffff)
    uint32_t weightHigh[kBins];  // sum of (weight >> 16)
};
static_assert(static_cast<double>(kMaxRows * kRowTokens * kWarps) * 65536.0 < 4294967296.0);

// A cumulative histogram: inclusive sums from bin 0.
struct Cumulative {
    uint32_t count[kBins];
    unsigned long long weight[kBins];
};

struct Shared {
    float warpTop[kWarps];
    int warpTopToken[kWarps];
    float blockTop[kBlocks];  // every block's maximum and arg-max, written by that block
    int blockTopToken[kBlocks];
    LocalHistogram local[2];               // this block's histogram, alternating per level
    uint32_t sourceCount[kBlocks][kBins];  // the first level's counts of every block
    uint32_t sourceRangeCount[kBlocks];
    uint32_t binWarpCount[kBinWarps];
    unsigned long long binWarpWeight[kBinWarps];
    Cumulative bins, digits;
    int found[3];
    uint32_t gatherWarps[kWarps];
    unsigned long long resolveWarps[kWarps], drawWarps[kWarps];
    unsigned long long keptWeight;
    uint32_t nucleusKey;
    uint32_t candidates[kCandidateCapacity];  // written by every block
    unsigned long long blockKept[kBlocks];    // every block's kept weight, written by that block
};

// The warp's run of the vocabulary: row j, lane l, element e is token first + 128 j + 4 l + e.
struct Tile {
    float z[kMaxRows][4];
    int rows;
    int first;
    __device__ int token(int row, int e) const {
        return first + row * kRowTokens + 4 * static_cast<int>(threadIdx.x & 31) + e;
    }
};

// Sortable bits of z: larger z, larger key (-0 counts as +0).
__device__ __forceinline__ uint32_t orderKey(float z) {
    uint32_t bits = __float_as_uint(z);
    if (bits == 0x80000000u)
        bits = 0;
    return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}
__device__ __forceinline__ float keyValue(uint32_t key) {
    return __uint_as_float((key & 0x80000000u) ? key & 0x7fffffffu : ~key);
}

// The distance below the top, its weight and its bin, with pinned roundings so that every pass
// computes the same numbers.
__device__ __forceinline__ float distanceBelow(float top, float z) {
    return __fsub_rn(top, z);
}
// The weight: 2^(31 - d log2 e) = 2^n 2^f, n the nearest integer and |f| <= 1/2, rounded to an
// integer; single-rounding float operations only, which the ops test repeats bit for bit.
__device__ __forceinline__ uint32_t weightAt(float d) {
    if (!(d <= kMaxDistance))
        return 0;
    const float exponent = __fmaf_rn(-d, kLog2E, 31.0f);
    const float shifted = __fadd_rn(exponent, 12582912.0f);  // 1.5 * 2^23: rounds to an integer
    const float f = __fsub_rn(exponent, __fsub_rn(shifted, 12582912.0f));
    // 2^f = sum of (f ln 2)^k / k! for k <= 6, in float: relative error below 2.3e-7.
    float power = __fmaf_rn(0.000154035297f, f, 0.00133335579f);
    power = __fmaf_rn(power, f, 0.00961812865f);
    power = __fmaf_rn(power, f, 0.0555041097f);
    power = __fmaf_rn(power, f, 0.240226507f);
    power = __fmaf_rn(power, f, 0.693147182f);
    power = __fmaf_rn(power, f, 1.0f);
    const int n = __float_as_int(shifted) - 0x4B400000;
    return __float2uint_rn(__fmul_rn(power, __int_as_float((n + 127) << 23)));
}
// round(16 d) by the float-to-integer trick, at most kTailBin: monotone in d.
__device__ __forceinline__ int binAt(float d) {
    return min(kTailBin, __float_as_int(__fmaf_rn(d, kBinsPerUnit, 12582912.0f)) - 0x4B400000);
}

// Tokens bound for one bin, summed in registers before one set of atomics.
struct BinSum {
    uint32_t count = 0, weightLow = 0, weightHigh = 0;
    __device__ void add(uint32_t weight) {
        ++count;
        weightLow += weight & 0xffffu;
        weightHigh += weight >> 16;
    }
    __device__ void addTo(LocalHistogram& h, int bin) const {
        if (count == 0)
            return;
        atomicAdd(&h.count[bin], count);
        atomicAdd(&h.weightLow[bin], weightLow);
        atomicAdd(&h.weightHigh[bin], weightHigh);
    }
};
__device__ __forceinline__ void clearHistogram(LocalHistogram& h) {
    if (threadIdx.x < kBins) {
        h.count[threadIdx.x] = 0;
        h.weightLow[threadIdx.x] = 0;
        h.weightHigh[threadIdx.x] = 0;
    }
}

// x, opaque to the optimiser: work on a tile element inside a loop stays inside it rather than
// being hoisted out for all 24 elements at once, which would not fit in registers.
__device__ __forceinline__ float unhoisted(float x) {
    asm volatile("" : "+f"(x));
    return x;
}

// A cluster barrier in two halves: the first, relaxed arrival at the start lets every block
// write to the others' shared memory once it has waited (all have started).
__device__ __forceinline__ void clusterArriveRelaxed() {
    asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void clusterWait() {
    asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");
}

template <class T>
__device__ __forceinline__ T warpInclusiveSum(T v) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
        const T up = __shfl_up_sync(kFullMask, v, offset);
        if (lane >= offset)
            v += up;
    }
    return v;
}

template <class T>
struct BlockSum {
    T before;  // over the block's threads before this one
    T total;
};
// warpTotals (one per warp) must not be reused before a later barrier.
template <class T>
__device__ __forceinline__ BlockSum<T> blockSum(T v, T* warpTotals) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const T inclusive = warpInclusiveSum(v);
    if (lane == 31)
        warpTotals[warp] = inclusive;
    __syncthreads();
    const T warpTotal = warpTotals[lane];
    const T warpsInclusive = warpInclusiveSum(warpTotal);
    return {__shfl_sync(kFullMask, warpsInclusive - warpTotal, warp) + inclusive - v,
            __shfl_sync(kFullMask, warpsInclusive, kWarps - 1)};
}

template <class T>
__device__ __forceinline__ T before(const T* cumulative, int bin) {
    return bin > 0 ? cumulative[bin - 1] : T{0};
}

// The first bin whose cumulative value reaches target (0 < target <= the last bin's); every
// thread gets it. No other search may use `slot` before a later barrier.
template <class T>
__device__ __forceinline__ int firstReaching(const T* cumulative, T target, int* slot) {
    const int bin = threadIdx.x;
    if (bin < kBins && cumulative[bin] >= target && before(cumulative, bin) < target)
        *slot = bin;
    __syncthreads();
    return *slot;
}

// The weight top-p needs out of `kept`: ceil(topP * kept), at least 1.
__device__ __forceinline__ unsigned long long nucleusWeight(float topP, unsigned long long kept) {
    const double need = ceil(static_cast<double>(topP) * static_cast<double>(kept));
    return need < 1.0 ? 1ull : static_cast<unsigned long long>(need);
}

// Loads the warp's run of logits with the penalty and the temperature applied; returns the
// lane's largest value and its token (the lowest on ties).
__device__ __forceinline__ void loadTile(Tile& tile, const float* logits, int V,
                                         const uint32_t* seen, float penalty,
                                         float inverseTemperature, float& best, int& bestToken) {
    const bool vectors = (reinterpret_cast<uintptr_t>(logits) & 15) == 0;
    best = -INFINITY;
    bestToken = INT_MAX;
#pragma unroll
    for (int j = 0; j < kMaxRows; ++j) {
        const int at = tile.token(j, 0);
        float v[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        if (j < tile.rows && at < V) {
            if (vectors && at + 3 < V) {
                const float4 x = *reinterpret_cast<const float4*>(logits + at);
                v[0] = x.x;
                v[1] = x.y;
                v[2] = x.z;
                v[3] = x.w;
            } else {
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    if (at + e < V)
                        v[e] = logits[at + e];
            }
            // The seen bits load whatever the penalty, which arrives with the parameters.
            const uint32_t bits = seen != nullptr ? seen[at >> 5] >> (at & 31) : 0u;
            if (penalty != 1.0f) {
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    if ((bits >> e) & 1u)
                        v[e] = v[e] > 0.0f ? __fdiv_rn(v[e], penalty) : __fmul_rn(v[e], penalty);
            }
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float z = __fmul_rn(v[e], inverseTemperature);
            tile.z[j][e] = z;
            if (z > best || (z == best && tile.token(j, e) < bestToken)) {
                best = z;
                bestToken = tile.token(j, e);
            }
        }
    }
}

__device__ __forceinline__ void keepBetter(float& best, int& bestToken, float other,
                                           int otherToken) {
    if (other > best || (other == best && otherToken < bestToken)) {
        best = other;
        bestToken = otherToken;
    }
}

// After a cluster barrier: every block's histogram `buffer` summed into `out`, cumulatively;
// with keepSources, each block's counts kept too.
__device__ __forceinline__ void mergeBins(const cg::cluster_group& cluster, Shared& sh, int buffer,
                                          Cumulative& out, bool keepSources) {
    const int bin = threadIdx.x, lane = bin & 31, warp = bin >> 5;
    uint32_t count = 0;
    unsigned long long weight = 0;
    if (warp < kBinWarps) {
#pragma unroll
        for (int source = 0; source < kBlocks; ++source) {
            const LocalHistogram& h = *cluster.map_shared_rank(&sh.local[buffer], source);
            const uint32_t sourceCount = h.count[bin];
            count += sourceCount;
            weight += (static_cast<unsigned long long>(h.weightHigh[bin]) << 16) + h.weightLow[bin];
            if (keepSources)
                sh.sourceCount[source][bin] = sourceCount;
        }
        count = warpInclusiveSum(count);
        weight = warpInclusiveSum(weight);
        if (lane == 31) {
            sh.binWarpCount[warp] = count;
            sh.binWarpWeight[warp] = weight;
        }
    }
    __syncthreads();
    if (warp < kBinWarps) {
        for (int w = 0; w < warp; ++w) {
            count += sh.binWarpCount[w];
            weight += sh.binWarpWeight[w];
        }
        out.count[bin] = count;
        out.weight[bin] = weight;
    }
    __syncthreads();
}

struct Selection {
    uint32_t key;
    unsigned long long weightAtLeast;  // of the tokens whose key is at least `key`
};

// Radix selection among the weighted tokens of first-level bin `bin`: the largest key x such
// that the count (or the weight) of the weighted tokens at or above x, those of earlier bins
// (countBefore, weightBefore) included, reaches target. `level` numbers the histograms, whose
// buffers alternate.
__device__ __forceinline__ Selection radixSelect(const cg::cluster_group& cluster, Shared& sh,
                                                 const Tile& tile, float top, int bin,
                                                 unsigned long long target, bool byWeight,
                                                 uint32_t countBefore,
                                                 unsigned long long weightBefore, int& level) {
    uint32_t prefix = 0;
    unsigned long long weightAtLeast = 0;
#pragma unroll 1
    for (int digitLevel = 0; digitLevel < kDigitLevels; ++digitLevel, ++level) {
        const int shift = 24 - 8 * digitLevel, buffer = level & 1;
        clearHistogram(sh.local[buffer]);
        __syncthreads();
        // Slot 0 holds the largest digit. The tokens of one bin lie within 1/16 of each other,
        // so most share their leading digits: runs of one slot go in with one set of atomics.
        BinSum run;
        int runSlot = 0;
#pragma unroll
        for (int j = 0; j < kMaxRows; ++j) {
            if (j >= tile.rows)
                continue;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float z = unhoisted(tile.z[j][e]);
                const float d = distanceBelow(top, z);
                if (!(d <= kMaxDistance) || binAt(d) != bin)
                    continue;
                const uint32_t weight = weightAt(d), key = orderKey(z);
                if (weight == 0 ||
                    (digitLevel > 0 && (key >> (shift + 8)) != (prefix >> (shift + 8))))
                    continue;
                const int slot = 255 - static_cast<int>((key >> shift) & 255);
                if (slot != runSlot) {
                    run.addTo(sh.local[buffer], runSlot);
                    run = BinSum{};
                    runSlot = slot;
                }
                run.add(weight);
            }
        }
        run.addTo(sh.local[buffer], runSlot);
        __syncthreads();
        cluster.sync();
        mergeBins(cluster, sh, buffer, sh.digits, false);
        const int slot =
            byWeight ? firstReaching(sh.digits.weight, target - weightBefore, &sh.found[0])
                     : firstReaching(sh.digits.count, static_cast<uint32_t>(target - countBefore),
                                     &sh.found[0]);
        prefix |= static_cast<uint32_t>(255 - slot) << shift;
        weightAtLeast = weightBefore + sh.digits.weight[slot];
        countBefore += before(sh.digits.count, slot);
        weightBefore += before(sh.digits.weight, slot);
    }
    return {prefix, weightAtLeast};
}

// The kept tokens' lowest key (0: every weighted token) under top-k and top-p.
__device__ __forceinline__ uint32_t keptThreshold(const cg::cluster_group& cluster, Shared& sh,
                                                  const Tile& tile, float top, int topK,
                                                  float topP) {
    const int rank = static_cast<int>(cluster.block_rank());
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    // 2. The histogram of the distances below the top (buffer 0, zeroed at the start); the tail
    //    bin, which usually holds most tokens, summed in registers first.
    BinSum tail;
#pragma unroll
    for (int j = 0; j < kMaxRows; ++j) {
        if (j >= tile.rows)
            continue;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float d = distanceBelow(top, tile.z[j][e]);
            const uint32_t weight = weightAt(d);
            if (weight == 0)
                continue;
            const int bin = binAt(d);
            if (bin == kTailBin) {
                tail.add(weight);
            } else {
                BinSum token;
                token.add(weight);
                token.addTo(sh.local[0], bin);
            }
        }
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        tail.count += __shfl_xor_sync(kFullMask, tail.count, offset);
        tail.weightLow += __shfl_xor_sync(kFullMask, tail.weightLow, offset);
        tail.weightHigh += __shfl_xor_sync(kFullMask, tail.weightHigh, offset);
    }
    if (lane == 0)
        tail.addTo(sh.local[0], kTailBin);
    __syncthreads();
    cluster.sync();
    mergeBins(cluster, sh, 0, sh.bins, true);
    const Cumulative& bins = sh.bins;
    const unsigned long long totalWeight = bins.weight[kBins - 1];
    const bool kActive = topK > 0 && static_cast<uint32_t>(topK) < bins.count[kBins - 1];
    const bool pActive = topP < 1.0f;
    if (!kActive && !pActive)
        return 0;

    // The bins that may hold the thresholds: the k-th largest z, and the nucleus boundary,
    // which moves with the kept weight (known to lie within the k-th's bin).
    const int kBin =
        kActive ? firstReaching(bins.count, static_cast<uint32_t>(topK), &sh.found[0]) : kBins - 1;
    const unsigned long long lowestKept = kActive ? before(bins.weight, kBin) : totalWeight;
    const int pLowBin =
        pActive ? firstReaching(bins.weight, nucleusWeight(topP, lowestKept), &sh.found[1]) : kBin;
    const int lowBin = pActive ? pLowBin : kBin, highBin = kActive ? kBin : pLowBin;
    const uint32_t countBefore = before(bins.count, lowBin);
    const unsigned long long weightBefore = before(bins.weight, lowBin);
    const uint32_t candidateCount = bins.count[highBin] - countBefore;

    if (candidateCount > kCandidateCapacity) {
        // Too many to sort: radix selection, the k-th largest z first (it fixes the kept
        // weight), then the nucleus boundary, in the bin where the kept weight reaches it.
        int level = 1;
        uint32_t threshold = 0;
        unsigned long long kept = totalWeight;
        for (int byWeight = kActive ? 0 : 1; byWeight <= (pActive ? 1 : 0); ++byWeight) {
            const unsigned long long target =
                byWeight ? nucleusWeight(topP, kept) : static_cast<unsigned long long>(topK);
            const int bin = byWeight ? firstReaching(bins.weight, target, &sh.found[2]) : kBin;
            const Selection s =
                radixSelect(cluster, sh, tile, top, bin, target, byWeight, before(bins.count, bin),
                            before(bins.weight, bin), level);
            threshold = s.key;
            kept = s.weightAtLeast;
        }
        return threshold;
    }

    // 3. Gather the keys of the weighted tokens of bins lowBin..highBin into every block: this
    //    block's go after those of the blocks of lower rank.
    if (warp < kBlocks) {
        uint32_t count = 0;
        for (int bin = lowBin + lane; bin <= highBin; bin += 32)
            count += sh.sourceCount[warp][bin];
        for (int offset = 16; offset > 0; offset >>= 1)
            count += __shfl_xor_sync(kFullMask, count, offset);
        if (lane == 0)
            sh.sourceRangeCount[warp] = count;
    }
    auto isCandidate = [&](float z) {
        const float d = distanceBelow(top, z);
        if (!(d <= kMaxDistance))
            return false;
        const int bin = binAt(d);
        return bin >= lowBin && bin <= highBin && weightAt(d) != 0;
    };
    uint32_t mine = 0;
#pragma unroll
    for (int j = 0; j < kMaxRows; ++j) {
        if (j >= tile.rows)
            continue;
#pragma unroll
        for (int e = 0; e < 4; ++e)
            mine += isCandidate(tile.z[j][e]) ? 1u : 0u;
    }
    uint32_t slot = blockSum(mine, sh.gatherWarps).before;
    for (int source = 0; source < rank; ++source)
        slot += sh.sourceRangeCount[source];
#pragma unroll
    for (int j = 0; j < kMaxRows; ++j) {
        if (j >= tile.rows)
            continue;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            if (!isCandidate(tile.z[j][e]))
                continue;
            const uint32_t key = orderKey(tile.z[j][e]);
#pragma unroll
            for (int target = 0; target < kBlocks; ++target)
                *cluster.map_shared_rank(&sh.candidates[slot], target) = key;
            ++slot;
        }
    }
    cluster.sync();

    // Sort them, descending (zeros pad to a power of two), then read the thresholds off the
    // running weights: thread t holds positions 4t .. 4t + 3.
    const int n = static_cast<int>(candidateCount);
    int padded = 1;
    while (padded < n)
        padded <<= 1;
    uint32_t* keys = sh.candidates;
    for (int i = n + static_cast<int>(threadIdx.x); i < padded; i += kThreads)
        keys[i] = 0;
    __syncthreads();
    for (int size = 2; size <= padded; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < padded; i += kThreads) {
                const int partner = i ^ stride;
                if (partner > i) {
                    const uint32_t a = keys[i], b = keys[partner];
                    if ((i & size) == 0 ? a < b : a > b) {
                        keys[i] = b;
                        keys[partner] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
    const int firstPosition = 4 * static_cast<int>(threadIdx.x);
    uint32_t weights[4];
    unsigned long long mySum = 0;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int at = firstPosition + e;
        weights[e] = at < n ? weightAt(distanceBelow(top, keyValue(keys[at]))) : 0u;
        mySum += weights[e];
    }
    const unsigned long long runningBefore = weightBefore + blockSum(mySum, sh.resolveWarps).before;

    uint32_t threshold = 0;
    unsigned long long kept = totalWeight;
    if (kActive) {
        threshold = keys[topK - static_cast<int>(countBefore) - 1];
        unsigned long long running = runningBefore;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int at = firstPosition + e;
            running += weights[e];
            if (at < n && keys[at] >= threshold && (at + 1 == n || keys[at + 1] < threshold))
                sh.keptWeight = running;
        }
        __syncthreads();
        kept = sh.keptWeight;
    }
    if (pActive) {
        const unsigned long long need = nucleusWeight(topP, kept);
        unsigned long long running = runningBefore;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int at = firstPosition + e;
            const unsigned long long previous = running;
            running += weights[e];
            if (at < n && previous < need && running >= need)
                sh.nucleusKey = keys[at];
        }
        __syncthreads();
        threshold = sh.nucleusKey;
    }
    return threshold;
}

__global__ void __cluster_dims__(kBlocks, 1, 1) __launch_bounds__(kThreads)
    sampleKernel(const float* logits, int V, const SampleParams* params, const uint32_t* seen,
                 int32_t* token) {
    __shared__ Shared sh;
    const cg::cluster_group cluster = cg::this_cluster();
    const int rank = static_cast<int>(cluster.block_rank());
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const SampleParams p = *params;
    const bool greedy = p.temperature <= 0.0f;
    clearHistogram(sh.local[0]);
    clusterArriveRelaxed();

    // 1. The logits, the maximum and the arg-max.
    Tile tile;
    tile.rows = (V + kBlocks * kWarps * kRowTokens - 1) / (kBlocks * kWarps * kRowTokens);
    tile.first = (rank * kWarps + warp) * tile.rows * kRowTokens;
    float best;
    int bestToken;
    loadTile(tile, logits, V, seen, p.repetitionPenalty, greedy ? 1.0f : __frcp_rn(p.temperature),
             best, bestToken);
    for (int offset = 16; offset > 0; offset >>= 1)
        keepBetter(best, bestToken, __shfl_xor_sync(kFullMask, best, offset),
                   __shfl_xor_sync(kFullMask, bestToken, offset));
    if (lane == 0) {
        sh.warpTop[warp] = best;
        sh.warpTopToken[warp] = bestToken;
    }
    __syncthreads();
    clusterWait();
    if (warp == 0) {
        best = sh.warpTop[lane];
        bestToken = sh.warpTopToken[lane];
        for (int offset = 16; offset > 0; offset >>= 1)
            keepBetter(best, bestToken, __shfl_xor_sync(kFullMask, best, offset),
                       __shfl_xor_sync(kFullMask, bestToken, offset));
        if (lane < kBlocks) {
            *cluster.map_shared_rank(&sh.blockTop[rank], lane) = best;
            *cluster.map_shared_rank(&sh.blockTopToken[rank], lane) = bestToken;
        }
    }
    cluster.sync();
    float top = sh.blockTop[0];
    int topToken = sh.blockTopToken[0];
    for (int source = 1; source < kBlocks; ++source)
        keepBetter(top, topToken, sh.blockTop[source], sh.blockTopToken[source]);
    if (topToken >= V)  // no logit compares (NaN throughout)
        topToken = 0;
    if (greedy) {
        if (rank == 0 && threadIdx.x == 0)
            *token = topToken;
        return;
    }

    const uint32_t threshold =
        p.topK > 0 || p.topP < 1.0f ? keptThreshold(cluster, sh, tile, top, p.topK, p.topP) : 0u;

    // 4. The kept weight of every lane, warp and block; then the target's warp walks its rows.
    auto keptWeight = [&](float z) {
        return orderKey(z) >= threshold ? weightAt(distanceBelow(top, z)) : 0u;
    };
    unsigned long long laneKept = 0;
#pragma unroll
    for (int j = 0; j < kMaxRows; ++j) {
        if (j >= tile.rows)
            continue;
#pragma unroll
        for (int e = 0; e < 4; ++e)
            laneKept += keptWeight(tile.z[j][e]);
    }
    const BlockSum<unsigned long long> kept = blockSum(laneKept, sh.drawWarps);
    if (warp == 0 && lane < kBlocks)
        *cluster.map_shared_rank(&sh.blockKept[rank], lane) = kept.total;
    cluster.sync();
    unsigned long long total = 0, blockStart = 0;
    for (int source = 0; source < kBlocks; ++source) {
        blockStart += source < rank ? sh.blockKept[source] : 0ull;
        total += sh.blockKept[source];
    }
    if (total == 0) {  // no finite logit
        if (rank == 0 && threadIdx.x == 0)
            *token = topToken;
        return;
    }
    const double u = fmin(fmax(static_cast<double>(p.uniform), 0.0), 1.0);
    const unsigned long long target =
        min(total - 1, static_cast<unsigned long long>(u * static_cast<double>(total)));
    const unsigned long long warpStart = blockStart + __shfl_sync(kFullMask, kept.before, 0);
    const unsigned long long warpEnd =
        blockStart + __shfl_sync(kFullMask, kept.before + laneKept, 31);
    if (target < warpStart || target >= warpEnd)
        return;
    unsigned long long remaining = target - warpStart;
#pragma unroll
    for (int j = 0; j < kMaxRows; ++j) {
        uint32_t weights[4];
        unsigned long long laneRow = 0;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            weights[e] = keptWeight(tile.z[j][e]);
            laneRow += weights[e];
        }
        const unsigned long long rowInclusive = warpInclusiveSum(laneRow);
        const unsigned long long rowTotal = __shfl_sync(kFullMask, rowInclusive, 31);
        if (remaining < rowTotal) {
            const unsigned long long laneStart = rowInclusive - laneRow;
            if (remaining >= laneStart && remaining < rowInclusive) {
                unsigned long long left = remaining - laneStart;
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    if (left < weights[e]) {
                        *token = tile.token(j, e);
                        break;
                    }
                    left -= weights[e];
                }
            }
            return;
        }
        remaining -= rowTotal;
    }
}

__global__ void markSeenKernel(uint32_t* seen, const int32_t* ids, int count) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
        atomicOr(&seen[ids[i] >> 5], 1u << (ids[i] & 31));
}

}  // namespace

bool sampleVocabSupported(int vocab) {
    return vocab >= 1 && vocab <= kMaxVocab;
}

void launchSample(const float* logits, int vocab, const SampleParams* params, const uint32_t* seen,
                  int32_t* token, cudaStream_t stream) {
    if (sampleVocabSupported(vocab))
        sampleKernel<<<kBlocks, kThreads, 0, stream>>>(logits, vocab, params, seen, token);
}

void launchMarkSeen(uint32_t* seen, const int32_t* ids, int count, cudaStream_t stream) {
    if (count > 0)
        markSeenKernel<<<(count + 255) / 256, 256, 0, stream>>>(seen, ids, count);
}

}  // namespace folio::inference::cuda
