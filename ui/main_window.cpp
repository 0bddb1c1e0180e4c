// SPDX-License-Identifier: GPL-3.0-or-later
#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDateTime>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QVBoxLayout>

#include "app_settings.h"
#include "chat_pane.h"
#include "message_banner.h"
#include "run_progress_bar.h"
#include "session_list_pane.h"
#include "settings_dialog.h"
#include "sources_pane.h"
#include "viewer_pane.h"

namespace folio::ui {
namespace {

QString qs(const std::string& s) {
    return QString::fromStdString(s);
}

}  // namespace

MainWindow::MainWindow(LaunchOptions options, QWidget* parent)
    : QMainWindow(parent),
      options_(std::move(options)),
      banner_(new MessageBanner(this)),
      sessions_(new SessionListPane(this)),
      sources_(new SourcesPane(this)),
      viewer_(new ViewerPane(this)),
      chat_(new ChatPane(this)),
      progress_(new RunProgressBar(this)),
      modelLabel_(new QLabel(this)),
      mainSplitter_(new QSplitter(Qt::Horizontal, this)),
      leftSplitter_(new QSplitter(Qt::Vertical, this)) {
    setObjectName(QStringLiteral("folioMainWindow"));
    setWindowIcon(QIcon::fromTheme(QStringLiteral("folio"),
                                   QIcon::fromTheme(QStringLiteral("accessories-text-editor"))));
    leftSplitter_->setObjectName(QStringLiteral("leftSplitter"));
    mainSplitter_->setObjectName(QStringLiteral("mainSplitter"));
    leftSplitter_->addWidget(sessions_);
    leftSplitter_->addWidget(sources_);
    leftSplitter_->setStretchFactor(0, 1);
    leftSplitter_->setStretchFactor(1, 2);
    mainSplitter_->addWidget(leftSplitter_);
    mainSplitter_->addWidget(viewer_);
    mainSplitter_->addWidget(chat_);
    mainSplitter_->setStretchFactor(0, 2);
    mainSplitter_->setStretchFactor(1, 4);
    mainSplitter_->setStretchFactor(2, 4);
    mainSplitter_->setChildrenCollapsible(false);

    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addWidget(banner_);
    layout->addWidget(mainSplitter_, 1);
    setCentralWidget(central);
    statusBar()->addWidget(modelLabel_, 1);
    statusBar()->addPermanentWidget(progress_);
    resize(1400, 860);

    buildMenus();
    connectPanes();
    restoreWindowState();
    reopen(options_);
}

MainWindow::~MainWindow() {
    saveWindowState();
    client_.reset();  // cancels and waits for the worker before the panes go
}

void MainWindow::reopen(LaunchOptions options) {
    client_.reset();
    options_ = std::move(options);
    model_ = {};
    sessionId_ = 0;
    view_.reset();
    sessions_->setSessions({});
    sources_->clear();
    chat_->clear();
    chat_->setSessionAvailable(false);
    chat_->setDemoModel(options_.demoModel);
    viewer_->clear();
    modelLabel_->setText(tr("Opening the model…"));
    client_ = std::make_unique<SessionClient>(options_);
    connectClient();
    updateTitle();
    client_->start();
}

void MainWindow::buildMenus() {
    auto action = [this](QMenu* menu, const QString& text, auto slot,
                         QList<QKeySequence> keys = {}) {
        auto* a = menu->addAction(text);
        a->setShortcuts(keys);
        a->setShortcutContext(Qt::WindowShortcut);
        connect(a, &QAction::triggered, this, slot);
        return a;
    };
    QMenu* file = menuBar()->addMenu(tr("&File"));
    action(file, tr("&New session"), [this] { newSession(); }, {QKeySequence::New});
    action(file, tr("&Add files…"), [this] { sources_->chooseFiles(); }, {QKeySequence::Open});
    action(file, tr("Add &folder…"), [this] { sources_->chooseFolder(); },
           {QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O)});
    action(file, tr("&Export session as Markdown…"), [this] { exportCurrentSession(); },
           {QKeySequence(Qt::CTRL | Qt::Key_E)});
    file->addSeparator();
    action(file, tr("&Settings…"), [this] { openSettings(); },
           {QKeySequence::Preferences, QKeySequence(Qt::CTRL | Qt::Key_Comma)});
    file->addSeparator();
    action(file, tr("&Quit"), [this] { close(); }, {QKeySequence::Quit});

