#!/bin/sh
# shellcheck shell=dash
# /groupd/scenarios.sh of the ppc64le rig: records the devices' drivers as the machine booted them
# (/run/rig-baseline, which guest-lib.sh takes instead of the x86 rig's fixed list: pseries and powernv
# have different device sets), says which machine this is, then runs the shared runner, guest-run.sh.
for d in /sys/bus/pci/devices/*; do
        drv=
        [ -L "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
        printf '%s=%s ' "${d##*/}" "$drv"
done | sed 's/ $//' >/run/rig-baseline
echo "MACHINE: $(cat /proc/device-tree/model 2>/dev/null | tr -d '\0'), $(grep -m1 '^cpu' /proc/cpuinfo)"
echo "BASELINE: $(cat /run/rig-baseline)"
exec sh /groupd/guest-run.sh
