// SPDX-License-Identifier: GPL-3.0-or-later
#include "settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "launch_options.h"
#include "model_folder_check.h"

namespace folio::ui {
namespace {

QWidget* withBrowse(QWidget* parent, QLineEdit* edit, const QString& caption) {
    auto* row = new QWidget(parent);
    auto* layout = new QHBoxLayout(row);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* browse = new QPushButton(QObject::tr("Browse…"), row);
    layout->addWidget(edit, 1);
    layout->addWidget(browse);
    QObject::connect(browse, &QPushButton::clicked, edit, [edit, caption, parent] {
        const QString dir = QFileDialog::getExistingDirectory(parent, caption, edit->text());
        if (!dir.isEmpty()) {
            edit->setText(dir);
            emit edit->editingFinished();
        }
    });
    return row;
}

}  // namespace

SettingsDialog::SettingsDialog(const AppSettings& settings, QWidget* parent)
    : QDialog(parent),
      original_(settings),
      demo_(new QRadioButton(QString::fromUtf8(kDemoModelLabel), this)),
      folder_(new QRadioButton(tr("Kimi Linear checkpoint folder:"), this)),
      modelDir_(new QLineEdit(settings.modelDir, this)),
      modelStatus_(new QLabel(this)),
      backend_(new QComboBox(this)),
      cudaDevice_(new QSpinBox(this)),
      threads_(new QSpinBox(this)),
      temperature_(new QDoubleSpinBox(this)),
      topK_(new QSpinBox(this)),
      topP_(new QDoubleSpinBox(this)),
      repetition_(new QDoubleSpinBox(this)),
      seed_(new QSpinBox(this)),
      maxTokens_(new QSpinBox(this)),
      diskBudget_(new QSpinBox(this)),
      dataDir_(new QLineEdit(settings.dataDir, this)) {
    setWindowTitle(tr("Folio settings"));
    setObjectName(QStringLiteral("settingsDialog"));
    modelDir_->setObjectName(QStringLiteral("modelFolder"));
    dataDir_->setObjectName(QStringLiteral("dataFolder"));

    auto* model = new QGroupBox(tr("Model"), this);
    auto* modelLayout = new QVBoxLayout(model);
    modelLayout->addWidget(folder_);
    modelLayout->addWidget(withBrowse(this, modelDir_, tr("Choose a Kimi Linear checkpoint")));
    modelLayout->addWidget(modelStatus_);
    modelLayout->addWidget(demo_);
    modelStatus_->setWordWrap(true);
    (settings.useDemoModel ? demo_ : folder_)->setChecked(true);

    auto* engine = new QGroupBox(tr("Backend"), this);
    auto* engineForm = new QFormLayout(engine);
    backend_->addItem(tr("CPU (slow; for small models and checks)"));
#ifdef FOLIO_UI_HAVE_CUDA
    backend_->addItem(tr("CUDA GPU"));
#else
    backend_->addItem(tr("CUDA GPU (not in this build)"));
#endif
    backend_->setCurrentIndex(settings.useCuda ? 1 : 0);
    cudaDevice_->setRange(0, 15);
    cudaDevice_->setValue(settings.cudaDevice);
    threads_->setRange(0, 1024);
    threads_->setSpecialValueText(tr("all cores"));
    threads_->setValue(settings.cpuThreads);
    engineForm->addRow(tr("Backend:"), backend_);
    engineForm->addRow(tr("CUDA device:"), cudaDevice_);
    engineForm->addRow(tr("CPU threads:"), threads_);

    auto* sampling = new QGroupBox(tr("Answers"), this);
    auto* samplingForm = new QFormLayout(sampling);
    temperature_->setRange(0.0, 2.0);
    temperature_->setSingleStep(0.1);
    temperature_->setSpecialValueText(tr("0 (greedy)"));
    temperature_->setValue(settings.temperature);
    topK_->setRange(0, 100000);
    topK_->setSpecialValueText(tr("no limit"));
    topK_->setValue(settings.topK);
    topP_->setRange(0.01, 1.0);
    topP_->setSingleStep(0.05);
    topP_->setValue(settings.topP);
    repetition_->setRange(1.0, 3.0);
    repetition_->setSingleStep(0.05);
    repetition_->setValue(settings.repetitionPenalty);
    seed_->setRange(0, 1'000'000'000);
    seed_->setValue(static_cast<int>(settings.seed));
    maxTokens_->setRange(1, 65536);
    maxTokens_->setValue(settings.maxAnswerTokens);
    samplingForm->addRow(tr("Temperature:"), temperature_);
    samplingForm->addRow(tr("Top-k:"), topK_);
    samplingForm->addRow(tr("Top-p:"), topP_);
    samplingForm->addRow(tr("Repetition penalty:"), repetition_);
    samplingForm->addRow(tr("Seed:"), seed_);
    samplingForm->addRow(tr("Longest answer (tokens):"), maxTokens_);

    auto* storageBox = new QGroupBox(tr("Storage"), this);
    auto* storageForm = new QFormLayout(storageBox);
    diskBudget_->setRange(1, 65536);
    diskBudget_->setSuffix(tr(" GiB"));
    diskBudget_->setValue(settings.diskBudgetGiB);
    dataDir_->setPlaceholderText(defaultDataDir());
    storageForm->addRow(tr("Saved model state (snapshots) up to:"), diskBudget_);
    storageForm->addRow(tr("Data folder:"),
                        withBrowse(this, dataDir_, tr("Choose the data folder")));

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &SettingsDialog::reject);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(model);
    layout->addWidget(engine);
    layout->addWidget(sampling);
    layout->addWidget(storageBox);
    layout->addWidget(
        new QLabel(tr("Changes to the model, backend or data folder reopen the model."), this));
    layout->addWidget(buttons);

    connect(modelDir_, &QLineEdit::editingFinished, this, [this] {
        folder_->setChecked(true);
        updateModelStatus();
    });
    connect(demo_, &QRadioButton::toggled, this, &SettingsDialog::updateModelStatus);
    updateModelStatus();
}

AppSettings SettingsDialog::settings() const {
    AppSettings s = original_;
    s.useDemoModel = demo_->isChecked();
    s.modelDir = modelDir_->text().trimmed();
    s.useCuda = backend_->currentIndex() == 1;
    s.cudaDevice = cudaDevice_->value();
    s.cpuThreads = threads_->value();
    s.temperature = temperature_->value();
    s.topK = topK_->value();
    s.topP = topP_->value();
    s.repetitionPenalty = repetition_->value();
    s.seed = seed_->value();
    s.maxAnswerTokens = maxTokens_->value();
    s.diskBudgetGiB = diskBudget_->value();
    s.dataDir = dataDir_->text().trimmed();
    return s;
}

QString SettingsDialog::modelProblem() const {
    if (demo_->isChecked())
        return {};
    const QString folder = modelDir_->text().trimmed();
    const QStringList problems = modelFolderProblems(folder);
    return problems.isEmpty() ? QString() : describeModelFolderProblems(folder, problems);
}

void SettingsDialog::updateModelStatus() {
    QString status;
    if (!demo_->isChecked()) {
        const QStringList problems = modelFolderProblems(modelDir_->text().trimmed());
        status = problems.isEmpty() ? tr("This folder holds a Kimi Linear checkpoint.")
                                    : tr("Not a Kimi Linear checkpoint Folio can open:");
        for (const QString& p : problems)
            status += QStringLiteral("\n• ") + p;
    }
    modelStatus_->setText(status);
    if (isVisible()) {
        // A wrapped label does not ask for its height by itself.
        modelStatus_->setMinimumHeight(modelStatus_->heightForWidth(modelStatus_->width()));
        adjustSize();
    }
}

void SettingsDialog::accept() {
    updateModelStatus();
    if (!modelProblem().isEmpty())
        return;  // the reasons are shown under the folder
    QDialog::accept();
}

}  // namespace folio::ui
