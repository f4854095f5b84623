#!/usr/bin/env bash
# Makes sure `cargo deny` is on the PATH: installs it from crates.io (a few minutes, once per
# machine; the binary lands in ~/.cargo/bin) when it is missing.
set -euo pipefail
if cargo deny --version >/dev/null 2>&1; then
    exit 0
fi
echo "installing cargo-deny from crates.io (once per machine)"
cargo install cargo-deny --locked --version "^0.20" --quiet
