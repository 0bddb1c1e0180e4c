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

// Writes config.json, model.safetensors and the byte tokenizer (writeByteTokenizer) into
// `folder` (created if needed).
Status writeRandomModel(const std::filesystem::path& folder, const std::string& configJson,
                        uint64_t seed);

// Writes tiktoken.model and tokenizer_config.json of a deterministic byte-level BPE tokenizer
// with `vocabSize` ids, as Kimi lays them out: ranks 0..255 are the single bytes, then merges
// learned from a fixed built-in English text (the same every time), up to vocabSize - 256; the
// last 256 ids are the special tokens, named as Kimi names them at Kimi's offsets ([BOS] first,
// <|im_end|> = first + 2, <|im_middle|> = first + 17, [PAD] last). Needs vocabSize >= 512.
Status writeByteTokenizer(const std::filesystem::path& folder, int64_t vocabSize);

// The bundled demo model: preset "demo" with this seed, whether the build generates it
// (folio-engine make-model, installed to share/folio/demo-model) or a tool writes it on first use.
inline constexpr uint64_t kDemoModelSeed = 1234;

// True when `folder` holds the files of a checkpoint (config.json, model.safetensors,
// tiktoken.model, tokenizer_config.json).
bool hasModelFiles(const std::filesystem::path& folder);

// Where the demo model is, first found: EXE/../share/folio/demo-model (an installed Folio),
// EXE/demo-model (a build tree: the build generates it next to the executables), else
// `fallback` (a per-user data folder), where it is written when missing (`*written` then set
// to true). EXE is the folder of the running executable (/proc/self/exe). The first two are only
// read, never written.
Result<std::filesystem::path> locateDemoModel(const std::filesystem::path& fallback,
                                              bool* written = nullptr);

}  // namespace folio::inference
