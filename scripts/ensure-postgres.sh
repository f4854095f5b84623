#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at TEST_DATABASE_URL's host and port. On a Debian machine
# with a local cluster it starts the cluster; elsewhere it only checks and explains.
set -euo pipefail

url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$port" = "$hostport" ] && port=5432

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if answers; then
    exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
        echo "starting PostgreSQL $version cluster 'main'"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do
        answers && exit 0
        sleep 1
    done
fi
echo "PostgreSQL is not reachable at $host:$port; start it (e.g. docker compose up -d db) or set TEST_DATABASE_URL" >&2
exit 1
