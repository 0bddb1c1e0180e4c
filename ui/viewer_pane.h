// SPDX-License-Identifier: GPL-3.0-or-later
// ViewerPane: shows a source where a citation points — a PDF page rendered by Poppler (zoom,
// page navigation, find) or a file's lines with numbers and the cited range highlighted (find).
// A PDF whose file is gone is shown as its stored page text instead.
// Owns: the PDF view, the code view and its toolbar. Promises: showLocation() lands on the page
// or line range asked for, clamped never silently (an out-of-range place is reported by the
// caller before it gets here); find wraps around. Never touches the session or the service.
#pragma once

#include <QWidget>

#include <memory>
#include <vector>

#include "ingest/document.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QSpinBox;
class QStackedWidget;
class QToolButton;

namespace folio::ui {

class CodeView;
class PdfPageView;

class ViewerPane : public QWidget {
    Q_OBJECT
  public:
    explicit ViewerPane(QWidget* parent = nullptr);

    // Opens `document` at `where` (a page or a file's lines); with no locator at its start.
    void showLocation(std::shared_ptr<const ingest::Document> document,
                      const ingest::Locator* where = nullptr);
    void clear();
    void focusFind();
    bool findNext();
    bool findPrevious();
    void zoomIn();
    void zoomOut();

    // What is shown, for the window title and tests.
    enum class Mode { Empty, PdfPages, PageText, Lines };
    Mode mode() const { return mode_; }
    int currentPage() const;  // PdfPages and PageText: 1-based; else 0
    QString currentPath() const { return path_; }
    const ingest::Document* document() const { return document_.get(); }
    PdfPageView* pdfView() const { return pdf_; }
    CodeView* codeView() const { return code_; }
    QLineEdit* findEdit() const { return find_; }

  private:
    void showPdfPage(int page);
    void showPageText(int page);
    void showFileLines(const QString& path, int first, int last);
    void updateNavigation();
    bool find(bool backward);

    std::shared_ptr<const ingest::Document> document_;
    Mode mode_ = Mode::Empty;
    QString path_;
    std::vector<int> pageTextLines_;  // PageText: first line of each page (1-based), by page

    QLabel* title_;
    QComboBox* files_;
    QToolButton* previous_;
    QToolButton* next_;
    QSpinBox* page_;
    QLabel* pageCount_;
    QToolButton* zoomOut_;
    QToolButton* zoomIn_;
    QLabel* zoomLabel_;
    QLineEdit* find_;
    QLabel* findStatus_;
    QStackedWidget* stack_;
    QLabel* placeholder_;
    PdfPageView* pdf_;
    CodeView* code_;
};

}  // namespace folio::ui
