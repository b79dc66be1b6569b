#!/usr/bin/env bash
# CPU time of `groupctl list --json` of 4096 groups, daemon and client apart (/proc/PID/stat utime+stime,
# and the client's rusage): CPU, not wall, so the shared machine's load counts less. bench/prof/list-cpu.sh BUILD
set -euo pipefail
build=$(cd "$1" && pwd)
rt=$(mktemp -d /dev/shm/groupd-prof.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$rt"' EXIT
"$build/bench-groupd" topology 4096 "$rt/scale.topo"
line=$("$build/bench-groupd" ready "$build/groupd" "--host=sim:$rt/scale.topo" "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/none" 2>>"$rt/log")
pid=${line% *}
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ printf "%.0f", ($14 + $15) * 1000 / t }' "/proc/$pid/stat"; }
GROUPD_SOCKET=$rt/socket "$build/groupctl" list --json > /dev/null
for i in 1 2 3 4 5; do
        a=$(cpu); t0=$(date +%s%N)
        c=$( { GROUPD_SOCKET=$rt/socket /usr/bin/time -f "%U %S" "$build/groupctl" list --json > /dev/null; } 2>&1 | awk '{ printf "%.0f", ($1 + $2) * 1000 }')
        echo "wall $(( ($(date +%s%N) - t0) / 1000000 )) ms, daemon CPU $(( $(cpu) - a )) ms, client CPU $c ms"
done
