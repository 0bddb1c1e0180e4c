// SPDX-License-Identifier: GPL-3.0-or-later
// CodeView: read-only text or code with line numbers in a gutter and one highlighted line range
// (the lines a citation points at), in a fixed-width font; colours come from the palette, so it
// reads in light and dark themes. Owns: its gutter widget. Promises: highlightLines() scrolls the
// first highlighted line into view; line numbers start at 1 and match the file's. Never edits.
#pragma once

#include <QPlainTextEdit>

namespace folio::ui {

class CodeView : public QPlainTextEdit {
    Q_OBJECT
  public:
    explicit CodeView(QWidget* parent = nullptr);

    void showText(const QString& text);
    // 1-based, inclusive; first = 0 removes the highlight.
    void highlightLines(int first, int last);
    int highlightedFirst() const { return first_; }
    int highlightedLast() const { return last_; }
    int firstVisibleLine() const;  // 1-based
    bool findText(const QString& text, bool backward);

    int gutterWidth() const;
    void paintGutter(QPaintEvent* event);

  protected:
    void resizeEvent(QResizeEvent* event) override;

  private:
    void updateSelections();

    QWidget* gutter_;
    int first_ = 0;
    int last_ = 0;
};

}  // namespace folio::ui
