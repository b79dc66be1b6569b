#!/usr/bin/env bash
# Instructions per acquire+release cycle in the daemon (callgrind: counts, immune to the shared machine's
# noise): two runs of N1 and N2 cycles, the difference over N2 - N1. bench/prof/callgrind-cycle.sh BUILD_DIR
# [POLICY_TEXT] [GROUP]; keeps the N2 run's profile as /tmp/cg.cycle.N2 for callgrind_annotate.
set -euo pipefail
build=$(cd "$1" && pwd); policy=${2:-}; group=${3:-2}
N1=${N1:-20} N2=${N2:-220}
run() {
        local n=$1 rt; rt=$(mktemp -d /dev/shm/groupd-cg.XXXXXX)
        [ -n "$policy" ] && printf '%s\n' "$policy" > "$rt/policy.conf"
        valgrind --tool=callgrind --callgrind-out-file="/tmp/cg.cycle.$n" "$build/groupd" --host=sim \
                "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/policy.conf" 2>"$rt/log" &
        local pid=$!
        for _ in $(seq 600); do [ -S "$rt/socket" ] && break; sleep 0.1; done
        sleep 1
        "$build/bench-groupd" cycle "$rt/socket" "$n" "$group" > /dev/null
        kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
        rm -rf "$rt"
        callgrind_annotate "/tmp/cg.cycle.$n" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
a=$(run "$N1"); b=$(run "$N2")
# bench cycle runs N + N/10 + 1 cycles
c1=$((N1 + N1 / 10 + 1)) c2=$((N2 + N2 / 10 + 1))
echo "instructions per cycle: $(( (b - a) / (c2 - c1) )) ($a for $c1 cycles, $b for $c2)"
