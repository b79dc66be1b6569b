#!/usr/bin/env bash
# The syscalls of cycles on the sim host, in order: bench/prof/strace-one.sh BUILD_DIR OUT
set -euo pipefail
build=$(cd "$1" && pwd); out=$2
rt=$(mktemp -d /dev/shm/groupd-prof.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$rt"' EXIT
line=$("$build/bench-groupd" ready "$build/groupd" --host=sim "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/none" 2>>"$rt/log")
pid=${line% *}
"$build/bench-groupd" cycle "$rt/socket" 50 2 >/dev/null
strace -f -tt -o "$out" -p "$pid" & spid=$!
sleep 1
"$build/bench-groupd" cycle "$rt/socket" 3 2 >/dev/null
sleep 0.2
kill -INT $spid; wait $spid || true
