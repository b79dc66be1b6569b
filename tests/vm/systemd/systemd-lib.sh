#!/bin/sh
# shellcheck shell=dash
# Helpers of the systemd tier's scenarios (busybox sh), sourced after tests/vm/guest-lib.sh. Here groupd
# runs as the shipped units make it run: groupd.socket (enabled offline) and groupd.service, installed
# as `make install` lays them out; its log is the journal.

# The delivery modes the scenarios run through: one word a mode. When groupctl learns a mode
# (iommufd, node-grant), add it here and give acquire_args its option.
MODES="legacy"
# acquire_args MODE: groupctl acquire's options for a delivery mode.
acquire_args() {
        case $1 in
        legacy) echo "" ;;
        *) return 1 ;;
        esac
}

UNIT=groupd.service

main_pid() { systemctl show -P MainPID "$UNIT"; }
unit_state() { systemctl show -P ActiveState "$UNIT"; }
is_active() { [ "$(unit_state)" = active ]; }
is_inactive() { [ "$(unit_state)" = inactive ] || [ "$(unit_state)" = failed ]; }
n_restarts() { systemctl show -P NRestarts "$UNIT"; }
# fd_store_count: how many fds systemd holds for groupd now.
fd_store_count() { systemctl show -P NFileDescriptorStore "$UNIT" 2>/dev/null; }

# The journal from the mark the runner set before the topic began (a cursor file).
journal_mark() { journalctl -n 0 --show-cursor -q 2>/dev/null | sed -n 's/^-- cursor: //p' >/run/rig-cursor; }
journal_since_mark() {
        if [ -s /run/rig-cursor ]; then
                journalctl -q --no-pager -o short-monotonic --after-cursor="$(cat /run/rig-cursor)" "$@"
        else
                journalctl -q --no-pager -o short-monotonic -b "$@"
        fi
}
groupd_journal() { journal_since_mark -u groupd.service -u groupd.socket "$@"; }

# denials: the journal lines since the mark that show the sandbox in the way: a system call the filter
# refused (audit SECCOMP, or groupd reporting EPERM / "Operation not permitted"), a device node or
# path missing in groupd's private view, a read-only file system.
denials() {
        {
                journal_since_mark -k | grep -iE 'audit.*(seccomp|type=1326)|apparmor="DENIED"'
                groupd_journal | grep -iE 'EPERM|Operation not permitted|Permission denied|No such file or directory|Read-only file system|ENOENT|EROFS|EACCES|seccomp'
        } 2>/dev/null
}

# baseline helpers on top of guest-lib.sh's
baseline_clean() { [ -z "$(baseline_diff)" ]; }
baseline_restore() {
        for pair in $BASELINE_DRIVERS; do
                d=${pair%%=*} want=${pair#*=}
                echo >"$pci/$d/driver_override" 2>/dev/null
                [ "$(driver_of "$d")" = "$want" ] && continue
                [ -L "$pci/$d/driver" ] && echo "$d" >"$pci/$d/driver/unbind" 2>/dev/null
                [ -n "$want" ] && echo "$d" >/sys/bus/pci/drivers_probe 2>/dev/null
        done
}

# rig_cleanup: after a topic, whatever it left: the VMMs and groupctl go (so their leases end), then
# groupd is stopped (releasing what is left), and a failed unit is reset for the next topic.
rig_cleanup() {
        for p in vmm-standin lease-vmm groupctl; do
                pids=$(pidof "$p")
                [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        done
        wait_until 100 no_leases_or_down
        systemctl stop groupd.service 2>/dev/null
        rm -f /etc/systemd/system/groupd.service.d/rig-*.conf /etc/polkit-1/rules.d/50-rig-*.rules
        systemctl daemon-reload
        systemctl reset-failed groupd.service groupd.socket 2>/dev/null
        systemctl start groupd.socket
}
no_leases_or_down() { ! is_active || no_leases; }

# is_baseline ADDR: the device is on its boot driver (none for a device BASELINE_DRIVERS does not name,
# such as the pci-testdev at 00:02.0), without an override.
is_baseline() {
        _want=
        for pair in $BASELINE_DRIVERS; do
                [ "${pair%%=*}" = "$1" ] && _want=${pair#*=}
        done
        [ "$(driver_of "$1")" = "$_want" ] && [ -z "$(override_of "$1")" ]
}
# restarted_since N: systemd restarted groupd since NRestarts was N, and it is up again.
restarted_since() { [ "$(n_restarts)" -gt "$1" ] && is_active; }

# acquire_once MODE VARIANT: the acquire/release round of scenario-20 (and -25).
acquire_once() {
        mode=$1 variant=$2
        name=acquire-$mode-$variant
        journal_mark
        if ! acquire_exec /tmp/acq.out 3 6 --label "sd-$mode" $(acquire_args "$mode") --exec -- vmm-standin --hold 60; then
                fail "$name" "the acquire did not get to the stand-in"
                groupd_journal | tail -n 15 | sed 's/^/    /'
                return
        fi
        pid=$(main_pid)
        s="$(driver_of 0000:00:03.0) $(group_state 6)"
        vmm_fds=$(vfio_fds_of "$VMM_PID")
        own_fds=$(vfio_fds_of "$pid")
        stored=$(fd_store_count)
        if [ "$s" = "vfio-pci 0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ] &&
                [ "$vmm_fds" = "/dev/vfio/3 /dev/vfio/6 /dev/vfio/vfio" ] &&
                grep -q 'group 3: viable, in container' /tmp/acq.out && grep -q 'group 6: viable, in container' /tmp/acq.out &&
                ! grep -q 'could not be used' /tmp/acq.out; then
                pass "$name" "the VMM uses its fds ($vmm_fds); groupd holds $own_fds; the fd store holds $stored"
        else
                fail "$name" "drivers '$s', VMM fds '$vmm_fds', stand-in said: $(tr '\n' '|' </tmp/acq.out | head -c 400)"
        fi
        # container, 2 groups, the owner's pidfd
        if [ "$stored" = 4 ]; then
                pass "$name-fd-store" "4 fds stored: container, group-3, group-6, owner"
        else
                fail "$name-fd-store" "NFileDescriptorStore is '$stored', expected 4"
        fi
        out=$(timeout 20 groupctl release "$TOKEN" 2>&1)
        st=$?
        if [ $st -eq 0 ] && wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 100 is_on 0000:00:06.1 e1000 &&
                wait_until 50 node_gone 3 && wait_until 50 node_gone 6 && wait_until 50 no_leases; then
                pass "$name-release" "drivers back: 00:03.0 $(driver_of 0000:00:03.0), group 6 $(group_state 6); fd store $(fd_store_count)"
        else
                fail "$name-release" "release exited $st ($out); 00:03.0 '$(driver_of 0000:00:03.0)', group 6 '$(group_state 6)'"
        fi
        kill "$VMM_PID" 2>/dev/null
        wait "$ACQ_PID" 2>/dev/null
        if [ "$(fd_store_count)" != 0 ]; then
                fail "$name-fd-store-empty" "NFileDescriptorStore is '$(fd_store_count)' after the release"
        fi
        d=$(denials)
        if [ -z "$d" ] && [ "$(main_pid)" = "$pid" ] && is_active; then
                pass "$name-no-denial" "no seccomp, EPERM, EACCES, ENOENT or EROFS in the journal; groupd still pid $pid"
        else
                fail "$name-no-denial" "groupd pid $pid → $(main_pid) ($(unit_state)); journal: $(echo "$d" | head -n 5 | tr '\n' '|')"
        fi
}
