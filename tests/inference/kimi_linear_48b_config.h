// SPDX-License-Identifier: GPL-3.0-or-later
// The official 48B config, for the parser and checkpoint-layout tests.
#pragma once

#include "inference/kimi_linear_48b_config.h"

namespace folio::tests {

inline constexpr const char* kKimiLinear48BConfig = folio::inference::kKimiLinear48BA3BConfigJson;

}  // namespace folio::tests
