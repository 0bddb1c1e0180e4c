// SPDX-License-Identifier: GPL-3.0-or-later
#include "cuda_check.h"

#include <filesystem>

namespace folio::inference::cuda {
namespace {

std::string where(const char* call, const char* file, int line) {
    return cat(call, " (", std::filesystem::path(file).filename().string(), ":", line, ")");
}

}  // namespace

Error cudaError(cudaError_t code, const char* call, const char* file, int line) {
    const ErrorCode kind =
        code == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Backend;
    return Error{kind, cat("CUDA error ", cudaGetErrorName(code), " (", cudaGetErrorString(code),
                           ") in ", where(call, file, line))};
}

Error cublasError(cublasStatus_t code, const char* call, const char* file, int line) {
    const ErrorCode kind =
        code == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::OutOfMemory : ErrorCode::Backend;
    return Error{kind, cat("cuBLAS error ", cublasGetStatusName(code), " (",
                           cublasGetStatusString(code), ") in ", where(call, file, line))};
}

}  // namespace folio::inference::cuda
