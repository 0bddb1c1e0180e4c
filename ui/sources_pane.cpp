// SPDX-License-Identifier: GPL-3.0-or-later
#include "sources_pane.h"

#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMimeData>
#include <QPushButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include "answer_markdown.h"
#include "context_gauge.h"

namespace folio::ui {
namespace {

enum Column { kName = 0, kTokens = 1 };

QStringList localPaths(const QMimeData* mime) {
    QStringList paths;
    if (mime == nullptr || !mime->hasUrls())
        return paths;
    for (const QUrl& url : mime->urls())
        if (url.isLocalFile())
            paths << url.toLocalFile();
    return paths;
}

QString kindLabel(const storage::SourceRow& s) {
    if (s.kind == "pdf")
        return QObject::tr("PDF, %n page(s)", nullptr, static_cast<int>(s.pageCount));
    if (s.kind == "repository")
        return QObject::tr("folder, %n file(s)", nullptr, static_cast<int>(s.fileCount));
    return QObject::tr("text");
}

}  // namespace

SourcesPane::SourcesPane(QWidget* parent)
    : QWidget(parent),
      tree_(new QTreeWidget(this)),
      gauge_(new ContextGauge(this)),
      up_(new QPushButton(tr("Up"), this)),
      down_(new QPushButton(tr("Down"), this)),
      remove_(new QPushButton(tr("Remove"), this)) {
    setObjectName(QStringLiteral("sourcesPane"));
    setAcceptDrops(true);
    tree_->setColumnCount(2);
    tree_->setHeaderLabels({tr("Source"), tr("Tokens")});
    tree_->setRootIsDecorated(false);
    tree_->setUniformRowHeights(true);
    tree_->header()->setStretchLastSection(false);
    tree_->header()->setSectionResizeMode(kName, QHeaderView::Stretch);
    tree_->header()->setSectionResizeMode(kTokens, QHeaderView::ResizeToContents);
    tree_->setToolTip(tr("Drop PDFs, folders or text files here"));

    auto* addFiles = new QPushButton(tr("Add files…"), this);
    auto* addFolder = new QPushButton(tr("Add folder…"), this);
    addFiles->setToolTip(tr("Add PDFs or text files (Ctrl+O)"));
    addFolder->setToolTip(tr("Add a code repository or folder (Ctrl+Shift+O)"));
    up_->setToolTip(tr("Move earlier in the prompt"));
    down_->setToolTip(tr("Move later in the prompt"));
    auto* addRow = new QHBoxLayout;
    addRow->addWidget(addFiles);
    addRow->addWidget(addFolder);
    auto* editRow = new QHBoxLayout;
    editRow->addWidget(up_);
    editRow->addWidget(down_);
    editRow->addWidget(remove_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(new QLabel(tr("<b>Sources</b>"), this));
    layout->addWidget(tree_, 1);
    layout->addLayout(addRow);
    layout->addLayout(editRow);
    layout->addWidget(gauge_);

    connect(addFiles, &QPushButton::clicked, this, &SourcesPane::chooseFiles);
    connect(addFolder, &QPushButton::clicked, this, &SourcesPane::chooseFolder);
    connect(up_, &QPushButton::clicked, this, [this] { moveCurrent(-1); });
    connect(down_, &QPushButton::clicked, this, [this] { moveCurrent(+1); });
    connect(remove_, &QPushButton::clicked, this, [this] {
        if (const int64_t id = currentSourceId(); id != 0)
            emit removeRequested(id);
    });
    connect(tree_, &QTreeWidget::itemChanged, this, [this](QTreeWidgetItem* item, int column) {
        if (filling_ || column != kName)
            return;
        emit enableRequested(item->data(kName, Qt::UserRole).toLongLong(),
                             item->checkState(kName) == Qt::Checked);
    });
    connect(tree_, &QTreeWidget::currentItemChanged, this, [this] {
        updateButtons();
        if (!filling_ && currentSourceId() != 0)
            emit sourceActivated(currentSourceId());
    });
    updateButtons();
}

void SourcesPane::setSources(const std::vector<storage::SourceRow>& sources,
                             int64_t contextTokens) {
    const int64_t keep = currentSourceId();
    filling_ = true;
    tree_->clear();
    int64_t used = 0;
    for (const storage::SourceRow& s : sources) {
        auto* item = new QTreeWidgetItem(tree_);
        item->setText(kName, QString::fromStdString(s.displayName));
        item->setData(kName, Qt::UserRole, static_cast<qlonglong>(s.id));
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(kName, s.enabled ? Qt::Checked : Qt::Unchecked);
        item->setText(kTokens, groupedNumber(s.tokenCount));
        item->setTextAlignment(kTokens, Qt::AlignRight | Qt::AlignVCenter);
        item->setToolTip(kName,
                         tr("%1\n%2\n%3")
                             .arg(QString::fromStdString(s.title.empty() ? s.displayName : s.title),
                                  kindLabel(s), QString::fromStdString(s.origin)));
        if (s.enabled)
            used += s.tokenCount;
        if (s.id == keep)
            tree_->setCurrentItem(item);
    }
    filling_ = false;
    gauge_->setUsage(used, contextTokens);
    updateButtons();
}

void SourcesPane::clear() {
    setSources({}, gauge_->contextTokens());
}

void SourcesPane::addPaths(const QStringList& paths) {
    if (!paths.isEmpty())
        emit addRequested(paths);
}

void SourcesPane::chooseFiles() {
    const QStringList files = QFileDialog::getOpenFileNames(
        this, tr("Add sources"), QString(),
        tr("Documents (*.pdf *.txt *.md *.rst *.tex *.html *.csv *.json);;All files (*)"));
    addPaths(files);
}

void SourcesPane::chooseFolder() {
    const QString folder =
        QFileDialog::getExistingDirectory(this, tr("Add a folder or code repository"));
    if (!folder.isEmpty())
        addPaths({folder});
}

int64_t SourcesPane::currentSourceId() const {
    const QTreeWidgetItem* item = tree_->currentItem();
    return item == nullptr ? 0 : item->data(kName, Qt::UserRole).toLongLong();
}

int SourcesPane::sourceCount() const {
    return tree_->topLevelItemCount();
}

void SourcesPane::updateButtons() {
    const int row = tree_->currentItem() ? tree_->indexOfTopLevelItem(tree_->currentItem()) : -1;
    up_->setEnabled(row > 0);
    down_->setEnabled(row >= 0 && row + 1 < tree_->topLevelItemCount());
    remove_->setEnabled(row >= 0);
}

void SourcesPane::moveCurrent(int delta) {
    const int row = tree_->currentItem() ? tree_->indexOfTopLevelItem(tree_->currentItem()) : -1;
    const int target = row + delta;
    if (row < 0 || target < 0 || target >= tree_->topLevelItemCount())
        return;
    emit moveRequested(currentSourceId(), target);
}

void SourcesPane::dragEnterEvent(QDragEnterEvent* event) {
    if (!localPaths(event->mimeData()).isEmpty())
        event->acceptProposedAction();
}

void SourcesPane::dropEvent(QDropEvent* event) {
    const QStringList paths = localPaths(event->mimeData());
    if (paths.isEmpty())
        return;
    event->acceptProposedAction();
    addPaths(paths);
}

}  // namespace folio::ui
