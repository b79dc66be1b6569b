#!/usr/bin/env bash
# The delivery modes end to end: the real groupd on the simulated host with a kernel that has iommufd
# and device cdevs ("cdev" in the topology), driven by groupctl and by a VMM that links libgroupd, over the
# native socket. What a user would notice:
#   iommufd    groupctl --exec hands the command an iommufd and the cdevs as GROUPD_IOMMUFD and
#              GROUPD_DEVICE_FDS and in its arguments ({iommufd}, {device:ADDR}); the stand-in VMM finds
#              per-process accounting, binds each cdev (each is the device its label names), and exits:
#              the lease ends owner-exited, the drivers are back. libgroupd hands the same, labelled.
#   auto       picks iommufd here, legacy on the default host.
#   node-grant another uid opens /dev/vfio/N itself (the sim's dev tree stands in for /dev); a third uid
#              cannot; afterwards the node is as before.
#   refusals   an unknown mode, --grant-uid without node-grant, node access for another uid asked by
#              someone who is not root, a placeholder the lease cannot fill: each refused with a message,
#              no lease left, the drivers as they were.
set -euo pipefail

: "${GROUPD_BIN:?run through make check}" "${GROUPCTL_BIN:?}" "${VMM_STANDIN_BIN:?}" "${TOP_SRCDIR:?}"

