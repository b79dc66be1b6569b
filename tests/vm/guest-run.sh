#!/bin/sh
# shellcheck shell=dash
# The guest's scenario runner (/groupd/scenarios.sh, run by /init): runs every /groupd/scenario-*.sh in
# name order, each in its own shell with guest-lib.sh sourced and a time limit, then checks that it left
# the devices as the rig booted them. Add a scenario by adding a file tests/vm/scenario-NN-topic.sh.
#
# Kernel command line (run.sh sets them): rig.only=PATTERN runs only the topics whose name matches
# (grep -E); rig.scenario_timeout=SECONDS is each topic's time limit (default 120; run.sh
# --scenario-timeout). Exits 1 when any check printed FAIL, a topic exited non-zero or was killed at its
# limit, or left the devices otherwise than at boot.

cd /groupd || exit 1
limit=${RIG_SCENARIO_TIMEOUT:-120}
only=
# shellcheck disable=SC2013 # words, not lines
for arg in $(cat /proc/cmdline); do
        case $arg in
        rig.only=*) only=${arg#rig.only=} ;;
        rig.scenario_timeout=*) limit=${arg#rig.scenario_timeout=} ;;
        esac
done
. /groupd/guest-lib.sh
: >"$RIG_FAILS"
# What every topic must leave behind: the drivers as the rig booted them.
baseline_record
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
        # Killed at its limit: busybox's timeout says 137 (or 124, 143 elsewhere), and the time tells.
        killed=
        if [ "$st" = 137 ] || [ "$st" = 124 ] || [ "$st" = 143 ] || [ $((t1 - t0)) -ge $((limit * 1000 - 200)) ]; then
                killed=1
        fi
        # Whatever the scenario left running goes now: groupd, groupctl, stand-ins, brokers and QEMUs
        # (a QEMU that holds a device would hold up the unbind below forever).
        for p in groupd groupctl vmm-standin vfio-broker qemu-system-x86_64; do
                pids=$(pidof "$p")
                [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        done
        if [ -n "$killed" ]; then
                fail "$topic" "killed at its time limit of ${limit} s (status $st): a check hung, or the limit is too short for this machine (rig.scenario_timeout, run.sh --scenario-timeout)"
                rc=1
        elif [ "$st" -ne 0 ]; then
                fail "$topic" "the scenario file exited with status $st"
                rc=1
        fi
        left=$(baseline_diff)
        if [ -n "$left" ]; then
                # Put things back for the next topic, so that one failure does not spread.
                fail "$topic-left-clean" "${killed:+(after the topic was killed at its limit, see above) }$left"
                rc=1
                [ -n "$(echo "$left" | grep -o 'is gone')" ] && echo 1 >/sys/bus/pci/rescan 2>/dev/null && sleep 1
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
# A FAIL line is a failure, whatever the topic's exit status.
[ -s "$RIG_FAILS" ] && rc=1
exit $rc
