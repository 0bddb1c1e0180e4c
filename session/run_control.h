// SPDX-License-Identifier: GPL-3.0-or-later
// What a long session operation reports while it runs and how it is stopped. The callbacks are
// called on the thread that runs the operation (the engine's worker thread in the GUI, which
// forwards them as queued signals); they must not call back into the SessionService.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace folio::session {

struct Progress {
    enum class Phase { Restoring, Prefilling, Generating };
    Phase phase = Phase::Prefilling;
    int64_t done = 0;   // tokens prefilled (or generated) so far in this phase
    int64_t total = 0;  // tokens this phase will process (generation: the maximum)
    double tokensPerSecond = 0;
    double etaSeconds = -1;  // -1: not known yet
};

const char* phaseName(Progress::Phase phase);

struct RunControl {
    std::function<void(const Progress&)> onProgress;
    std::function<void(std::string_view)> onText;       // answer text as it streams
    std::function<void(const std::string&)> onWarning;  // e.g. a snapshot that could not be saved
    const std::atomic<bool>* cancel = nullptr;          // checked between chunks and tokens
    bool cancelled() const { return cancel != nullptr && cancel->load(); }
};

}  // namespace folio::session
