// SPDX-License-Identifier: GPL-3.0-or-later
// FirstRunDialog: shown when no model has been chosen. The user either picks a Kimi Linear
// checkpoint folder (checked with the engine's parsers; what is missing is listed and the dialog
// stays open) or opens the bundled demo model, which is labelled as such.
// Owns: its widgets. Promises: accepted() only with a usable folder or the demo chosen.
// Never writes settings.
#pragma once

#include <QDialog>

class QLabel;

namespace folio::ui {

class FirstRunDialog : public QDialog {
    Q_OBJECT
  public:
    explicit FirstRunDialog(QWidget* parent = nullptr);

    bool demoChosen() const { return demo_; }
    QString modelFolder() const { return folder_; }
    // Checks `folder` and accepts, or shows what is missing. Returns whether it was accepted.
    bool tryFolder(const QString& folder);
    QString problemText() const;

  private:
    QLabel* problems_;
    bool demo_ = false;
    QString folder_;
};

}  // namespace folio::ui
