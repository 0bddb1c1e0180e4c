// SPDX-License-Identifier: GPL-3.0-or-later
// Shared-memory mbarriers for the warp-specialised sm_90 kernels: init, a spinning wait on a
// phase's parity, plain arrivals, arrivals that complete when this thread's cp.async copies have
// landed, and arrivals that expect a number of bytes from tensor-memory (TMA) copies. Also the
// proxy fence that orders copies seen complete through a barrier before wgmma reads them.
// Nothing here allocates a barrier: the kernels place theirs in their shared memory and
// initialise each once (then a block barrier) before use.
#pragma once

#include <cstdint>

#include "async_copy.cuh"

namespace folio::inference::cuda {

__device__ __forceinline__ void barrierInit(uint64_t* b, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(sharedAddress(b)), "r"(count)
                 : "memory");
}
// Waits until the barrier's phase of the given parity has completed.
__device__ __forceinline__ void barrierWait(uint64_t* b, int parity) {
    uint32_t done;
    do {
        asm volatile(
            "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
            "selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(sharedAddress(b)), "r"(parity)
            : "memory");
    } while (!done);
}
__device__ __forceinline__ void barrierArrive(uint64_t* b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(sharedAddress(b)) : "memory");
}
// Arrives once this thread's earlier cp.async copies have landed (counted in the init count).
__device__ __forceinline__ void barrierArriveOnCopies(uint64_t* b) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(sharedAddress(b))
                 : "memory");
}
// Expects `bytes` more to arrive on the barrier (by TMA), and arrives.
__device__ __forceinline__ void barrierExpectBytes(uint64_t* b, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(sharedAddress(b)),
                 "r"(bytes)
                 : "memory");
}
// Orders copies this thread has seen complete (through an mbarrier) before its wgmma reads.
__device__ __forceinline__ void fenceForTensorCores() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

}  // namespace folio::inference::cuda
