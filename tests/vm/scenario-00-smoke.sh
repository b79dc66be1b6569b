#!/bin/sh
# shellcheck shell=dash
# Smoke checks of the real-kernel rig, before groupd: the IOMMU groups qemu's device set gives, a raw
# VFIO round trip with vfio-raw (no groupd), the host drivers coming back after it, and KVM. Run by
# guest-run.sh with guest-lib.sh sourced.

# --- the groups -------------------------------------------------------------------------------
# Every PCI device of the rig but the IOMMU is in an IOMMU group (the groups' count follows qemu's device
# set: it is not fixed here, so that adding a device renumbers nothing that matters).
n=$(ls "$groups" 2>/dev/null | wc -l)
orphans=
for d in $(ls "$pci"); do
        # The IOMMU itself (class 0x0806: qemu's amd-iommu is a PCI function) is in no group.
        case $(cat "$pci/$d/class") in 0x0806*) continue ;; esac
        [ -n "$(group_of "$d")" ] || orphans="$orphans $d"
done
if [ "$n" -gt 0 ] && [ -z "$orphans" ]; then
        pass iommu-groups "$n groups, every PCI device in one"
else
        fail iommu-groups "$n groups; devices in none:${orphans:- (none)}"
fi
for g in $(ls "$groups" 2>/dev/null | sort -n); do
        line="group $g:"
        for d in $(ls "$groups/$g/devices"); do
                line="$line $d($(driver_of "$d"))"
        done
        echo "  $line"
done

g=$(group_of "$NIC")
m=$(members "$g")
drv=$(driver_of "$NIC")
if [ "$m" = "$NIC" ] && [ "$drv" = e1000e ]; then
        pass group3-e1000e "group $g"
else
        fail group3-e1000e "group $g holds '$m', $NIC is on '$drv' (expected $NIC alone, on e1000e)"
fi

g=$(group_of "$MF0")
m=$(members "$g")
drv=$(driver_of 0000:00:06.1)
drv0=$(driver_of 0000:00:06.0)
if [ "$m" = "0000:00:06.0 0000:00:06.1" ] && [ "$drv" = e1000 ] && [ -z "$drv0" ]; then
        pass group6-multifunction
else
        fail group6-multifunction "group $g holds '$m', 06.0 on '${drv0:-none}', 06.1 on '${drv:-none}' (expected 06.0 without driver and 06.1 on e1000)"
fi

g=$(group_of "$RP_NIC")
drv=$(driver_of "$RP_NIC")
if [ -n "$g" ] && [ "$(members "$g")" = "$RP_NIC" ] && [ "$drv" = e1000e ]; then
        pass group8-behind-root-port "group $g"
else
        fail group8-behind-root-port "$RP_NIC is in group '$g' (holding '$(members "$g")') on '$drv' (expected alone, on e1000e)"
fi

# The topology the device-truth scenarios need: a three-function slot in one group, a driverless
# PCIe-to-PCI bridge in one group with the endpoint behind it, and q35's ICH9 functions.
g=$(group_of "$SLOT0")
if [ -n "$g" ] && [ "$(members "$g")" = "$SLOT0 $SLOT1 $SLOT2" ] && [ "$(group_state "$g")" = "$SLOT0=e1000 $SLOT1= $SLOT2=e1000" ]; then
        pass three-function-slot "group $g: $(group_state "$g")"
else
        fail three-function-slot "group '$g' is '$(group_state "$g")' (expected $SLOT0 and $SLOT2 on e1000, $SLOT1 without a driver)"
fi
g=$(group_of "$PCI_BRIDGE")
if [ -n "$g" ] && [ "$(group_state "$g")" = "$PCI_BRIDGE= $BEHIND=e1000" ]; then
        pass bridge-and-endpoint "group $g: $(group_state "$g")"
else
        fail bridge-and-endpoint "group '$g' is '$(group_state "$g")' (expected $PCI_BRIDGE without a driver and $BEHIND on e1000)"
fi
g=$(group_of "$LPC")
if [ -n "$g" ] && [ "$g" = "$(group_of "$SATA")" ] && [ -n "$(group_of "$HOST_BRIDGE")" ]; then
        pass q35-chipset "host bridge in group $(group_of "$HOST_BRIDGE"); ICH9 in group $g: $(group_state "$g")"
else
        fail q35-chipset "host bridge in group '$(group_of "$HOST_BRIDGE")', LPC in '$g', SATA in '$(group_of "$SATA")'"
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
