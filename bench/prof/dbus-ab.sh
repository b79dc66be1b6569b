#!/usr/bin/env bash
# D-Bus Acquire+Release cycle of two builds, alternated on one private bus (A/B under the same load):
# bench/prof/dbus-ab.sh BUILD_A BUILD_B [N] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
A=$(cd "$1" && pwd) B=$(cd "$2" && pwd) n=${3:-300} rounds=${4:-3}
work=$(mktemp -d /dev/shm/groupd-dbus.XXXXXX)
dbus_pid= gpid=
trap 'kill $gpid $dbus_pid 2>/dev/null; rm -rf "$work"' EXIT
cat > "$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><include>$here/tests/dbus/system.conf</include></busconfig>
CONF
bus="unix:path=$work/bus"
dbus-daemon --config-file="$work/bus.conf" --address="$bus" --nofork >"$work/dbus.log" 2>&1 & dbus_pid=$!
for _ in $(seq 100); do [ -S "$work/bus" ] && break; sleep 0.02; done
one() {
        local b=$1 rt; rt=$(mktemp -d "$work/rt.XXXX")
        line=$(DBUS_SYSTEM_BUS_ADDRESS=$bus "$b/bench-groupd" ready "$b/groupd" --host=sim "--runtime-dir=$rt" \
                "--socket=$rt/socket" "--policy=$rt/none" 2>>"$rt/log"); gpid=${line% *}
        "$b/bench-dbus" groupd "$bus" "$n" 2 | awk -F, '$1 == "dbus_cycle_median" { print $3 }'
        kill "$gpid"; while kill -0 "$gpid" 2>/dev/null; do sleep 0.01; done; gpid=
}
for r in $(seq "$rounds"); do echo "round $r: A $(one "$A") us, B $(one "$B") us"; done
