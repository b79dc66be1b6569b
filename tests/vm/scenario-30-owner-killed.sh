#!/bin/sh
# shellcheck shell=dash
# The owner is SIGKILLed while it holds group 3 (and a device fd of it): the daemon sees it go (pidfd),
# releases the lease, e1000e is back on 00:03.0 and /dev/vfio/$g3 is gone.

if ! daemon_start; then
        fail owner-killed "groupd did not start"
        exit 0
fi

g3=$(group_of "$NIC")
if acquire_exec /tmp/kill3.out "$NIC" --label doomed --exec -- vmm-standin --hold 60 --keep-device-fds; then
        if [ "$(driver_of 0000:00:03.0)" != vfio-pci ]; then
                fail owner-killed "00:03.0 is on '$(driver_of 0000:00:03.0)' while leased"
        fi
        t0=$(now_ms)
        kill -KILL "$VMM_PID"
        if wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 50 node_gone "$g3"; then
                t1=$(now_ms)
                wait "$ACQ_PID"
                st=$?
                leases=$(groupctl leases --no-legend 2>&1)
                if [ -z "$leases" ] && [ -z "$(override_of 0000:00:03.0)" ] && grep -q 'owner-exited' "$DAEMON_LOG"; then
                        pass owner-killed-released "e1000e back on 00:03.0 $((t1 - t0)) ms after SIGKILL, /dev/vfio/$g3 gone, groupctl exited $st"
                else
                        fail owner-killed-released "leases '$leases', override '$(override_of 0000:00:03.0)'"
                        daemon_log_tail
                fi
        else
                fail owner-killed-released "10 s after SIGKILL: 00:03.0 on '$(driver_of 0000:00:03.0)', /dev/vfio/$g3 $([ -e /dev/vfio/$g3 ] && echo 'still there' || echo gone)"
                daemon_log_tail
        fi
else
        fail owner-killed-released "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null
daemon_stop
