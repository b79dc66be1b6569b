#!/bin/sh
# shellcheck shell=dash
# `systemctl stop groupd` with leases held does what groupd(8) says: SIGTERM with --keep-leases-on-exit
# keeps the leases that can outlive the daemon and ends the connection's; systemd 252 empties the fd
# store when the service stops for good, so the next start (socket activation) keeps the live process's
# lease (found by pid and start time) and ends the lease-fd lease, whose devices go home.

has_lease() { groupctl leases --no-legend 2>/dev/null | awk '{ print $2 }' | grep -qx "$1"; }
leases_line() { groupctl leases --no-legend 2>/dev/null | awk '{ print $2 }' | sort | tr '\n' ' '; }

groupctl status >/dev/null
acquire_exec /tmp/sp.out 3 --label st-P --delivery=legacy --exec -- lease-vmm env || { fail stop-setup "lease P"; exit 0; }
p_vmm=$VMM_PID
lease-vmm acquire --lease-fd --label st-F 6 >/tmp/sf.out 2>&1 &
f_vmm=$!
groupctl acquire 0000:00:02.0 --label st-C >/tmp/sc.out 2>&1 &
wait_until 150 file_has /tmp/sf.out 'CHECK ok' && wait_until 100 has_lease st-C ||
        { fail stop-setup "leases: $(leases_line); F: $(cat /tmp/sf.out)"; exit 0; }
note "before the stop: leases $(leases_line), store $(fd_store_count)"

journal_mark
systemctl stop groupd.service
st=$(unit_state)
s="$(driver_of 0000:00:03.0) $(group_state 6)"
if [ "$st" = inactive ] && [ "$s" = "vfio-pci 0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ] &&
        wait_until 50 is_baseline 0000:00:02.0 && [ "$(fd_store_count)" = 0 ]; then
        pass stop-keeps-devices "stopped ($st): P's and F's devices stay on vfio-pci, C's went home, the store is empty"
else
        fail stop-keeps-devices "unit '$st', drivers '$s', 00:02.0 '$(driver_of 0000:00:02.0)', store '$(fd_store_count)'"
        groupd_journal | tail -n 15 | sed 's/^/    /'
fi

groupctl status >/dev/null 2>&1
wait_until 100 is_active
f_gone() { ! has_lease st-F; }
wait_until 100 f_gone
n_before=$(grep -c '^RECHECK' /tmp/sp.out)
kill -USR2 "$p_vmm"
rechecked() { [ "$(grep -c '^RECHECK' /tmp/sp.out)" -gt "$n_before" ]; }
wait_until 100 rechecked
if has_lease st-P && ! has_lease st-F && ! has_lease st-C && [ "$(driver_of 0000:00:03.0)" = vfio-pci ] &&
        wait_until 100 is_baseline 0000:00:06.1 && wait_until 50 is_baseline 0000:00:06.0 &&
        tail -n 1 /tmp/sp.out | grep -q '^RECHECK ok'; then
        pass stop-start-as-documented "after the start: P kept for its live owner (its VMM's fds work), F ended and group 6 went home, C gone"
else
        fail stop-start-as-documented "leases '$(leases_line)', 00:03.0 '$(driver_of 0000:00:03.0)', group 6 '$(group_state 6)' (overrides '$(override_of 0000:00:06.0)' '$(override_of 0000:00:06.1)'), P's recheck: $(tail -n 1 /tmp/sp.out | tr -d '\n')| BASELINE_DRIVERS: $BASELINE_DRIVERS"
        groupd_journal | tail -n 20 | sed 's/^/    /'
fi
note "F's VMM after its lease ended: $(vfio_fds_of "$f_vmm")"
kill "$p_vmm" "$f_vmm" 2>/dev/null
if wait_until 150 no_leases && wait_until 100 baseline_clean; then
        pass stop-owners-end "P's owner exited: no lease left, every device home"
else
        fail stop-owners-end "leases '$(leases_line)', devices: $(baseline_diff)"
fi
