#!/usr/bin/env bash
# Headless Chromium for the review UI's browser tests (tests/test_review_ui.py, marker `browser`).
#
#   bash scripts/setup_browser.sh
#
# Installs the distribution's chromium package with apt-get when /usr/bin/chromium is missing;
# a second run is a no-op. The tests drive it through Playwright's Python package with
# executable_path=/usr/bin/chromium, so `playwright install` (which downloads its own browser
# builds) is never needed and never run. Non-interactive; safe for CI.
set -euo pipefail

log() { printf '[setup_browser] %s\n' "$*"; }
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    log "$CHROMIUM is present: nothing to do"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        log "chromium is missing and installing it needs root (or sudo): apt-get install -y chromium"
        exit 1
    fi
fi

log "installing chromium with apt-get"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

if [ ! -x "$CHROMIUM" ]; then
    log "apt-get finished but $CHROMIUM is still missing"
    exit 1
fi
log "installed: $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
