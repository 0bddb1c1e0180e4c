// SPDX-License-Identifier: GPL-3.0-or-later
#include "session_list_pane.h"

#include <QDateTime>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPushButton>
#include <QVBoxLayout>

namespace folio::ui {

SessionListPane::SessionListPane(QWidget* parent)
    : QWidget(parent),
      list_(new QListWidget(this)),
      rename_(new QPushButton(tr("Rename…"), this)),
      delete_(new QPushButton(tr("Delete…"), this)) {
    setObjectName(QStringLiteral("sessionList"));
    auto* title = new QLabel(tr("<b>Sessions</b>"), this);
    auto* add = new QPushButton(tr("New"), this);
    add->setToolTip(tr("Start a new session (Ctrl+N)"));
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(add);
    buttons->addWidget(rename_);
    buttons->addWidget(delete_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(title);
    layout->addWidget(list_, 1);
    layout->addLayout(buttons);

    connect(add, &QPushButton::clicked, this, &SessionListPane::newRequested);
    connect(list_, &QListWidget::currentRowChanged, this, [this] {
        const int64_t id = currentSessionId();
        rename_->setEnabled(id != 0);
        delete_->setEnabled(id != 0);
        if (id != 0 && id != emittedId_) {
            emittedId_ = id;
            emit sessionSelected(id);
        }
    });
    connect(rename_, &QPushButton::clicked, this, [this] {
        bool ok = false;
        const QString name = QInputDialog::getText(this, tr("Rename session"), tr("Name:"),
                                                   QLineEdit::Normal, currentSessionName(), &ok);
        if (ok && !name.trimmed().isEmpty())
            emit renameRequested(currentSessionId(), name.trimmed());
    });
    connect(delete_, &QPushButton::clicked, this, [this] {
        const auto answer = QMessageBox::question(
            this, tr("Delete session"),
            tr("Delete the session \"%1\" with its sources and messages?\nThe files themselves "
               "are not touched.")
                .arg(currentSessionName()));
        if (answer == QMessageBox::Yes)
            emit deleteRequested(currentSessionId());
    });
    rename_->setEnabled(false);
    delete_->setEnabled(false);
}

void SessionListPane::setSessions(const std::vector<storage::SessionRow>& sessions) {
    const int64_t keep = currentSessionId();
    {
        const QSignalBlocker block(list_);
        list_->clear();
        for (const storage::SessionRow& s : sessions) {
            auto* item = new QListWidgetItem(QString::fromStdString(s.name), list_);
            item->setData(Qt::UserRole, static_cast<qlonglong>(s.id));
            item->setToolTip(tr("Last used %1")
                                 .arg(QDateTime::fromSecsSinceEpoch(s.updatedAt)
                                          .toString(QStringLiteral("yyyy-MM-dd hh:mm"))));
        }
    }
    if (keep != 0)
        selectSession(keep);
    if (currentSessionId() == 0 && list_->count() > 0)
        list_->setCurrentRow(0);
    if (list_->count() == 0)
        emittedId_ = 0;
}

void SessionListPane::selectSession(int64_t sessionId) {
    for (int row = 0; row < list_->count(); ++row) {
        if (list_->item(row)->data(Qt::UserRole).toLongLong() == sessionId) {
            list_->setCurrentRow(row);
            return;
        }
    }
}

int64_t SessionListPane::currentSessionId() const {
    const QListWidgetItem* item = list_->currentItem();
    return item == nullptr ? 0 : item->data(Qt::UserRole).toLongLong();
}

QString SessionListPane::currentSessionName() const {
    const QListWidgetItem* item = list_->currentItem();
    return item == nullptr ? QString() : item->text();
}

int SessionListPane::count() const {
    return list_->count();
}

}  // namespace folio::ui
