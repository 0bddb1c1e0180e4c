// SPDX-License-Identifier: GPL-3.0-or-later
// KDA for prefill in the chunked (WY / UT-transform) form, head size 128: the launchers of
// kernels.h. The work is two kernels (kda_chunked.cuh describes the record between them):
//  1. local (kda_chunked_local.cu): one block per (head, chunk of 64 tokens), fully parallel:
//     convolution, gate, β, L2 norms, the intra-chunk products L and A on tensor cores with
//     decays factored so that no exponential overflows, (I + L)^-1, W and U;
//  2. state (kda_chunked_state.cu): one cluster of four blocks per head, sequential over the
//     chunks: V' = U - W S, the outputs with their gated RMSNorm, S = e^{Γ_last} S + K̃ᵀ V' on
//     tensor cores; slides the convolution window.
// Same algebra as the CPU reference's kdaChunkedHead. The state after a call is exact for any
// number of tokens (a last chunk may be short): calls of any sizes agree with one call within
// rounding. Every product, those that feed the state and those that feed the outputs, takes TF32
// operands rounded to nearest with fp32 accumulation; nothing is bf16.
// The outputs come from the state pass, not from a third, parallel kernel as in FLA: that kernel
// would need every chunk's incoming state stored (64 KiB per chunk and head, as much DRAM traffic
// again as the records) where the pass has it in registers and pays only tensor-core time.
// Needs compute capability 9.0 or later (clusters, bulk copies); kdaChunkedSupported says false
// elsewhere and the caller uses the step kernel. The launchers only enqueue work (no
// synchronisation, no allocation); the caller owns every buffer.
#include <atomic>

#include "kda_chunked.cuh"

namespace folio::inference::cuda {
namespace {

// Whether the current device runs both kernels, asked of the runtime once per device.
bool kernelsRun() {
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    static std::atomic<int> known[64];  // 0 not asked yet, 1 yes, 2 no
    if (device < 0 || device >= 64)
        return kdachunk::localKernelRuns() && kdachunk::stateKernelRuns();
    int answer = known[device].load(std::memory_order_relaxed);
    if (answer == 0) {
        answer = kdachunk::localKernelRuns() && kdachunk::stateKernelRuns() ? 1 : 2;
        known[device].store(answer, std::memory_order_relaxed);
    }
    return answer == 1;
}

}  // namespace

bool kdaChunkedSupported(int headDim, int convWidth) {
    return headDim == kdachunk::kD && convWidth >= 1 && convWidth <= kdachunk::kMaxConvWidth &&
           kernelsRun();
}

int64_t kdaChunkedScratchFloats(int tokens, int heads) {
    const int64_t chunks = (static_cast<int64_t>(tokens) + kdachunk::kC - 1) / kdachunk::kC;
    return chunks * heads * kdachunk::kRecordFloats;
}

cudaError_t configureKdaChunked() {
    if (!kernelsRun())
        return cudaSuccess;  // not this device's path: nothing to configure
    const cudaError_t e = kdachunk::configureLocal();
    if (e != cudaSuccess)
        return e;
    return kdachunk::configureState();
}

int kdaChunkedHeadsAtOnce(int heads) {
    return kernelsRun() ? kdachunk::stateClustersAtOnce(heads) : 0;
}

void launchKdaChunkedStage(const KdaChunkedArgs& a, KdaChunkedStage stage, cudaStream_t stream) {
    if (a.tokens <= 0)
        return;
    if (stage == KdaChunkedStage::Local)
        kdachunk::launchLocal(a, stream);
    else
        kdachunk::launchState(a, stream);
}

void launchKdaChunked(const KdaChunkedArgs& a, cudaStream_t stream) {
    launchKdaChunkedStage(a, KdaChunkedStage::Local, stream);
    launchKdaChunkedStage(a, KdaChunkedStage::State, stream);
}

}  // namespace folio::inference::cuda
