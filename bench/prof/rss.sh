#!/usr/bin/env bash
# RSS of groupd idle and with 1000 leases on the 4096-group sim host: bench/prof/rss.sh BUILD_DIR [ENV=VALUE...]
set -euo pipefail
build=$(cd "$1" && pwd); shift
rt=$(mktemp -d /dev/shm/groupd-prof.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; grep -v "^<6>" "$rt/log" | grep -iv "lease .*: \\|fd store" | tail -15 >&2; rm -rf "$rt"' EXIT
"$build/bench-groupd" topology 4096 "$rt/scale.topo"
line=$(env "$@" "$build/bench-groupd" ready "$build/groupd" "--host=sim:$rt/scale.topo" "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/none" ${GROUPD_ARGS:-} 2>>"$rt/log")
pid=${line% *}
rss() { awk '/^VmRSS:|^RssAnon:|^RssFile:/ { printf "%s %s  ", $1, $2 } END { print "" }' /proc/$pid/status; }
echo "idle: $(rss)"
for i in 1 2 3; do GROUPD_SOCKET=$rt/socket "$build/groupctl" list --json >/dev/null; done
echo "after 3 x list --json: $(rss)"
coproc H { "$build/bench-groupd" hold "$rt/socket" 0 1000; }
read -r _ _ <&"${H[0]}"
echo "1000 leases: $(rss) threads $(ls /proc/$pid/task | wc -l) fds $(ls /proc/$pid/fd | wc -l)"
grep -E "^[0-9a-f]+-" /proc/$pid/smaps | wc -l
awk '/^[0-9a-f]+-/ { name=$6 } /^Rss:/ { if ($2 > 200) printf "%8d kB %s\n", $2, name }' /proc/$pid/smaps | sort -nr | head -12
