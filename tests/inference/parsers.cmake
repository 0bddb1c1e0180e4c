# SPDX-License-Identifier: GPL-3.0-or-later
# Test suites for the model-file parsers (JSON, safetensors, config.json, checkpoints).
