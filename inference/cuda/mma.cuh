// SPDX-License-Identifier: GPL-3.0-or-later
// Warp-level tensor-core helpers shared by the kernels: mma.sync m16n8k16 (bf16 in, fp32
// accumulate) and the fragment loads of its operands. Lane (g = lane / 4, tg = lane % 4) holds
// A rows g and g + 8, columns 2 tg, 2 tg + 1 (+ 8); B columns (n) g, rows (k) 2 tg, 2 tg + 1
// (+ 8); C rows g and g + 8, columns 2 tg and 2 tg + 1.
#pragma once

#include <cuda_bf16.h>
#include <cstdint>

namespace folio::inference::cuda {

__device__ __forceinline__ uint32_t load2(const __nv_bfloat16* p) {
    return *reinterpret_cast<const uint32_t*>(p);
}

__device__ __forceinline__ uint32_t pack2(__nv_bfloat16 low, __nv_bfloat16 high) {
    __nv_bfloat162 v;
    v.x = low;
    v.y = high;
    return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The A fragment of rows [m0, m0 + 16), columns [k0, k0 + 16) of a row-major bf16 matrix.
__device__ __forceinline__ void loadA(const __nv_bfloat16* m, int pitch, int m0, int k0, int g,
                                      int tg, uint32_t a[4]) {
    a[0] = load2(m + (m0 + g) * pitch + k0 + 2 * tg);
    a[1] = load2(m + (m0 + g + 8) * pitch + k0 + 2 * tg);
    a[2] = load2(m + (m0 + g) * pitch + k0 + 8 + 2 * tg);
    a[3] = load2(m + (m0 + g + 8) * pitch + k0 + 8 + 2 * tg);
}

}  // namespace folio::inference::cuda
