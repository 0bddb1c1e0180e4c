// SPDX-License-Identifier: GPL-3.0-or-later
// ChatPane: the conversation of a session — questions, answers rendered as Markdown as they
// stream in, each answer's statistics — and the question box with Ask, Stop, Copy, Regenerate and
// Export. Citations in answers are links; clicking one (or next/previous citation) emits
// citationActivated with the citation as the model wrote it.
// Regenerate asks the last question again (regenerateRequested, so that the caller can sample
// with another seed). Owns: the transcript entries and its widgets. Promises: streamed text appears
// within one rendering interval (≤ 50 ms) of arriving; a stopped or failed answer keeps what was
// streamed and says so; while an answer runs Ask and Regenerate are disabled and Stop is enabled.
// When the demo model is in use every answer is labelled "Demo model — answers are not meaningful".
// Never resolves citations and never calls the service.
#pragma once

#include <QElapsedTimer>
#include <QTimer>
#include <QWidget>

#include <vector>

#include "ingest/citations.h"
#include "session_client.h"
#include "storage/catalog.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTextBrowser;

namespace folio::ui {

class ChatPane : public QWidget {
    Q_OBJECT
  public:
    explicit ChatPane(QWidget* parent = nullptr);

    void setDemoModel(bool demo);
    void setMessages(const std::vector<storage::MessageRow>& messages);
    void clear();
    void setSessionAvailable(bool available);

    // An answer being generated: the question, then streamed text, then the outcome.
    void beginAnswer(const QString& question);
    void appendAnswerText(const QString& text);
    void finishAnswer(const AnswerOutcome& outcome);
    bool isAnswering() const { return answering_; }

    void submitQuestion();  // Ask: emits askRequested with the question box's text
    void copyLastAnswer();
    void regenerate();
    bool nextCitation();
    bool previousCitation();

    QString lastAnswer() const;
    QString lastQuestion() const;
    QString transcriptText() const;  // what the transcript shows, as plain text
    int citationCount() const { return static_cast<int>(citationOrder_.size()); }
    QTextBrowser* transcript() const { return transcript_; }
    QPlainTextEdit* questionEdit() const { return question_; }
    QPushButton* askButton() const { return ask_; }
    QPushButton* stopButton() const { return stop_; }

  signals:
    void askRequested(const QString& question);
    void regenerateRequested(const QString& question);
    void stopRequested();
    void exportRequested();
    void citationActivated(const folio::ingest::Citation& citation);
    void transcriptRendered();

  private:
    struct Entry {
        bool user = false;
        QString text;
        bool hasStats = false;
        storage::AnswerStats stats;
        QString reusedFrom;
        QString note;  // "stopped", an error
        std::vector<ingest::Citation> citations;
    };

    void render();
    void scheduleRender();
    void updateButtons();
    void activateCitation(int position);

    std::vector<Entry> entries_;
    std::vector<std::pair<int, int>> citationOrder_;  // (entry, index) in reading order
    int currentCitation_ = -1;
    bool answering_ = false;
    bool demo_ = false;
    bool sessionAvailable_ = false;

    QLabel* demoLabel_;
    QTextBrowser* transcript_;
    QLabel* stats_;
    QPlainTextEdit* question_;
    QPushButton* ask_;
    QPushButton* stop_;
    QPushButton* copy_;
    QPushButton* regenerate_;
    QPushButton* export_;
    QTimer renderTimer_;
    QElapsedTimer sinceRender_;
};

}  // namespace folio::ui
