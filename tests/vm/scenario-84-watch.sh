#!/bin/sh
# shellcheck shell=dash
# Device truth, watching the host (issue 13): groupd listens to uevents.
#   - A function of a leased three-function slot is removed through sysfs: the lease ends with reason
#     device-vanished, and its group mates come back to e1000.
#   - echo 1 > /sys/bus/pci/rescan brings it back: groupd announces GROUP_CHANGED for its group.
#   - A leased device unbound from vfio-pci behind groupd's back is reported (event and log), the lease
#     stays, marked, and its end says so; the device comes back to e1000e.

if ! daemon_start; then
        fail watch "groupd did not start"
        exit 0
fi
mon=/tmp/monitor.out
: >"$mon"
groupctl monitor >>"$mon" 2>&1 &
mon_pid=$!
sleep 0.5

# --- a device vanishes ------------------------------------------------------------------------
gs=$(group_of "$SLOT0")
out=/tmp/slot.out
: >"$out"
groupctl acquire "$SLOT0" --label slot >>"$out" 2>&1 &
acq=$!
if wait_until 150 file_has "$out" 'Holding it' && [ "$(group_state "$gs")" = "$SLOT0=vfio-pci $SLOT1=vfio-pci $SLOT2=vfio-pci" ]; then
        t0=$(now_ms)
        echo 1 >"$pci/$SLOT1/remove"
        if wait_until 100 file_has "$mon" 'lease-ended .*reason device-vanished' && wait_until 100 is_on "$SLOT0" e1000 &&
                wait_until 50 is_on "$SLOT2" e1000; then
                t1=$(now_ms)
                if [ ! -e "$pci/$SLOT1" ] && [ -z "$(override_of "$SLOT0")" ] && [ -z "$(override_of "$SLOT2")" ] &&
                        wait_until 50 no_leases && wait_until 50 dead "$acq" && grep -q 'device-vanished' "$out"; then
                        if grep -q "while leased, $SLOT1 was unbound" "$out"; then
                                fail vanish-not-tampering "the removal's own unbind was reported as done behind groupd's back: $(grep 'ended' "$out" | head -n 1)"
                        fi
                        pass vanish-ends-lease "$SLOT1 removed: lease ended (device-vanished), $SLOT0 and $SLOT2 back on e1000 in $((t1 - t0)) ms; groupctl said: $(grep 'ended' "$out" | head -n 1)"
                else
                        fail vanish-ends-lease "overrides '$(override_of "$SLOT0")' '$(override_of "$SLOT2")', leases '$(groupctl leases --no-legend)', groupctl: $(tr '\n' '|' <"$out")"
                fi
        else
                fail vanish-ends-lease "10 s after removing $SLOT1: group $gs is '$(group_state "$gs")'; monitor: $(tr '\n' '|' <"$mon")"
                daemon_log_tail
        fi
else
        fail vanish-ends-lease "the acquire of $SLOT0 did not get to holding it: $(tr '\n' '|' <"$out") group '$(group_state "$gs")'"
        daemon_log_tail
fi
kill -TERM "$acq" 2>/dev/null
wait "$acq" 2>/dev/null

# --- a rescan brings it back ------------------------------------------------------------------
# (in whatever group the kernel gives it then: 6.1 puts the function back in a group of its own)
echo 1 >/sys/bus/pci/rescan
if wait_until 100 test -e "$pci/$SLOT1" && wait_until 30 test -n "$(group_of "$SLOT1")" &&
        wait_until 100 file_has "$mon" "group-changed group $(group_of "$SLOT1"): $SLOT1 appeared"; then
        pass rescan-group-changed "$(grep "group-changed group [0-9]*: $SLOT1 appeared" "$mon" | head -n 1 | cut -d' ' -f2-) (was in group $gs)"
else
        fail rescan-group-changed "after the rescan: $SLOT1 $([ -e "$pci/$SLOT1" ] && echo is back || echo 'is missing'); monitor: $(tr '\n' '|' <"$mon")"
fi

# --- unbound behind groupd's back -------------------------------------------------------------
gn=$(group_of "$NIC")
out=/tmp/nic.out
: >"$out"
groupctl acquire "$NIC" --label tampered >>"$out" 2>&1 &
acq=$!
if wait_until 150 file_has "$out" 'Holding it' && is_on "$NIC" vfio-pci; then
        id=$(sed -n 's/^Acquired lease \([0-9a-f]*\) .*/\1/p' "$out")
        echo "$NIC" >/sys/bus/pci/drivers/vfio-pci/unbind
        if wait_until 100 file_has "$mon" "group-changed group $gn: $NIC was unbound from its VFIO driver behind groupd's back (lease $id)" &&
                [ "$(groupctl leases --no-legend | awk '{print $1}')" = "$id" ] &&
                grep -q "$NIC was unbound from its VFIO driver behind groupd's back" "$DAEMON_LOG"; then
                pass rebind-reported "$(grep "$NIC was unbound.*behind groupd's back" "$mon" | head -n 1 | cut -d' ' -f2-)"
        else
                fail rebind-reported "monitor: $(tr '\n' '|' <"$mon"); leases: $(groupctl leases --no-legend)"
                daemon_log_tail
        fi
        kill -TERM "$acq"
        if wait_until 100 is_on "$NIC" e1000e && wait_until 50 no_leases && wait_until 50 node_gone "$gn" &&
                wait_until 50 file_has "$mon" "lease-ended lease $id.*while leased, $NIC was unbound"; then
                pass rebind-marked-restored "e1000e back on $NIC; the end says: $(grep "lease-ended lease $id" "$mon" | sed 's/.*: //' | head -n 1)"
        else
                fail rebind-marked-restored "$NIC on '$(driver_of "$NIC")', leases '$(groupctl leases --no-legend)'; monitor: $(tr '\n' '|' <"$mon")"
                daemon_log_tail
        fi
else
        fail rebind-reported "the acquire of $NIC did not get to holding it: $(tr '\n' '|' <"$out")"
fi
kill -TERM "$acq" 2>/dev/null
wait "$acq" 2>/dev/null
kill -TERM "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null
daemon_stop
