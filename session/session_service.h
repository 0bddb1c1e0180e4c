// SPDX-License-Identifier: GPL-3.0-or-later
// SessionService: the API the GUI and folio-cli use for sessions — create and list sessions,
// add, enable, reorder and remove sources, open a session (build its sources' state) and ask
// questions that prefill only the question.
//
// Owns: the data directory (lock, database, snapshot files, via storage::Storage), the engine
// and tokenizer of one model, the resident snapshot cache and the assembled prompts of recently
// used sessions. Promises:
//   - every failure is a Result error with a message a user can act on (a second process on the
//     data directory, a database from a newer Folio, a model folder without a tokenizer, a
//     context over the model's length, disk full, cancellation);
//   - a question's answer equals the answer computed without any snapshot (token for token with
//     greedy settings on the CPU backend), whether its state came from memory, disk or prefill;
//   - disabling, removing or reordering a source reuses every stored prefix before it;
//   - a failure to save a snapshot never loses the answer or the session: it is a warning;
//   - long calls (prepare, ask, addSource) report progress (tokens/s, ETA) through RunControl
//     and stop when its cancel flag is set.
// Threads: every call may block (disk, engine); call them from one worker thread, never the UI
// thread. Never calls exit() or aborts.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "answer_generation.h"
#include "context_builder.h"
#include "inference/engine.h"
#include "inference/tokenizer/chat_format.h"
#include "inference/tokenizer/tokenizer.h"
#include "ingest/document.h"
#include "ingest/ingest_settings.h"
#include "ingest/prompt_assembly.h"
#include "resident_cache.h"
#include "run_control.h"
#include "storage/storage.h"

namespace folio::session {

struct ServiceOptions {
    std::filesystem::path dataDir;
    std::filesystem::path modelDir;  // config.json, weights, tiktoken.model, tokenizer_config.json
    inference::EngineOptions engine;
    int64_t diskBudgetBytes = int64_t{64} << 30;    // snapshot files
    int64_t memoryBudgetBytes = int64_t{16} << 30;  // resident snapshots
    std::string systemText;                         // added before the citation rules
    bool writeSnapshots = true;
};

struct SessionDetails {
    storage::SessionRow session;
    std::vector<storage::SourceRow> sources;
    std::vector<storage::MessageRow> messages;
};

// The result of opening a session: its sources' state is resident and ready for questions.
struct PrepareResult {
    int64_t contextTokens = 0;
    int64_t reusedTokens = 0;
    int64_t prefilledTokens = 0;
    std::string reusedFrom;  // "memory", "disk" or "none"
    double seconds = 0;
    double restoreSeconds = 0;
    uint64_t restoredBytes = 0;
    std::vector<std::string> warnings;
};

struct AskOptions {
    GenerationSettings generation;
    bool saveMessages = true;  // store the question and the answer in the session
};

struct AskResult {
    std::string answer;
    std::vector<int32_t> answerTokens;
    storage::AnswerStats stats;
    std::string reusedFrom;  // where the sources' state came from
    bool cancelled = false;
    int64_t messageId = 0;  // the assistant message (0 when not saved)
    std::vector<std::string> warnings;
};

class SessionService {
  public:
    static Result<std::unique_ptr<SessionService>> open(const ServiceOptions& options);
    ~SessionService();

    Result<storage::SessionRow> createSession(const std::string& name);
    Result<std::vector<storage::SessionRow>> listSessions();
    Result<SessionDetails> details(int64_t sessionId);
    Status renameSession(int64_t sessionId, const std::string& name);
    Status deleteSession(int64_t sessionId);

    // Ingests a file or folder (PDF, repository, text) and appends it to the session.
    Result<storage::SourceRow> addSource(int64_t sessionId, const std::filesystem::path& path,
                                         const ingest::IngestSettings& settings = {});
    // Appends a document ingested elsewhere (e.g. on the GUI's thread pool).
    Result<storage::SourceRow> addDocument(int64_t sessionId, const ingest::Document& document,
                                           const ingest::IngestSettings& settings = {});
    Status setSourceEnabled(int64_t sourceId, bool enabled);
    Status moveSource(int64_t sourceId, int64_t position);
    Status removeSource(int64_t sourceId);

    // Builds the state at the end of the session's enabled sources (reusing the longest stored
    // prefix) so that the next question prefills only itself.
    Result<PrepareResult> prepare(int64_t sessionId, const RunControl& control = {});
    // Answers `question` from the session's sources, streaming through control.onText.
    Result<AskResult> ask(int64_t sessionId, const std::string& question,
                          const AskOptions& options = {}, const RunControl& control = {});

    // The session as Markdown ("markdown") or JSON ("json").
    Result<std::string> exportSession(int64_t sessionId, const std::string& format);

    // Forgets resident snapshots and assembled prompts (the next question restores from disk).
    void dropResident();
    void setMemoryBudget(int64_t bytes) { resident_.setBudget(bytes); }

    storage::Storage& storage() { return *storage_; }
    inference::Engine& engine() { return *engine_; }
    const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
    const storage::SnapshotIdentity& identity() const { return identity_; }

  private:
    SessionService(ServiceOptions options, int64_t memoryBudget)
        : options_(std::move(options)), resident_(memoryBudget) {}
    Result<const ingest::AssembledPrompt*> assembled(int64_t sessionId);
    Result<ContextState> context(int64_t sessionId, const RunControl& control);

    ServiceOptions options_;
    std::unique_ptr<storage::Storage> storage_;
    std::unique_ptr<inference::Engine> engine_;
    std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
    std::unique_ptr<tokenizer::KimiChatFormat> chat_;
    storage::SnapshotIdentity identity_;
    ResidentCache resident_;
    struct CachedPrompt {
        std::string signature;
        ingest::AssembledPrompt prompt;
    };
    std::map<int64_t, CachedPrompt> prompts_;
};

}  // namespace folio::session
