#!/bin/sh
# shellcheck shell=dash
# Helpers for the real-kernel rig's guest scenarios (busybox sh), sourced by guest-run.sh before each
# /groupd/scenario-*.sh. A scenario prints one line per check:
#
#   SCENARIO <name> PASS [detail]
#   SCENARIO <name> FAIL <what went wrong>
#   SCENARIO <name> SKIP <why>
#
# and asserts on the kernel's own state (sysfs driver links, /dev/vfio nodes, ioctl results), not only on
# what groupd says.

groups=/sys/kernel/iommu_groups
pci=/sys/bus/pci/devices
export GROUPD_SOCKET=/run/groupd/socket
RUNTIME_DIR=/run/groupd
DAEMON_LOG=/tmp/groupd.log
DAEMON_PID=

RIG_FAILS=/tmp/rig-fails   # one line per FAIL, so that the runner's exit status counts them
pass() {
        _name=$1
        shift
        echo "SCENARIO $_name PASS${*:+ $*}"
}
fail() {
        _name=$1
        shift
        echo "SCENARIO $_name FAIL $*"
        echo "$_name" >>"$RIG_FAILS"
}
skip() {
        _name=$1
        shift
        echo "SCENARIO $_name SKIP $*"
}
# note TEXT: a line of context under the scenario lines.
note() { echo "  $*"; }

driver_of() {
        if [ -L "$pci/$1/driver" ]; then
                d=$(readlink "$pci/$1/driver")
                echo "${d##*/}"
        fi
}
override_of() {
        o=$(cat "$pci/$1/driver_override" 2>/dev/null)
        [ "$o" = "(null)" ] || echo "$o"
}
members() { ls "$groups/$1/devices" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
group_of() {
        g=$(readlink "$pci/$1/iommu_group" 2>/dev/null)
        echo "${g##*/}"
}
# The devices and drivers of a group, "ADDR=DRIVER ..." (DRIVER empty when none).
group_state() {
        s=
        for d in $(members "$1"); do
                s="$s $d=$(driver_of "$d")"
        done
        echo "${s# }"
}

# wait_until TENTHS CMD...: true as soon as CMD succeeds, false after TENTHS tenths of a second. Its
# counters are its own (local): a caller's i and t are left alone.
wait_until() {
        local _wu_limit _wu_n
        _wu_limit=$1
        shift
        _wu_n=0
        while ! "$@"; do
                _wu_n=$((_wu_n + 1))
                [ "$_wu_n" -gt "$_wu_limit" ] && return 1
                sleep 0.1
        done
        return 0
}
is_on() { [ "$(driver_of "$1")" = "$2" ]; }
node_gone() { [ ! -e "/dev/vfio/$1" ]; }
file_has() { grep -q -- "$2" "$1" 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }
no_leases() { [ -z "$(groupctl leases --no-legend 2>/dev/null)" ]; }

# Milliseconds since boot, for timings.
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# daemon_start [groupd options]: the real daemon on the linux backend, its log appended to DAEMON_LOG.
daemon_start() {
        mkdir -p "$RUNTIME_DIR"
        echo "--- groupd $* ($(now_ms) ms)" >>"$DAEMON_LOG"
        groupd --host=linux --runtime-dir="$RUNTIME_DIR" "$@" >>"$DAEMON_LOG" 2>&1 &
        DAEMON_PID=$!
        if ! wait_until 100 groupctl status >/dev/null 2>&1; then
                note "groupd did not answer within 10 s; its log:"
                tail -n 20 "$DAEMON_LOG" | sed 's/^/    /'
                return 1
        fi
        return 0
}
# daemon_stop: SIGTERM, and wait for it to exit (up to 15 s, then SIGKILL).
daemon_stop() {
        [ -n "$DAEMON_PID" ] || return 0
        kill -TERM "$DAEMON_PID" 2>/dev/null
        if ! wait_until 150 dead "$DAEMON_PID"; then
                note "groupd (pid $DAEMON_PID) did not exit on SIGTERM within 15 s: killing it"
                kill -KILL "$DAEMON_PID" 2>/dev/null
        fi
        wait "$DAEMON_PID" 2>/dev/null
        DAEMON_PID=
}
daemon_log_tail() {
        tail -n "${1:-15}" "$DAEMON_LOG" | sed 's/^/    groupd: /'
        debug_tasks
}
# debug_tasks: where groupd's threads and the other rig processes wait in the kernel, and /dev/vfio.
debug_tasks() {
        note "/dev/vfio: $(ls /dev/vfio | tr '\n' ' ')"
        for p in $(pidof groupd) $(pidof vmm-standin) $(pidof groupctl); do
                for t in /proc/"$p"/task/*; do
                        note "task ${t##*/} ($(cat "$t/comm" 2>/dev/null)) state $(sed -n 's/^State:\t//p' "$t/status" 2>/dev/null) wchan $(cat "$t/wchan" 2>/dev/null)"
                        sed 's/^/      /' "$t/stack" 2>/dev/null | head -n 12
                done
        done
}

# The stand-in holds its fds, or groupctl gave up.
acquire_settled() { file_has "$1" 'holding the groups' || dead "$ACQ_PID"; }

# The scenarios were written for legacy delivery (container and group fds). On a kernel with iommufd
# (own-6.12), groupctl's default, auto, hands out an iommufd and device cdevs instead; a scenario that is
# about a delivery mode names it (--delivery=...), the others get legacy through groupctl's own default.
export GROUPCTL_DELIVERY=legacy

