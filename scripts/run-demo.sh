#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Quick start, command 1: installs the build dependencies, builds Folio and opens the desktop
# application on the bundled demo model, with a demo session of public-domain texts ready to ask
# (data in ~/.local/share/folio-demo).
# The demo model has random weights (generated on first use by Folio's own tool): its answers are
# not meaningful, and the app labels it so wherever it is in use.
#   --engine-demo   run the engine's own console demo (folio-engine demo) instead of the app;
#                   this is also what runs when there is no display (neither DISPLAY nor
#                   WAYLAND_DISPLAY is set).
# Other arguments go to the program that runs.
set -euo pipefail
cd "$(dirname "$0")/.."

engine_demo=0
args=()
for arg in "$@"; do
    if [ "$arg" = "--engine-demo" ]; then
        engine_demo=1
    else
        args+=("$arg")
    fi
done
if [ "$engine_demo" -eq 0 ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    echo "run-demo: no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop" \
        "app cannot open; running the engine demo (folio-engine demo) instead." >&2
    engine_demo=1
fi

./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
if [ "$engine_demo" -eq 1 ]; then
    cmake --build build --target folio-engine
    exec ./build/folio-engine demo "${args[@]}"
fi
cmake --build build --target folio
# A data folder of its own, so the demo session is there on the first run whatever else the
# default data folder holds.
exec ./build/folio --demo --data "${XDG_DATA_HOME:-$HOME/.local/share}/folio-demo" "${args[@]}"
