#!/usr/bin/env bash
# Proves the hexagon's shape from the dependency graph (cargo tree), not from good intentions:
#   1. the inner rings (domain, ports, use cases) pull in no I/O or framework crate and no
#      adapter, directly or transitively;
#   2. no adapter depends on another adapter (the shared SQL row crate excepted), neither in
#      its normal dependencies nor in its dev-dependencies;
#   3. the production binary (lms-app as the Docker image builds it, without the demo) holds no
#      test-only crate, and with the demo only the sandbox besides.
# Any violation is printed and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

inner="lms-domain lms-ports lms-use-cases"
adapters="lms-actix-api lms-postgres lms-sqlite lms-sql-rows lms-stripe-http lms-password-argon2 lms-in-memory lms-stripe-sandbox"
# What every adapter may depend on: the inner rings, and the SQL adapters' shared row crate.
allowed_for_adapters="$inner lms-sql-rows"
test_only="lms-in-memory lms-storage-contract lms-gateway-contract lms-test-db lms-e2e-browser lms-bench"
forbidden_io='^(tokio|actix[a-z_-]*|diesel[a-z_-]*|reqwest|hyper|serde_json|sqlx|bb8|postgres|tokio-postgres|rusqlite|libsqlite3-sys)$'

status=0
fail() {
    echo "layering violation: $*" >&2
    status=1
}

# Crate names in the tree of `$1` (extra cargo tree arguments follow), without `$1` itself.
# A tree cargo cannot resolve stops the whole check: an empty tree would prove nothing.
tree_of() {
    local crate=$1 tree
    shift
    if ! tree=$(cargo tree -p "$crate" "$@" --prefix none --format '{p}' --quiet); then
        echo "layering check: cargo tree -p $crate $* failed" >&2
        exit 1
    fi
    echo "$tree" | awk '{print $1}' | sort -u | grep -vx "$crate" || true
}

# Workspace crates (lms-*) among `$2`, minus those in the space-separated list `$1`.
lms_outside() {
    local allowed=" $1 "
    for name in $2; do
        case "$name" in
            lms-*) [[ "$allowed" == *" $name "* ]] || echo "$name" ;;
        esac
    done
}

for crate in $inner; do
    tree=$(tree_of "$crate" -e normal)
    io=$(echo "$tree" | grep -E "$forbidden_io" | tr '\n' ' ' || true)
    [ -z "$io" ] || fail "$crate depends on I/O or framework crates: $io"
    others=$(lms_outside "$inner" "$tree" | tr '\n' ' ')
    [ -z "$others" ] || fail "$crate depends on adapters or other outer crates: $others"
    [ -n "$io$others" ] || echo "layering ok: $crate has no I/O, framework or adapter dependency"
done

for crate in $adapters; do
    normal_tree=$(tree_of "$crate" -e normal)
    # Dev-dependencies: the direct ones only (a test-support crate may itself use adapters).
    dev_tree=$(tree_of "$crate" -e dev --depth 1)
    normal=$(lms_outside "$allowed_for_adapters" "$normal_tree" | tr '\n' ' ')
    dev=$(lms_outside "$allowed_for_adapters lms-storage-contract lms-gateway-contract lms-test-db" \
        "$dev_tree" | tr '\n' ' ')
    [ -z "$normal" ] || fail "$crate (an adapter) depends on $normal"
    [ -z "$dev" ] || fail "$crate (an adapter) has dev-dependencies on adapters: $dev"
    [ -n "$normal$dev" ] || echo "layering ok: $crate depends on no other adapter"
done

for features in "--no-default-features" "--features demo"; do
    # shellcheck disable=SC2086
    tree=$(tree_of lms-app -e normal $features)
    leaked=""
    for name in $test_only; do
        if echo "$tree" | grep -qx "$name"; then leaked="$leaked $name"; fi
    done
    if [ "$features" = "--no-default-features" ] && echo "$tree" | grep -qx lms-stripe-sandbox; then
        leaked="$leaked lms-stripe-sandbox"
    fi
    if [ -n "$leaked" ]; then
        fail "the production binary (lms-app $features) contains test-only crates:$leaked"
    else
        echo "layering ok: lms-app $features holds no test-only crate"
    fi
done

exit $status
