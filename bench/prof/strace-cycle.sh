#!/usr/bin/env bash
# Syscalls per acquire+release cycle on the sim host: strace -f -c on the daemon for N cycles.
# bench/prof/strace-cycle.sh BUILD_DIR [N]
set -euo pipefail
build=$(cd "$1" && pwd); n=${2:-500}
rt=$(mktemp -d /dev/shm/groupd-prof.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; cat "$rt/log" | tail -5; rm -rf "$rt"' EXIT
line=$("$build/bench-groupd" ready "$build/groupd" --host=sim "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/none" 2>>"$rt/log")
pid=${line% *}
"$build/bench-groupd" cycle "$rt/socket" 50 2 >/dev/null # warm: threads exist
strace -f -c -o "$rt/strace" -p "$pid" & spid=$!
sleep 1
"$build/bench-groupd" cycle "$rt/socket" "$n" 2 >/dev/null
kill -INT $spid; wait $spid || true
# bench cycle runs n + n/10 + 1 cycles
cyc=$((n + n / 10 + 1))
awk -v c=$cyc 'NR>2 && $1 !~ /^-/ && NF>=4 { calls = ($4 ~ /^[0-9]+$/) ? $4 : 0; name=$NF; if (name=="total") tot=calls; else printf "%-20s %8.1f\n", name, calls / c } END { printf "%-20s %8.1f per cycle (%d cycles)\n", "TOTAL", tot / c, c }' "$rt/strace" | sort -k2 -nr
