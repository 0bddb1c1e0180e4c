// SPDX-License-Identifier: GPL-3.0-or-later
#include "device_query.h"

#include <cuda_runtime.h>

namespace folio::inference::cuda {

int currentComputeCapability() {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
        cudaGetLastError();  // a failed query is not the caller's error to find later
        return 0;
    }
    return 10 * major + minor;
}

bool dependentLaunchSupported() {
    static const bool supported = currentComputeCapability() >= 90;
    return supported;
}

}  // namespace folio::inference::cuda
