// SPDX-License-Identifier: GPL-3.0-or-later
// Turns CUDA runtime and cuBLAS status codes into Folio errors. Every CUDA call in the backend
// goes through FOLIO_CUDA_TRY or FOLIO_CUBLAS_TRY, so a failure reaches the caller as a value
// naming the call and the place; running out of device memory becomes ErrorCode::OutOfMemory.
// Never aborts or exits.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../result.h"

namespace folio::inference::cuda {

Error cudaError(cudaError_t code, const char* call, const char* file, int line);
Error cublasError(cublasStatus_t code, const char* call, const char* file, int line);

}  // namespace folio::inference::cuda

#define FOLIO_CUDA_TRY(call)                                                                \
    do {                                                                                    \
        const cudaError_t folio_cuda_status_ = (call);                                      \
        if (folio_cuda_status_ != cudaSuccess)                                              \
            return ::folio::inference::cuda::cudaError(folio_cuda_status_, #call, __FILE__, \
                                                       __LINE__);                           \
    } while (0)

#define FOLIO_CUBLAS_TRY(call)                                                                  \
    do {                                                                                        \
        const cublasStatus_t folio_cublas_status_ = (call);                                     \
        if (folio_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                      \
            return ::folio::inference::cuda::cublasError(folio_cublas_status_, #call, __FILE__, \
                                                         __LINE__);                             \
    } while (0)

// After a kernel launch: a bad configuration is reported at once, not at the next sync.
#define FOLIO_CUDA_LAUNCHED(what) FOLIO_CUDA_TRY((static_cast<void>(what), cudaGetLastError()))
