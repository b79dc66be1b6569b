# shellcheck shell=dash
# The real-kernel benchmark of standby (issue 16): with "standby pci=0000:00:03.0", groupd moves 00:03.0
# to vfio-pci at start and keeps it there; an acquire+release cycle of group 3 is then only open, attach
# and close. Measured by bench-groupd cycle (the native client, waiting for LEASE_ENDED) next to the same
# cycle without the rule (bind and rebind of e1000e each time), in the same boot. Prints "BENCH name value"
# lines (microseconds) for bench/run.sh; asserts only that the device stays on vfio-pci while on standby
# and that e1000e is back once the rule is gone.

n=${RIG_BENCH_N:-5}
dev=0000:00:03.0
g=$(group_of "$dev")
cycle() { /groupd/bench-groupd cycle "$GROUPD_SOCKET" "$1" "$g" 2>&1; }
value() { echo "$1" | awk -F, -v k="$2" '$1 == k { print $3 }'; }

echo "standby pci=$dev" >/tmp/standby.conf
daemon_start --policy=/tmp/standby.conf || { fail bench-standby "groupd did not start"; return 0; }
if ! wait_until 100 is_on "$dev" vfio-pci; then
        fail bench-standby "$dev did not go to vfio-pci on standby: $(daemon_log_tail 5)"
        daemon_stop
        return 0
fi
out=$(cycle $((n * 20))) || { fail bench-standby "standby cycles failed: $out"; daemon_stop; return 0; }
is_on "$dev" vfio-pci || { fail bench-standby "$dev left vfio-pci during standby cycles"; daemon_stop; return 0; }
daemon_stop
echo "BENCH standby_cycle_median_us $(value "$out" groupd_cycle_median)"
echo "BENCH standby_cycle_p99_us $(value "$out" groupd_cycle_p99)"
echo "BENCH standby_acquire_median_us $(value "$out" groupd_acquire_median)"

# The same without the rule. The device is still on vfio-pci (standby left it there); put it back first.
echo > "$pci/$dev/driver_override"
echo "$dev" > /sys/bus/pci/drivers/vfio-pci/unbind
echo "$dev" > /sys/bus/pci/drivers_probe
wait_until 100 is_on "$dev" e1000e || { fail bench-standby "e1000e did not come back on $dev"; return 0; }
daemon_start || { fail bench-standby "groupd did not start (no rule)"; return 0; }
out2=$(cycle "$n") || { fail bench-standby "cycles without standby failed: $out2"; daemon_stop; return 0; }
daemon_stop
wait_until 100 is_on "$dev" e1000e || { fail bench-standby "e1000e did not come back on $dev"; return 0; }
echo "BENCH nostandby_cycle_median_us $(value "$out2" groupd_cycle_median)"
# The floor in this boot (TCG is slow at everything): the same messages on a bare socket pair.
floor=$(/groupd/bench-groupd floor $((n * 20)) 2>&1)
echo "BENCH floor_cycle_median_us $(value "$floor" floor_cycle_median)"
pass bench-standby "cycle on standby $(value "$out" groupd_cycle_median) us, without $(value "$out2" groupd_cycle_median) us"
