#!/bin/sh
# shellcheck shell=dash
# The guest's scenario runner (/groupd/scenarios.sh, run by /init): runs every /groupd/scenario-*.sh in
# name order, each in its own shell with guest-lib.sh sourced and a time limit, then checks that it left
# the devices as the rig booted them. Add a scenario by adding a file tests/vm/scenario-NN-topic.sh.

cd /groupd || exit 1
limit=${RIG_SCENARIO_TIMEOUT:-60}
# rig.only=PATTERN on the kernel command line runs only the topics whose name matches (grep -E).
only=
# shellcheck disable=SC2013 # words, not lines
for arg in $(cat /proc/cmdline); do
        case $arg in rig.only=*) only=${arg#rig.only=} ;; esac
done
rc=0
for f in /groupd/scenario-*.sh; do
        [ -f "$f" ] || continue
        topic=${f##*/scenario-}
        topic=${topic%.sh}
        if [ -n "$only" ] && ! echo "$topic" | grep -qE "$only"; then
                continue
        fi
        echo "RIG-TOPIC $topic"
        t0=$(awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime)
        timeout -s KILL "$limit" sh -c ". /groupd/guest-lib.sh; . $f"
        st=$?
        t1=$(awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime)
        . /groupd/guest-lib.sh
        # Whatever the scenario left running goes now: groupd, groupctl, stand-ins.
        for p in groupd groupctl vmm-standin; do
                pids=$(pidof "$p")
                [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        done
        if [ "$st" -ne 0 ]; then
                fail "$topic" "the scenario file exited with status $st$([ "$st" = 137 ] && echo " (killed after ${limit} s)")"
                rc=1
        fi
        left=$(baseline_diff)
        if [ -n "$left" ]; then
                # Put things back for the next topic, so that one failure does not spread.
                fail "$topic-left-clean" "$left"
                rc=1
                for pair in $BASELINE_DRIVERS; do
                        d=${pair%%=*} want=${pair#*=}
                        echo > "$pci/$d/driver_override" 2>/dev/null
                        [ "$(driver_of "$d")" = "$want" ] && continue
                        [ -L "$pci/$d/driver" ] && echo "$d" > "$pci/$d/driver/unbind" 2>/dev/null
                        [ -n "$want" ] && echo "$d" > /sys/bus/pci/drivers_probe 2>/dev/null
                done
        fi
        echo "RIG-TOPIC-TIME $topic $((t1 - t0)) ms"
        if grep -q . "$DAEMON_LOG" 2>/dev/null; then
                echo "RIG-DAEMON-LOG-BEGIN $topic"
                cat "$DAEMON_LOG"
                echo "RIG-DAEMON-LOG-END $topic"
                : > "$DAEMON_LOG"
        fi
done
exit $rc
