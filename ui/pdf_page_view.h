// SPDX-License-Identifier: GPL-3.0-or-later
// PdfPageView: one page of a PDF at a time, rendered by Poppler at the chosen zoom, with page
// navigation and find (matches drawn over the page).
// Owns: the open Poppler document and the rendered page image. Promises: pages are 1-based and
// always within the document; a file that cannot be opened is an error message from open(), the
// view stays usable; find wraps around the document once. Never modifies the file.
#pragma once

#include <QList>
#include <QRectF>
#include <QScrollArea>
#include <QString>

#include <memory>

class QLabel;

namespace Poppler {
class Document;
}

namespace folio::ui {

class PdfPageView : public QScrollArea {
    Q_OBJECT
  public:
    explicit PdfPageView(QWidget* parent = nullptr);
    ~PdfPageView() override;

    // Empty string on success, else what went wrong.
    QString open(const QString& path);
    bool isOpen() const { return document_ != nullptr; }
    QString path() const { return path_; }

    int pageCount() const;
    int page() const { return page_; }
    void setPage(int page);
    double zoom() const { return zoom_; }
    void setZoom(double zoom);
    // The zoom at which the page fills the view's width.
    double fitWidthZoom() const;

    bool findText(const QString& text, bool backward);
    const QList<QRectF>& matches() const { return matches_; }

  signals:
    void pageChanged(int page);
    void zoomChanged(double zoom);

  private:
    void render();

    std::unique_ptr<Poppler::Document> document_;
    QString path_;
    QLabel* image_;
    int page_ = 1;
    double zoom_ = 1.0;
    QString findText_;
    QList<QRectF> matches_;  // on the current page, in points
    int currentMatch_ = -1;
};

}  // namespace folio::ui
