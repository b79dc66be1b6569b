#!/bin/sh
# shellcheck shell=dash
# The systemd tier's scenario runner (run by groupd-rig.service, under systemd as PID 1): says which
# kernel, IOMMU and systemd it runs on, runs every /opt/groupd-rig/scenario-*.sh in name order, each in
# its own shell with tests/vm/guest-lib.sh and systemd-lib.sh sourced and a time limit, checks after each
# that the devices are as the guest booted them, and prints RIG-DONE. rig.only=REGEX on the kernel command
# line runs only the topics that match; each topic's journal is shown when it failed (rig.journal=1:
# always).
cd /opt/groupd-rig || exit 1
limit=${RIG_SCENARIO_TIMEOUT:-300}
only=
# shellcheck disable=SC2013 # words, not lines
for arg in $(cat /proc/cmdline); do
        case $arg in rig.only=*) only=${arg#rig.only=} ;; esac
done
. ./guest-lib.sh
. ./systemd-lib.sh

echo "KERNEL: $(uname -r) $(cat /proc/version)"
iommu=none
for d in /sys/class/iommu/*; do
        [ -e "$d" ] || continue
        case ${d##*/} in dmar*) iommu="intel (VT-d)" ;; ivhd*) iommu="amd (AMD-Vi)" ;; *) iommu=${d##*/} ;; esac
        break
done
echo "IOMMU: $iommu, $(ls /sys/kernel/iommu_groups | wc -l) groups"
echo "SYSTEMD: $(systemctl --version | head -n 1), boot to the rig $(now_ms) ms"
# udev loads the NICs' drivers (nothing else does here); wait for it before taking the baseline.
udevadm settle -t 30
# The devices as the guest booted them (guest-lib.sh's BASELINE_FILE), which every topic must leave as it
# found them: without it BASELINE_DRIVERS is empty, baseline_diff can never say anything, and is_baseline
# wants every device driverless.
wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 100 is_on 0000:00:06.1 e1000 ||
        note "the NICs' drivers are not bound after udev settled: $(driver_of 0000:00:03.0) $(driver_of 0000:00:06.1)"
baseline_record
BASELINE_DRIVERS=$(cat "$BASELINE_FILE")
echo "BASELINE: $BASELINE_DRIVERS"
echo "MODULES: $(awk '{print $1}' /proc/modules | sort | tr '\n' ' ')"
failed_units=$(systemctl list-units --failed --no-legend --plain | awk '{ print $1 }' | tr '\n' ' ')
[ -z "$failed_units" ] || echo "RIG-FAILED-UNITS: $failed_units"
echo "RIG-JOURNAL-BEGIN boot"
journalctl -b -q --no-pager -p warning
echo "RIG-JOURNAL-END boot"

rc=0
for f in /opt/groupd-rig/scenario-*.sh; do
        [ -f "$f" ] || continue
        topic=${f##*/scenario-}
        topic=${topic%.sh}
        if [ -n "$only" ] && ! echo "$topic" | grep -qE "$only"; then
                continue
        fi
        echo "RIG-TOPIC $topic"
        t0=$(now_ms)
        journal_mark "$topic"
        { timeout -s KILL "$limit" sh -c ". ./guest-lib.sh; . ./systemd-lib.sh; . $f"; echo $? >/run/rig-st; } 2>&1 |
                tee /run/rig-topic.out
        st=$(cat /run/rig-st)
        t1=$(now_ms)
        if [ "$st" -ne 0 ]; then
                fail "$topic" "the scenario file exited with status $st$([ "$st" = 137 ] && echo " (killed after ${limit} s)")"
                rc=1
        fi
        rig_cleanup
        left=$(baseline_diff)
        if [ -n "$left" ]; then
                fail "$topic-left-clean" "$left"
                rc=1
                baseline_restore
        fi
        echo "RIG-TOPIC-TIME $topic $((t1 - t0)) ms"
        # The topic's journal when something failed (the serial console is slow; rig.journal=1 always).
        if [ "$st" -ne 0 ] || [ -n "$left" ] || grep -q 'SCENARIO [^ ]* FAIL' /run/rig-topic.out || grep -q 'rig.journal=1' /proc/cmdline; then
                echo "RIG-JOURNAL-BEGIN $topic"
                journal_since_mark | tail -n 200
                echo "RIG-JOURNAL-END $topic"
        fi
done
echo "RIG-SCENARIOS-EXIT $rc"
echo "RIG-DONE"
exit 0
