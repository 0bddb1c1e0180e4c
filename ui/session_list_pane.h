// SPDX-License-Identifier: GPL-3.0-or-later
// SessionListPane: the sessions of the data folder, newest first, with New, Rename and Delete.
// Owns: its list widget. Promises: setSessions() keeps the selected session selected when it is
// still there; selecting a row emits sessionSelected(id) once. Never talks to the service (the
// main window turns its requests into SessionClient calls).
#pragma once

#include <QWidget>

#include <vector>

#include "storage/catalog.h"

class QListWidget;
class QPushButton;

namespace folio::ui {

class SessionListPane : public QWidget {
    Q_OBJECT
  public:
    explicit SessionListPane(QWidget* parent = nullptr);

    void setSessions(const std::vector<storage::SessionRow>& sessions);
    void selectSession(int64_t sessionId);
    int64_t currentSessionId() const;  // 0: none
    QString currentSessionName() const;
    int count() const;
    QListWidget* list() const { return list_; }

  signals:
    void sessionSelected(int64_t sessionId);
    void newRequested();
    void renameRequested(int64_t sessionId, const QString& name);
    void deleteRequested(int64_t sessionId);

  private:
    QListWidget* list_;
    QPushButton* rename_;
    QPushButton* delete_;
    int64_t emittedId_ = 0;
};

}  // namespace folio::ui
