// SPDX-License-Identifier: GPL-3.0-or-later
#include "context_gauge.h"

#include <algorithm>

#include "answer_markdown.h"

namespace folio::ui {

ContextGauge::ContextGauge(QWidget* parent) : QProgressBar(parent) {
    setObjectName(QStringLiteral("contextGauge"));
    setRange(0, 1000);
    setTextVisible(true);
    setUsage(0, context_);
}

void ContextGauge::setUsage(int64_t usedTokens, int64_t contextTokens) {
    used_ = usedTokens;
    context_ = contextTokens > 0 ? contextTokens : 1'048'576;
    const double fraction = static_cast<double>(used_) / static_cast<double>(context_);
    setValue(static_cast<int>(std::clamp(fraction, 0.0, 1.0) * 1000.0));
    const QString text = tr("%1 / %2 tokens").arg(groupedNumber(used_), groupedNumber(context_));
    setFormat(used_ > context_ ? tr("%1 — over the context").arg(text) : text);
    setToolTip(used_ > context_
                   ? tr("The enabled sources do not fit the model's context: disable or remove "
                        "some before asking.")
                   : tr("Tokens of the enabled sources in the model's context"));
}

}  // namespace folio::ui
