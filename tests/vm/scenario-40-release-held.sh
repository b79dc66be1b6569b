#!/bin/sh
# shellcheck shell=dash
# Release while the owner still holds a device fd: the kernel holds the unbind from vfio-pci up until
# every copy of the device fd is closed. Meanwhile the daemon keeps answering other clients, reports
# the release as held up when its deadline (2 s here) passes, and finishes the release as soon as the
# owner lets go of its fds (SIGUSR1 to the stand-in, which stays alive).

if ! daemon_start --release-deadline=2; then
        fail release-held "groupd did not start"
        exit 0
fi

# First a VMM that holds only the container and the group (no device fd): a release by token does not
# wait for it. The kernel lets vfio-pci go at once and the host driver comes back, while the VMM's group
# fd is left pointing at a deleted node.
g3=$(group_of "$NIC")
if acquire_exec /tmp/revoke.out "$NIC" --label revoked --exec -- vmm-standin --hold 60; then
        t0=$(now_ms)
        out=$(timeout 10 groupctl release "$TOKEN" 2>&1)
        st=$?
        if [ $st -eq 0 ] && wait_until 50 is_on 0000:00:03.0 e1000e && wait_until 30 node_gone "$g3" &&
                wait_until 30 no_leases; then
                t1=$(now_ms)
                fds=$(vfio_fds_of "$VMM_PID")
                if alive "$VMM_PID" && echo "$fds" | grep -q "/dev/vfio/$g3 (deleted)"; then
                        pass release-revokes-group-fds "e1000e back $((t1 - t0)) ms after the release; the live VMM holds '$fds'"
                else
                        fail release-revokes-group-fds "VMM alive: $(alive "$VMM_PID" && echo yes || echo no), its fds '$fds'"
                fi
        else
                fail release-revokes-group-fds "release exited $st ($out); 00:03.0 on '$(driver_of 0000:00:03.0)', /dev/vfio/$g3 $([ -e /dev/vfio/$g3 ] && echo there || echo gone)"
                daemon_log_tail
        fi
        kill -TERM "$VMM_PID"
        wait "$ACQ_PID" 2>/dev/null
else
        fail release-revokes-group-fds "acquire failed"
        daemon_log_tail
fi

if acquire_exec /tmp/held.out "$NIC" --label stubborn --exec -- vmm-standin --hold 60 --keep-device-fds; then
        sed 's/^/    /' /tmp/held.out
        t0=$(now_ms)
        out=$(timeout 10 groupctl release "$TOKEN" 2>&1)
        st=$?
        t1=$(now_ms)
        if [ $st -eq 0 ]; then
                pass release-held-accepted "groupctl release answered in $((t1 - t0)) ms"
        else
                fail release-held-accepted "groupctl release exited $st after $((t1 - t0)) ms: $out"
        fi

        # The daemon answers other clients while the kernel holds the unbind up.
        sleep 0.5
        t0=$(now_ms)
        l=$(timeout 5 groupctl list --no-legend 2>&1)
        st1=$?
        s=$(timeout 5 groupctl leases --no-legend 2>&1)
        st2=$?
        t1=$(now_ms)
        drv=$(driver_of 0000:00:03.0)
        if [ $st1 -eq 0 ] && [ $st2 -eq 0 ] && [ "$drv" != e1000e ] && echo "$s" | grep -q releasing; then
                pass release-held-daemon-answers "list and leases answered in $((t1 - t0)) ms while the unbind of 00:03.0 is held up; lease: $s"
        else
                fail release-held-daemon-answers "list exited $st1, leases exited $st2 ($((t1 - t0)) ms), 00:03.0 on '$drv', leases: $s"
                daemon_log_tail
        fi

        # Past the deadline: reported as held up, naming the group.
        if wait_until 40 file_has "$DAEMON_LOG" 'is held up after'; then
                pass release-held-deadline "$(grep -o 'Release of lease .*held up after [0-9]* ms[^.]*' "$DAEMON_LOG" | head -n 1)"
        else
                fail release-held-deadline "no held-up report 4 s after the 2 s deadline"
                daemon_log_tail
        fi
        # The kernel's side: the unbind is under way (the driver link goes first) but vfio-pci's remove
        # waits for the device fd, so the group node stays and no host driver is back.
        drv=$(driver_of 0000:00:03.0)
        if [ "$drv" != e1000e ] && [ -c /dev/vfio/$g3 ] && alive "$VMM_PID"; then
                pass release-held-kernel "00:03.0 on '${drv:-none}', /dev/vfio/$g3 still there while the owner holds the device fd"
        else
                fail release-held-kernel "00:03.0 on '${drv:-none}', /dev/vfio/$g3 $([ -c /dev/vfio/$g3 ] && echo there || echo gone) although the owner holds its device fd"
        fi

        # The owner lets go (and lives on): the release completes.
        t0=$(now_ms)
        kill -USR1 "$VMM_PID"
        if wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 50 node_gone "$g3"; then
                t1=$(now_ms)
                if alive "$VMM_PID" && grep -q 'let go of 1 device fd' /tmp/held.out && wait_until 50 no_leases; then
                        pass release-held-completes "e1000e back $((t1 - t0)) ms after the owner closed its fds; the owner is still running"
                else
                        fail release-held-completes "owner alive: $(alive "$VMM_PID" && echo yes || echo no); leases: $(groupctl leases --no-legend)"
                        sed 's/^/    /' /tmp/held.out
                fi
        else
                fail release-held-completes "10 s after the owner let go: 00:03.0 on '$(driver_of 0000:00:03.0)'"
                sed 's/^/    /' /tmp/held.out
                daemon_log_tail
        fi
        kill -TERM "$VMM_PID" 2>/dev/null
else
        fail release-held-accepted "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null
daemon_stop
