#!/bin/sh
# shellcheck shell=dash
# A multi-group acquire where one group cannot be taken leaves nothing bound: group 8 (01:00.0, e1000e
# behind a root port) is put on vfio-pci by hand and /dev/vfio/8 held open by a process outside
# groupd, so opening it gets EBUSY after groupd has already moved 00:03.0 (group 3) to vfio-pci. The
# acquire of 3 and 8 fails naming group 8, and 00:03.0 is back on e1000e.

d8=$RP_NIC g8=$(group_of "$RP_NIC") g3=$(group_of "$NIC")
echo vfio-pci >"$pci/$d8/driver_override"
echo "$d8" >"$pci/$d8/driver/unbind"
echo "$d8" >/sys/bus/pci/drivers_probe
if ! wait_until 30 is_on "$d8" vfio-pci || ! wait_until 30 test -c "/dev/vfio/$g8"; then
        fail atomic-setup "could not put $d8 on vfio-pci by hand: on '$(driver_of "$d8")'"
fi
sh -c "exec 7<>/dev/vfio/$g8; echo held >/tmp/outsider.ready; exec sleep 60" &
outsider=$!
wait_until 30 test -f /tmp/outsider.ready

if daemon_start; then
        out=$(timeout 30 groupctl acquire "$NIC" "$RP_NIC" --label both 2>&1)
        st=$?
        s3=$(driver_of 0000:00:03.0)
        leases=$(groupctl leases --no-legend 2>&1)
        if [ $st -ne 0 ] && echo "$out" | grep -q "group $g8" && [ "$s3" = e1000e ] &&
                [ -z "$(override_of 0000:00:03.0)" ] && [ ! -e /dev/vfio/$g3 ] && [ -z "$leases" ] &&
                [ "$(driver_of "$d8")" = vfio-pci ] && alive "$outsider"; then
                pass atomic-nothing-bound "exit $st: $out; 00:03.0 back on e1000e, /dev/vfio/$g3 gone, group $g8 untouched"
        else
                fail atomic-nothing-bound "exit $st: $out; 00:03.0 on '$s3' (override '$(override_of 0000:00:03.0)'), /dev/vfio/$g3 $([ -e /dev/vfio/$g3 ] && echo there || echo gone), leases '$leases'"
                daemon_log_tail
        fi
        daemon_stop
else
        fail atomic-nothing-bound "groupd did not start"
fi

kill -TERM "$outsider" 2>/dev/null
wait "$outsider" 2>/dev/null
echo >"$pci/$d8/driver_override"
echo "$d8" >"$pci/$d8/driver/unbind"
echo "$d8" >/sys/bus/pci/drivers_probe
wait_until 50 is_on "$d8" e1000e
wait_until 30 node_gone "$g8"
