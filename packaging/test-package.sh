#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The Debian package, checked end to end: build -> cpack -> lintian -> install -> run ->
# screenshot -> remove.
#
#   packaging/test-package.sh [--build-dir DIR] [--rootfs DIR] [--screenshot FILE] [--no-build]
#
#   --build-dir DIR   build folder (default build-pkg), configured with -DFOLIO_CUDA=OFF
#                     -DFOLIO_TESTS=OFF and Debian's hardening flags (dpkg-buildflags)
#   --rootfs DIR      install and run in a copy of DIR, a fresh Debian 12 tree made with
#                     `debootstrap --variant=minbase bookworm DIR` (needs root and the network
#                     for apt); without it the package is installed on this machine and removed
#                     again at the end
#   --screenshot FILE where to keep the screenshot of the application started from its menu
#                     entry under Xvfb with the demo model chosen (default
#                     BUILD/package-screenshot.png); the first start's welcome dialog is kept
#                     beside it as NAME-first-run.png
#   --no-build        package what BUILD already has
#
# Exits non-zero at the first failed step; lintian's output is kept in BUILD/lintian.txt and
# must have no errors and no warnings other than those explained in packaging/LINTIAN.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD

BUILD=build-pkg
ROOTFS=""
SHOT=""
DO_BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --build-dir) BUILD=$2; shift 2 ;;
        --rootfs) ROOTFS=$2; shift 2 ;;
        --screenshot) SHOT=$2; shift 2 ;;
        --no-build) DO_BUILD=0; shift ;;
        *) echo "usage: $0 [--build-dir DIR] [--rootfs DIR] [--screenshot FILE] [--no-build]" >&2; exit 2 ;;
    esac
done
BUILD=$(realpath -m "$BUILD")
SHOT=${SHOT:-$BUILD/package-screenshot.png}
SHOT=$(realpath -m "$SHOT")

step() { printf '\n== %s\n' "$*"; }
die() { echo "test-package: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Tools of this check (not of the package).
tools=(lintian desktop-file-utils appstream xvfb xauth x11-apps imagemagick librsvg2-bin fakeroot)
missing=()
for p in "${tools[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing the check's tools: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$DO_BUILD" = 1 ]; then
    ./scripts/install-deps.sh
    step "configure and build ($BUILD)"
    export DEB_BUILD_MAINT_OPTIONS=hardening=+all
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFOLIO_CUDA=OFF -DFOLIO_TESTS=OFF \
        -DCMAKE_CXX_FLAGS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)" \
        -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)"
    cmake --build "$BUILD" -j "$(nproc)"
fi

step "cpack -G DEB"
rm -f "$BUILD"/folio_*.deb
(cd "$BUILD" && cpack -G DEB)
DEB=$(ls "$BUILD"/folio_*.deb)
echo "$DEB"
dpkg-deb --info "$DEB"
dpkg-deb --contents "$DEB"

step "metadata validators"
CONTENTS=$(mktemp -d)
trap 'rm -rf "$CONTENTS"' EXIT
dpkg-deb -x "$DEB" "$CONTENTS"
if [ -f "$CONTENTS/usr/share/applications/folio.desktop" ]; then
    desktop-file-validate "$CONTENTS/usr/share/applications/folio.desktop"
    appstreamcli validate --no-net "$CONTENTS"/usr/share/metainfo/*.metainfo.xml
else
    echo "no desktop application in this build: no menu entry to validate"
fi

step "lintian"
lintian --info --display-info --tag-display-limit 0 "$DEB" 2>&1 | tee "$BUILD/lintian.txt" || true
if grep -q '^E: ' "$BUILD/lintian.txt"; then
    die "lintian reports errors (see $BUILD/lintian.txt)"
fi
unexplained=()
while read -r tag; do
    grep -q -- "\`$tag\`" packaging/LINTIAN.md || unexplained+=("$tag")
done < <(sed -n 's/^W: folio[^:]*: \([^ ]*\).*/\1/p' "$BUILD/lintian.txt" | sort -u)
if [ "${#unexplained[@]}" -gt 0 ]; then
    die "lintian warnings not explained in packaging/LINTIAN.md: ${unexplained[*]}"
fi

