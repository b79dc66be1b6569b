#!/bin/sh
# shellcheck shell=dash
# Groups are found by address (guest-lib.sh), not by number.
# Acquire and release: group 3 (00:03.0, e1000e) to a stand-in VMM that really uses the fds (the
# container's API, the group's status, VFIO_GROUP_GET_DEVICE_FD and a config-space read through the
# device fd); a second acquire is refused naming the holder; the owner exits and e1000e comes back.
# Then group 6 whole (00:06.0 without a driver and 00:06.1 on e1000): both on vfio-pci while leased,
# and afterwards e1000 on 06.1 and no driver on 06.0. Last, group 9 with --configure-iommu: groupd sets
# the container's IOMMU type (VFIO_SET_IOMMU) before handing it over.

if ! daemon_start; then
        fail acquire "groupd did not start"
        exit 0
fi
g3=$(group_of "$NIC") g6=$(group_of "$MF0") g9=$(group_of "$RP_EDU")

# --- group 3 ----------------------------------------------------------------------------------
t0=$(now_ms)
if acquire_exec /tmp/acq3.out "$NIC" --label vm-three --exec -- vmm-standin --hold 60 --strict-fds; then
        t1=$(now_ms)
        sed 's/^/    /' /tmp/acq3.out
        drv=$(driver_of 0000:00:03.0)
        ov=$(override_of 0000:00:03.0)
        if [ "$drv" = vfio-pci ] && [ "$ov" = vfio-pci ] && [ -c /dev/vfio/$g3 ]; then
                pass acquire-group3-bound "00:03.0 on vfio-pci, /dev/vfio/$g3 there, granted in $((t1 - t0)) ms"
        else
                fail acquire-group3-bound "00:03.0 is on '${drv:-none}' (override '${ov:-none}'), /dev/vfio/$g3 $([ -c /dev/vfio/$g3 ] && echo there || echo missing)"
        fi

        # The stand-in's own report: fds usable, config space read through the device fd matches sysfs.
        want="device 0000:00:03.0 $(cut -c3- "$pci/0000:00:03.0/vendor"):$(cut -c3- "$pci/0000:00:03.0/device") (config space)"
        if grep -q "group $g3: viable, in container" /tmp/acq3.out && grep -q "$want" /tmp/acq3.out &&
                grep -q 'container: VFIO API version 0' /tmp/acq3.out && ! grep -q 'could not be used' /tmp/acq3.out; then
                pass acquire-group3-fds-usable "GET_DEVICE_FD and config read: $want"
        else
                fail acquire-group3-fds-usable "the stand-in did not report '$want' and a viable group in its container"
        fi

        # The kernel's view of who holds what: the VMM has the container and the group open.
        fds=$(vfio_fds_of "$VMM_PID")
        if [ "$fds" = "/dev/vfio/$g3 /dev/vfio/vfio" ]; then
                pass acquire-group3-vmm-fds "$fds"
        else
                fail acquire-group3-vmm-fds "the stand-in (pid $VMM_PID) has '$fds' open, expected /dev/vfio/$g3 and /dev/vfio/vfio"
        fi

        # A second acquire is refused, naming the holder; nothing changes.
        out=$(groupctl acquire "$NIC" 2>&1)
        st=$?
        lease=$(groupctl leases --json | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' | head -n 1)
        if [ $st -eq 4 ] && echo "$out" | grep -q "held by lease $lease" && echo "$out" | grep -q 'vm-three' &&
                echo "$out" | grep -q "pid $VMM_PID" && [ "$(driver_of 0000:00:03.0)" = vfio-pci ] && alive "$VMM_PID"; then
                pass acquire-group3-busy "exit 4: $out"
        else
                fail acquire-group3-busy "second acquire exited $st (expected 4 naming lease $lease, vm-three, pid $VMM_PID): $out"
        fi

        # The holder shows in the list.
        if groupctl list --no-legend | grep -q "^$g3 .*vm-three"; then
                pass acquire-group3-listed
        else
                fail acquire-group3-listed "groupctl list does not name vm-three for group $g3: $(groupctl list --no-legend | grep "^$g3 ")"
        fi

        # The owner exits: the lease ends, e1000e is back, the node is gone.
        t0=$(now_ms)
        kill -TERM "$VMM_PID"
        if wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 50 node_gone "$g3"; then
                t1=$(now_ms)
                wait "$ACQ_PID"
                if [ -z "$(override_of 0000:00:03.0)" ] && [ -z "$(groupctl leases --no-legend 2>&1)" ]; then
                        pass release-group3-owner-exit "e1000e back on 00:03.0 in $((t1 - t0)) ms, /dev/vfio/$g3 gone, no lease"
                else
                        fail release-group3-owner-exit "override '$(override_of 0000:00:03.0)', leases: $(groupctl leases --no-legend 2>&1)"
                fi
        else
                fail release-group3-owner-exit "00:03.0 is on '$(driver_of 0000:00:03.0)', /dev/vfio/$g3 $([ -e /dev/vfio/$g3 ] && echo 'still there' || echo gone) 10 s after the owner exited"
                daemon_log_tail
        fi
else
        fail acquire-group3-bound "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null

# --- group 6, whole -------------------------------------------------------------------------
if acquire_exec /tmp/acq6.out "$MF0" --label vm-six --exec -- vmm-standin --hold 60; then
        sed 's/^/    /' /tmp/acq6.out
        s=$(group_state "$g6")
        if [ "$s" = "0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ] && [ -c /dev/vfio/$g6 ] &&
                grep -q 'device 0000:00:06.0 1234:11e8 (config space)' /tmp/acq6.out &&
                grep -q "device 0000:00:06.1 8086:100e (config space)" /tmp/acq6.out; then
                pass acquire-group6-whole "$s; both devices' config space read through VFIO"
        else
                fail acquire-group6-whole "group $g6 is '$s' (expected both on vfio-pci), /dev/vfio/$g6 $([ -c /dev/vfio/$g6 ] && echo there || echo missing)"
        fi
        kill -TERM "$VMM_PID"
        if wait_until 100 is_on 0000:00:06.1 e1000 && wait_until 50 node_gone "$g6"; then
                wait "$ACQ_PID"
                s=$(group_state "$g6")
                if [ "$s" = "0000:00:06.0= 0000:00:06.1=e1000" ] && [ -z "$(override_of 0000:00:06.0)" ] &&
                        [ -z "$(override_of 0000:00:06.1)" ]; then
                        pass release-group6-restored "e1000 on 06.1, no driver on 06.0, overrides cleared"
                else
                        fail release-group6-restored "group $g6 is '$s', overrides '$(override_of 0000:00:06.0)' '$(override_of 0000:00:06.1)'"
                fi
        else
                fail release-group6-restored "group $g6 is '$(group_state "$g6")' 10 s after the owner exited"
                daemon_log_tail
        fi
else
        fail acquire-group6-whole "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null

# --- groupd sets the IOMMU type (--configure-iommu): Type1v2 on the container it hands over -------
if acquire_exec /tmp/acq9.out "$RP_EDU" --configure-iommu --exec -- vmm-standin --hold 60; then
        if grep -q 'container: IOMMU type already set' /tmp/acq9.out && [ "$(driver_of 0000:02:00.0)" = vfio-pci ] &&
                grep -q 'device 0000:02:00.0 1234:11e8 (config space)' /tmp/acq9.out; then
                pass acquire-configure-iommu "the VMM's VFIO_SET_IOMMU got EINVAL: groupd had set it; config space read"
        else
                fail acquire-configure-iommu "the stand-in did not find the IOMMU type set:"
                sed 's/^/    /' /tmp/acq9.out
        fi
        kill -TERM "$VMM_PID"
        if ! wait_until 50 node_gone "$g9" || [ -n "$(driver_of 0000:02:00.0)" ]; then
                fail acquire-configure-iommu "after the owner exited, 02:00.0 is on '$(driver_of 0000:02:00.0)'"
        fi
else
        fail acquire-configure-iommu "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null

daemon_stop
