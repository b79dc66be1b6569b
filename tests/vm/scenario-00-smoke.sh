#!/bin/sh
# shellcheck shell=dash
# Smoke checks of the real-kernel rig, before groupd: the IOMMU groups qemu's device set gives, a raw
# VFIO round trip with vfio-raw (no groupd), the host drivers coming back after it, and KVM. Run by
# guest-run.sh with guest-lib.sh sourced.

# --- the groups -------------------------------------------------------------------------------
n=$(ls "$groups" 2>/dev/null | wc -l)
if [ "$n" -eq 10 ]; then
        pass iommu-groups
else
        fail iommu-groups "expected 10 IOMMU groups, found $n"
fi
for g in $(ls "$groups" 2>/dev/null | sort -n); do
        line="group $g:"
        for d in $(ls "$groups/$g/devices"); do
                line="$line $d($(driver_of "$d"))"
        done
        echo "  $line"
done

m=$(members 3)
drv=$(driver_of 0000:00:03.0)
if [ "$m" = 0000:00:03.0 ] && [ "$drv" = e1000e ]; then
        pass group3-e1000e
else
        fail group3-e1000e "group 3 holds '$m', 0000:00:03.0 is on '$drv' (expected 0000:00:03.0 alone, on e1000e)"
fi

m=$(members 6)
drv=$(driver_of 0000:00:06.1)
drv0=$(driver_of 0000:00:06.0)
if [ "$m" = "0000:00:06.0 0000:00:06.1" ] && [ "$drv" = e1000 ] && [ -z "$drv0" ]; then
        pass group6-multifunction
else
        fail group6-multifunction "group 6 holds '$m', 06.0 on '${drv0:-none}', 06.1 on '${drv:-none}' (expected 06.0 without driver and 06.1 on e1000)"
fi

g=$(group_of 0000:01:00.0)
drv=$(driver_of 0000:01:00.0)
if [ "$g" = 8 ] && [ "$drv" = e1000e ]; then
        pass group8-behind-root-port
else
        fail group8-behind-root-port "0000:01:00.0 is in group '$g' on '$drv' (expected group 8, e1000e)"
fi

# --- raw VFIO ---------------------------------------------------------------------------------
if [ ! -c /dev/vfio/vfio ]; then
        fail vfio-container "no /dev/vfio/vfio (vfio modules not loaded?)"
else
        pass vfio-container
fi

raw_round_trip() {
        # raw_round_trip NAME ADDR: vfio-raw on ADDR, then every device of the group back on the
        # driver it had.
        name=$1 addr=$2
        if [ ! -x /groupd/vfio-raw ]; then
                skip "$name" "no /groupd/vfio-raw"
                return
        fi
        g=$(group_of "$addr")
        before=
        for d in $(members "$g"); do
                before="$before $d=$(driver_of "$d")"
        done
        out=$(/groupd/vfio-raw "$addr" 2>&1)
        rc=$?
        echo "$out" | sed 's/^/  /'
        if [ $rc -ne 0 ]; then
                fail "$name" "vfio-raw $addr exited $rc: $(echo "$out" | grep 'vfio-raw:' | head -n 1)"
                return
        fi
        for pair in $before; do
                d=${pair%%=*} want=${pair#*=}
                if [ -n "$want" ]; then
                        if ! wait_until 30 is_on "$d" "$want"; then
                                fail "$name" "$d is on '$(driver_of "$d")' after vfio-raw, expected $want"
                                return
                        fi
                elif [ -n "$(driver_of "$d")" ]; then
                        fail "$name" "$d is on '$(driver_of "$d")' after vfio-raw, expected no driver"
                        return
                fi
                ov=$(cat "$pci/$d/driver_override")
                if [ "$ov" != "(null)" ] && [ -n "$ov" ]; then
                        fail "$name" "$d still has driver_override '$ov'"
                        return
                fi
        done
        pass "$name"
}
raw_round_trip vfio-raw-e1000e 0000:00:03.0
raw_round_trip vfio-raw-multifunction 0000:00:06.0

# --- KVM --------------------------------------------------------------------------------------
modprobe kvm_amd 2>/dev/null
if [ -c /dev/kvm ]; then
        pass kvm-device
else
        fail kvm-device "no /dev/kvm after modprobe kvm_amd ($(grep -c . /proc/modules) modules loaded; cpu flags: $(grep -o -w -E 'svm|npt' /proc/cpuinfo | sort -u | tr '\n' ' '))"
fi
