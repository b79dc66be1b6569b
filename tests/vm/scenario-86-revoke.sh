#!/bin/sh
# shellcheck shell=dash
# Device truth, revoke (issue 13): a stand-in VMM holds the device fd of 00:03.0 and has registered an
# eventfd for VFIO_PCI_REQ_IRQ_INDEX. `groupctl revoke ID --deadline 3 --force` starts the release at
# once: the kernel relays its device request to the VMM (which reports it and keeps the device), and past
# the deadline groupd sends the VMM SIGTERM; the release completes with reason revoked and e1000e is back.

if ! daemon_start; then
        fail revoke "groupd did not start"
        exit 0
fi
mon=/tmp/monitor-revoke.out
: >"$mon"
groupctl monitor >>"$mon" 2>&1 &
mon_pid=$!
g3=$(group_of "$NIC")

if acquire_exec /tmp/revoke-vmm.out "$NIC" --label victim --exec -- vmm-standin --hold 60 --device-requests; then
        id=$(groupctl leases --no-legend | awk '{print $1}')
        if ! grep -q 'device request eventfd registered' /tmp/revoke-vmm.out; then
                fail revoke-device-request "the stand-in could not register its device request eventfd:"
                sed 's/^/    /' /tmp/revoke-vmm.out
        fi
        t0=$(now_ms)
        out=$(timeout 10 groupctl revoke "$id" --deadline 3 --force 2>&1)
        st=$?
        if [ $st -eq 0 ] && wait_until 30 file_has /tmp/revoke-vmm.out "device request for $NIC"; then
                t1=$(now_ms)
                if alive "$VMM_PID"; then
                        pass revoke-device-request "the VMM got the kernel's device request $((t1 - t0)) ms after the revoke: $(grep -m1 'device request for' /tmp/revoke-vmm.out)"
                else
                        fail revoke-device-request "the VMM is gone before the deadline"
                fi
        else
                fail revoke-device-request "revoke exited $st ($out); the VMM said: $(tr '\n' '|' </tmp/revoke-vmm.out)"
                daemon_log_tail
        fi
        # Held up until the deadline, then SIGTERM.
        if wait_until 100 dead "$VMM_PID" && wait_until 100 is_on "$NIC" e1000e && wait_until 50 node_gone "$g3" &&
                wait_until 50 no_leases; then
                t2=$(now_ms)
                wait "$ACQ_PID"
                ast=$?
                if [ $((t2 - t0)) -ge 2500 ] && grep -q "sent SIGTERM to its owner, pid $VMM_PID" "$DAEMON_LOG" &&
                        wait_until 30 file_has "$mon" "lease-ended lease $id.*reason revoked" && [ "$ast" = 143 ]; then
                        pass revoke-force-deadline "SIGTERM past the 3 s deadline; e1000e back $((t2 - t0)) ms after the revoke; groupctl exited $ast"
                else
                        fail revoke-force-deadline "after $((t2 - t0)) ms; groupctl exited $ast; monitor: $(tr '\n' '|' <"$mon")"
                        daemon_log_tail
                fi
        else
                fail revoke-force-deadline "15 s after the revoke: VMM $(alive "$VMM_PID" && echo alive || echo dead), $NIC on '$(driver_of "$NIC")', leases '$(groupctl leases --no-legend)'"
                daemon_log_tail
                kill -KILL "$VMM_PID" 2>/dev/null
        fi
else
        fail revoke-device-request "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null
kill -TERM "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null
daemon_stop
