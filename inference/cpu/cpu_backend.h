// SPDX-License-Identifier: GPL-3.0-or-later
// The fp32 CPU reference backend: the oracle that every faster path is checked against.
// Owns: the mapped checkpoint, the bound weights and a thread pool. Promises: exact fp32
// arithmetic on weights widened from their stored dtype; results independent of how a prompt is
// split (bit-for-bit with the recurrent KDA form); never touches a GPU.
#pragma once

#include <filesystem>
#include <memory>

#include "../backend.h"

namespace folio::inference {

Result<std::shared_ptr<Backend>> createCpuBackend(const std::filesystem::path& modelDir,
                                                  const EngineOptions& options);

}  // namespace folio::inference
