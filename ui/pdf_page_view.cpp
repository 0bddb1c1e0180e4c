// SPDX-License-Identifier: GPL-3.0-or-later
#include "pdf_page_view.h"

#include <poppler-qt6.h>

#include <QLabel>
#include <QPainter>
#include <QScrollBar>

#include <algorithm>

namespace folio::ui {

PdfPageView::PdfPageView(QWidget* parent) : QScrollArea(parent), image_(new QLabel) {
    setObjectName(QStringLiteral("pdfView"));
    image_->setAlignment(Qt::AlignCenter);
    setWidget(image_);
    setWidgetResizable(true);
    setAlignment(Qt::AlignCenter);
    setBackgroundRole(QPalette::Dark);
}

PdfPageView::~PdfPageView() = default;

QString PdfPageView::open(const QString& path) {
    if (document_ && path_ == path)
        return {};
    document_.reset();
    path_.clear();
    matches_.clear();
    auto document = Poppler::Document::load(path);
    if (!document)
        return tr("%1 could not be opened as a PDF").arg(path);
    if (document->isLocked())
        return tr("%1 is encrypted").arg(path);
    document->setRenderHint(Poppler::Document::Antialiasing);
    document->setRenderHint(Poppler::Document::TextAntialiasing);
    document_ = std::move(document);
    path_ = path;
    page_ = 1;
    render();
    return {};
}

int PdfPageView::pageCount() const {
    return document_ ? document_->numPages() : 0;
}

void PdfPageView::setPage(int page) {
    if (!document_)
        return;
    page = std::clamp(page, 1, pageCount());
    if (page != page_) {
        page_ = page;
        matches_.clear();
        currentMatch_ = -1;
    }
    render();
    verticalScrollBar()->setValue(0);
    emit pageChanged(page_);
}

void PdfPageView::setZoom(double zoom) {
    zoom = std::clamp(zoom, 0.25, 6.0);
    if (zoom == zoom_)
        return;
    zoom_ = zoom;
    render();
    emit zoomChanged(zoom_);
}

double PdfPageView::fitWidthZoom() const {
    if (!document_)
        return 1.0;
    const std::unique_ptr<Poppler::Page> page = document_->page(page_ - 1);
    if (!page || page->pageSizeF().width() <= 0)
        return 1.0;
    return std::max(0.25, (viewport()->width() - 24) / page->pageSizeF().width());
}

bool PdfPageView::findText(const QString& text, bool backward) {
    if (!document_ || text.isEmpty())
        return false;
    if (text != findText_) {
        findText_ = text;
        matches_.clear();
        currentMatch_ = -1;
    }
    const int pages = pageCount();
    // This page's remaining matches first, then the other pages in order, wrapping once.
    for (int step = 0; step <= pages; ++step) {
        if (step > 0) {
            page_ = (page_ - 1 + (backward ? pages - 1 : 1)) % pages + 1;
            matches_.clear();
            currentMatch_ = -1;
        }
        if (matches_.isEmpty()) {
            const std::unique_ptr<Poppler::Page> page = document_->page(page_ - 1);
            if (page)
                matches_ = page->search(text, Poppler::Page::IgnoreCase);
            if (matches_.isEmpty())
                continue;
            currentMatch_ = backward ? static_cast<int>(matches_.size()) : -1;
        }
        const int next = currentMatch_ + (backward ? -1 : 1);
        if (next >= 0 && next < matches_.size()) {
            currentMatch_ = next;
            render();
            emit pageChanged(page_);
            // Scroll the match into view.
            const QRectF r = matches_[currentMatch_];
            ensureVisible(static_cast<int>(r.center().x() * zoom_ * 96.0 / 72.0),
                          static_cast<int>(r.center().y() * zoom_ * 96.0 / 72.0), 50, 120);
            return true;
        }
        matches_.clear();
    }
    render();
    return false;
}

void PdfPageView::render() {
    if (!document_) {
        image_->clear();
        return;
    }
    const std::unique_ptr<Poppler::Page> page = document_->page(page_ - 1);
    if (!page) {
        image_->setText(tr("Page %1 could not be read").arg(page_));
        return;
    }
    // 100 % zoom shows a page at its printed size on a 96 dpi screen.
    const qreal ratio = devicePixelRatioF();
    const double dpi = 96.0 * zoom_ * ratio;
    QImage image = page->renderToImage(dpi, dpi);
    if (image.isNull()) {
        image_->setText(tr("Page %1 could not be rendered").arg(page_));
        return;
    }
    if (!matches_.isEmpty()) {
        QPainter painter(&image);
        const double scale = dpi / 72.0;
        QColor tint = palette().color(QPalette::Highlight);
        for (int i = 0; i < matches_.size(); ++i) {
            tint.setAlpha(i == currentMatch_ ? 130 : 60);
            const QRectF& m = matches_[i];
            painter.fillRect(
                QRectF(m.x() * scale, m.y() * scale, m.width() * scale, m.height() * scale), tint);
        }
    }
    image.setDevicePixelRatio(ratio);
    image_->setPixmap(QPixmap::fromImage(image));
}

}  // namespace folio::ui
