// SPDX-License-Identifier: GPL-3.0-or-later
// Hopper warpgroup tensor-core (wgmma) primitives shared by the sm_90a kernels: the 128-byte
// swizzled shared-memory layout and its descriptors, the fence / commit / wait of asynchronous
// groups, and m64n128k16 bf16 products with fp32 accumulators (64 × 128 per warpgroup: thread
// (warp w of the group, lane = 4 g + tg) holds rows 16 w + g and + 8, columns 8 j + 2 tg and + 1
// in d[j][0..1] and d[j][2..3], as mma.sync m16n8 tiles do); m64n256k16 and m64n32k16 with both
// operands in shared memory have the same layout over 256 and 32 columns (d[32][4], d[4][4]).
//
// Layout: a tile is cut into slabs of 64 bf16 columns; a slab's rows are 128 bytes, and the
// 16-byte chunk c of row r sits at r * 128 + ((c ^ (r % 8)) * 16). Slabs start 1024-byte aligned.
// A K-major operand (the reduction dimension contiguous) has descriptor strides (16, 1024);
// advancing by 16 elements of K is +32 bytes within a slab, then the next slab. An MN-major
// operand (the output dimension contiguous, "transposed") has (slab bytes, 1024): its 64-column
// slabs are the leading stride, its 8-row groups 1 KB apart. Nothing here synchronises a block;
// the instructions exist only when compiling for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL).
#pragma once

#include <cstdint>

namespace folio::inference::cuda {

// Byte offset of 16-byte chunk `chunk` (0..7) of row `row` in a swizzled slab.
__device__ __forceinline__ uint32_t swizzled(int row, int chunk) {
    return static_cast<uint32_t>(row * 128 + ((chunk ^ (row & 7)) << 4));
}

// A wgmma shared-memory descriptor with 128-byte swizzling (byte address and strides).
__device__ __forceinline__ uint64_t descriptor(uint32_t address, uint32_t leadingBytes,
                                               uint32_t strideBytes) {
    return static_cast<uint64_t>((address & 0x3FFFF) >> 4) |
           static_cast<uint64_t>(leadingBytes >> 4) << 16 |
           static_cast<uint64_t>(strideBytes >> 4) << 32 | 1ull << 62;
}

#define FOLIO_WGMMA_D_REGS                                                                   \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
    "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, "  \
    "%36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, "  \
    "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

#define FOLIO_WGMMA_D_OPERANDS(d)                                                                 \
    "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),     \
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), \
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), \
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), \
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), \
        "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), \
        "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]),               \
        "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]),           \
        "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]),           \
        "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]),           \
        "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]),           \
        "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])

// The 128 accumulator registers of an m64n256 product: the 64 of FOLIO_WGMMA_D_OPERANDS for
// columns 0..127, then those of columns 128..255.
#define FOLIO_WGMMA_D256_REGS                                                                \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
    "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, "  \
    "%36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, "  \
    "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, "  \
    "%70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, "  \
    "%87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, "    \
    "%103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, "   \
    "%117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"

#define FOLIO_WGMMA_D256_OPERANDS(d) FOLIO_WGMMA_D_OPERANDS(d), FOLIO_WGMMA_D_OPERANDS((d + 16))

// Keeps the compiler from moving accesses of the accumulators across the asynchronous region.
template <int kTiles>
__device__ __forceinline__ void pinAccumulators(float (&d)[kTiles][4]) {
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            asm volatile("" : "+f"(d[j][e])::"memory");
}

__device__ __forceinline__ void wgmmaFence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmmaCommit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void wgmmaWait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// d (64 × 32, fp32) = [d +] A Bᵀ with A (64 × 16) and B (32 × 16) both K-major in shared memory.
__device__ __forceinline__ void wgmmaShared(float (&d)[4][4], uint64_t a, uint64_t b,
                                            int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, "
        "1, 0, 0;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),
          "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
          "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3])
        : "l"(a), "l"(b), "r"(accumulate));
}

// d (64 × 128, fp32) = [d +] A Bᵀ with A (64 × 16) and B (128 × 16) both K-major in shared memory.
__device__ __forceinline__ void wgmmaShared(float (&d)[16][4], uint64_t a, uint64_t b,
                                            int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " FOLIO_WGMMA_D_REGS
        ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : FOLIO_WGMMA_D_OPERANDS(d)
        : "l"(a), "l"(b), "r"(accumulate));
}

// d (64 × 256, fp32) = [d +] A Bᵀ with A (64 × 16) and B (256 × 16) both K-major in shared memory.
__device__ __forceinline__ void wgmmaShared(float (&d)[32][4], uint64_t a, uint64_t b,
                                            int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " FOLIO_WGMMA_D256_REGS
        ", %128, %129, p, 1, 1, 0, 0;\n}\n"
        : FOLIO_WGMMA_D256_OPERANDS(d)
        : "l"(a), "l"(b), "r"(accumulate));
}

// d (64 × 128, fp32) += A B with A (64 × 16) in registers and B (16 × 128) MN-major in shared
// memory.
__device__ __forceinline__ void wgmmaRegisters(float (&d)[16][4], const uint32_t (&a)[4],
                                               uint64_t b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " FOLIO_WGMMA_D_REGS
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : FOLIO_WGMMA_D_OPERANDS(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}
#endif

// The same for register fragments an asynchronous product reads (A from registers): they
// stay untouched until the product has been waited for.
template <int kCount>
__device__ __forceinline__ void pinFragments(uint32_t (&p)[kCount][4]) {
#pragma unroll
    for (int i = 0; i < kCount; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            asm volatile("" : "+r"(p[i][e])::"memory");
}

}  // namespace folio::inference::cuda
