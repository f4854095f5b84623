#!/usr/bin/env bash
# Counts the instructions the release app executes for one fixed mix of requests, under
# valgrind's callgrind: the method of crates/bench/README.md ("Where the instructions go"),
# as one command. Instruction counts do not move with the machine's load the way CPU time
# does, so two builds compare by their totals even on a busy machine.
#
#   scripts/callgrind-compare.sh [--app-bin PATH] [--out FILE] [--top N] [--reads N]
#                                [--symbol-order FILE | --check-symbol-order FILE]
#
# The mix: `compare --postgres --no-peer --events 300 --reads 2000 --warm-up 32` with the app
# running under callgrind, instrumentation switched on when the first webhook reaches the app
# (after the set-up's sign-ups and checkouts, which are not counted): the warm-up's and the
# workloads' deliveries (about 660) and status reads (about 2,160). The baseline and the
# load generator run outside valgrind. Prints the total, the functions that execute the most
# instructions, and where the profile is (read it with callgrind_annotate). --reads N times N
# status reads instead of 2000: two profiles that differ only there give a read's own
# instructions, function by function, as their difference over the reads added.
#
# With --symbol-order FILE it counts from the app's start instead (start-up and set-up
# included) and writes FILE: the app's functions that ran, by their own instruction count, one
# symbol name per line, as crates/app/symbol-order.txt (how the linker lays out the binary,
# crates/app/build.rs) is regenerated: once with the release build, once with the Docker
# image's (static, no demo: other symbol names), the two lists joined with awk '!seen[$0]++'.
# With --check-symbol-order FILE it counts the same way and says how stale FILE is for this
# build: the share of the functions that ran, and of their instructions, that FILE lists. A
# function FILE misses (new, or renamed: names carry a hash of their crate's build) is laid
# out away from the others and keeps more of the binary resident; regenerate when the share of
# functions falls well below 100 %.
#
# Needs: the release binaries (cargo build --release -p lms-app -p lms-bench), PostgreSQL at
# TEST_DATABASE_URL, valgrind (installed from Debian's package when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lms-target}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

app_bin="$CARGO_TARGET_DIR/release/lms-app"
out=""
top=25
reads=2000
symbol_order=""
check_order=""
while [ $# -gt 0 ]; do
    case "$1" in
        --app-bin) app_bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --top) top="$2"; shift 2 ;;
        --reads) reads="$2"; shift 2 ;;
        --symbol-order) symbol_order="$2"; shift 2 ;;
        --check-symbol-order) check_order="$2"; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

if [ -n "$symbol_order" ] && [ -n "$check_order" ]; then
    echo "--symbol-order writes a list and --check-symbol-order reads one: give one of them" >&2
    exit 64
fi
if [ -n "$check_order" ] && [ ! -r "$check_order" ]; then
    echo "no list to check at $check_order" >&2
    exit 1
fi

compare="$CARGO_TARGET_DIR/release/compare"
for binary in "$app_bin" "$compare"; do
    if [ ! -x "$binary" ]; then
        echo "no $binary: build it with cargo build --release -p lms-app -p lms-bench" >&2
        exit 1
    fi
done

if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then
    scripts/install-debian-packages.sh valgrind
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/lms-callgrind.XXXXXX")"
out="${out:-$work/callgrind.out}"
valgrind_flags="--instr-atstart=no"
switched_on=""
if [ -n "$symbol_order$check_order" ]; then
    # Counted from the start, with the symbols' own (mangled) names, as the linker reads them.
    valgrind_flags="--instr-atstart=yes --demangle=no"
    switched_on=yes
fi
# compare starts this wrapper as the app; it runs the app under callgrind (instrumentation
# off until the first webhook, on from the start for a symbol list), says valgrind's pid, and
# passes compare's SIGTERM on, waiting for callgrind to write its profile.
cat >"$work/app.sh" <<WRAPPER
#!/usr/bin/env bash
valgrind --tool=callgrind $valgrind_flags --callgrind-out-file="$out" "$app_bin" "\$@" &
child=\$!
echo \$child >"$work/valgrind.pid"
trap 'kill -TERM \$child 2>/dev/null; wait \$child' TERM INT
wait \$child
WRAPPER
chmod +x "$work/app.sh"

