// SPDX-License-Identifier: GPL-3.0-or-later
// MainWindow: Folio's window — sessions and sources on the left, the viewer in the middle, the
// conversation on the right, a message banner on top and progress in the status bar — wired to a
// SessionClient that runs the model on its worker thread.
// Owns: the panes, the actions and their shortcuts, the SessionClient. Promises: every failure
// (engine, ingest, storage, GPU memory) is shown in the banner and the window keeps working;
// the window geometry, dock state and splitter positions are saved on close and restored on the
// next start; the demo model is labelled in the title, the status bar and every answer. Never
// calls the service or blocks on it.
#pragma once

#include <QMainWindow>
#include <QStringList>

#include <memory>

#include "ingest/citations.h"
#include "launch_options.h"
#include "session_client.h"

class QLabel;
class QSplitter;

namespace folio::ui {

class ChatPane;
class MessageBanner;
class RunProgressBar;
class SessionListPane;
class SourcesPane;
class ViewerPane;

class MainWindow : public QMainWindow {
    Q_OBJECT
  public:
    explicit MainWindow(LaunchOptions options, QWidget* parent = nullptr);
    ~MainWindow() override;

    // Closes the model and data folder and opens these instead.
    void reopen(LaunchOptions options);

    SessionClient* client() const { return client_.get(); }
    SessionListPane* sessionList() const { return sessions_; }
    SourcesPane* sources() const { return sources_; }
    ViewerPane* viewer() const { return viewer_; }
    ChatPane* chat() const { return chat_; }
    MessageBanner* banner() const { return banner_; }
    RunProgressBar* progress() const { return progress_; }
    int64_t currentSessionId() const { return sessionId_; }
    SessionViewPtr currentView() const { return view_; }

    void openSettings();
    void exportCurrentSession();
    void newSession();

  signals:
    void sessionShown(int64_t sessionId);

  protected:
    void closeEvent(QCloseEvent* event) override;

  private:
    void buildMenus();
    void connectPanes();
    void connectClient();
    void saveWindowState();
    void restoreWindowState();
    void updateTitle();
    void showSession(SessionViewPtr view);
    void openCitation(const ingest::Citation& citation);
    void addPaths(const QStringList& paths);
    void ask(const QString& question, uint64_t seedOffset = 0);

    LaunchOptions options_;
    std::unique_ptr<SessionClient> client_;
    ModelInfo model_;
    int64_t sessionId_ = 0;
    int64_t answeringSession_ = 0;
    SessionViewPtr view_;
    QStringList pendingPaths_;  // dropped before any session existed
    uint64_t regenerations_ = 0;

    MessageBanner* banner_;
    SessionListPane* sessions_;
    SourcesPane* sources_;
    ViewerPane* viewer_;
    ChatPane* chat_;
    RunProgressBar* progress_;
    QLabel* modelLabel_;
    QSplitter* mainSplitter_;
    QSplitter* leftSplitter_;
};

}  // namespace folio::ui