    QMenu* session = menuBar()->addMenu(tr("&Session"));
    action(session, tr("&Ask"), [this] { chat_->submitQuestion(); },
           {QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)});
    action(session, tr("&Stop"), [this] { client_->cancel(); }, {QKeySequence(Qt::Key_Escape)});
    action(session, tr("&Read the sources now"), [this] {
        if (sessionId_ != 0)
            client_->prepare(sessionId_);
    });
    session->addSeparator();
    action(session, tr("&Next citation"), [this] { chat_->nextCitation(); },
           {QKeySequence(Qt::Key_F8)});
    action(session, tr("&Previous citation"), [this] { chat_->previousCitation(); },
           {QKeySequence(Qt::SHIFT | Qt::Key_F8)});

    QMenu* view = menuBar()->addMenu(tr("&View"));
    action(view, tr("&Find…"), [this] { viewer_->focusFind(); }, {QKeySequence::Find});
    action(view, tr("Find &next"), [this] { viewer_->findNext(); }, {QKeySequence::FindNext});
    action(view, tr("Find &previous"), [this] { viewer_->findPrevious(); },
           {QKeySequence::FindPrevious});
    view->addSeparator();
    action(view, tr("Zoom &in"), [this] { viewer_->zoomIn(); }, {QKeySequence::ZoomIn});
    action(view, tr("Zoom &out"), [this] { viewer_->zoomOut(); }, {QKeySequence::ZoomOut});

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    action(help, tr("&About Folio"), [this] {
        QMessageBox::about(this, tr("About Folio"),
                           tr("<p><b>Folio</b> %1</p><p>Ask questions of long documents with "
                              "Kimi Linear, on your own computer.</p><p>GPL-3.0-or-later.</p>")
                               .arg(QApplication::applicationVersion()));
    });
}

void MainWindow::connectPanes() {
    connect(sessions_, &SessionListPane::sessionSelected, this, [this](int64_t id) {
        sessionId_ = id;
        view_.reset();
        chat_->clear();
        chat_->setSessionAvailable(true);
        viewer_->clear();
        updateTitle();
        if (client_)
            client_->loadSession(id);
    });
    connect(sessions_, &SessionListPane::newRequested, this, &MainWindow::newSession);
    connect(sessions_, &SessionListPane::renameRequested, this,
            [this](int64_t id, const QString& name) {
                client_->renameSession(id, name);
                if (id == sessionId_)
                    client_->loadSession(id);  // the title shows the new name
            });
    connect(sessions_, &SessionListPane::deleteRequested, this, [this](int64_t id) {
        if (id == sessionId_) {
            sessionId_ = 0;
            view_.reset();
            sources_->clear();
            chat_->clear();
            chat_->setSessionAvailable(false);
            viewer_->clear();
        }
        client_->deleteSession(id);
    });

    connect(sources_, &SourcesPane::addRequested, this, &MainWindow::addPaths);
    connect(sources_, &SourcesPane::enableRequested, this, [this](int64_t id, bool enabled) {
        client_->setSourceEnabled(sessionId_, id, enabled);
    });
    connect(sources_, &SourcesPane::moveRequested, this, [this](int64_t id, int64_t position) {
        client_->moveSource(sessionId_, id, position);
    });
    connect(sources_, &SourcesPane::removeRequested, this,
            [this](int64_t id) { client_->removeSource(sessionId_, id); });
    connect(sources_, &SourcesPane::sourceActivated, this, [this](int64_t id) {
        if (!view_)
            return;
        for (size_t i = 0; i < view_->sources.size(); ++i)
            if (view_->sources[i].id == id)
                viewer_->showLocation(view_->documents[i]);
    });

    connect(chat_, &ChatPane::askRequested, this, [this](const QString& q) { ask(q); });
    connect(chat_, &ChatPane::regenerateRequested, this,
            [this](const QString& q) { ask(q, ++regenerations_); });
    connect(chat_, &ChatPane::stopRequested, this, [this] { client_->cancel(); });
    connect(chat_, &ChatPane::exportRequested, this, &MainWindow::exportCurrentSession);
    connect(chat_, &ChatPane::citationActivated, this, &MainWindow::openCitation);
    connect(progress_, &RunProgressBar::cancelRequested, this, [this] { client_->cancel(); });
}

