#!/usr/bin/env bash
# Proves the hexagon's inner rings stay pure: the domain, the ports and the use cases must not
# pull in any I/O or framework crate, directly or transitively.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='^(tokio|actix[a-z_-]*|diesel[a-z_-]*|reqwest|hyper|serde_json|sqlx|bb8|postgres|tokio-postgres)$'
status=0
for crate in ${LAYERING_CRATES:-lms-domain lms-ports lms-use-cases}; do
    tree=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' --quiet)
    offenders=$(echo "$tree" | awk '{print $1}' | sort -u | grep -E "$forbidden" || true)
    if [ -n "$offenders" ]; then
        echo "layering violation: $crate depends on: $(echo "$offenders" | tr '\n' ' ')" >&2
        status=1
    else
        echo "layering ok: $crate has no I/O or framework dependency"
    fi
done
exit $status
