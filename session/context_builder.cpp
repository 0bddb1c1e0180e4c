// SPDX-License-Identifier: GPL-3.0-or-later
#include "context_builder.h"

#include <chrono>
#include <optional>

#include "identity.h"

namespace folio::session {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

void warn(const RunControl& control, ContextState& out, std::string message) {
    if (control.onWarning)
        control.onWarning(message);
    out.warnings.push_back(std::move(message));
}

// Writes the snapshot of boundary `b`: the rows since its parent, or all rows as a new root when
// the parent is not on disk (e.g. it was evicted, or the state came from memory).
Status saveSnapshot(ContextDeps& deps, const Boundary& b, const inference::Sequence& sequence,
                    std::span<const int32_t> tokens, const std::vector<std::string>& keep) {
    std::string parent = b.parentKey;
    int64_t from = b.tokenBegin;
    if (!parent.empty()) {
        FOLIO_ASSIGN_OR_RETURN(auto stored, deps.store.find(parent));
        if (!stored) {
            parent.clear();
            from = 0;
        }
    }
    FOLIO_ASSIGN_OR_RETURN(std::vector<inference::StateTensor> tensors,
                           deps.engine.exportState(sequence, from));
    storage::SnapshotContent content;
    content.identity = deps.identity;
    content.prefixKey = b.key;
    content.parentKey = parent;
    content.tokenBegin = from;
    content.tokens =
        tokens.subspan(static_cast<size_t>(from), static_cast<size_t>(b.tokenEnd - from));
    content.tensors = &tensors;
    FOLIO_TRY(deps.store.save(content, keep));
    return {};
}

}  // namespace

std::vector<Boundary> promptBoundaries(const ingest::AssembledPrompt& prompt,
                                       const storage::SnapshotIdentity& identity) {
    std::vector<Boundary> bounds;
    Boundary root;
    root.key = rootPrefixKey(identity, prompt.prefix);
    root.tokenEnd = static_cast<int64_t>(prompt.prefix.size());
    bounds.push_back(root);
    for (const ingest::SourceBlock& block : prompt.blocks) {
        Boundary b;
        b.parentKey = bounds.back().key;
        b.key = nextPrefixKey(b.parentKey, block.contentHash, block.tokens);
        b.tokenBegin = bounds.back().tokenEnd;
        b.tokenEnd = b.tokenBegin + static_cast<int64_t>(block.tokens.size());
        bounds.push_back(b);
    }
    return bounds;
}

