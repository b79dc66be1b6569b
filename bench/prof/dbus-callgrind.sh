#!/usr/bin/env bash
# The daemon's instructions per D-Bus Acquire+Release cycle (callgrind, on a private bus): runs of N1 and
# N2 cycles, the difference over the cycles between. bench/prof/dbus-callgrind.sh BUILD
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
b=$(cd "$1" && pwd) N1=${N1:-20} N2=${N2:-220}
work=$(mktemp -d /dev/shm/groupd-dbus.XXXXXX)
dbus_pid= gpid=
trap 'kill $gpid $dbus_pid 2>/dev/null; rm -rf "$work"' EXIT
printf '%s\n' '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"' \
  ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">' \
  "<busconfig><include>$here/tests/dbus/system.conf</include></busconfig>" > "$work/bus.conf"
bus="unix:path=$work/bus"
dbus-daemon --config-file="$work/bus.conf" --address="$bus" --nofork >"$work/dbus.log" 2>&1 & dbus_pid=$!
for _ in $(seq 100); do [ -S "$work/bus" ] && break; sleep 0.02; done
run() {
        local n=$1 rt; rt=$(mktemp -d "$work/rt.XXXX")
        DBUS_SYSTEM_BUS_ADDRESS=$bus valgrind --tool=callgrind --callgrind-out-file="/tmp/cg.dbus.$n" "$b/groupd" \
                --host=sim "--runtime-dir=$rt" "--socket=$rt/socket" "--policy=$rt/none" 2>"$rt/log" & gpid=$!
        for _ in $(seq 600); do grep -q "ready on" "$rt/log" 2>/dev/null && break; sleep 0.1; done
        "$b/bench-dbus" groupd "$bus" "$n" 2 >/dev/null
        kill "$gpid"; wait "$gpid" 2>/dev/null || true; gpid=
        callgrind_annotate "/tmp/cg.dbus.$n" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
a=$(run "$N1"); c=$(run "$N2")
# bench-dbus warms up with N/10 + 1 more cycles
echo "instructions per D-Bus cycle: $(( (c - a) / ((N2 + N2 / 10 + 1) - (N1 + N1 / 10 + 1)) ))"
