// SPDX-License-Identifier: GPL-3.0-or-later
// The Hopper (sm_90a, wgmma) form of the MLA prefill attention kernel, used by
// launchMlaFlashPrefill when the build carries sm_90a code (FOLIO_CUDA_SM90A) and the current
// device is compute capability 9.0. Same arguments and results as the mma.sync form; the merge of
// split partial states stays with the caller.
#pragma once

#include <cuda_runtime.h>

#include "kernels.h"

namespace folio::inference::cuda {

inline constexpr int kMlaFlashWgmmaKeys = 128;  // keys per tile (a split's share rounds to it)

// Whether this build has the kernel and the current device can run it.
bool mlaFlashWgmmaAvailable();
// Which form launchMlaFlashPrefill runs: configureMlaFlashPrefill picks wgmma when available;
// tests switch to the portable form (and back) to check both on the same device.
void selectMlaFlashWgmma(bool wgmma);
// Allows the kernel its shared memory; once, before any launch.
cudaError_t configureMlaFlashWgmma();
// Launches the kernel (after gathering the segment's rope rows into args.ropeRows); false when
// it cannot (no rope scratch, a tensor map the driver refuses) and nothing was launched.
bool launchMlaFlashWgmma(const MlaFlashArgs& args, cudaStream_t stream);

}  // namespace folio::inference::cuda