void MainWindow::connectClient() {
    SessionClient* c = client_.get();
    connect(c, &SessionClient::ready, this, [this](const ModelInfo& info) {
        model_ = info;
        const QString name =
            info.demo ? QString::fromUtf8(kDemoModelLabel) : QFileInfo(info.modelDir).fileName();
        modelLabel_->setText(
            tr("Model: %1 · %2 backend · data in %3").arg(name, info.backend, options_.dataDir));
        chat_->setDemoModel(info.demo);
        updateTitle();
    });
    connect(c, &SessionClient::openFailed, this, [this](const QString& message) {
        modelLabel_->setText(tr("No model open — choose one in File › Settings"));
        banner_->show(MessageBanner::Level::Error, message);
    });
    connect(c, &SessionClient::failed, this, [this](const QString& message) {
        banner_->show(MessageBanner::Level::Error, message);
    });
    connect(c, &SessionClient::warning, this, [this](const QString& message) {
        banner_->show(MessageBanner::Level::Warning, message);
    });
    connect(c, &SessionClient::sessionsListed, this,
            [this](const std::vector<storage::SessionRow>& list) {
                sessions_->setSessions(list);
                if (list.empty()) {
                    sessionId_ = 0;
                    chat_->setSessionAvailable(false);
                }
            });
    connect(c, &SessionClient::sessionCreated, this, [this](int64_t id) {
        sessions_->selectSession(id);
        if (!pendingPaths_.isEmpty()) {
            client_->addSources(id, pendingPaths_);
            pendingPaths_.clear();
        }
    });
    connect(c, &SessionClient::sessionLoaded, this, &MainWindow::showSession);
    connect(c, &SessionClient::progress, progress_, &RunProgressBar::showProgress);
    connect(c, &SessionClient::busyChanged, this, [this](bool busy) {
        if (!busy)
            progress_->finish();
    });
    connect(c, &SessionClient::answerStarted, this,
            [this](int64_t sessionId, const QString& question) {
                answeringSession_ = sessionId;
                if (sessionId == sessionId_)
                    chat_->beginAnswer(question);
            });
    connect(c, &SessionClient::answerText, this, [this](const QString& text) {
        if (answeringSession_ == sessionId_)
            chat_->appendAnswerText(text);
    });
    connect(c, &SessionClient::answerFinished, this, [this](const AnswerOutcome& outcome) {
        answeringSession_ = 0;
        if (outcome.sessionId == sessionId_)
            chat_->finishAnswer(outcome);
        if (!outcome.error.isEmpty())
            banner_->show(MessageBanner::Level::Error, outcome.error);
        else if (outcome.cancelled)
            statusBar()->showMessage(tr("Stopped."), 4000);
    });
    connect(c, &SessionClient::prepared, this, [this](int64_t, const QString& summary) {
        banner_->show(MessageBanner::Level::Info, summary);
    });
    connect(c, &SessionClient::exported, this, [this](const QString& path) {
        banner_->show(MessageBanner::Level::Info, tr("Saved the session to %1").arg(path));
    });
}

void MainWindow::showSession(SessionViewPtr view) {
    if (!view || view->session.id != sessionId_)
        return;
    view_ = std::move(view);
    sources_->setSources(view_->sources, model_.contextLength);
    if (!chat_->isAnswering())
        chat_->setMessages(view_->messages);
    // The viewer keeps its document only while the session still has it.
    bool viewerDocumentPresent = false;
    for (const auto& d : view_->documents)
        viewerDocumentPresent = viewerDocumentPresent || d.get() == viewer_->document();
    if (!viewerDocumentPresent)
        viewer_->clear();
    updateTitle();
    emit sessionShown(view_->session.id);
}

