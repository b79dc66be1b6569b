# shellcheck shell=dash
# The real-kernel benchmark (issue 6): acquiring and releasing group 3 (00:03.0, e1000e) through groupd,
# phase by phase, next to the same sysfs + ioctl sequence done by vfio-raw in the same boot. Prints
# "BENCH name value" lines (milliseconds, medians of RIG_BENCH_N rounds) that bench/run.sh collects from
# the serial log; asserts only that every round worked and the host driver came back.

n=${RIG_BENCH_N:-5}
dev=$NIC

# groupd: groupctl acquire --exec of a command that exits at once, so the round is acquire, hand-over,
# the owner's exit, and the release until e1000e is back (groupctl waits for LEASE_ENDED).
daemon_start -v || { fail bench-group3 "groupd did not start"; return 0; }
ok=1 walls=
for _ in $(seq "$n"); do
        t0=$(now_ms)
        if ! groupctl acquire "$dev" --configure-iommu --label bench --exec -- true >/dev/null 2>&1; then
                ok=0
                break
        fi
        wait_until 100 is_on "$dev" e1000e || { ok=0; break; }
        walls="$walls $(( $(now_ms) - t0 ))"
done
daemon_stop
if [ $ok -ne 1 ]; then
        fail bench-group3 "a groupd round failed: $(daemon_log_tail 5)"
        return 0
fi

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
# "Lease ID phases: bind 35.1 ms, open 0.3 ms, attach 1.2 ms, hand-over 0.1 ms" and
# "Lease ID phases: unbind 2.0 ms, rebind 120.4 ms", from groupd -v.
phase() { grep "phases:" "$DAEMON_LOG" | sed -n "s/.* $1 \([0-9.]*\) ms.*/\1/p" | tr '\n' ' ' | median; }
for p in bind open attach hand-over unbind rebind; do
        echo "BENCH groupd_${p}_ms $(phase "$p")"
done
echo "BENCH groupd_round_ms $(echo "$walls" | median)"

# vfio-raw: the same dance without groupd ("step NAME USEC" lines), n rounds in one process.
out=$(/groupd/vfio-raw -n "$n" "$dev" 2>&1) || { fail bench-group3 "vfio-raw failed: $(echo "$out" | tail -3)"; return 0; }
step() { echo "$out" | awk -v s="$1" '$1 == "step" && $2 == s { printf "%.1f ", $3 / 1000 }' | median; }
for s in bind container group attach info device close restore total; do
        echo "BENCH raw_${s}_ms $(step "$s")"
done
wait_until 100 is_on "$dev" e1000e || { fail bench-group3 "e1000e did not come back after vfio-raw"; return 0; }
pass bench-group3 "$n rounds each; groupd round $(echo "$walls" | median) ms, raw total $(step total) ms"
