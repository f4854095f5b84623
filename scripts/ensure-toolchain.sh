#!/usr/bin/env bash
# Makes the toolchain pinned in rust-toolchain.toml available. On a machine whose installed
# stable toolchain is that very version, it gives that toolchain the version's name (rustup
# refuses `toolchain link` for official names, so as a symbolic link beside it); otherwise
# rustup installs it (which needs the network).
set -euo pipefail
cd "$(dirname "$0")/.."

pinned=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if rustup run "$pinned" rustc --version >/dev/null 2>&1; then
    exit 0
fi
stable=$(rustup run stable rustc --version 2>/dev/null | awk '{print $2}' || true)
if [ "$stable" = "$pinned" ]; then
    sysroot=$(rustup run stable rustc --print sysroot)
    triple=$(rustup run stable rustc -vV | sed -n 's/^host: //p')
    ln -sfn "$sysroot" "$(dirname "$sysroot")/$pinned-$triple"
    echo "named the installed stable toolchain $pinned"
elif rustup toolchain install "$pinned" --profile minimal --component clippy --component rustfmt; then
    echo "installed $pinned"
else
    echo "rust $pinned (rust-toolchain.toml) is not installed and cannot be installed here: install it, or update rust-toolchain.toml" >&2
    exit 1
fi
