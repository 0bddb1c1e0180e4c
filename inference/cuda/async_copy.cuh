// SPDX-License-Identifier: GPL-3.0-or-later
// Shared-memory helpers for the tiled kernels: asynchronous 16-byte copies from global memory
// (cp.async, zero-filled when the source is out of range), their groups, and ldmatrix loads of
// mma.sync fragments. Nothing here synchronises a block; callers place their own barriers.
#pragma once

#include <cuda_bf16.h>
#include <cstdint>

namespace folio::inference::cuda {

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

__device__ __forceinline__ void ldmatrix4(uint32_t r[4], const __nv_bfloat16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
}
__device__ __forceinline__ void ldmatrix4Trans(uint32_t r[4], const __nv_bfloat16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
}

}  // namespace folio::inference::cuda