"$compare" --postgres --no-peer --events 300 --reads "$reads" --warm-up 32 --app-bin "$work/app.sh" \
    >"$work/compare.txt" 2>&1 &
compare_pid=$!

while kill -0 "$compare_pid" 2>/dev/null; do
    if [ -z "$switched_on" ] && [ -s "$work/valgrind.pid" ]; then
        pid="$(cat "$work/valgrind.pid")"
        # The app logs to app.log in its working directory; the first request to the webhook's
        # path is the warm-up's (start-up lines name webhooks too, so the path is matched).
        if grep -q '/payments/webhook' "/proc/$pid/cwd/app.log" 2>/dev/null; then
            # callgrind_control finds the process through the app's HOST, which is loopback.
            HOST=127.0.0.1 callgrind_control -i on "$pid" >/dev/null 2>&1
            switched_on=yes
        fi
    fi
    sleep 0.02
done
if ! wait "$compare_pid"; then
    echo "compare failed; its output:" >&2
    cat "$work/compare.txt" >&2
    exit 1
fi
# compare has stopped the app; callgrind writes the profile as the app exits.
if [ -s "$work/valgrind.pid" ]; then
    pid="$(cat "$work/valgrind.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
fi
if [ -z "$switched_on" ] || [ ! -s "$out" ]; then
    echo "no profile: the app never logged a webhook (see $work/compare.txt)" >&2
    exit 1
fi

# "instructions name" for each of the app's own functions that ran, the most executed first.
# callgrind names a recursive call's cycle `name'2`; the linker knows only `name`. Lines that
# are no symbol name (an address, "(below main)") are dropped.
functions_that_ran() {
    callgrind_annotate --threshold=100 "$out" 2>/dev/null \
        | grep -F " [$app_bin]" \
        | sed -E 's/^ *([0-9,]+) +\([ 0-9.]+%\) +[^:]*:([^ ]+) \[.*$/\1 \2/' \
        | sed -E "s/'[0-9]+$//" | awk '$2 ~ /^_(ZN|R)/ { gsub(",", "", $1); print }'
}
if [ -n "$symbol_order" ]; then
    functions_that_ran | awk '!seen[$2]++ { print $2 }' >"$symbol_order"
    echo "# $(wc -l <"$symbol_order") functions of $app_bin that ran, written to $symbol_order"
fi
if [ -n "$check_order" ]; then
    echo "# $check_order against the functions of $app_bin that ran:"
    functions_that_ran | awk '
        NR == FNR { listed[$0] = 1; next }
        { ran[$2] += $1; total += $1 }
        END {
            for (name in ran) {
                functions++
                if (name in listed) { found++; covered += ran[name] }
                else if (ran[name] > worst) { worst = ran[name]; worst_name = name }
            }
            printf "%d of %d functions listed (%.1f %%), %.1f %% of their instructions\n",
                found, functions, 100 * found / functions, 100 * covered / total
            if (worst_name != "") printf "the most executed one missing: %s\n", worst_name
        }' "$check_order" -
fi
echo "# callgrind: $app_bin, compare --postgres --no-peer --events 300 --reads $reads --warm-up 32"
grep -E "^checks" "$work/compare.txt" || true
callgrind_annotate "$out" 2>/dev/null | grep "PROGRAM TOTALS"
echo "# the $top functions that execute the most instructions themselves (callees excluded)"
callgrind_annotate "$out" 2>/dev/null \
    | grep -E '^ *[0-9,]+ \(' | grep -v "PROGRAM TOTALS" | head -n "$top" | cut -c1-200
echo "# profile: $out (callgrind_annotate --inclusive=yes --tree=caller $out)"
