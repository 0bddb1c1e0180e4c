// SPDX-License-Identifier: GPL-3.0-or-later
#include "chat_pane.h"

#include <QApplication>
#include <QClipboard>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QTextBlock>
#include <QTextBrowser>
#include <QVBoxLayout>

#include "answer_markdown.h"
#include "launch_options.h"

namespace folio::ui {
namespace {

constexpr int kRenderIntervalMs = 50;

QString quoted(const QString& text) {
    QString out;
    for (const QString& line : text.split(u'\n'))
        out += QStringLiteral("> ") + line + u'\n';
    return out;
}

}  // namespace

ChatPane::ChatPane(QWidget* parent)
    : QWidget(parent),
      demoLabel_(new QLabel(this)),
      transcript_(new QTextBrowser(this)),
      stats_(new QLabel(this)),
      question_(new QPlainTextEdit(this)),
      ask_(new QPushButton(tr("Ask"), this)),
      stop_(new QPushButton(tr("Stop"), this)),
      copy_(new QPushButton(tr("Copy"), this)),
      regenerate_(new QPushButton(tr("Regenerate"), this)),
      export_(new QPushButton(tr("Export…"), this)) {
    setObjectName(QStringLiteral("chat"));
    demoLabel_->setText(QStringLiteral("<b>%1</b>").arg(QString::fromUtf8(kDemoModelLabel)));
    demoLabel_->setObjectName(QStringLiteral("demoLabel"));
    demoLabel_->setAlignment(Qt::AlignCenter);
    demoLabel_->setAutoFillBackground(true);
    demoLabel_->setBackgroundRole(QPalette::ToolTipBase);
    demoLabel_->setForegroundRole(QPalette::ToolTipText);
    demoLabel_->hide();
    transcript_->setOpenLinks(false);
    transcript_->setOpenExternalLinks(false);
    transcript_->setPlaceholderText(tr("Ask a question about the session's sources."));
    stats_->setObjectName(QStringLiteral("answerStats"));
    stats_->setWordWrap(true);
    stats_->setForegroundRole(QPalette::PlaceholderText);
    question_->setPlaceholderText(tr("Ask a question… (Ctrl+Enter)"));
    question_->setMaximumHeight(110);
    question_->setTabChangesFocus(true);
    ask_->setToolTip(tr("Ask the question (Ctrl+Enter)"));
    stop_->setToolTip(tr("Stop the answer (Esc)"));
    copy_->setToolTip(tr("Copy the last answer as Markdown"));
    regenerate_->setToolTip(tr("Ask the last question again"));
    export_->setToolTip(tr("Save the session as Markdown (Ctrl+E)"));

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(copy_);
    buttons->addWidget(regenerate_);
    buttons->addWidget(export_);
    buttons->addStretch(1);
    buttons->addWidget(stop_);
    buttons->addWidget(ask_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(demoLabel_);
    layout->addWidget(transcript_, 1);
    layout->addWidget(stats_);
    layout->addWidget(question_);
    layout->addLayout(buttons);

    renderTimer_.setSingleShot(true);
    connect(&renderTimer_, &QTimer::timeout, this, &ChatPane::render);
    connect(ask_, &QPushButton::clicked, this, &ChatPane::submitQuestion);
    connect(stop_, &QPushButton::clicked, this, &ChatPane::stopRequested);
    connect(copy_, &QPushButton::clicked, this, &ChatPane::copyLastAnswer);
    connect(regenerate_, &QPushButton::clicked, this, &ChatPane::regenerate);
    connect(export_, &QPushButton::clicked, this, &ChatPane::exportRequested);
    connect(transcript_, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
        const auto ref = parseCitationUrl(url);
        if (!ref)
            return;
        for (size_t i = 0; i < citationOrder_.size(); ++i)
            if (citationOrder_[i] == std::pair{ref->entry, ref->index})
                activateCitation(static_cast<int>(i));
    });
    sinceRender_.start();
    updateButtons();
}

void ChatPane::setDemoModel(bool demo) {
    demo_ = demo;
    demoLabel_->setVisible(demo);
    render();
}

void ChatPane::setSessionAvailable(bool available) {
    sessionAvailable_ = available;
    updateButtons();
}

void ChatPane::clear() {
    entries_.clear();
    answering_ = false;
    stats_->clear();
    render();
    updateButtons();
}

void ChatPane::setMessages(const std::vector<storage::MessageRow>& messages) {
    entries_.clear();
    answering_ = false;
    for (const storage::MessageRow& m : messages) {
        Entry e;
        e.user = m.role == "user";
        e.text = QString::fromStdString(m.content);
        e.hasStats = !e.user && m.stats.promptTokens > 0;
        e.stats = m.stats;
        entries_.push_back(std::move(e));
    }
    stats_->clear();
    render();
    updateButtons();
}

void ChatPane::beginAnswer(const QString& question) {
    Entry q;
    q.user = true;
    q.text = question;
    entries_.push_back(std::move(q));
    entries_.push_back(Entry{});
    answering_ = true;
    stats_->setText(tr("Waiting for the first token…"));
    render();
    updateButtons();
}

void ChatPane::appendAnswerText(const QString& text) {
    if (!answering_ || entries_.empty())
        return;
    entries_.back().text += text;
    scheduleRender();
}

void ChatPane::finishAnswer(const AnswerOutcome& outcome) {
    if (answering_ && !entries_.empty()) {
        Entry& e = entries_.back();
        if (!outcome.answer.isEmpty())
            e.text = outcome.answer;
        e.hasStats = outcome.error.isEmpty() && outcome.stats.promptTokens > 0;
        e.stats = outcome.stats;
        e.reusedFrom = outcome.reusedFrom;
        if (!outcome.error.isEmpty())
            e.note = outcome.error;
        else if (outcome.cancelled)
            e.note = e.text.isEmpty() ? tr("Stopped before the answer began.") : tr("Stopped.");
    }
    answering_ = false;
    stats_->setText(outcome.error.isEmpty() && outcome.stats.promptTokens > 0
                        ? formatAnswerStats(outcome.stats, outcome.reusedFrom)
                        : QString());
    renderTimer_.stop();
    render();
    updateButtons();
}

void ChatPane::submitQuestion() {
    const QString question = question_->toPlainText().trimmed();
    if (question.isEmpty() || answering_ || !sessionAvailable_)
        return;
    question_->clear();
    emit askRequested(question);
}

void ChatPane::copyLastAnswer() {
    if (const QString answer = lastAnswer(); !answer.isEmpty())
        QApplication::clipboard()->setText(answer);
}

void ChatPane::regenerate() {
    if (const QString question = lastQuestion(); !question.isEmpty() && !answering_)
        emit regenerateRequested(question);
}

QString ChatPane::lastAnswer() const {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
        if (!it->user)
            return it->text;
    return {};
}

QString ChatPane::lastQuestion() const {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
        if (it->user)
            return it->text;
    return {};
}

QString ChatPane::transcriptText() const {
    return transcript_->toPlainText();
}

bool ChatPane::nextCitation() {
    if (citationOrder_.empty())
        return false;
    activateCitation((currentCitation_ + 1) % static_cast<int>(citationOrder_.size()));
    return true;
}

bool ChatPane::previousCitation() {
    if (citationOrder_.empty())
        return false;
    const int n = static_cast<int>(citationOrder_.size());
    activateCitation(currentCitation_ <= 0 ? n - 1 : currentCitation_ - 1);
    return true;
}

void ChatPane::activateCitation(int position) {
    currentCitation_ = position;
    const auto [entry, index] = citationOrder_[static_cast<size_t>(position)];
    // Select the link in the transcript so the reader sees which citation is shown.
    const QString href = citationUrl(entry, index).toString();
    for (QTextBlock block = transcript_->document()->begin(); block.isValid();
         block = block.next()) {
        for (auto it = block.begin(); !it.atEnd(); ++it) {
            const QTextFragment f = it.fragment();
            if (f.charFormat().isAnchor() && f.charFormat().anchorHref() == href) {
                QTextCursor c(transcript_->document());
                c.setPosition(f.position());
                c.setPosition(f.position() + f.length(), QTextCursor::KeepAnchor);
                transcript_->setTextCursor(c);
                transcript_->ensureCursorVisible();
            }
        }
    }
    emit citationActivated(
        entries_[static_cast<size_t>(entry)].citations[static_cast<size_t>(index)]);
}

void ChatPane::scheduleRender() {
    if (renderTimer_.isActive())
        return;
    const qint64 waited = sinceRender_.elapsed();
    if (waited >= kRenderIntervalMs)
        render();
    else
        renderTimer_.start(static_cast<int>(kRenderIntervalMs - waited));
}

void ChatPane::render() {
    sinceRender_.restart();
    QScrollBar* scroll = transcript_->verticalScrollBar();
    const bool atBottom = scroll->value() >= scroll->maximum() - 4;
    QString md;
    citationOrder_.clear();
    for (size_t i = 0; i < entries_.size(); ++i) {
        Entry& e = entries_[i];
        if (e.user) {
            if (i > 0)
                md += QStringLiteral("\n\n---\n\n");
            md += QStringLiteral("**%1**\n\n").arg(tr("You")) + quoted(e.text) + u'\n';
            continue;
        }
        md += QStringLiteral("**Folio**");
        if (demo_)
            md += QStringLiteral(" — *%1*").arg(QString::fromUtf8(kDemoModelLabel));
        md += QStringLiteral("\n\n");
        const LinkedAnswer linked = linkCitations(e.text.toStdString(), static_cast<int>(i));
        e.citations = linked.citations;
        for (size_t k = 0; k < e.citations.size(); ++k)
            citationOrder_.emplace_back(static_cast<int>(i), static_cast<int>(k));
        const bool streaming = answering_ && i + 1 == entries_.size();
        md += linked.markdown.isEmpty() && streaming ? QStringLiteral("…") : linked.markdown;
        if (!e.note.isEmpty())
            md += QStringLiteral("\n\n*%1*").arg(e.note);
        if (e.hasStats)
            md += QStringLiteral("\n\n*%1*").arg(formatAnswerStats(e.stats, e.reusedFrom));
        md += QStringLiteral("\n\n");
    }
    if (currentCitation_ >= static_cast<int>(citationOrder_.size()))
        currentCitation_ = -1;
    transcript_->document()->setMarkdown(
        md, QTextDocument::MarkdownFeatures(QTextDocument::MarkdownDialectGitHub |
                                            QTextDocument::MarkdownNoHTML));
    if (atBottom || answering_)
        scroll->setValue(scroll->maximum());
    emit transcriptRendered();
}

void ChatPane::updateButtons() {
    ask_->setEnabled(sessionAvailable_ && !answering_);
    question_->setEnabled(sessionAvailable_);
    stop_->setEnabled(answering_);
    copy_->setEnabled(!lastAnswer().isEmpty());
    regenerate_->setEnabled(sessionAvailable_ && !answering_ && !lastQuestion().isEmpty());
    export_->setEnabled(sessionAvailable_);
}

}  // namespace folio::ui
