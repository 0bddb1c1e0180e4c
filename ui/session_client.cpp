// SPDX-License-Identifier: GPL-3.0-or-later
#include "session_client.h"

#include <QFileInfo>
#include <QSaveFile>

#include <map>

#include "demo_content.h"
#include "ingest/source_ingest.h"
#include "session/document_codec.h"
#include "session/session_service.h"

namespace folio::ui {
namespace {

QString qs(const std::string& s) {
    return QString::fromStdString(s);
}

RunProgress fromSessionProgress(const session::Progress& p) {
    RunProgress r;
    switch (p.phase) {
        case session::Progress::Phase::Restoring:
            r.kind = RunProgress::Kind::Restoring;
            r.what = QStringLiteral("Restoring saved state");
            break;
        case session::Progress::Phase::Prefilling:
            r.kind = RunProgress::Kind::Prefilling;
            r.what = QStringLiteral("Reading the sources into the model");
            break;
        case session::Progress::Phase::Generating:
            r.kind = RunProgress::Kind::Generating;
            r.what = QStringLiteral("Answering");
            break;
    }
    r.done = p.done;
    r.total = p.total;
    r.tokensPerSecond = p.tokensPerSecond;
    r.etaSeconds = p.etaSeconds;
    return r;
}

}  // namespace

int64_t SessionView::enabledTokens() const {
    int64_t total = 0;
    for (const auto& s : sources)
        if (s.enabled)
            total += s.tokenCount;
    return total;
}

// What only the worker thread touches.
struct SessionClient::WorkerState {
    std::unique_ptr<session::SessionService> service;
    // Documents rebuilt from the database, by source id, with the content hash they were built at.
    std::map<int64_t, std::pair<std::string, std::shared_ptr<const ingest::Document>>> documents;
};

SessionClient::SessionClient(LaunchOptions options, QObject* parent)
    : QObject(parent),
      options_(std::move(options)),
      state_(std::make_unique<WorkerState>()),
      cancelFlag_(std::make_shared<std::atomic<bool>>(false)) {
    thread_.setObjectName(QStringLiteral("folio-session"));
    worker_ = new QObject;
    worker_->moveToThread(&thread_);
    thread_.start();
}

SessionClient::~SessionClient() {
    cancel();
    // The service (its engine, the data folder lock) is released on the thread that used it.
    WorkerState* state = state_.get();
    QMetaObject::invokeMethod(
        worker_, [state] { state->service.reset(); }, Qt::QueuedConnection);
    QMetaObject::invokeMethod(
        worker_, [this] { thread_.quit(); }, Qt::QueuedConnection);
    thread_.wait();
    delete worker_;
}

void SessionClient::post(Job job) {
    if (++pending_ == 1)
        emit busyChanged(true);
    WorkerState* state = state_.get();
    std::shared_ptr<std::atomic<bool>> cancel = cancelFlag_;
    QMetaObject::invokeMethod(
        worker_,
        [this, state, cancel, job = std::move(job)] {
            job(*state, *cancel);
            onUi([this] { jobDone(); });
        },
        Qt::QueuedConnection);
}

void SessionClient::onUi(std::function<void()> call) {
    QMetaObject::invokeMethod(this, std::move(call), Qt::QueuedConnection);
}

void SessionClient::jobDone() {
    if (--pending_ == 0)
        emit busyChanged(false);
}

void SessionClient::cancel() {
    // Jobs already queued or running hold the old flag; later jobs get a fresh one.
    cancelFlag_->store(true);
    cancelFlag_ = std::make_shared<std::atomic<bool>>(false);
}

void SessionClient::failOnWorker(const QString& what, const Error& error) {
    const QString message = what + QStringLiteral(": ") + qs(error.message);
    onUi([this, message] { emit failed(message); });
}

void SessionClient::start() {
    post([this, launch = options_](WorkerState& state, const std::atomic<bool>& cancel) {
        LaunchOptions options = launch;
        if (options.demoModel) {
            // The installed or built demo model, else one written to the data folder.
            onUi([this] {
                emit progress({RunProgress::Kind::Loading, QStringLiteral("Finding the demo model"),
                               0, 0, 0, -1});
            });
            auto found = locateDemoModelFolder(options.modelDir);
            if (!found) {
                const QString message = QStringLiteral("Could not write the demo model to %1: %2")
                                            .arg(options.modelDir, qs(found.error().message));
                onUi([this, message] { emit openFailed(message); });
                return;
            }
            options.modelDir = *found;
        }
        session::ServiceOptions serviceOptions = options.serviceOptions();
        serviceOptions.engine.onLoadProgress = [this](uint64_t done, uint64_t total) {
            onUi([this, done, total] {
                emit progress({RunProgress::Kind::Loading, QStringLiteral("Loading the model"),
                               static_cast<int64_t>(done >> 20), static_cast<int64_t>(total >> 20),
                               0, -1});
            });
        };
        auto service = session::SessionService::open(serviceOptions);
        if (!service) {
            const QString message =
                QStringLiteral("Could not open the model %1 with the data folder %2: %3")
                    .arg(options.modelDir, options.dataDir, qs(service.error().message));
            onUi([this, message] { emit openFailed(message); });
            return;
        }
        state.service = std::move(service).value();
        ModelInfo info;
        info.modelDir = options.modelDir;
        info.backend = qs(state.service->engine().backendName());
        info.demo = options.demoModel;
        info.contextLength = state.service->engine().config().modelMaxLength;
        onUi([this, info] {
            ready_ = true;
            emit ready(info);
        });

        // First start with the demo model: a session of the bundled texts, ready to ask.
        const QStringList corpus = demoCorpusFiles(options.demoCorpusDir);
        auto sessions = state.service->listSessions();
        if (options.demoModel && !corpus.isEmpty() && sessions && sessions->empty()) {
            auto created = state.service->createSession(kDemoSessionName);
            if (!created) {
                failOnWorker(QStringLiteral("Could not create the demo session"), created.error());
            } else {
                addPathsOnWorker(state, created->id, corpus, cancel);
                sessions = state.service->listSessions();
                onUi([this, list = sessions ? *sessions : std::vector<storage::SessionRow>{}] {
                    emit sessionsListed(list);
                });
                reloadOnWorker(state, created->id);
                // Read the texts into the model now, so the first question prefills only itself.
                prepareOnWorker(state, created->id, cancel);
            }
        }
        if (!sessions) {
            failOnWorker(QStringLiteral("Could not list the sessions"), sessions.error());
            return;
        }
        onUi([this, list = *sessions] { emit sessionsListed(list); });
    });
}

void SessionClient::refreshSessions() {
    post([this](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        auto sessions = state.service->listSessions();
        if (!sessions)
            return failOnWorker(QStringLiteral("Could not list the sessions"), sessions.error());
        onUi([this, list = *sessions] { emit sessionsListed(list); });
    });
}

void SessionClient::createSession(const QString& name) {
    post([this, name](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        auto created = state.service->createSession(name.toStdString());
        if (!created)
            return failOnWorker(QStringLiteral("Could not create the session"), created.error());
        auto sessions = state.service->listSessions();
        const int64_t id = created->id;
        onUi([this, id, list = sessions ? *sessions : std::vector<storage::SessionRow>{}] {
            emit sessionsListed(list);
            emit sessionCreated(id);
        });
    });
}

void SessionClient::renameSession(int64_t sessionId, const QString& name) {
    post([this, sessionId, name](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        if (Status s = state.service->renameSession(sessionId, name.toStdString()); !s)
            failOnWorker(QStringLiteral("Could not rename the session"), s.error());
        if (auto sessions = state.service->listSessions(); sessions)
            onUi([this, list = *sessions] { emit sessionsListed(list); });
    });
}

void SessionClient::deleteSession(int64_t sessionId) {
    post([this, sessionId](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        if (Status s = state.service->deleteSession(sessionId); !s)
            failOnWorker(QStringLiteral("Could not delete the session"), s.error());
        if (auto sessions = state.service->listSessions(); sessions)
            onUi([this, list = *sessions] { emit sessionsListed(list); });
    });
}

void SessionClient::reloadOnWorker(WorkerState& state, int64_t sessionId) {
    auto details = state.service->details(sessionId);
    if (!details)
        return failOnWorker(QStringLiteral("Could not read the session"), details.error());
    auto view = std::make_shared<SessionView>();
    view->session = details->session;
    view->sources = details->sources;
    view->messages = details->messages;
    storage::Catalog& catalog = state.service->storage().catalog();
    for (const storage::SourceRow& source : view->sources) {
        auto& cached = state.documents[source.id];
        if (!cached.second || cached.first != source.contentHash) {
            cached = {};
            auto text = catalog.sourceText(source.id);
            auto segments = catalog.segments(source.id);
            auto document = text && segments
                                ? session::documentFromRows(source, *text, *segments)
                                : Result<ingest::Document>(text ? segments.error() : text.error());
            if (document) {
                cached = {source.contentHash,
                          std::make_shared<const ingest::Document>(std::move(document).value())};
            } else {
                failOnWorker(
                    QStringLiteral("Could not read the source \"%1\"").arg(qs(source.displayName)),
                    document.error());
            }
        }
        view->documents.push_back(cached.second);
    }
    onUi([this, view] { emit sessionLoaded(view); });
}

void SessionClient::loadSession(int64_t sessionId) {
    post([this, sessionId](WorkerState& state, const std::atomic<bool>&) {
        if (state.service)
            reloadOnWorker(state, sessionId);
    });
}

int SessionClient::addPathsOnWorker(WorkerState& state, int64_t sessionId, const QStringList& paths,
                                    const std::atomic<bool>& cancel) {
    int added = 0;
    double secondsSoFar = 0;
    for (qsizetype i = 0; i < paths.size(); ++i) {
        if (cancel.load())
            break;
        const QString name = QFileInfo(paths[i]).fileName();
        const double perFile = i > 0 ? secondsSoFar / static_cast<double>(i) : -1;
        const double eta = perFile < 0 ? -1 : perFile * static_cast<double>(paths.size() - i);
        onUi([this, name, i, n = paths.size(), eta] {
            emit progress(
                {RunProgress::Kind::Reading, QStringLiteral("Reading %1").arg(name), i, n, 0, eta});
        });
        const ingest::IngestSettings settings;
        auto document =
            ingest::ingestSource(paths[i].toStdString(), settings, &state.service->tokenizer());
        if (!document) {
            failOnWorker(QStringLiteral("Could not add %1").arg(paths[i]), document.error());
            continue;
        }
        secondsSoFar += document->ingestSeconds;
        if (cancel.load())
            break;  // read, but the user no longer wants it
        auto row = state.service->addDocument(sessionId, *document, settings);
        if (!row) {
            failOnWorker(QStringLiteral("Could not add %1").arg(paths[i]), row.error());
            continue;
        }
        ++added;
        const double tps = document->ingestSeconds > 0
                               ? static_cast<double>(row->tokenCount) / document->ingestSeconds
                               : 0;
        for (const std::string& w : document->warnings) {
            const QString message = QStringLiteral("%1: %2").arg(name, qs(w));
            onUi([this, message] { emit warning(message); });
        }
        onUi([this, name, i, n = paths.size(), tps] {
            emit progress({RunProgress::Kind::Reading, QStringLiteral("Read %1").arg(name), i + 1,
                           n, tps, -1});
        });
    }
    return added;
}

void SessionClient::addSources(int64_t sessionId, const QStringList& paths) {
    post([this, sessionId, paths](WorkerState& state, const std::atomic<bool>& cancel) {
        if (!state.service)
            return;
        const int added = addPathsOnWorker(state, sessionId, paths, cancel);
        reloadOnWorker(state, sessionId);
        onUi([this, sessionId, added] { emit sourcesAdded(sessionId, added); });
    });
}

void SessionClient::setSourceEnabled(int64_t sessionId, int64_t sourceId, bool enabled) {
    post([this, sessionId, sourceId, enabled](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        if (Status s = state.service->setSourceEnabled(sourceId, enabled); !s)
            failOnWorker(QStringLiteral("Could not change the source"), s.error());
        reloadOnWorker(state, sessionId);
    });
}

void SessionClient::moveSource(int64_t sessionId, int64_t sourceId, int64_t position) {
    post([this, sessionId, sourceId, position](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        if (Status s = state.service->moveSource(sourceId, position); !s)
            failOnWorker(QStringLiteral("Could not move the source"), s.error());
        reloadOnWorker(state, sessionId);
    });
}

void SessionClient::removeSource(int64_t sessionId, int64_t sourceId) {
    post([this, sessionId, sourceId](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        if (Status s = state.service->removeSource(sourceId); !s)
            failOnWorker(QStringLiteral("Could not remove the source"), s.error());
        state.documents.erase(sourceId);
        reloadOnWorker(state, sessionId);
    });
}

namespace {

session::RunControl runControl(const std::atomic<bool>& cancel,
                               const std::function<void(std::function<void()>)>& onUi,
                               const std::function<void(const RunProgress&)>& emitProgress,
                               const std::function<void(const QString&)>& emitText,
                               const std::function<void(const QString&)>& emitWarning) {
    session::RunControl control;
    control.cancel = &cancel;
    control.onProgress = [onUi, emitProgress](const session::Progress& p) {
        const RunProgress r = fromSessionProgress(p);
        onUi([emitProgress, r] { emitProgress(r); });
    };
    control.onText = [onUi, emitText](std::string_view text) {
        const QString chunk = QString::fromUtf8(text.data(), static_cast<qsizetype>(text.size()));
        onUi([emitText, chunk] { emitText(chunk); });
    };
    control.onWarning = [onUi, emitWarning](const std::string& w) {
        const QString message = QString::fromStdString(w);
        onUi([emitWarning, message] { emitWarning(message); });
    };
    return control;
}

}  // namespace

void SessionClient::prepareOnWorker(WorkerState& state, int64_t sessionId,
                                    const std::atomic<bool>& cancel) {
    const auto control = runControl(
        cancel, [this](std::function<void()> f) { onUi(std::move(f)); },
        [this](const RunProgress& p) { emit progress(p); }, [](const QString&) {},
        [this](const QString& w) { emit warning(w); });
    auto r = state.service->prepare(sessionId, control);
    if (!r) {
        if (r.error().code == ErrorCode::Cancelled)
            return onUi([this, sessionId] {
                emit prepared(sessionId, QStringLiteral("Stopped reading the sources."));
            });
        return failOnWorker(QStringLiteral("Could not read the sources"), r.error());
    }
    const QString summary =
        QStringLiteral("Sources ready: %1 tokens (%2 reused from %3, %4 read in %5 s)")
            .arg(r->contextTokens)
            .arg(r->reusedTokens)
            .arg(qs(r->reusedFrom))
            .arg(r->prefilledTokens)
            .arg(r->seconds, 0, 'f', 1);
    onUi([this, sessionId, summary] { emit prepared(sessionId, summary); });
}

void SessionClient::prepare(int64_t sessionId) {
    post([this, sessionId](WorkerState& state, const std::atomic<bool>& cancel) {
        if (state.service)
            prepareOnWorker(state, sessionId, cancel);
    });
}

void SessionClient::ask(int64_t sessionId, const QString& question, uint64_t seedOffset) {
    session::AskOptions askOptions;
    askOptions.generation = options_.generation;
    askOptions.generation.sampling.seed += seedOffset;
    post([this, sessionId, question, askOptions](WorkerState& state,
                                                 const std::atomic<bool>& cancel) {
        AnswerOutcome outcome;
        outcome.sessionId = sessionId;
        outcome.question = question;
        if (!state.service) {
            outcome.error = QStringLiteral("The model is not open.");
            return onUi([this, outcome] { emit answerFinished(outcome); });
        }
        onUi([this, sessionId, question] { emit answerStarted(sessionId, question); });
        const auto control = runControl(
            cancel, [this](std::function<void()> f) { onUi(std::move(f)); },
            [this](const RunProgress& p) { emit progress(p); },
            [this](const QString& t) { emit answerText(t); },
            [this](const QString& w) { emit warning(w); });
        auto r = state.service->ask(sessionId, question.toStdString(), askOptions, control);
        if (!r) {
            if (r.error().code == ErrorCode::Cancelled)
                outcome.cancelled = true;
            else
                outcome.error = QStringLiteral("Could not answer: ") + qs(r.error().message);
        } else {
            outcome.answer = qs(r->answer);
            outcome.stats = r->stats;
            outcome.reusedFrom = qs(r->reusedFrom);
            outcome.cancelled = r->cancelled;
            outcome.messageId = r->messageId;
            for (const std::string& w : r->warnings) {
                const QString message = qs(w);
                onUi([this, message] { emit warning(message); });
            }
        }
        onUi([this, outcome] { emit answerFinished(outcome); });
    });
}

void SessionClient::exportSession(int64_t sessionId, const QString& filePath) {
    post([this, sessionId, filePath](WorkerState& state, const std::atomic<bool>&) {
        if (!state.service)
            return;
        auto text = state.service->exportSession(sessionId, "markdown");
        if (!text)
            return failOnWorker(QStringLiteral("Could not export the session"), text.error());
        QSaveFile file(filePath);
        if (!file.open(QIODevice::WriteOnly) ||
            file.write(text->data(), static_cast<qint64>(text->size())) !=
                static_cast<qint64>(text->size()) ||
            !file.commit()) {
            const QString message =
                QStringLiteral("Could not write %1: %2").arg(filePath, file.errorString());
            return onUi([this, message] { emit failed(message); });
        }
        onUi([this, filePath] { emit exported(filePath); });
    });
}

}  // namespace folio::ui
