#!/usr/bin/env bash
# Builds the release app with profile-guided optimisation (PGO): an instrumented build runs the
# benchmark's workloads, and the compiler then lays out and optimises the app for the paths
# they took (crates/bench/README.md, "A build guided by the benchmark's profile").
#
#   scripts/build-pgo.sh [cargo build flags, e.g. --no-default-features]
#
# Steps, each in a target directory of its own under $CARGO_TARGET_DIR (the plain release
# build is left alone):
#   1. `compare` (lms-bench), which drives the training, as a plain release build;
#   2. lms-app instrumented (-Cprofile-generate);
#   3. the training: `compare --no-peer` against the instrumented app, on PostgreSQL (one run
#      as shipped, one with DATABASE_GROUP_COMMIT=on) and on SQLite, so that no store's hot
#      path is compiled as cold code;
#   4. the counts merged with llvm-profdata (the one of rustc's LLVM version; Debian's
#      llvm-<major> package is installed when missing and run as root);
#   5. lms-app built with -Cprofile-use and linked statically (glibc included: no shared
#      library pages resident, 0.5-1.0 MiB less RSS); run as root, its name resolution is
#      checked (scripts/check-name-resolution.sh); its path is printed last.
#
# Needs PostgreSQL at TEST_DATABASE_URL (as scripts/test.sh) and about 25 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lms-target}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo_flags=("$@")

scripts/ensure-toolchain.sh
scripts/ensure-postgres.sh
host="$(rustc --print host-tuple)"
llvm_major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"

# The merged profile must be written by the LLVM that will read it: rustc's own.
find_profdata() {
    local candidate
    for candidate in \
        "$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata" \
        "/usr/lib/llvm-$llvm_major/bin/llvm-profdata" \
        "$(command -v "llvm-profdata-$llvm_major" || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
if ! profdata="$(find_profdata)"; then
    # Not root: it says which package is missing; the message below adds rustup's component.
    scripts/install-debian-packages.sh "llvm-$llvm_major" || true
    profdata="$(find_profdata)" || {
        echo "no llvm-profdata for LLVM $llvm_major (rustc's): install Debian's llvm-$llvm_major," \
            "or the llvm-tools rustup component" >&2
        exit 1
    }
fi

pgo_dir="$CARGO_TARGET_DIR/pgo"
raw_dir="$pgo_dir/raw"
profile="$pgo_dir/lms-app.profdata"
rm -rf "$raw_dir"
mkdir -p "$raw_dir"

echo "== 1/5 compare (the training's load generator)" >&2
cargo build --release --locked -p lms-bench --bin compare
compare="$CARGO_TARGET_DIR/release/compare"

# --target keeps RUSTFLAGS off build scripts and procedural macros, which the training never runs.
echo "== 2/5 lms-app, instrumented" >&2
RUSTFLAGS="-Cprofile-generate=$raw_dir" CARGO_TARGET_DIR="$pgo_dir/generate" \
    cargo build --release --locked -p lms-app --target "$host" "${cargo_flags[@]}"
instrumented="$pgo_dir/generate/$host/release/lms-app"

echo "== 3/5 training" >&2
# Each run ends the app with SIGTERM; it exits normally and writes its counts into $raw_dir.
train=(--no-peer --events 1000 --reads 5000 --app-bin "$instrumented")
"$compare" --postgres "${train[@]}"
DATABASE_GROUP_COMMIT=on "$compare" --postgres "${train[@]}"
"$compare" "${train[@]}"
if ! compgen -G "$raw_dir/*.profraw" >/dev/null; then
    echo "the instrumented app wrote no profile into $raw_dir" >&2
    exit 1
fi

echo "== 4/5 merging the profile" >&2
"$profdata" merge -o "$profile" "$raw_dir"/*.profraw

echo "== 5/5 lms-app, optimised with the profile, linked statically" >&2
RUSTFLAGS="-Cprofile-use=$profile -Ctarget-feature=+crt-static" CARGO_TARGET_DIR="$pgo_dir/use" \
    cargo build --release --locked -p lms-app --target "$host" "${cargo_flags[@]}"
optimised="$pgo_dir/use/$host/release/lms-app"
# A static glibc resolves names itself: check it does, where a network namespace can be made.
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1; then
    scripts/check-name-resolution.sh --app-bin "$optimised" >&2
else
    echo "name resolution not checked (needs root and ip): scripts/check-name-resolution.sh" >&2
fi
echo "$optimised"
