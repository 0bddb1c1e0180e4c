// SPDX-License-Identifier: GPL-3.0-or-later
#include "viewer_pane.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QSpinBox>
#include <QStackedWidget>
#include <QStyle>
#include <QToolButton>
#include <QVBoxLayout>

#include "code_view.h"
#include "ingest/numbered_lines.h"
#include "pdf_page_view.h"

namespace folio::ui {
namespace {

QToolButton* toolButton(QWidget* parent, const QString& text, const QString& tip) {
    auto* b = new QToolButton(parent);
    b->setText(text);
    b->setToolTip(tip);
    b->setAutoRaise(true);
    return b;
}

QString qs(const std::string& s) {
    return QString::fromStdString(s);
}

}  // namespace

ViewerPane::ViewerPane(QWidget* parent)
    : QWidget(parent),
      title_(new QLabel(this)),
      files_(new QComboBox(this)),
      previous_(toolButton(this, QStringLiteral("◀"), tr("Previous page (Page Up)"))),
      next_(toolButton(this, QStringLiteral("▶"), tr("Next page (Page Down)"))),
      page_(new QSpinBox(this)),
      pageCount_(new QLabel(this)),
      zoomOut_(toolButton(this, QStringLiteral("−"), tr("Zoom out (Ctrl+-)"))),
      zoomIn_(toolButton(this, QStringLiteral("+"), tr("Zoom in (Ctrl++)"))),
      zoomLabel_(new QLabel(this)),
      find_(new QLineEdit(this)),
      findStatus_(new QLabel(this)),
      stack_(new QStackedWidget(this)),
      placeholder_(new QLabel(this)),
      pdf_(new PdfPageView(this)),
      code_(new CodeView(this)) {
    setObjectName(QStringLiteral("viewer"));
    title_->setTextFormat(Qt::PlainText);
    QFont bold = title_->font();
    bold.setBold(true);
    title_->setFont(bold);
    // The title gives way when the toolbar is narrow; page and zoom labels never do.
    title_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    title_->setMinimumWidth(60);
    pageCount_->setMinimumWidth(pageCount_->fontMetrics().horizontalAdvance(tr("of 99999")));
    zoomLabel_->setMinimumWidth(
        zoomLabel_->fontMetrics().horizontalAdvance(QStringLiteral("600 %")));
    zoomLabel_->setAlignment(Qt::AlignCenter);
    files_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    files_->setToolTip(tr("File of this source"));
    page_->setMinimum(1);
    page_->setToolTip(tr("Page"));
    find_->setPlaceholderText(tr("Find (Ctrl+F)"));
    find_->setClearButtonEnabled(true);
    find_->setMaximumWidth(220);
    placeholder_->setAlignment(Qt::AlignCenter);
    placeholder_->setWordWrap(true);
    placeholder_->setText(tr("Select a source, or click a citation in an answer, to see it here."));
    stack_->addWidget(placeholder_);
    stack_->addWidget(pdf_);
    stack_->addWidget(code_);

    auto* bar = new QHBoxLayout;
    bar->addWidget(title_, 1);
    bar->addWidget(files_);
    bar->addWidget(previous_);
    bar->addWidget(page_);
    bar->addWidget(pageCount_);
    bar->addWidget(next_);
    bar->addSpacing(8);
    bar->addWidget(zoomOut_);
    bar->addWidget(zoomLabel_);
    bar->addWidget(zoomIn_);
    bar->addSpacing(8);
    bar->addWidget(find_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addLayout(bar);
    layout->addWidget(findStatus_);
    layout->addWidget(stack_, 1);

    connect(previous_, &QToolButton::clicked, this,
            [this] { page_->setValue(page_->value() - 1); });
    connect(next_, &QToolButton::clicked, this, [this] { page_->setValue(page_->value() + 1); });
    connect(page_, &QSpinBox::valueChanged, this, [this](int page) {
        if (mode_ == Mode::PdfPages && page != pdf_->page())
            showPdfPage(page);
        else if (mode_ == Mode::PageText && page != currentPage())
            showPageText(page);
    });
    connect(pdf_, &PdfPageView::pageChanged, this, [this] { updateNavigation(); });
    connect(pdf_, &PdfPageView::zoomChanged, this, [this] { updateNavigation(); });
    connect(zoomIn_, &QToolButton::clicked, this, &ViewerPane::zoomIn);
    connect(zoomOut_, &QToolButton::clicked, this, &ViewerPane::zoomOut);
    connect(files_, &QComboBox::activated, this,
            [this](int index) { showFileLines(files_->itemText(index), 0, 0); });
    connect(find_, &QLineEdit::returnPressed, this, &ViewerPane::findNext);
    clear();
}

void ViewerPane::clear() {
    document_.reset();
    mode_ = Mode::Empty;
    path_.clear();
    title_->clear();
    findStatus_->clear();
    findStatus_->hide();
    files_->clear();
    files_->hide();
    placeholder_->setText(tr("Select a source, or click a citation in an answer, to see it here."));
    stack_->setCurrentWidget(placeholder_);
    updateNavigation();
}

void ViewerPane::showLocation(std::shared_ptr<const ingest::Document> document,
                              const ingest::Locator* where) {
    findStatus_->clear();
    findStatus_->hide();
    if (!document) {
        clear();
        placeholder_->setText(tr("This source's text could not be read from the database."));
        return;
    }
    const bool sameDocument = document_ == document;
    document_ = std::move(document);
    title_->setText(qs(document_->title.empty() ? document_->name : document_->title));
    title_->setToolTip(qs(document_->originPath));

    if (document_->kind == ingest::SourceKind::Pdf) {
        const int page = where != nullptr && where->kind == ingest::Locator::Kind::Page
                             ? where->page
                             : (sameDocument ? currentPage() : 1);
        const QString problem = pdf_->open(qs(document_->originPath));
        files_->hide();
        if (problem.isEmpty()) {
            mode_ = Mode::PdfPages;
            stack_->setCurrentWidget(pdf_);
            showPdfPage(std::max(1, page));
            return;
        }
        // The file moved or changed: show the text that was read from it.
        QString text;
        pageTextLines_.assign(static_cast<size_t>(document_->pageCount) + 2, 0);
        int line = 1;
        for (const ingest::Segment& s : document_->segments) {
            if (s.locator.kind != ingest::Locator::Kind::Page)
                continue;
            const QString body = QString::fromUtf8(document_->segmentText(s));
            if (static_cast<size_t>(s.locator.page) < pageTextLines_.size())
                pageTextLines_[static_cast<size_t>(s.locator.page)] = line;
            const QString block =
                tr("— Page %1 —\n").arg(s.locator.page) + body.trimmed() + QStringLiteral("\n\n");
            text += block;
            line += static_cast<int>(block.count(u'\n'));
        }
        mode_ = Mode::PageText;
        code_->showText(text);
        stack_->setCurrentWidget(code_);
        findStatus_->setText(tr("%1 Showing the text Folio read from it.").arg(problem));
        findStatus_->show();
        showPageText(std::max(1, page));
        return;
    }

    // Files: text sources and repositories.
    files_->clear();
    for (const ingest::Segment& s : document_->segments) {
        const QString p = qs(s.locator.path);
        if (s.locator.kind == ingest::Locator::Kind::Lines && files_->findText(p) < 0)
            files_->addItem(p);
    }
    files_->setVisible(files_->count() > 1);
    mode_ = Mode::Lines;
    stack_->setCurrentWidget(code_);
    if (where != nullptr && where->kind == ingest::Locator::Kind::Lines)
        showFileLines(qs(where->path), where->firstLine, where->lastLine);
    else
        showFileLines(files_->count() > 0 ? files_->itemText(0) : QString(), 0, 0);
}

void ViewerPane::showPdfPage(int page) {
    pdf_->setPage(page);
    updateNavigation();
}

void ViewerPane::showPageText(int page) {
    if (page < 1 || static_cast<size_t>(page) + 1 >= pageTextLines_.size() ||
        pageTextLines_[static_cast<size_t>(page)] == 0) {
        updateNavigation();
        return;
    }
    const int first = pageTextLines_[static_cast<size_t>(page)];
    int last = code_->blockCount();
    for (size_t p = static_cast<size_t>(page) + 1; p < pageTextLines_.size(); ++p)
        if (pageTextLines_[p] > 0) {
            last = pageTextLines_[p] - 1;
            break;
        }
    code_->highlightLines(first, last);
    updateNavigation();
}

void ViewerPane::showFileLines(const QString& path, int first, int last) {
    path_ = path;
    const std::string file = path.toStdString();
    const int lines = ingest::lineCountOf(*document_, file);
    code_->showText(qs(ingest::originalLines(*document_, file, 1, lines)));
    files_->setCurrentIndex(files_->findText(path));
    if (first > 0)
        code_->highlightLines(first, last);
    updateNavigation();
}

int ViewerPane::currentPage() const {
    if (mode_ == Mode::PdfPages)
        return pdf_->page();
    if (mode_ == Mode::PageText) {
        const int line = code_->highlightedFirst();
        for (size_t p = pageTextLines_.size(); p-- > 1;)
            if (pageTextLines_[p] > 0 && pageTextLines_[p] <= line)
                return static_cast<int>(p);
    }
    return 0;
}

void ViewerPane::updateNavigation() {
    const bool paged = mode_ == Mode::PdfPages || mode_ == Mode::PageText;
    const int pages = mode_ == Mode::PdfPages ? pdf_->pageCount()
                      : document_             ? document_->pageCount
                                              : 0;
    for (QWidget* w : {static_cast<QWidget*>(previous_), static_cast<QWidget*>(next_),
                       static_cast<QWidget*>(page_), static_cast<QWidget*>(pageCount_)})
        w->setVisible(paged);
    if (paged) {
        const QSignalBlocker block(page_);
        page_->setMaximum(std::max(1, pages));
        page_->setValue(currentPage());
        pageCount_->setText(tr("of %1").arg(pages));
        previous_->setEnabled(currentPage() > 1);
        next_->setEnabled(currentPage() < pages);
    }
    zoomLabel_->setText(mode_ == Mode::PdfPages
                            ? QStringLiteral("%1 %").arg(qRound(pdf_->zoom() * 100))
                            : QString());
    const bool any = mode_ != Mode::Empty;
    zoomIn_->setEnabled(any);
    zoomOut_->setEnabled(any);
    find_->setEnabled(any);
}

void ViewerPane::zoomIn() {
    if (mode_ == Mode::PdfPages)
        pdf_->setZoom(pdf_->zoom() * 1.25);
    else if (mode_ != Mode::Empty)
        code_->zoomIn(1);
}

void ViewerPane::zoomOut() {
    if (mode_ == Mode::PdfPages)
        pdf_->setZoom(pdf_->zoom() / 1.25);
    else if (mode_ != Mode::Empty)
        code_->zoomOut(1);
}

void ViewerPane::focusFind() {
    find_->setFocus(Qt::ShortcutFocusReason);
    find_->selectAll();
}

bool ViewerPane::findNext() {
    return find(false);
}

bool ViewerPane::findPrevious() {
    return find(true);
}

bool ViewerPane::find(bool backward) {
    const QString text = find_->text();
    if (text.isEmpty() || mode_ == Mode::Empty)
        return false;
    const bool found =
        mode_ == Mode::PdfPages ? pdf_->findText(text, backward) : code_->findText(text, backward);
    findStatus_->setText(found ? QString() : tr("\"%1\" not found").arg(text));
    findStatus_->setVisible(!found);
    updateNavigation();
    return found;
}

}  // namespace folio::ui
