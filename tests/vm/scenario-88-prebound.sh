#!/bin/sh
# shellcheck shell=dash
# Device truth, exact restore (issue 13): 00:03.0 is bound to vfio-pci (driver_override vfio-pci, as
# driverctl or libvirt's unmanaged mode leave it) before groupd starts. A lease on it uses it as it is,
# and after the lease ends it is still on vfio-pci with its override. Then it is put back by hand.

echo vfio-pci >"$pci/$NIC/driver_override"
echo "$NIC" >"$pci/$NIC/driver/unbind"
echo "$NIC" >/sys/bus/pci/drivers_probe
if ! wait_until 30 is_on "$NIC" vfio-pci; then
        fail prebound-setup "could not put $NIC on vfio-pci by hand: on '$(driver_of "$NIC")'"
fi
g3=$(group_of "$NIC")

if daemon_start; then
        if acquire_exec /tmp/prebound.out "$NIC" --label prebound --exec -- vmm-standin --hold 60; then
                grep -q "group $g3: viable, in container" /tmp/prebound.out ||
                        fail prebound-used "the stand-in did not find group $g3 usable: $(tr '\n' '|' </tmp/prebound.out)"
                kill -TERM "$VMM_PID"
                wait "$ACQ_PID" 2>/dev/null
                if wait_until 50 no_leases && sleep 0.5 && is_on "$NIC" vfio-pci && [ "$(override_of "$NIC")" = vfio-pci ]; then
                        pass prebound-stays-vfio "after the lease: $NIC on '$(driver_of "$NIC")', override '$(override_of "$NIC")'; $(grep -o 'host drivers restored: .*' "$DAEMON_LOG" | tail -n 1)"
                else
                        fail prebound-stays-vfio "after the lease: $NIC on '$(driver_of "$NIC")', override '$(override_of "$NIC")', leases '$(groupctl leases --no-legend)'"
                        daemon_log_tail
                fi
        else
                fail prebound-stays-vfio "acquire failed"
                daemon_log_tail
        fi
        daemon_stop
else
        fail prebound-stays-vfio "groupd did not start"
fi

# Back as the rig booted it.
echo >"$pci/$NIC/driver_override"
[ -L "$pci/$NIC/driver" ] && echo "$NIC" >"$pci/$NIC/driver/unbind"
echo "$NIC" >/sys/bus/pci/drivers_probe
wait_until 50 is_on "$NIC" e1000e
