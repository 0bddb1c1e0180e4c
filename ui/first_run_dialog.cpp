// SPDX-License-Identifier: GPL-3.0-or-later
#include "first_run_dialog.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

#include "launch_options.h"
#include "model_folder_check.h"

namespace folio::ui {

FirstRunDialog::FirstRunDialog(QWidget* parent) : QDialog(parent), problems_(new QLabel(this)) {
    setWindowTitle(tr("Welcome to Folio"));
    setObjectName(QStringLiteral("firstRunDialog"));
    auto* intro = new QLabel(
        tr("<p>Folio answers questions about your documents with the <b>Kimi Linear</b> model "
           "(Kimi-Linear-48B-A3B-Instruct), on this computer.</p>"
           "<p>Choose the folder where you downloaded the model (config.json, the "
           "model-*.safetensors files, tiktoken.model and tokenizer_config.json), or try Folio "
           "with the small bundled demo model.</p>"
           "<p><i>The demo model has random weights: answers are not meaningful.</i></p>"),
        this);
    intro->setWordWrap(true);
    problems_->setWordWrap(true);
    problems_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    problems_->hide();
    auto* choose = new QPushButton(tr("Choose model folder…"), this);
    auto* demo = new QPushButton(tr("Open the demo model"), this);
    auto* quit = new QPushButton(tr("Quit"), this);
    choose->setDefault(true);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(choose);
    buttons->addWidget(demo);
    buttons->addStretch(1);
    buttons->addWidget(quit);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(intro);
    layout->addWidget(problems_);
    layout->addLayout(buttons);
    setMinimumWidth(520);

    connect(choose, &QPushButton::clicked, this, [this] {
        const QString folder =
            QFileDialog::getExistingDirectory(this, tr("Choose a Kimi Linear checkpoint folder"));
        if (!folder.isEmpty())
            tryFolder(folder);
    });
    connect(demo, &QPushButton::clicked, this, [this] {
        demo_ = true;
        accept();
    });
    connect(quit, &QPushButton::clicked, this, &QDialog::reject);
}

bool FirstRunDialog::tryFolder(const QString& folder) {
    const QStringList problems = modelFolderProblems(folder);
    if (!problems.isEmpty()) {
        problems_->setText(describeModelFolderProblems(folder, problems));
        problems_->show();
        return false;
    }
    folder_ = folder;
    demo_ = false;
    accept();
    return true;
}

QString FirstRunDialog::problemText() const {
    return problems_->text();
}

}  // namespace folio::ui
