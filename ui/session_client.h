// SPDX-License-Identifier: GPL-3.0-or-later
// SessionClient: the window's handle on SessionService. Every service call runs, one after the
// other, on a worker thread this object owns; results, progress and streamed text come back as
// signals on the UI thread.
// Owns: the worker thread, the SessionService on it (opened by start(), destroyed on the worker
// thread), and the documents of loaded sessions (for the viewer and citations).
// Promises: no method blocks the UI thread (they queue work and return); every failure arrives as
// failed()/openFailed() or in AnswerOutcome::error with a message a user can act on; cancel()
// stops the queued and running work (ingest between files, prefill between chunks, generation
// between tokens); the destructor cancels and waits for the worker, so the data folder is
// unlocked when it returns. Never calls the service from the UI thread.
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>
#include <QThread>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "ingest/document.h"
#include "launch_options.h"
#include "storage/catalog.h"

namespace folio::ui {

// One session as the window shows it.
struct SessionView {
    storage::SessionRow session;
    std::vector<storage::SourceRow> sources;  // in prompt order
    // Parallel to `sources`: the document rebuilt from the database (null if it could not be).
    std::vector<std::shared_ptr<const ingest::Document>> documents;
    std::vector<storage::MessageRow> messages;

    int64_t enabledTokens() const;
};
using SessionViewPtr = std::shared_ptr<const SessionView>;

struct RunProgress {
    enum class Kind { Loading, Reading, Restoring, Prefilling, Generating };
    Kind kind = Kind::Prefilling;
    QString what;  // "Reading contract.pdf", "Prefilling the sources", ...
    int64_t done = 0;
    int64_t total = 0;  // 0: not known (busy indicator)
    double tokensPerSecond = 0;
    double etaSeconds = -1;  // -1: not known
};

struct ModelInfo {
    QString modelDir;
    QString backend;
    bool demo = false;
    int64_t contextLength = 0;
};

struct AnswerOutcome {
    int64_t sessionId = 0;
    QString question;
    QString answer;
    storage::AnswerStats stats;
    QString reusedFrom;
    bool cancelled = false;
    int64_t messageId = 0;
    QString error;  // empty when the answer was generated (or cancelled)
};

class SessionClient : public QObject {
    Q_OBJECT
  public:
    explicit SessionClient(LaunchOptions options, QObject* parent = nullptr);
    ~SessionClient() override;

    const LaunchOptions& options() const { return options_; }
    void setGeneration(const session::GenerationSettings& generation) {
        options_.generation = generation;
    }
    bool isReady() const { return ready_; }
    bool isBusy() const { return pending_ > 0; }

    void start();  // opens the model and data folder; ready() or openFailed()
    void refreshSessions();
    void createSession(const QString& name);
    void renameSession(int64_t sessionId, const QString& name);
    void deleteSession(int64_t sessionId);
    void loadSession(int64_t sessionId);
    void addSources(int64_t sessionId, const QStringList& paths);
    void setSourceEnabled(int64_t sessionId, int64_t sourceId, bool enabled);
    void moveSource(int64_t sessionId, int64_t sourceId, int64_t position);
    void removeSource(int64_t sessionId, int64_t sourceId);
    void prepare(int64_t sessionId);
    // seedOffset is added to the sampling seed (Regenerate asks again with a different one).
    void ask(int64_t sessionId, const QString& question, uint64_t seedOffset = 0);
    void exportSession(int64_t sessionId, const QString& filePath);
    void cancel();

  signals:
    void ready(const folio::ui::ModelInfo& model);
    void openFailed(const QString& message);
    void sessionsListed(const std::vector<folio::storage::SessionRow>& sessions);
    void sessionCreated(int64_t sessionId);
    void sessionLoaded(folio::ui::SessionViewPtr view);
    void sourcesAdded(int64_t sessionId, int added);
    void progress(const folio::ui::RunProgress& progress);
    void answerStarted(int64_t sessionId, const QString& question);
    void answerText(const QString& text);
    void answerFinished(const folio::ui::AnswerOutcome& outcome);
    void prepared(int64_t sessionId, const QString& summary);
    void exported(const QString& filePath);
    void failed(const QString& message);
    void warning(const QString& message);
    void busyChanged(bool busy);

  private:
    struct WorkerState;
    using Job = std::function<void(WorkerState&, const std::atomic<bool>& cancel)>;

    void post(Job job);
    void onUi(std::function<void()> call);  // from the worker: run `call` on the UI thread
    void jobDone();
    void reloadOnWorker(WorkerState& state, int64_t sessionId);
    int addPathsOnWorker(WorkerState& state, int64_t sessionId, const QStringList& paths,
                         const std::atomic<bool>& cancel);
    void prepareOnWorker(WorkerState& state, int64_t sessionId, const std::atomic<bool>& cancel);
    void failOnWorker(const QString& what, const Error& error);

    LaunchOptions options_;
    QThread thread_;
    QObject* worker_ = nullptr;  // lives on thread_: the context that queued jobs run in
    std::unique_ptr<WorkerState> state_;
    std::shared_ptr<std::atomic<bool>> cancelFlag_;
    int pending_ = 0;
    bool ready_ = false;
};

}  // namespace folio::ui
