// SPDX-License-Identifier: GPL-3.0-or-later
// Shared by the session suites and their helper process: the generated tiny model with its
// byte tokenizer, deterministic source texts, and a service on a data directory.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "inference/model_builder.h"
#include "session/session_service.h"

namespace folio::session::testing {

// Writes the tiny preset (random weights, byte tokenizer) once into `dir`.
inline Status ensureTinyModel(const std::filesystem::path& dir) {
    if (std::filesystem::exists(dir / "tiktoken.model") &&
        std::filesystem::exists(dir / "model.safetensors"))
        return {};
    FOLIO_ASSIGN_OR_RETURN(std::string json, inference::presetConfigJson("tiny"));
    return inference::writeRandomModel(dir, json, 1234);
}

// Deterministic English-like text of about `words` words.
inline std::string sourceText(int seed, int words) {
    static const char* vocabulary[] = {"the",    "party",  "shall",    "terminate", "agreement",
                                       "notice", "days",   "supplier", "goods",     "price",
                                       "within", "period", "code",     "reads",     "paper"};
    std::string text;
    uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 1;
    for (int i = 0; i < words; ++i) {
        x = x * 1664525u + 1013904223u;
        text += vocabulary[(x >> 16) % 15];
        text += (i % 12 == 11) ? ".\n" : " ";
    }
    return text;
}

inline Result<std::filesystem::path> writeSource(const std::filesystem::path& dir,
                                                 const std::string& name, int seed, int words) {
    std::filesystem::create_directories(dir);
    const auto path = dir / name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr)
        return makeError(ErrorCode::Io, "cannot write ", path.string());
    const std::string text = sourceText(seed, words);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return path;
}

inline ServiceOptions serviceOptions(const std::filesystem::path& dataDir,
                                     const std::filesystem::path& modelDir) {
    ServiceOptions o;
    o.dataDir = dataDir;
    o.modelDir = modelDir;
    o.engine.threads = 2;
    o.engine.kdaAlgorithm = inference::KdaAlgorithm::Recurrent;
    o.engine.prefillChunkTokens = 256;
    return o;
}

}  // namespace folio::session::testing
