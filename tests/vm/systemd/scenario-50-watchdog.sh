#!/bin/sh
# shellcheck shell=dash
# The watchdog: pinged from the event loop while the loop runs; when the loop hangs (the test-only
# control GROUPD_TEST_HANG_ON_SIGUSR2=1, armed by a drop-in, with SIGUSR2), systemd's watchdog fires
# (SIGABRT), and Restart=on-failure starts groupd again, which takes its leases back from the fd store.
# WatchdogSec= is shortened from the unit's 30 s to 8 s by the same drop-in, to keep the tier quick (4 s
# fired without the control on a host loaded 8-fold, the guest starved of time, during an acquire).

has_lease() { groupctl leases --no-legend 2>/dev/null | awk '{ print $2 }' | grep -qx "$1"; }
leases_line() { groupctl leases --no-legend 2>/dev/null | awk '{ print $2 }' | sort | tr '\n' ' '; }

mkdir -p /etc/systemd/system/groupd.service.d
printf '[Service]\nWatchdogSec=8s\nEnvironment=GROUPD_TEST_HANG_ON_SIGUSR2=1\n' >/etc/systemd/system/groupd.service.d/rig-watchdog.conf
systemctl daemon-reload
systemctl restart groupd.service
wait_until 100 is_active

acquire_exec /tmp/wp.out 3 --label wd-P --delivery=legacy --exec -- lease-vmm env || { fail watchdog-setup "lease P"; exit 0; }
p_vmm=$VMM_PID
lease-vmm acquire --lease-fd --label wd-F 6 >/tmp/wf.out 2>&1 &
f_vmm=$!
wait_until 150 file_has /tmp/wf.out 'CHECK ok' || { fail watchdog-setup "lease F: $(cat /tmp/wf.out)"; exit 0; }

pid=$(main_pid)
nr=$(n_restarts)
sleep 10
if [ "$(main_pid)" = "$pid" ] && [ "$(n_restarts)" = "$nr" ] && is_active; then
        pass watchdog-pinged "10 s idle with WatchdogSec=8s: still pid $pid, no restart"
else
        fail watchdog-pinged "pid $pid → $(main_pid), restarts $nr → $(n_restarts)"
fi

journal_mark
t0=$(now_ms)
kill -USR2 "$pid"
wait_until 300 restarted_since "$nr"
t1=$(now_ms)
groupctl status >/dev/null 2>&1
wait_until 100 has_lease wd-F
kill -USR2 "$f_vmm" "$p_vmm"
sleep 0.5
j=$(journal_since_mark)
if echo "$j" | grep -q 'groupd.service: Watchdog timeout' && [ "$(main_pid)" != "$pid" ] && is_active &&
        has_lease wd-P && has_lease wd-F && tail -n 1 /tmp/wf.out | grep -q '^RECHECK ok' &&
        tail -n 1 /tmp/wp.out | grep -q '^RECHECK ok' && [ "$(driver_of 0000:00:03.0)" = vfio-pci ]; then
        pass watchdog-restart-keeps-leases "the hung loop was caught by the watchdog and groupd restarted in $((t1 - t0)) ms (pid $pid → $(main_pid)); both leases kept, the VMMs' fds work"
else
        fail watchdog-restart-keeps-leases "pid $pid → $(main_pid) ($(unit_state)), leases '$(leases_line)', rechecks: $(tail -n 1 /tmp/wp.out | cut -c1-60) / $(tail -n 1 /tmp/wf.out | cut -c1-60)"
        echo "$j" | grep -iE 'groupd|watchdog' | tail -n 15 | sed 's/^/    /'
fi
kill "$p_vmm" "$f_vmm" 2>/dev/null
wait_until 150 no_leases
