// SPDX-License-Identifier: GPL-3.0-or-later
// ContextGauge: how much of the model's context the enabled sources fill, "used / 1,048,576
// tokens". Owns: nothing but its bar. Promises: the bar never overflows; over the limit it says so
// in its text and tooltip. Never counts tokens itself.
#pragma once

#include <QProgressBar>

#include <cstdint>

namespace folio::ui {

class ContextGauge : public QProgressBar {
    Q_OBJECT
  public:
    explicit ContextGauge(QWidget* parent = nullptr);

    void setUsage(int64_t usedTokens, int64_t contextTokens);
    int64_t usedTokens() const { return used_; }
    int64_t contextTokens() const { return context_; }

  private:
    int64_t used_ = 0;
    int64_t context_ = 1'048'576;
};

}  // namespace folio::ui
