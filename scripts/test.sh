#!/usr/bin/env bash
# The one test command: makes sure what the tests need is there (a local PostgreSQL, headless
# Chromium with chromedriver for the browser test) and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lms-target}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

scripts/ensure-toolchain.sh
scripts/ensure-postgres.sh
scripts/ensure-chromium.sh

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