void MainWindow::openCitation(const ingest::Citation& citation) {
    if (!view_)
        return;
    std::vector<ingest::SourceInput> inputs;
    std::vector<size_t> index;  // inputs -> view_ sources
    for (size_t i = 0; i < view_->documents.size(); ++i) {
        if (view_->documents[i]) {
            inputs.push_back({view_->documents[i].get(), {}});
            index.push_back(i);
        }
    }
    auto resolved = ingest::resolveCitation(citation, inputs);
    if (!resolved) {
        banner_->show(MessageBanner::Level::Warning,
                      tr("The citation \"%1\" does not point into this session's sources: %2")
                          .arg(qs(citation.target), qs(resolved.error().message)));
        return;
    }
    viewer_->showLocation(view_->documents[index[resolved->sourceIndex]], &resolved->locator);
}

void MainWindow::addPaths(const QStringList& paths) {
    if (paths.isEmpty() || !client_)
        return;
    if (sessionId_ == 0) {
        // Dropping files with no session starts one named after the first of them.
        pendingPaths_ = paths;
        client_->createSession(QFileInfo(paths.front()).completeBaseName());
        return;
    }
    client_->addSources(sessionId_, paths);
}

void MainWindow::ask(const QString& question, uint64_t seedOffset) {
    if (sessionId_ == 0) {
        banner_->show(MessageBanner::Level::Warning, tr("Create or choose a session first."));
        return;
    }
    if (!client_->isReady()) {
        banner_->show(MessageBanner::Level::Warning,
                      tr("No model is open; choose one in File › Settings."));
        return;
    }
    client_->ask(sessionId_, question, seedOffset);
}

void MainWindow::newSession() {
    if (client_)
        client_->createSession(
            tr("Session of %1").arg(QDateTime::currentDateTime().toString("yyyy-MM-dd hh:mm")));
}

void MainWindow::exportCurrentSession() {
    if (sessionId_ == 0)
        return;
    const QString suggested =
        QDir::home().filePath(sessions_->currentSessionName() + QStringLiteral(".md"));
    const QString path =
        QFileDialog::getSaveFileName(this, tr("Export session"), suggested, tr("Markdown (*.md)"));
    if (!path.isEmpty())
        client_->exportSession(sessionId_, path);
}

void MainWindow::openSettings() {
    QSettings store;
    const AppSettings before = AppSettings::load(store);
    SettingsDialog dialog(before, this);
    if (dialog.exec() != QDialog::Accepted)
        return;
    const AppSettings after = dialog.settings();
    after.save(store);
    const LaunchOptions next = after.launchOptions();
    const bool reopenNeeded =
        next.dataDir != options_.dataDir || next.modelDir != options_.modelDir ||
        next.demoModel != options_.demoModel || next.engine.backend != options_.engine.backend ||
        next.engine.cudaDevice != options_.engine.cudaDevice ||
        next.engine.threads != options_.engine.threads ||
        next.diskBudgetBytes != options_.diskBudgetBytes;
    if (reopenNeeded) {
        reopen(next);
    } else {
        options_.generation = next.generation;
        client_->setGeneration(next.generation);
    }
}

void MainWindow::updateTitle() {
    QString title = QStringLiteral("Folio");
    if (view_)
        title = qs(view_->session.name) + QStringLiteral(" — Folio");
    if (options_.demoModel)
        title += QStringLiteral(" [%1]").arg(QString::fromUtf8(kDemoModelLabel));
    setWindowTitle(title);
}

void MainWindow::saveWindowState() {
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/state", saveState());
    s.setValue("window/mainSplitter", mainSplitter_->saveState());
    s.setValue("window/leftSplitter", leftSplitter_->saveState());
}

void MainWindow::restoreWindowState() {
    QSettings s;
    restoreGeometry(s.value("window/geometry").toByteArray());
    restoreState(s.value("window/state").toByteArray());
    if (!mainSplitter_->restoreState(s.value("window/mainSplitter").toByteArray()))
        mainSplitter_->setSizes({300, 560, 540});
    leftSplitter_->restoreState(s.value("window/leftSplitter").toByteArray());
}

void MainWindow::closeEvent(QCloseEvent* event) {
    saveWindowState();
    if (client_)
        client_->cancel();
    QMainWindow::closeEvent(event);
}

}  // namespace folio::ui
