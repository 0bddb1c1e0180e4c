// SPDX-License-Identifier: GPL-3.0-or-later
// SettingsDialog: model folder (or the demo model), backend (CPU or a CUDA device), sampling,
// snapshot disk budget and data folder. Owns: its form. Promises: OK is refused, with the list of
// what is missing, while the chosen model folder is not a checkpoint Folio can open; settings()
// returns exactly what the form shows. Never writes QSettings (the caller saves).
#pragma once

#include <QDialog>

#include "app_settings.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QRadioButton;
class QSpinBox;

namespace folio::ui {

class SettingsDialog : public QDialog {
    Q_OBJECT
  public:
    explicit SettingsDialog(const AppSettings& settings, QWidget* parent = nullptr);

    AppSettings settings() const;
    // Empty when the model choice is usable, else the reasons.
    QString modelProblem() const;

    void accept() override;

  private:
    void updateModelStatus();

    AppSettings original_;
    QRadioButton* demo_;
    QRadioButton* folder_;
    QLineEdit* modelDir_;
    QLabel* modelStatus_;
    QComboBox* backend_;
    QSpinBox* cudaDevice_;
    QSpinBox* threads_;
    QDoubleSpinBox* temperature_;
    QSpinBox* topK_;
    QDoubleSpinBox* topP_;
    QDoubleSpinBox* repetition_;
    QSpinBox* seed_;
    QSpinBox* maxTokens_;
    QSpinBox* diskBudget_;
    QLineEdit* dataDir_;
};

}  // namespace folio::ui
