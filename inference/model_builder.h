// SPDX-License-Identifier: GPL-3.0-or-later
// Writes Kimi Linear checkpoints with deterministic random weights in the official layout
// (config.json + model.safetensors, BF16 with A_log and dt_bias in F32), for the bundled demo
// model and for tests. The same config and seed always give byte-identical files.
// Never overwrites a folder's other files; never produces a model that claims to be trained.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "result.h"

namespace folio::inference {

// config.json text of a named preset: "demo" (the bundled demo model) or "tiny" (fast tests).
Result<std::string> presetConfigJson(const std::string& preset);

// Writes config.json and model.safetensors into `folder` (created if needed).
Status writeRandomModel(const std::filesystem::path& folder, const std::string& configJson,
                        uint64_t seed);

}  // namespace folio::inference