# acquire_exec OUT ARGS...: `groupctl acquire ARGS` in the background, its output in OUT; waits until
# the stand-in VMM says it holds the fds (or groupctl exits). Sets ACQ_PID (groupctl), VMM_PID (the
# stand-in, from groupctl's "Handed to ... (pid N)") and TOKEN. False when it did not get that far.
acquire_exec() {
        out=$1
        shift
        ACQ_PID= VMM_PID= TOKEN=
        # Emptied here, before the child starts: were it truncated by the child's redirection, a look at
        # the file in between could read an earlier run's "holding the groups".
        : >"$out"
        groupctl acquire "$@" >>"$out" 2>&1 &
        ACQ_PID=$!
        if ! wait_until 150 acquire_settled "$out" || ! file_has "$out" 'holding the groups'; then
                note "groupctl acquire $* did not get to holding the groups (within 15 s); it said:"
                sed 's/^/    /' "$out"
                return 1
        fi
        VMM_PID=$(sed -n 's/^Handed to .* (pid \([0-9]*\)).*/\1/p' "$out")
        TOKEN=$(sed -n 's/^Token: \([0-9a-f]*\)$/\1/p' "$out")
        [ -n "$VMM_PID" ] && [ -n "$TOKEN" ]
}

# The fds a process has open on VFIO nodes, "PATH ..." sorted. Matched by device number (the vfio
# major, and the container's misc 10:196), not by path: an fd opened inside a sandboxed groupd's private
# /dev reads as "/3" or "/vfio" in /proc/PID/fd once that instance is gone (after a restart, in the new
# groupd and in the VMM). Such an fd is named after the /dev/vfio node with its device number; one whose
# node is gone keeps the kernel's " (deleted)" name.
vfio_fds_of() {
        _vmaj=$(awk '$2 == "vfio" { print $1 }' /proc/devices)
        for f in /proc/"$1"/fd/*; do
                l=$(readlink "$f" 2>/dev/null) || continue
                case $l in /dev/vfio/*) echo "$l"; continue ;; esac
                _t=$(stat -L -c '%F %t %T' "$f" 2>/dev/null) || continue
                case $_t in "character special file "*) ;; *) continue ;; esac
                _mm=${_t#character special file }
                _maj=$((0x${_mm% *})) _min=$((0x${_mm#* }))
                if [ "$_maj:$_min" = 10:196 ]; then
                        echo /dev/vfio/vfio
                elif [ -n "$_vmaj" ] && [ "$_maj" = "$_vmaj" ]; then
                        _name="(vfio $_maj:$_min, no node)"
                        for n in /dev/vfio/*; do
                                _nt=$(stat -c '%t %T' "$n" 2>/dev/null) || continue
                                [ "$((0x${_nt% *})):$((0x${_nt#* }))" = "$_maj:$_min" ] && _name=$n
                        done
                        echo "$_name"
                fi
        done | sort | tr '\n' ' ' | sed 's/ $//'
}

# The rig's devices, by address (qemu's device set, run.sh's QEMU_DEVICES). Scenarios find groups by
# address (group_of), never by number: adding a device renumbers the groups.
HOST_BRIDGE=0000:00:00.0        # q35's host bridge
NIC=0000:00:03.0                # e1000e, alone in its group
MF0=0000:00:06.0                # edu, no driver, function 0 of a two-function slot...
MF1=0000:00:06.1                # ...with an e1000: one group
RP_NIC=0000:01:00.0             # e1000e behind root port 00:04.0
RP_EDU=0000:02:00.0             # edu behind root port 00:05.0
SLOT0=0000:00:07.0              # a three-function slot: e1000...
SLOT1=0000:00:07.1              # ...edu (no driver)...
SLOT2=0000:00:07.2              # ...and e1000: one group
PCI_BRIDGE=0000:03:00.0         # a PCIe-to-PCI bridge behind root port 00:08.0, no driver...
BEHIND=0000:04:01.0             # ...and an e1000 behind it: one group with the bridge
LPC=0000:00:1f.0                # q35's ICH9: the LPC bridge,
SATA=0000:00:1f.2               # the SATA controller,
SMBUS=0000:00:1f.3              # the SMBus controller: one group

# The host drivers as the rig booted them: "ADDR=DRIVER ...", read by the runner before the first
# scenario (RIG_BASELINE), so that a new device needs no edit here. Every scenario leaves the devices
# like this.
BASELINE_FILE=/tmp/rig-baseline
baseline_record() {
        s=
        for d in $(ls "$pci"); do
                s="$s $d=$(driver_of "$d")"
        done
        echo "${s# }" >"$BASELINE_FILE"
}
BASELINE_DRIVERS=$(cat "$BASELINE_FILE" 2>/dev/null)
# baseline_diff: empty when every device is as at boot (its driver, no driver_override) and no group
# node is left in /dev/vfio; else what differs.
baseline_diff() {
        diff=
        for pair in $BASELINE_DRIVERS; do
                d=${pair%%=*} want=${pair#*=}
                if [ ! -e "$pci/$d" ]; then
                        diff="$diff $d is gone (removed, not rescanned);"
                        continue
                fi
                have=$(driver_of "$d")
                [ "$have" = "$want" ] || diff="$diff $d on '${have:-none}' (expected '${want:-none}');"
                ov=$(override_of "$d")
                [ -z "$ov" ] || diff="$diff $d has driver_override '$ov';"
        done
        nodes=$(ls /dev/vfio 2>/dev/null | grep -v '^vfio$' | tr '\n' ' ')
        [ -z "$nodes" ] || diff="$diff group nodes left in /dev/vfio: $nodes;"
        echo "${diff# }"
}

# The helpers for scenarios that hand a device to a real QEMU (QMP, command lines): guest-qemu.sh.
if [ -f /groupd/guest-qemu.sh ]; then
        . /groupd/guest-qemu.sh
fi
