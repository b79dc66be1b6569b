#!/bin/sh
# shellcheck shell=dash
# Acquire and release on POWER: the lone e1000e's group to a stand-in VMM that uses the fds (groupd sets
# the sPAPR IOMMU type, the VMM opens the device and reads its config space through VFIO); a second
# acquire is refused naming the holder; the owner exits and e1000e comes back. Then the group of two
# functions whole: both on vfio-pci while leased, afterwards the NIC on its driver and the edu on none.
. /groupd/ppc-lib.sh

if ! daemon_start; then
        fail acquire "groupd did not start"
        exit 0
fi

t0=$(now_ms)
if acquire_exec /tmp/acq-net.out "$NET_GROUP" --label vm-net --configure-iommu --exec -- vmm-standin --hold 60; then
        t1=$(now_ms)
        sed 's/^/    /' /tmp/acq-net.out
        want="device $NET_DEV $(cut -c3- "$pci/$NET_DEV/vendor"):$(cut -c3- "$pci/$NET_DEV/device") (config space)"
        if [ "$(driver_of "$NET_DEV")" = vfio-pci ] && [ "$(override_of "$NET_DEV")" = vfio-pci ] &&
                [ -c "/dev/vfio/$NET_GROUP" ] && grep -q "$want" /tmp/acq-net.out &&
                ! grep -q 'could not be used' /tmp/acq-net.out; then
                pass acquire-net-bound "$NET_DEV on vfio-pci, /dev/vfio/$NET_GROUP there, config read through VFIO, granted in $((t1 - t0)) ms"
        else
                fail acquire-net-bound "$NET_DEV on '$(driver_of "$NET_DEV")', or the stand-in did not report '$want'"
        fi
        fds=$(vfio_fds_of "$VMM_PID")
        if [ "$fds" = "/dev/vfio/$NET_GROUP /dev/vfio/vfio" ]; then
                pass acquire-net-vmm-fds "$fds"
        else
                fail acquire-net-vmm-fds "the stand-in has '$fds' open"
        fi
        out=$(groupctl acquire "$NET_GROUP" 2>&1)
        st=$?
        if [ $st -eq 4 ] && echo "$out" | grep -q 'vm-net' && echo "$out" | grep -q "pid $VMM_PID"; then
                pass acquire-net-busy "exit 4: $out"
        else
                fail acquire-net-busy "second acquire exited $st: $out"
        fi
        t0=$(now_ms)
        kill -TERM "$VMM_PID"
        if wait_until 150 is_on "$NET_DEV" e1000e && wait_until 50 node_gone "$NET_GROUP" && wait_until 50 no_leases; then
                pass release-net-owner-exit "e1000e back on $NET_DEV in $(($(now_ms) - t0)) ms, /dev/vfio/$NET_GROUP gone, no lease"
        else
                fail release-net-owner-exit "$NET_DEV on '$(driver_of "$NET_DEV")' 15 s after the owner exited"
                daemon_log_tail
        fi
else
        fail acquire-net-bound "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null

if acquire_exec /tmp/acq-pair.out "$PAIR_GROUP" --label vm-pair --configure-iommu --exec -- vmm-standin --hold 60; then
        s=$(group_state "$PAIR_GROUP")
        if [ "$s" = "$PAIR_EDU=vfio-pci $PAIR_NIC=vfio-pci" ] || [ "$s" = "$PAIR_NIC=vfio-pci $PAIR_EDU=vfio-pci" ]; then
                pass acquire-pair-whole "$s"
        else
                fail acquire-pair-whole "group $PAIR_GROUP is '$s'"
        fi
        kill -TERM "$VMM_PID"
        if wait_until 150 is_on "$PAIR_NIC" "$PAIR_NIC_DRIVER" && wait_until 50 node_gone "$PAIR_GROUP" &&
                [ -z "$(driver_of "$PAIR_EDU")" ] && [ -z "$(override_of "$PAIR_EDU")" ] && [ -z "$(override_of "$PAIR_NIC")" ]; then
                pass release-pair-restored "$PAIR_NIC_DRIVER on $PAIR_NIC, no driver on $PAIR_EDU, overrides cleared"
        else
                fail release-pair-restored "group $PAIR_GROUP is '$(group_state "$PAIR_GROUP")' after the owner exited"
                daemon_log_tail
        fi
else
        fail acquire-pair-whole "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null
daemon_stop
