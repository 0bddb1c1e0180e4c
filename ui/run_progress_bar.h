// SPDX-License-Identifier: GPL-3.0-or-later
// RunProgressBar: the status-bar widget for long work — reading sources, restoring and prefilling,
// answering — with what is happening, a bar, tokens/s, ETA and a Cancel button.
// Owns: its child widgets. Promises: show a progress, hide when the work ends; Cancel emits
// cancelRequested() and says "Stopping…" until the work ends. Never cancels anything itself.
#pragma once

#include <QWidget>

#include "session_client.h"

class QLabel;
class QProgressBar;
class QPushButton;

namespace folio::ui {

class RunProgressBar : public QWidget {
    Q_OBJECT
  public:
    explicit RunProgressBar(QWidget* parent = nullptr);

    void showProgress(const RunProgress& progress);
    void finish();
    QString text() const;
    QPushButton* cancelButton() const { return cancel_; }

  signals:
    void cancelRequested();

  private:
    QLabel* label_;
    QProgressBar* bar_;
    QPushButton* cancel_;
    bool stopping_ = false;
};

// "12 s", "3 min 5 s", "unknown"
QString formatEta(double seconds);

}  // namespace folio::ui
