// SPDX-License-Identifier: GPL-3.0-or-later
// Builds the model state at the end of a session's sources with as little prefill as possible.
// For the boundaries of the assembled prompt (after the prefix, then after each source) it finds
// the longest prefix already stored — in the resident cache first, then on disk — restores it
// and prefills only the blocks after it, snapshotting at every boundary it passes (resident
// cache, and a file that holds only what its parent lacks).
// Owns: nothing (borrows the engine, the store and the cache). Promises: the state it returns is
// the state of prefilling the whole prompt from scratch (bit-identical on the CPU backend); a
// damaged snapshot is dropped and the prefix recomputed, with a warning; a snapshot that cannot
// be written (disk full) is a warning, never a failed answer; on cancellation the snapshots of
// the boundaries already passed are kept. Never blocks on anything but the engine and the disk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "ingest/prompt_assembly.h"
#include "resident_cache.h"
#include "run_control.h"
#include "storage/snapshot_store.h"

namespace folio::session {

struct Boundary {
    std::string key;
    std::string parentKey;  // "" for the first boundary (after the prefix)
    int64_t tokenBegin = 0;
    int64_t tokenEnd = 0;
};

// The boundaries of `prompt`: [0] after the prefix, [i] after block i-1.
std::vector<Boundary> promptBoundaries(const ingest::AssembledPrompt& prompt,
                                       const storage::SnapshotIdentity& identity);

struct ContextState {
    std::string endKey;        // the key of the end-of-sources state (now resident)
    int64_t tokens = 0;        // tokens in the context
    int64_t reusedTokens = 0;  // restored, not prefilled
    int64_t prefilledTokens = 0;
    std::string reusedFrom;  // "memory", "disk" or "none"
    double restoreSeconds = 0;
    uint64_t restoredBytes = 0;
    std::vector<std::string> warnings;
    std::optional<inference::Sequence> sequence;  // the end-of-sources state (fork it to ask)
};

struct ContextDeps {
    inference::Engine& engine;
    storage::SnapshotStore& store;
    ResidentCache& resident;
    storage::SnapshotIdentity identity;
    bool writeSnapshots = true;
};

Result<ContextState> buildContext(ContextDeps& deps, const ingest::AssembledPrompt& prompt,
                                  const RunControl& control);

}  // namespace folio::session
