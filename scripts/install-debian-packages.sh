#!/usr/bin/env bash
# Installs Debian packages that a script of this directory needs and the machine lacks
# (valgrind, llvm-profdata, dnsmasq, Chromium): as root with apt-get, quietly; otherwise it
# names the packages to install and fails.
#
#   scripts/install-debian-packages.sh PACKAGE...
set -euo pipefail

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: the Debian package(s) $*; install them as root (apt-get install $*)" >&2
    exit 1
fi
echo "installing $* (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
