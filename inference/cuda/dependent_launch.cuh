// SPDX-License-Identifier: GPL-3.0-or-later
// Programmatic dependent launch (compute capability 9.0 and later). A kernel launched with it
// (launchDependent) may be started while the kernel before it on the stream finishes; it must
// call waitForPriorGrid in every block before it touches global memory, which then gives the
// usual order: the prior grid complete and its writes visible. A kernel calls
// allowDependentLaunch once its own work is issued, so the next one's launch overlaps its end.
// Both are no-ops before 9.0; launchDependent then launches as usual.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "device_query.h"

namespace folio::inference::cuda {

__device__ __forceinline__ void waitForPriorGrid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void allowDependentLaunch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// kernel<<<grid, block, shared, stream>>>(args...) with programmatic stream serialisation
// where the device supports it. The launch error, if any, is left for cudaGetLastError.
template <typename... Params, typename... Args>
void launchDependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared,
                     cudaStream_t stream, Args&&... args) {
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = shared;
    config.stream = stream;
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attribute;
    config.numAttrs = dependentLaunchSupported() ? 1 : 0;
    (void)cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace folio::inference::cuda
