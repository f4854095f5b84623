#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver are installed for the browser tests
# (crates/e2e-browser). Quiet when both are present; installs the Debian packages
# `chromium` and `chromium-driver` when we are root with apt-get; otherwise explains and fails.
set -euo pipefail

CHROMIUM="${CHROMIUM_BIN:-/usr/bin/chromium}"
CHROMEDRIVER="${CHROMEDRIVER_BIN:-/usr/bin/chromedriver}"

present() { [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; }

if present; then
    exit 0
fi

if ! "$(dirname "$0")/install-debian-packages.sh" chromium chromium-driver; then
    echo "or point CHROMIUM_BIN / CHROMEDRIVER_BIN at matching Chromium and chromedriver binaries" >&2
    exit 1
fi
if ! present; then
    echo "apt-get finished but $CHROMIUM or $CHROMEDRIVER is still missing" >&2
    exit 1
fi
