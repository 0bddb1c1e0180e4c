#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs the Debian 12 packages Folio needs to build and test. Idempotent: packages that are
# already present are left alone, and apt-get is not run at all when nothing is missing.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config git ca-certificates
    qt6-base-dev qt6-base-dev-tools libgl-dev
    libspdlog-dev libfmt-dev nlohmann-json3-dev libicu-dev
    libsqlite3-dev
    libpoppler-qt6-dev libgit2-dev qpdf fonts-dejavu-core  # ingest: PDF text, git ignore rules; tests: encrypt/rotate PDFs, fonts for drawn PDFs
    librsvg2-bin  # packaging: the PNG icons are rendered from the SVG at build time (rsvg-convert)
    qt6-qpa-plugins  # the desktop app: platform themes (follows the system light/dark palette)
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