# --- Install into the target: a copy of a fresh Debian tree, or this machine -----------------
TARGET=""
cleanup_target() {
    if [ -n "$TARGET" ]; then
        for m in dev/pts dev proc; do $SUDO umount "$TARGET/$m" 2>/dev/null || true; done
        $SUDO rm -rf "$TARGET"
    fi
    rm -rf "$CONTENTS"
}
if [ -n "$ROOTFS" ]; then
    [ -x "$ROOTFS/usr/bin/apt-get" ] || die "$ROOTFS is not a Debian tree (debootstrap it first)"
    TARGET=$(mktemp -d /tmp/folio-target.XXXXXX)
    trap cleanup_target EXIT
    step "copying the fresh Debian tree $ROOTFS to $TARGET"
    $SUDO cp -a "$ROOTFS/." "$TARGET/"
    $SUDO mount -t proc proc "$TARGET/proc"
    $SUDO mount --bind /dev "$TARGET/dev"
    $SUDO mount --bind /dev/pts "$TARGET/dev/pts" || true
    $SUDO cp /etc/resolv.conf "$TARGET/etc/resolv.conf"
    $SUDO cp "$DEB" "$TARGET/tmp/"
    run() { $SUDO chroot "$TARGET" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
    TDEB=/tmp/$(basename "$DEB")
    TTMP=/tmp
    step "apt-get install $TDEB (in $TARGET)"
    run apt-get update -qq
    run apt-get install -y -qq --no-install-recommends "$TDEB"
else
    if dpkg-query -W -f='${Status}' folio 2>/dev/null | grep -q "install ok installed"; then
        die "a folio package is already installed on this machine; remove it first"
    fi
    run() { env "$@"; }
    TDEB=$DEB
    TTMP=$(mktemp -d)
    trap 'rm -rf "$CONTENTS" "$TTMP"; $SUDO apt-get remove --purge -y -qq folio >/dev/null 2>&1 || true' EXIT
    step "apt-get install $DEB (on this machine)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$DEB"
fi

step "the installed tools"
run dpkg -s folio | sed -n '/^Package/p;/^Version/p;/^Depends/p'
run folio-cli --help
run folio-engine 2>&1 | head -3 || true
DATA=$TTMP/folio-data
run rm -rf "$DATA"
run env FOLIO_DATA_DIR="$DATA" folio-engine demo --max-tokens 8 > "$BUILD/demo-stdout.txt" \
    2> "$BUILD/demo-stderr.txt"
cat "$BUILD/demo-stderr.txt" "$BUILD/demo-stdout.txt"
grep -q "in /usr/share/folio/demo-model" "$BUILD/demo-stderr.txt" ||
    die "folio-engine demo did not use the installed demo model"
run test ! -e "$DATA/models/demo" || die "folio-engine demo wrote a demo model of its own"
# A session on the installed demo model: ingest a text file, ask, see the statistics line.
run sh -c "printf 'Folio keeps the state of every document.\n' > $TTMP/note.txt"
SESSION=$(run folio-cli session new packaged --data "$DATA" | tail -1)
run folio-cli session add "$SESSION" "$TTMP/note.txt" --data "$DATA"
run folio-cli session ask "$SESSION" "What does Folio keep?" --max-tokens 8 --data "$DATA" \
    > "$BUILD/session-ask.txt" 2>&1
cat "$BUILD/session-ask.txt"
grep -q "prompt tokens" "$BUILD/session-ask.txt" || die "folio-cli session ask printed no statistics"
run test ! -e "$DATA/models/demo" || die "folio-cli wrote a demo model of its own"

# --- The application, started from its menu entry under Xvfb -------------------------------
if run test -f /usr/share/applications/folio.desktop; then
    EXEC=$(run sed -n 's/^Exec=//p' /usr/share/applications/folio.desktop | head -1)
    step "starting '$EXEC' (the menu entry's Exec line) under Xvfb"
    if [ -n "$ROOTFS" ]; then
        run apt-get install -y -qq --no-install-recommends xvfb xauth x11-apps >/dev/null
    fi
    # shoot NAME SECONDS: start the Exec line in a fresh Xvfb, capture the whole screen after
    # SECONDS, end the application; the capture is kept as $SHOTDIR/NAME.png.
    shoot() {
        run rm -f "$TTMP/screen.xwd"
        run env HOME="$TTMP/home" FOLIO_DATA_DIR="$TTMP/gui-data" xvfb-run -a -s "-screen 0 1440x900x24" \
            sh -c "mkdir -p \"\$HOME\"; $EXEC > $TTMP/gui.log 2>&1 & app=\$!; sleep $2; \
                   kill -0 \$app || { echo 'the application exited early'; cat $TTMP/gui.log; exit 1; }; \
                   xwd -root -silent > $TTMP/screen.xwd; kill \$app; wait \$app 2>/dev/null; true"
        run cat "$TTMP/gui.log" || true
        convert "xwd:$TARGET$TTMP/screen.xwd" -strip "png:$SHOTDIR/$1.png"
        echo "screenshot: $SHOTDIR/$1.png"
    }
    SHOTDIR=$(dirname "$SHOT")
    mkdir -p "$SHOTDIR"
    run rm -rf "$TTMP/home" "$TTMP/gui-data"
    # First start: no model chosen yet, so the welcome dialog.
    shoot "$(basename "$SHOT" .png)-first-run" 10
    # A user who chose the demo model: the main window with the demo session.
    run mkdir -p "$TTMP/home/.config/Folio"
    run sh -c "printf '[model]\ndemo=true\n' > $TTMP/home/.config/Folio/folio.conf"
    shoot "$(basename "$SHOT" .png)" 30
else
    echo "no desktop application in this package: no menu entry to start"
fi

step "remove"
if [ -n "$ROOTFS" ]; then
    run apt-get remove --purge -y -qq folio
    run test ! -e /usr/bin/folio-engine
else
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get remove --purge -y -qq folio
    test ! -e /usr/bin/folio-engine
fi
echo
echo "test-package: OK ($DEB)"
