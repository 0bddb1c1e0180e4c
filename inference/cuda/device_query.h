// SPDX-License-Identifier: GPL-3.0-or-later
// What the current CUDA device is, for choosing between kernel forms at run time (the Hopper
// wgmma/TMA kernels need compute capability 9.0 exactly). Queries only; never fails loudly.
#pragma once

namespace folio::inference::cuda {

// The current device's compute capability as major * 10 + minor (90 for H100/H200), or 0 when
// it cannot be read (no device, a broken context).
int currentComputeCapability();

// Whether launches may use programmatic dependent launch (9.0 or newer; read once per process).
bool dependentLaunchSupported();

}  // namespace folio::inference::cuda
