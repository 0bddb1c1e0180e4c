#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Quick start, command 1: installs the build dependencies, builds Folio and runs the main job.
# Without a downloaded model it runs on the bundled demo model (random weights, generated on
# first use by Folio's own tool; its output is not meaningful).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
exec ./build/folio-engine demo "$@"
