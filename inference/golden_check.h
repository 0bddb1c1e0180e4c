// SPDX-License-Identifier: GPL-3.0-or-later
// Compares the engine with a reference set (a folder holding config.json, model.safetensors and
// golden.safetensors, as ../shared/golden/ describes): full logits, per-layer hidden states,
// KDA states, the MLA cache, a resumed prefill, a greedy continuation, the bias-corrected router
// variant and each layer alone on the reference's inputs.
// Promises: every measure is reported, and `pass` holds only when all are within the tolerances
// for the backend's precision. Never modifies the folder.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "engine_types.h"
#include "result.h"

namespace folio::inference {

struct GoldenReport {
    std::string set;
    std::string backend;
    int64_t tokens = 0;
    std::vector<std::pair<std::string, double>> measures;  // name -> relative L2 error etc.
    int64_t generatedTokens = 0;
    int64_t generatedMatching = 0;
    int64_t restoredTokens = 0;    // sampled with a repetition penalty after export + import
    int64_t restoredMatching = 0;  // ... and equal to those sampled without the round trip
    std::vector<std::string> failures;
    double seconds = 0;
    bool pass() const { return failures.empty(); }
    std::string toJson() const;
};

// Relative L2 error ||a - r|| / ||r|| (0 when both are empty or r is all zero and a equals it).
double relativeL2(const float* a, const float* reference, size_t n);

Result<GoldenReport> runGoldenCheck(const std::filesystem::path& folder,
                                    const EngineOptions& options);

}  // namespace folio::inference
