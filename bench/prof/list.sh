#!/usr/bin/env bash
# groupctl list --json of 4096 groups, profiled: bench/prof/list.sh BUILD_DIR [callgrind]
set -euo pipefail
build=$(cd "$1" && pwd)
rt=$(mktemp -d /dev/shm/groupd-prof.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$rt"' EXIT
"$build/bench-groupd" topology 4096 "$rt/scale.topo"
line=$("$build/bench-groupd" ready "$build/groupd" "--host=sim:$rt/scale.topo" "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/none" 2>>"$rt/log")
pid=${line% *}
for i in 1 2 3; do
  t0=$(date +%s%N); GROUPD_SOCKET=$rt/socket /usr/bin/time -f "client %e s wall %U user %S sys" "$build/groupctl" list --json > /dev/null; echo "list --json: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
t0=$(date +%s%N); GROUPD_SOCKET=$rt/socket "$build/groupctl" list > /dev/null; echo "list (table): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
GROUPD_SOCKET=$rt/socket strace -c -o "$rt/client.strace" "$build/groupctl" list --json > /dev/null; echo client; head -12 "$rt/client.strace"
strace -f -c -o "$rt/d.strace" -p "$pid" & sp=$!; sleep 0.5
GROUPD_SOCKET=$rt/socket "$build/groupctl" list --json > /dev/null; kill -INT $sp; wait $sp || true; echo daemon; head -12 "$rt/d.strace"
if [ "${2:-}" = callgrind ]; then
  GROUPD_SOCKET=$rt/socket valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.client "$build/groupctl" list --json >/dev/null 2>&1
  callgrind_annotate /tmp/cg.client 2>/dev/null | head -30
fi
if [ "${2:-}" = perf ]; then
  perf record -q -g -o /tmp/perf.list -p "$pid" 2>/dev/null & pp=$!; sleep 0.5
  for i in 1 2 3; do GROUPD_SOCKET=$rt/socket "$build/groupctl" list --json > /dev/null; done
  kill -INT $pp; wait $pp || true
  perf report -i /tmp/perf.list --no-children --stdio 2>/dev/null | grep -v "^$" | grep "%" | head -40
fi
