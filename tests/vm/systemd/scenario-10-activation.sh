#!/bin/sh
# shellcheck shell=dash
# Socket activation: groupd.socket (enabled offline) listens at boot and groupd.service is not running;
# the first groupctl starts it, and it is ready (Type=notify) and sandboxed as the unit says.

if is_active; then
        fail socket-activation "groupd.service is already running before anyone connected"
else
        st=$(systemctl show -P ActiveState groupd.socket)
        t0=$(now_ms)
        out=$(groupctl status 2>&1)
        rc=$?
        t1=$(now_ms)
        if [ $rc -eq 0 ] && is_active && [ "$st" = active ]; then
                pass socket-activation "groupd.socket $st; the first groupctl started groupd.service (pid $(main_pid)) and got its answer in $((t1 - t0)) ms"
        else
                fail socket-activation "socket '$st', groupctl exit $rc ($out), service '$(unit_state)'"
        fi
fi

pid=$(main_pid)
caps=$(sed -n 's/^CapEff:\t*//p' /proc/"$pid"/status)
seccomp=$(sed -n 's/^Seccomp:\t*//p' /proc/"$pid"/status)
nnp=$(sed -n 's/^NoNewPrivs:\t*//p' /proc/"$pid"/status)
# CAP_SYS_RESOURCE is bit 24.
if [ "$caps" = 0000000001000000 ] && [ "$seccomp" = 2 ] && [ "$nnp" = 1 ]; then
        pass sandbox-process "CapEff $caps (CAP_SYS_RESOURCE only), seccomp filter on, no_new_privs"
else
        fail sandbox-process "CapEff '$caps', Seccomp '$seccomp', NoNewPrivs '$nnp'"
fi
devs=$(nsenter -t "$pid" -m ls /dev 2>/dev/null | tr '\n' ' ')
vfio=$(nsenter -t "$pid" -m ls /dev/vfio 2>/dev/null | tr '\n' ' ')
if [ -n "$vfio" ] && ! echo " $devs" | grep -qE ' (vda|ttyS0|mem|kmsg|sda) '; then
        pass sandbox-private-dev "groupd's /dev: $devs; /dev/vfio: $vfio"
else
        fail sandbox-private-dev "groupd's /dev: '$devs', /dev/vfio: '$vfio'"
fi
status=$(systemctl show -P StatusText "$UNIT")
if echo "$status" | grep -q 'Serving: 0 lease'; then
        pass notify-status "STATUS=$status"
else
        fail notify-status "StatusText '$status'"
fi
