// SPDX-License-Identifier: GPL-3.0-or-later
#include "run_progress_bar.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>

#include <cmath>

#include "answer_markdown.h"

namespace folio::ui {

RunProgressBar::RunProgressBar(QWidget* parent)
    : QWidget(parent),
      label_(new QLabel(this)),
      bar_(new QProgressBar(this)),
      cancel_(new QPushButton(tr("Cancel"), this)) {
    setObjectName(QStringLiteral("runProgress"));
    bar_->setMaximumWidth(220);
    bar_->setTextVisible(false);
    cancel_->setToolTip(tr("Stop reading or answering (Esc)"));
    connect(cancel_, &QPushButton::clicked, this, [this] {
        stopping_ = true;
        label_->setText(tr("Stopping…"));
        emit cancelRequested();
    });
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(label_);
    layout->addWidget(bar_);
    layout->addWidget(cancel_);
    hide();
}

void RunProgressBar::showProgress(const RunProgress& p) {
    if (stopping_)
        return;
    QString text = p.what;
    if (p.total > 0) {
        const bool megabytes = p.kind == RunProgress::Kind::Loading;
        const bool files = p.kind == RunProgress::Kind::Reading;
        text += QStringLiteral(": %1 / %2 %3")
                    .arg(groupedNumber(p.done), groupedNumber(p.total),
                         megabytes ? tr("MiB")
                         : files   ? tr("sources")
                                   : tr("tokens"));
        bar_->setRange(0, 1000);
        bar_->setValue(
            static_cast<int>(1000.0 * static_cast<double>(p.done) / static_cast<double>(p.total)));
    } else {
        bar_->setRange(0, 0);  // busy
    }
    if (p.tokensPerSecond > 0)
        text += QStringLiteral(" · %1 tokens/s").arg(p.tokensPerSecond, 0, 'f', 0);
    if (p.etaSeconds >= 0)
        text += QStringLiteral(" · ETA %1").arg(formatEta(p.etaSeconds));
    label_->setText(text);
    setVisible(true);
}

void RunProgressBar::finish() {
    stopping_ = false;
    label_->clear();
    hide();
}

QString RunProgressBar::text() const {
    return label_->text();
}

QString formatEta(double seconds) {
    if (seconds < 0 || !std::isfinite(seconds))
        return QObject::tr("unknown");
    const auto s = static_cast<long long>(std::llround(seconds));
    if (s < 60)
        return QStringLiteral("%1 s").arg(s);
    if (s < 3600)
        return QStringLiteral("%1 min %2 s").arg(s / 60).arg(s % 60);
    return QStringLiteral("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60);
}

}  // namespace folio::ui
