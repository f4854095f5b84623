#!/usr/bin/env bash
# Checks that a built lms-app resolves host names through DNS, which is what a statically
# linked glibc must still do (crates/bench/README.md, "Linked statically"): the Docker image's
# binary and scripts/build-pgo.sh's are static.
#
#   scripts/check-name-resolution.sh [--app-bin PATH]
#
# In a network namespace of its own, whose /etc/resolv.conf (`ip netns exec` mounts
# /etc/netns/<name>/resolv.conf over it) names a dnsmasq that answers for app.lms.test and
# nothing else, it runs `lms-app healthcheck` against a small HTTP server behind that name
# (must exit 0) and against a name nobody answers for (must exit 1), and checks that dnsmasq
# was asked. Default binary: scripts/build-pgo.sh's. Needs root (network namespaces) and
# python3; installs dnsmasq from Debian's package when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lms-target}"
host="$(rustc --print host-tuple)"
app_bin="$CARGO_TARGET_DIR/pgo/use/$host/release/lms-app"
while [ $# -gt 0 ]; do
    case "$1" in
        --app-bin) app_bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done
if [ ! -x "$app_bin" ]; then
    echo "no $app_bin: build it (scripts/build-pgo.sh) or name one with --app-bin" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "network namespaces need root" >&2
    exit 1
fi
if ! command -v dnsmasq >/dev/null 2>&1; then
    scripts/install-debian-packages.sh dnsmasq-base
fi

ns="lms-dns-$$"
work="$(mktemp -d "${TMPDIR:-/tmp}/lms-dns.XXXXXX")"
cleanup() {
    if [ -s "$work/dnsmasq.pid" ]; then kill "$(cat "$work/dnsmasq.pid")" 2>/dev/null || true; fi
    if [ -n "${http_pid:-}" ]; then kill "$http_pid" 2>/dev/null || true; fi
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns" "$work"
}
trap cleanup EXIT

ip netns add "$ns"
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" dnsmasq --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces \
    --address=/app.lms.test/127.0.0.1 --pid-file="$work/dnsmasq.pid" \
    --log-queries --log-facility="$work/dnsmasq.log"
mkdir -p "$work/www"
echo ok >"$work/www/index.html"
ip netns exec "$ns" python3 -m http.server 4555 --bind 127.0.0.1 --directory "$work/www" \
    >"$work/http.log" 2>&1 &
http_pid=$!
listening=""
for _ in $(seq 1 50); do
    if ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/127.0.0.1/4555' 2>/dev/null; then
        listening=yes
        break
    fi
    sleep 0.1
done
if [ -z "$listening" ]; then
    echo "the test HTTP server never listened on 127.0.0.1:4555 (its log follows)" >&2
    cat "$work/http.log" >&2
    exit 1
fi

linking="$(file -b "$app_bin" | grep -o 'static-pie linked\|statically linked\|dynamically linked' || true)"
echo "binary: $app_bin (${linking:-linking unknown})"
if ! ip netns exec "$ns" "$app_bin" healthcheck --timeout 5s --url http://app.lms.test:4555/; then
    echo "FAILED: app.lms.test did not resolve (dnsmasq's log follows)" >&2
    cat "$work/dnsmasq.log" >&2
    exit 1
fi
echo "app.lms.test: resolved through DNS and answered"
if ip netns exec "$ns" "$app_bin" healthcheck --timeout 5s --url http://nowhere.lms.test:4555/ 2>/dev/null; then
    echo "FAILED: a name nobody answers for was reached" >&2
    exit 1
fi
if ! grep -q "query\[A*\] nowhere.lms.test" "$work/dnsmasq.log"; then
    echo "FAILED: the lookup of nowhere.lms.test never reached dnsmasq" >&2
    exit 1
fi
echo "nowhere.lms.test: asked dnsmasq, refused, reported as unhealthy"
echo "name resolution: ok"