Result<ContextState> buildContext(ContextDeps& deps, const ingest::AssembledPrompt& prompt,
                                  const RunControl& control) {
    const std::vector<Boundary> bounds = promptBoundaries(prompt, deps.identity);
    const std::vector<int32_t> all = prompt.concatenated();
    const inference::ModelConfig& config = deps.engine.config();
    std::vector<std::string> keep;
    for (const Boundary& b : bounds)
        keep.push_back(b.key);

    ContextState out;
    out.reusedFrom = "none";
    out.tokens = static_cast<int64_t>(all.size());
    std::optional<inference::Sequence> sequence;
    int start = -1;  // the boundary the sequence is at

    // The longest stored prefix: at each boundary from the end, memory first, then disk.
    for (int i = static_cast<int>(bounds.size()) - 1; i >= 0 && !sequence; --i) {
        const Boundary& b = bounds[static_cast<size_t>(i)];
        if (inference::Sequence* resident = deps.resident.find(b.key)) {
            FOLIO_ASSIGN_OR_RETURN(inference::Sequence copy, resident->fork());
            sequence.emplace(std::move(copy));
            start = i;
            out.reusedFrom = "memory";
            break;
        }
        FOLIO_ASSIGN_OR_RETURN(auto record, deps.store.find(b.key));
        if (!record)
            continue;
        if (control.onProgress)
            control.onProgress({Progress::Phase::Restoring, 0, b.tokenEnd, 0, -1});
        const auto t0 = Clock::now();
        auto restored = deps.store.restore(b.key, deps.identity);
        if (!restored) {
            warn(control, out, restored.error().message);
            continue;
        }
        if (restored->tokens.size() != static_cast<size_t>(b.tokenEnd) ||
            !std::equal(restored->tokens.begin(), restored->tokens.end(), all.begin())) {
            warn(control, out,
                 cat("snapshot ", b.key, " holds other tokens than its key promises; dropped"));
            FOLIO_TRY(deps.store.drop(b.key));
            continue;
        }
        const uint64_t bytes = restored->bytesRead;
        auto imported =
            deps.engine.importState(std::move(restored->tokens), std::move(restored->tensors));
        if (!imported) {
            warn(control, out,
                 cat("snapshot ", b.key, " does not fit the model (", imported.error().message,
                     "); dropped"));
            FOLIO_TRY(deps.store.drop(b.key));
            continue;
        }
        out.restoreSeconds = secondsSince(t0);
        out.restoredBytes = bytes;
        sequence.emplace(std::move(imported).value());
        start = i;
        out.reusedFrom = "disk";
        FOLIO_ASSIGN_OR_RETURN(inference::Sequence copy, sequence->fork());
        deps.resident.put(b.key, std::move(copy), stateBytes(config, b.tokenEnd));
        if (control.onProgress)
            control.onProgress(
                {Progress::Phase::Restoring, b.tokenEnd, b.tokenEnd,
                 static_cast<double>(b.tokenEnd) / std::max(out.restoreSeconds, 1e-9), 0});
    }
    if (!sequence) {
        FOLIO_ASSIGN_OR_RETURN(inference::Sequence fresh, deps.engine.newSequence());
        sequence.emplace(std::move(fresh));
    }
    out.reusedTokens = start >= 0 ? bounds[static_cast<size_t>(start)].tokenEnd : 0;

    // Prefill the rest, boundary by boundary.
    const int64_t toPrefill = out.tokens - out.reusedTokens;
    int64_t done = 0;
    const auto t0 = Clock::now();
    for (size_t k = static_cast<size_t>(start + 1); k < bounds.size(); ++k) {
        const Boundary& b = bounds[k];
        const auto span = std::span(all).subspan(static_cast<size_t>(b.tokenBegin),
                                                 static_cast<size_t>(b.tokenEnd - b.tokenBegin));
        inference::PrefillOptions options;
        options.logits = inference::LogitsWanted::None;
        options.cancel = control.cancel;
        if (control.onProgress) {
            options.onProgress = [&](const inference::PrefillProgress& p) {
                const double elapsed = secondsSince(t0);
                const int64_t now = done + p.done;
                const double rate = elapsed > 0 ? static_cast<double>(now) / elapsed : 0;
                control.onProgress({Progress::Phase::Prefilling, now, toPrefill, rate,
                                    rate > 0 ? static_cast<double>(toPrefill - now) / rate : -1});
            };
        }
        auto prefilled = deps.engine.prefill(*sequence, span, options);
        if (!prefilled)
            return prefilled.error();
        done += static_cast<int64_t>(span.size());
        out.prefilledTokens += static_cast<int64_t>(span.size());
        FOLIO_ASSIGN_OR_RETURN(inference::Sequence copy, sequence->fork());
        deps.resident.put(b.key, std::move(copy), stateBytes(config, b.tokenEnd));
        if (deps.writeSnapshots) {
            if (auto saved = saveSnapshot(deps, b, *sequence, all, keep); !saved)
                warn(control, out,
                     cat("the snapshot after ", b.tokenEnd,
                         " tokens was not saved, so the next session start will prefill it "
                         "again: ",
                         saved.error().message));
        }
    }
    out.endKey = bounds.back().key;
    if (!deps.resident.contains(out.endKey))
        warn(control, out,
             "the sources' state is larger than the memory budget for resident snapshots; it is "
             "kept for this question only");
    out.sequence = std::move(sequence);
    return out;
}

}  // namespace folio::session
