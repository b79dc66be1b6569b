#!/bin/sh
# shellcheck shell=dash
# The owner killed, and the daemon killed and restarted, on POWER: a stand-in holding the lone e1000e's
# group is SIGKILLed and e1000e comes back.
. /groupd/ppc-lib.sh

if ! daemon_start; then
        fail owner-killed "groupd did not start"
        exit 0
fi
if acquire_exec /tmp/acq-kill.out "$NET_GROUP" --label vm-kill --configure-iommu --exec -- vmm-standin --hold 60; then
        t0=$(now_ms)
        kill -KILL "$VMM_PID"
        if wait_until 150 is_on "$NET_DEV" e1000e && wait_until 50 node_gone "$NET_GROUP" && wait_until 50 no_leases; then
                pass owner-killed-released "SIGKILL: e1000e back on $NET_DEV in $(($(now_ms) - t0)) ms, no lease"
        else
                fail owner-killed-released "$NET_DEV on '$(driver_of "$NET_DEV")' 15 s after SIGKILL"
                daemon_log_tail
        fi
else
        fail owner-killed-released "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null
daemon_stop

# The daemon is SIGKILLed holding two leases; the net group's owner dies while it is down, the pair's
# lives on. The restarted daemon reconciles its state file: e1000e comes back, the pair's lease is kept
# for its live owner and ends when that owner exits.
daemon_start -v || { fail daemon-restart "groupd did not start"; exit 0; }
acquire_exec /tmp/rn.out "$NET_GROUP" --label net --configure-iommu --exec -- vmm-standin --hold 60 ||
        { fail daemon-restart "acquire of group $NET_GROUP failed"; daemon_log_tail; exit 0; }
acqn=$ACQ_PID vmmn=$VMM_PID
acquire_exec /tmp/rp.out "$PAIR_GROUP" --label pair --configure-iommu --exec -- vmm-standin --hold 60 ||
        { fail daemon-restart "acquire of group $PAIR_GROUP failed"; daemon_log_tail; exit 0; }
acqp=$ACQ_PID vmmp=$VMM_PID
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
kill -KILL "$vmmn" "$acqn" 2>/dev/null
wait "$acqn" 2>/dev/null
wait_until 30 dead "$vmmn"
t0=$(now_ms)
daemon_start -v || { fail daemon-restart-reconcile "groupd did not restart"; exit 0; }
if wait_until 150 is_on "$NET_DEV" e1000e && wait_until 50 node_gone "$NET_GROUP"; then
        pass daemon-restart-reconcile "e1000e back on $NET_DEV $(($(now_ms) - t0)) ms after the restart (its owner died while groupd was down)"
else
        fail daemon-restart-reconcile "after the restart $NET_DEV is on '$(driver_of "$NET_DEV")'"
        daemon_log_tail
fi
net_gone() { ! groupctl leases --no-legend 2>/dev/null | grep -q -w net; }
wait_until 50 net_gone
leases=$(groupctl leases --no-legend 2>&1)
if echo "$leases" | grep -q -w pair && ! echo "$leases" | grep -q -w net && alive "$vmmp" &&
        [ "$(driver_of "$PAIR_NIC")" = vfio-pci ]; then
        pass daemon-restart-keeps-live "the pair's lease kept for its live owner"
else
        fail daemon-restart-keeps-live "leases '$leases', group $PAIR_GROUP '$(group_state "$PAIR_GROUP")'"
fi
kill -TERM "$vmmp"
if wait_until 150 is_on "$PAIR_NIC" "$PAIR_NIC_DRIVER" && wait_until 50 node_gone "$PAIR_GROUP" && wait_until 50 no_leases; then
        pass daemon-restart-watches-kept "the kept lease ended with its owner: group $PAIR_GROUP is '$(group_state "$PAIR_GROUP")'"
else
        fail daemon-restart-watches-kept "group $PAIR_GROUP '$(group_state "$PAIR_GROUP")', leases '$(groupctl leases --no-legend)'"
        daemon_log_tail
fi
wait "$acqp" 2>/dev/null
daemon_stop
