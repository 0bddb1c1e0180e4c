// SPDX-License-Identifier: GPL-3.0-or-later
// MessageBanner: the strip at the top of the window where failures, warnings and notices are
// shown. Owns: its label and close button. Promises: a new message replaces the shown one and
// is kept in history() (newest last); errors stay until closed, notices too, so nothing is missed
// behind a timer. Never opens a modal dialog (the app keeps running).
#pragma once

#include <QFrame>
#include <QStringList>

class QLabel;

namespace folio::ui {

class MessageBanner : public QFrame {
    Q_OBJECT
  public:
    enum class Level { Info, Warning, Error };

    explicit MessageBanner(QWidget* parent = nullptr);

    void show(Level level, const QString& text);
    QString text() const;
    Level level() const { return level_; }
    const QStringList& history() const { return history_; }

  private:
    QLabel* label_;
    Level level_ = Level::Info;
    QStringList history_;
};

}  // namespace folio::ui
