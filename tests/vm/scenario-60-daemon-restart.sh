#!/bin/sh
# shellcheck shell=dash
# The daemon is SIGKILLed while it holds two leases (group 3 and group 6). The devices stay on vfio-pci
# (nobody put them back). The owner of group 3 dies while the daemon is down; the owner of group 6
# lives on. The restarted daemon reconciles its state file: group 3's drivers come back (e1000e on
# 00:03.0), group 6's lease is kept for its live owner, and ends when that owner exits.

if ! daemon_start -v; then
        fail daemon-restart "groupd did not start"
        exit 0
fi
g3=$(group_of "$NIC") g6=$(group_of "$MF0")
if ! acquire_exec /tmp/r3.out "$NIC" --label three --exec -- vmm-standin --hold 60; then
        fail daemon-restart "acquire of group $g3 ($NIC) failed"
        daemon_log_tail
        exit 0
fi
acq3=$ACQ_PID vmm3=$VMM_PID
if ! acquire_exec /tmp/r6.out "$MF0" --label six --exec -- vmm-standin --hold 60; then
        fail daemon-restart "acquire of group $g6 ($MF0) failed"
        daemon_log_tail
        exit 0
fi
acq6=$ACQ_PID vmm6=$VMM_PID

kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
sleep 0.5
s="$(driver_of 0000:00:03.0) $(group_state "$g6")"
if [ "$s" = "vfio-pci 0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ]; then
        pass daemon-killed-devices-stay "with groupd dead: $s"
else
        fail daemon-killed-devices-stay "with groupd dead: 00:03.0 and group $g6 are '$s'"
fi

# Group 3's owner dies while nobody watches.
kill -KILL "$vmm3" "$acq3" 2>/dev/null
wait "$acq3" 2>/dev/null
wait_until 30 dead "$vmm3"

t0=$(now_ms)
if ! daemon_start -v; then
        fail daemon-restart-reconcile "groupd did not restart"
        exit 0
fi
if wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 50 node_gone "$g3"; then
        t1=$(now_ms)
        if [ -z "$(override_of 0000:00:03.0)" ] && grep -q 'is gone; restoring its devices' "$DAEMON_LOG"; then
                pass daemon-restart-reconcile "e1000e back on 00:03.0 $((t1 - t0)) ms after the restart, /dev/vfio/$g3 gone"
        else
                fail daemon-restart-reconcile "override '$(override_of 0000:00:03.0)'"
                daemon_log_tail
        fi
else
        fail daemon-restart-reconcile "after the restart 00:03.0 is on '$(driver_of 0000:00:03.0)'"
        daemon_log_tail
fi

# The driver is back a moment before the lease's record goes (LEASE_ENDED follows the rebind): wait for it.
three_gone() { ! groupctl leases --no-legend 2>/dev/null | grep -q 'three'; }
wait_until 50 three_gone
leases=$(groupctl leases --no-legend 2>&1)
if echo "$leases" | grep -q 'six' && ! echo "$leases" | grep -q 'three' &&
        [ "$(group_state "$g6")" = "0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ] && alive "$vmm6"; then
        pass daemon-restart-keeps-live "group $g6's lease kept for its live owner: $leases"
else
        fail daemon-restart-keeps-live "leases '$leases', group $g6 '$(group_state "$g6")'"
fi

kill -TERM "$vmm6"
if wait_until 100 is_on 0000:00:06.1 e1000 && wait_until 50 node_gone "$g6" && wait_until 50 no_leases; then
        pass daemon-restart-watches-kept "the kept lease ended with its owner: group $g6 is '$(group_state "$g6")'"
else
        fail daemon-restart-watches-kept "10 s after the owner of the kept lease exited: group $g6 '$(group_state "$g6")', leases '$(groupctl leases --no-legend)'"
        daemon_log_tail
fi
wait "$acq6" 2>/dev/null
daemon_stop
