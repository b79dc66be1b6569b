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
