// SPDX-License-Identifier: GPL-3.0-or-later
#include "code_view.h"

#include <QFontDatabase>
#include <QPainter>
#include <QScrollBar>
#include <QTextBlock>

namespace folio::ui {
namespace {

class Gutter : public QWidget {
  public:
    explicit Gutter(CodeView* view) : QWidget(view), view_(view) {}
    QSize sizeHint() const override { return {view_->gutterWidth(), 0}; }

  protected:
    void paintEvent(QPaintEvent* event) override { view_->paintGutter(event); }

  private:
    CodeView* view_;
};

}  // namespace

CodeView::CodeView(QWidget* parent) : QPlainTextEdit(parent), gutter_(new Gutter(this)) {
    setObjectName(QStringLiteral("codeView"));
    setReadOnly(true);
    setLineWrapMode(QPlainTextEdit::NoWrap);
    setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
    connect(this, &QPlainTextEdit::blockCountChanged, this,
            [this] { setViewportMargins(gutterWidth(), 0, 0, 0); });
    connect(this, &QPlainTextEdit::updateRequest, this, [this](const QRect& rect, int dy) {
        if (dy != 0)
            gutter_->scroll(0, dy);
        else
            gutter_->update(0, rect.y(), gutter_->width(), rect.height());
    });
    setViewportMargins(gutterWidth(), 0, 0, 0);
}

void CodeView::showText(const QString& text) {
    first_ = last_ = 0;
    setPlainText(text);
    updateSelections();
}

void CodeView::highlightLines(int first, int last) {
    first_ = first;
    last_ = std::max(first, last);
    updateSelections();
    if (first_ <= 0)
        return;
    // Put the first cited line near the top, with a little context above it (the vertical
    // scroll bar of an unwrapped plain text edit counts lines).
    setTextCursor(QTextCursor(document()->findBlockByNumber(first_ - 1)));
    verticalScrollBar()->setValue(std::max(0, first_ - 4));
}

int CodeView::firstVisibleLine() const {
    return firstVisibleBlock().blockNumber() + 1;
}

bool CodeView::findText(const QString& text, bool backward) {
    if (text.isEmpty())
        return false;
    const QTextDocument::FindFlags flags =
        backward ? QTextDocument::FindBackward : QTextDocument::FindFlags();
    if (find(text, flags))
        return true;
    // Wrap around once.
    QTextCursor wrapped(document());
    if (backward)
        wrapped.movePosition(QTextCursor::End);
    setTextCursor(wrapped);
    return find(text, flags);
}

int CodeView::gutterWidth() const {
    int digits = 1;
    for (int n = std::max(1, blockCount()); n >= 10; n /= 10)
        ++digits;
    return 12 + fontMetrics().horizontalAdvance(QLatin1Char('9')) * digits;
}

void CodeView::paintGutter(QPaintEvent* event) {
    QPainter painter(gutter_);
    painter.fillRect(event->rect(), palette().color(QPalette::AlternateBase));
    QTextBlock block = firstVisibleBlock();
    int number = block.blockNumber() + 1;
    int top = qRound(blockBoundingGeometry(block).translated(contentOffset()).top());
    int bottom = top + qRound(blockBoundingRect(block).height());
    const QColor normal = palette().color(QPalette::PlaceholderText);
    const QColor cited = palette().color(QPalette::Text);
    while (block.isValid() && top <= event->rect().bottom()) {
        if (block.isVisible() && bottom >= event->rect().top()) {
            const bool inRange = number >= first_ && number <= last_;
            QFont f = font();
            f.setBold(inRange);
            painter.setFont(f);
            painter.setPen(inRange ? cited : normal);
            painter.drawText(0, top, gutter_->width() - 6, fontMetrics().height(), Qt::AlignRight,
                             QString::number(number));
        }
        block = block.next();
        top = bottom;
        bottom = top + qRound(blockBoundingRect(block).height());
        ++number;
    }
}

void CodeView::resizeEvent(QResizeEvent* event) {
    QPlainTextEdit::resizeEvent(event);
    const QRect r = contentsRect();
    gutter_->setGeometry(QRect(r.left(), r.top(), gutterWidth(), r.height()));
}

void CodeView::updateSelections() {
    QList<QTextEdit::ExtraSelection> selections;
    if (first_ > 0) {
        QColor tint = palette().color(QPalette::Highlight);
        tint.setAlpha(70);
        for (int line = first_; line <= last_; ++line) {
            const QTextBlock block = document()->findBlockByNumber(line - 1);
            if (!block.isValid())
                break;
            QTextEdit::ExtraSelection s;
            s.format.setBackground(tint);
            s.format.setProperty(QTextFormat::FullWidthSelection, true);
            s.cursor = QTextCursor(block);
            selections << s;
        }
    }
    setExtraSelections(selections);
    gutter_->update();
}

}  // namespace folio::ui
