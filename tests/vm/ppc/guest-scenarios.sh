#!/bin/sh
# shellcheck shell=dash
# /groupd/scenarios.sh of the ppc64le rig: says which machine this is, then runs the shared runner,
# guest-run.sh (which records the drivers as the machine booted them; pseries and powernv have other
# device sets than the x86 rig).
# It counts the scenario lines itself and ends with "RIG-RESULT pass=N fail=N skip=N": on powernv the
# firmware (skiboot) writes to the same console and can cut a SCENARIO line in two, so the host must not
# rely on finding every line whole in the serial output.
echo "MACHINE: $(cat /proc/device-tree/model 2>/dev/null | tr -d '\0'), $(grep -m1 '^cpu' /proc/cpuinfo)"
{
        sh /groupd/guest-run.sh
        echo $? >/run/rig-rc
} 2>&1 | tee /run/rig-out
count() { grep -c "^SCENARIO [^ ]* $1" /run/rig-out; }
grep "^SCENARIO [^ ]* FAIL" /run/rig-out | sed 's/^SCENARIO \([^ ]*\) FAIL/RIG-FAILED \1:/'
echo "RIG-RESULT pass=$(count PASS) fail=$(count FAIL) skip=$(count SKIP)"
exit "$(cat /run/rig-rc 2>/dev/null || echo 1)"
