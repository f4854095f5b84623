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

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    if present; then
        exit 0
    fi
    echo "apt-get finished but $CHROMIUM or $CHROMEDRIVER is still missing" >&2
    exit 1
fi

cat >&2 <<MSG
The browser tests need $CHROMIUM and $CHROMEDRIVER.
Install them as root on Debian/Ubuntu:
    apt-get update && apt-get install -y chromium chromium-driver
or point CHROMIUM_BIN / CHROMEDRIVER_BIN at matching Chromium and chromedriver binaries.
MSG
exit 1
