# shellcheck shell=dash
# The real-kernel benchmark of parallel preparation (issue 16): one lease of the four e1000e (four groups)
# through groupd, whose bind step and release (unbind + rebind) run the devices at once, next to the same
# sequence done by vfio-raw one device after the other, in the same boot. Prints "BENCH name value" lines
# (milliseconds, medians of RIG_BENCH_N rounds) that bench/run.sh turns into ratios to the slowest single
# device; asserts only that every round worked and the host drivers came back.

n=${RIG_BENCH_N:-5}
devs=$(ls /sys/bus/pci/drivers/e1000e 2>/dev/null | grep '^0000:' | tr '\n' ' ')
set -- $devs
if [ $# -lt 4 ]; then
        skip bench-parallel "only $# e1000e in this rig (want 4; RIG_PARALLEL_NICS=1 adds them): $devs"
        return 0
fi
devs="$1 $2 $3 $4"
grps=
for d in $devs; do grps="$grps $(group_of "$d")"; done
note "four e1000e: $devs in groups$grps"

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
all_back() { for d in $devs; do is_on "$d" e1000e || return 1; done; }

daemon_start -v || { fail bench-parallel "groupd did not start"; return 0; }
ok=1 walls=
for _ in $(seq "$n"); do
        t0=$(now_ms)
        # shellcheck disable=SC2086
        if ! groupctl acquire $grps --configure-iommu --label bench4 --exec -- true >/dev/null 2>&1; then
                ok=0
                break
        fi
        wait_until 100 all_back || { ok=0; break; }
        walls="$walls $(( $(now_ms) - t0 ))"
done
daemon_stop
if [ $ok -ne 1 ]; then
        fail bench-parallel "a groupd round failed: $(daemon_log_tail 5)"
        return 0
fi
# The four-group lease's phase lines (the label tells them from scenario-90's).
phase() {
        grep "phases:" "$DAEMON_LOG" | tail -n "$((2 * n))" | sed -n "s/.* $1 \([0-9.]*\) ms.*/\1/p" |
                tr '\n' ' ' | median
}
for p in bind open attach unbind rebind; do
        echo "BENCH par_groupd_${p}_ms $(phase "$p")"
done
echo "BENCH par_groupd_round_ms $(echo "$walls" | median)"

# vfio-raw, one device after the other: each device's bind and restore; the slowest single device and
# the sum (what one by one costs).
slow_bind=0 slow_restore=0 sum_bind=0 sum_restore=0
for d in $devs; do
        out=$(/groupd/vfio-raw -n "$n" "$d" 2>&1) || { fail bench-parallel "vfio-raw $d failed: $(echo "$out" | tail -3)"; return 0; }
        b=$(echo "$out" | awk '$1 == "step" && $2 == "bind" { printf "%.1f ", $3 / 1000 }' | median)
        r=$(echo "$out" | awk '$1 == "step" && $2 == "restore" { printf "%.1f ", $3 / 1000 }' | median)
        note "raw $d: bind $b ms, restore $r ms"
        slow_bind=$(awk -v a="$slow_bind" -v b="$b" 'BEGIN { print (b > a) ? b : a }')
        slow_restore=$(awk -v a="$slow_restore" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
        sum_bind=$(awk -v a="$sum_bind" -v b="$b" 'BEGIN { print a + b }')
        sum_restore=$(awk -v a="$sum_restore" -v b="$r" 'BEGIN { print a + b }')
        wait_until 100 is_on "$d" e1000e || { fail bench-parallel "e1000e did not come back on $d after vfio-raw"; return 0; }
done
echo "BENCH par_raw_slowest_bind_ms $slow_bind"
echo "BENCH par_raw_slowest_restore_ms $slow_restore"
echo "BENCH par_raw_sum_bind_ms $sum_bind"
echo "BENCH par_raw_sum_restore_ms $sum_restore"
pass bench-parallel "$n rounds; groupd bind $(phase bind) ms vs raw slowest $slow_bind / sum $sum_bind ms"
