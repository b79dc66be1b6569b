#!/usr/bin/env bash
# groupd.service's SystemCallFilter= lets through every system call the daemon makes. Runs groupd on the
# simulated host (with the iommufd and cdev of a newer kernel) under strace, with the capabilities the unit
# leaves it (the bounding set CAP_SYS_RESOURCE), drives a session with groupctl (list, show, an acquire in
# each delivery mode owned by a process that then exits: legacy, iommufd, node-grant with an ACL for
# another uid; a restart that keeps a node-grant lease, a release), and checks every call it saw against
# the filter as the unit spells it, expanded by systemd-analyze. The linux host's ioctl() is not exercised here (the sim
# has no ioctls); ioctl is in @system-service.
set -euo pipefail

: "${TOP_BUILDDIR:?run through make check}" "${GROUPD_BIN:?}" "${GROUPCTL_BIN:?}"
unit=$TOP_BUILDDIR/systemd/groupd.service

for t in strace systemd-analyze setpriv; do
        if ! command -v $t >/dev/null; then
                echo "syscall-filter: skipped: no $t" >&2
                exit 77
        fi
done
if grep -q __asan_init "$GROUPD_BIN" 2>/dev/null; then
        echo "syscall-filter: skipped: a sanitizer build makes calls of its own" >&2
        exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
        echo "syscall-filter: skipped: needs root" >&2
        exit 77
fi

dir=$(mktemp -d)
pid= daemon=
cleanup() {
        [ -n "$daemon" ] && kill -KILL "$daemon" 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT

ctl() { "$GROUPCTL_BIN" --socket="$dir/socket" "$@"; }

start() {
        setpriv --bounding-set=-all,+sys_resource --inh-caps=-all \
                strace -f -qq -o "$dir/trace.$1" "$GROUPD_BIN" --host=sim:"$dir/cdev.topo" --runtime-dir="$dir" \
                --policy="$dir/none.conf" --keep-leases-on-exit -v >>"$dir/log" 2>&1 &
        pid=$!
        for _ in $(seq 200); do
                if ctl status >/dev/null 2>&1; then
                        daemon=$(pgrep -P "$pid" -x groupd)
                        return 0
                fi
                sleep 0.05
        done
        cat "$dir/log" >&2
        echo "groupd did not come up" >&2
        exit 1
}

stop() {
        # $pid is strace's; the signal goes to groupd, its child, and strace ends with it.
        kill -TERM "$daemon"
        wait "$pid" || { cat "$dir/log" >&2; echo "groupd failed" >&2; exit 1; }
        pid= daemon=
}

# The default topology on a kernel with IOMMUFD and VFIO_DEVICE_CDEV.
{ echo cdev; cat "${TOP_SRCDIR:-.}/tests/data/sim-default.topo"; } >"$dir/cdev.topo"

start 1
ctl list >/dev/null
ctl show 0000:06:00.0 >/dev/null
ctl acquire 6 --delivery=legacy --exec -- sleep 0.2 >/dev/null
ctl acquire 6 --delivery=iommufd --exec -- sleep 0.2 >/dev/null
ctl acquire 1 --delivery=node-grant --grant-uid=1000 --exec -- sleep 0.2 >/dev/null
ctl acquire 2 --delivery=node-grant --grant-uid=1000 --exec -- sleep 3 >/dev/null &
acq=$!
for _ in $(seq 100); do ctl leases | grep -q active && break; sleep 0.05; done
ctl leases | grep -q active
stop
start 2
ctl leases | grep -q active
wait $acq || true
for _ in $(seq 100); do ctl leases | grep -q active || break; sleep 0.05; done
ctl status >/dev/null
stop

# The calls seen, and the filter the unit sets: the first SystemCallFilter= line is an allow list, "~"
# lines take from it, later plain lines add to it.
sed -E 's/^[0-9]+ +//' "$dir"/trace.* | grep -oE '^[a-z_0-9]+\(' | tr -d '(' | sort -u >"$dir/used"

expand() {
        local s
        for s in "$@"; do
                case $s in
                @*) systemd-analyze syscall-filter "$s" | sed 1d | awk '!/^ *#/ { print $1 }' | while read -r x; do expand "$x"; done ;;
                *) echo "$s" ;;
                esac
        done
}
: >"$dir/allowed"
while IFS= read -r line; do
        val=${line#SystemCallFilter=}
        if [ "${val:0:1}" = "~" ]; then
                # shellcheck disable=SC2086
                expand ${val:1} | sort -u >"$dir/deny"
                comm -23 "$dir/allowed" "$dir/deny" >"$dir/a" && mv "$dir/a" "$dir/allowed"
        else
                # shellcheck disable=SC2086
                { cat "$dir/allowed"; expand $val; } | sort -u >"$dir/a" && mv "$dir/a" "$dir/allowed"
        fi
done < <(grep '^SystemCallFilter=' "$unit")

echo "$(wc -l <"$dir/used") distinct system calls made, $(wc -l <"$dir/allowed") allowed by the unit"
bad=$(comm -23 "$dir/used" "$dir/allowed")
if [ -n "$bad" ]; then
        echo "made but filtered out by groupd.service:" $bad >&2
        exit 1
fi
echo "all allowed"