run=$(mktemp -d /tmp/groupd-delivery.XXXXXX)
chmod 0755 "$run"
export GROUPD_SOCKET="$run/socket"
daemon_pid=
cleanup() {
        [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
        rm -rf "$run"
}
trap cleanup EXIT

fail() { echo "delivery: FAILED: $*" >&2; echo "--- daemon log:" >&2; tail -n 30 "$run/groupd.log" >&2; exit 1; }
ctl() { "$GROUPCTL_BIN" "$@"; }
driver_of() { ctl show "$1" --json | grep -o "\"address\":\"$2\"[^}]*\"driver\":\"[^\"]*\"" | sed 's/.*"driver":"//; s/"$//'; }
no_leases() { [ -z "$(ctl leases --no-legend)" ]; }

start() {
        "$GROUPD_BIN" --host=sim:"$1" --runtime-dir="$run" --policy="$run/policy.conf" -v >"$run/groupd.log" 2>&1 &
        daemon_pid=$!
        for _ in $(seq 100); do
                ctl status >/dev/null 2>&1 && return 0
                kill -0 "$daemon_pid" 2>/dev/null || fail "groupd did not start"
                sleep 0.05
        done
        fail "groupd did not answer"
}
# SIGTERM: groupd exits 0 (a sanitizer build exits otherwise on a leak or an error it saw).
stop() {
        local st=0
        kill "$daemon_pid"
        wait "$daemon_pid" || st=$?
        daemon_pid=
        [ "$st" -eq 0 ] || fail "groupd exited with status $st on SIGTERM"
}

{ echo cdev; cat "$TOP_SRCDIR/tests/data/sim-default.topo"; } >"$run/cdev.topo"
# uid 1000 may acquire group 2 (for the refusal of a grant to someone else).
echo "allow uid=1000 iommu-group=2" >"$run/policy.conf"
start "$run/cdev.topo"

# ---- iommufd through groupctl --exec, with QEMU's way of passing the fds in the arguments
out=$(ctl acquire 3 --delivery=iommufd --exec -- "$VMM_STANDIN_BIN" iommufd '--iommufd={iommufd}' \
        '--device=0000:03:00.0={device:0000:03:00.0}' '--device=03:00.1={device:03:00.1}' 2>&1) ||
        fail "iommufd acquire: $out"
grep -q "^Delivery: iommufd (an iommufd and the cdevs of 0000:03:00.0, 0000:03:00.1)" <<<"$out" || fail "labels: $out"
grep -q "iommufd: iommufd rlimit-mode=process" <<<"$out" || fail "accounting: $out"
grep -q "device 0000:03:00.0 (fd 4): bound to the iommufd: device=0000:03:00.0 vendor=0x1234" <<<"$out" || fail "cdev 0: $out"
grep -q "device 03:00.1 (fd 5): bound to the iommufd: device=0000:03:00.1 vendor=0x8086" <<<"$out" || fail "cdev 1: $out"
grep -q "ended: owner-exited" <<<"$out" || fail "end: $out"
[ "$(driver_of 3 0000:03:00.1)" = e1000 ] || fail "03:00.1 is on '$(driver_of 3 0000:03:00.1)'"
no_leases || fail "a lease is left"

# ... and from the environment, with auto choosing iommufd on this kernel
# shellcheck disable=SC2016 # expanded by the command's shell
out=$(ctl acquire 1 --exec -- sh -c 'echo "env $GROUPD_DELIVERY $GROUPD_IOMMUFD $GROUPD_DEVICE_FDS"; exec "$0"' \
        "$VMM_STANDIN_BIN" 2>&1) || fail "auto acquire: $out"
grep -q "^env iommufd 3 0000:01:00.0=4,0000:01:00.1=5$" <<<"$out" || fail "environment: $out"
grep -q "device 0000:01:00.1 (fd 5): bound" <<<"$out" || fail "auto: $out"

# ... and by a VMM that links libgroupd
out=$("$VMM_STANDIN_BIN" acquire-iommufd 0000:02:00.0 2>&1) || fail "libgroupd: $out"
grep -q "libgroupd: lease .*, delivery iommufd, iommufd fd [0-9]*, 1 device fd(s)" <<<"$out" || fail "libgroupd: $out"
grep -q "device 0000:02:00.0 (fd [0-9]*): bound to the iommufd" <<<"$out" || fail "libgroupd label: $out"
for _ in $(seq 100); do no_leases && break; sleep 0.05; done
no_leases || fail "the libgroupd lease is left"
[ "$(driver_of 2 0000:02:00.0)" = e1000e ] || fail "02:00.0 not back"

# ---- a placeholder the lease cannot fill: the command does not run, the lease ends
if out=$(ctl acquire 2 --delivery=legacy --exec -- echo '{iommufd}' 2>&1); then fail "{iommufd} in a legacy lease ran: $out"; fi
grep -q "Placeholder {iommufd}: this lease (delivery legacy" <<<"$out" || fail "placeholder message: $out"
no_leases || fail "a lease is left after the placeholder refusal"

# ---- refusals: nothing changes
if out=$(ctl acquire 2 --delivery=sideways 2>&1); then fail "unknown mode accepted"; fi
grep -q 'unknown delivery mode' <<<"$out" || fail "unknown mode: $out"
if out=$(ctl acquire 2 --grant-uid=1000 2>&1); then fail "--grant-uid without node-grant accepted"; fi
grep -q 'node-grant only' <<<"$out" || fail "grant uid: $out"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
        if out=$(setpriv --reuid=1000 --regid=1000 --clear-groups "$GROUPCTL_BIN" acquire 2 --delivery=node-grant \
                --grant-uid=1001 2>&1); then fail "uid 1000 granted uid 1001 access"; fi
        grep -q 'denied: only root may grant node access to another uid (uid 1000 asked for uid 1001)' <<<"$out" ||
                fail "grant for another uid: $out"
fi
no_leases || fail "a refusal left a lease"
[ "$(driver_of 2 0000:02:00.0)" = e1000e ] || fail "a refusal moved 02:00.0"

# ---- node-grant: uid 1000 opens the node itself, uid 1001 cannot
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
        node="$run/sim/dev/vfio/2"
        # shellcheck disable=SC2016
        out=$(GROUPD_NODE_ROOT="$run/sim/dev" ctl acquire 2 --delivery=node-grant --grant-uid=1000 --exec -- sh -c '
                ls -l "$GROUPD_NODE_ROOT/vfio/2"
                setpriv --reuid=1001 --regid=1001 --clear-groups sh -c "exec 5<>$GROUPD_NODE_ROOT/vfio/2" 2>&1 &&
                        echo "uid 1001 opened it" || echo "uid 1001: refused"
                exec setpriv --reuid=1000 --regid=1000 --clear-groups "$0"' "$VMM_STANDIN_BIN" 2>&1) ||
                fail "node-grant: $out"
        grep -q "^Delivery: node-grant (uid 1000 may open /dev/vfio/2)" <<<"$out" || fail "node-grant labels: $out"
        grep -q "vmm-standin: uid 1000 opened $node" <<<"$out" || fail "uid 1000 could not open: $out"
        grep -q "uid 1001: refused" <<<"$out" || fail "uid 1001 could open: $out"
        grep -q "/dev/vfio/2: access as before" <<<"$out" || fail "revoke: $out"
        [ ! -e "$node" ] || fail "/dev/vfio/2 is still there with e1000e back"
        [ "$(driver_of 2 0000:02:00.0)" = e1000e ] || fail "02:00.0 not back after node-grant"
else
        echo "delivery: node-grant part skipped: needs root and setpriv" >&2
fi
stop

# ---- auto on a kernel without iommufd: legacy; iommufd asked there: refused, nothing changed
rm -rf "$run/sim" "$run/state"
start "$TOP_SRCDIR/tests/data/sim-default.topo"
out=$(ctl acquire 6 --exec -- "$VMM_STANDIN_BIN" 2>&1) || fail "auto without iommufd: $out"
grep -q "^Delivery: legacy" <<<"$out" || fail "auto chose: $out"
if out=$(ctl acquire 6 --delivery=iommufd 2>&1); then fail "iommufd without /dev/iommu accepted"; fi
grep -q "groupd sees no /dev/iommu" <<<"$out" || fail "no iommufd: $out"
no_leases || fail "a lease is left"
stop
echo "delivery: all modes as described"
