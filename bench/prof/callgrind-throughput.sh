#!/usr/bin/env bash
# Instructions per cycle in the daemon with CLIENTS clients cycling at once (callgrind; the daemon runs
# ~50x slower under it, so this is instructions, not throughput): bench/prof/callgrind-throughput.sh BUILD CLIENTS
set -euo pipefail
build=$(cd "$1" && pwd); n=$2
rt=$(mktemp -d /dev/shm/groupd-cg.XXXXXX)
"$build/bench-groupd" topology 256 "$rt/t.topo"
valgrind --tool=callgrind --callgrind-out-file="/tmp/cg.tp.$n" "$build/groupd" "--host=sim:$rt/t.topo" \
        "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/none" 2>"$rt/log" &
pid=$!
for _ in $(seq 600); do [ -S "$rt/socket" ] && break; sleep 0.1; done
sleep 1
out=$("$build/bench-groupd" throughput "$rt/socket" "$n" 20 0)
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
rm -rf "$rt"
rate=$(echo "$out" | awk -F, '{ print $3 }')
ir=$(callgrind_annotate "/tmp/cg.tp.$n" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "$n clients: $rate cycles/s under callgrind, $ir instructions in all, $(awk -v i="$ir" -v r="$rate" 'BEGIN { printf "%d", i / (r * 20) }') per cycle (start-up included)"
