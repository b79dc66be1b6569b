#!/bin/sh
# shellcheck shell=dash
# Guest side of `run.sh --capture DIR` (run by /init before the scenarios, so it sees the
# pristine state): captures the IOMMU groups and their PCI devices as a small tree that mimics
# sysfs, plus VFIO_IOMMU_GET_INFO's raw buffer for the group of 0000:00:03.0, and sends both over
# the console between markers:
#
#   RIG-CAPTURE-BEGIN sysfs          base64 of a gzipped tar of the tree
#   RIG-CAPTURE-END sysfs
#   RIG-CAPTURE-BEGIN iommu-info     hex lines, the first a '#' comment naming kernel and IOMMU
#   RIG-CAPTURE-END iommu-info
#
# The tree (relative symlinks, so it can live anywhere):
#   kernel/iommu_groups/N/{type,reserved_regions}
#   kernel/iommu_groups/N/devices/ADDR -> ../../../../bus/pci/devices/ADDR
#   bus/pci/devices/ADDR/{vendor,device,class,driver_override}
#   bus/pci/devices/ADDR/driver -> ../../drivers/NAME          (absent when no driver)
#   bus/pci/devices/ADDR/iommu_group -> ../../../../kernel/iommu_groups/N
#   bus/pci/drivers/NAME/                                      (every PCI driver the kernel has;
#                                                               .gitkeep keeps it in git)

set -u
info_addr=${RIG_CAPTURE_DEVICE:-0000:00:03.0}
work=/tmp/capture
tree=$work/tree

printk=$(cat /proc/sys/kernel/printk)
echo 1 > /proc/sys/kernel/printk # keep kernel messages out of the encoded stream

rm -rf "$work"
mkdir -p "$tree/kernel/iommu_groups" "$tree/bus/pci/devices" "$tree/bus/pci/drivers"

for drv in /sys/bus/pci/drivers/*; do
        [ -d "$drv" ] || continue
        mkdir -p "$tree/bus/pci/drivers/${drv##*/}"
        : > "$tree/bus/pci/drivers/${drv##*/}/.gitkeep"
done

for g in /sys/kernel/iommu_groups/*; do
        [ -d "$g" ] || continue
        n=${g##*/}
        gd=$tree/kernel/iommu_groups/$n
        mkdir -p "$gd/devices"
        cat "$g/type" > "$gd/type" 2>/dev/null
        cat "$g/reserved_regions" > "$gd/reserved_regions"
        for d in "$g"/devices/*; do
                [ -e "$d" ] || continue
                a=${d##*/}
                ln -s "../../../../bus/pci/devices/$a" "$gd/devices/$a"
                src=/sys/bus/pci/devices/$a
                [ -d "$src" ] || continue # not a PCI device
                dd=$tree/bus/pci/devices/$a
                mkdir -p "$dd"
                for attr in vendor device class driver_override; do
                        cat "$src/$attr" > "$dd/$attr"
                done
                if [ -L "$src/driver" ]; then
                        drv=$(readlink "$src/driver")
                        drv=${drv##*/}
                        mkdir -p "$tree/bus/pci/drivers/$drv"
                        [ -e "$tree/bus/pci/drivers/$drv/.gitkeep" ] || : > "$tree/bus/pci/drivers/$drv/.gitkeep"
                        ln -s "../../drivers/$drv" "$dd/driver"
                fi
                ln -s "../../../../kernel/iommu_groups/$n" "$dd/iommu_group"
        done
done

echo "RIG-CAPTURE-BEGIN sysfs"
tar -c -C "$tree" . | gzip -9 | base64
echo "RIG-CAPTURE-END sysfs"

iommu=none
for d in /sys/class/iommu/*; do
        [ -e "$d" ] || continue
        case ${d##*/} in
        dmar*) iommu="intel (VT-d, qemu intel-iommu)" ;;
        ivhd*) iommu="amd (AMD-Vi, qemu amd-iommu)" ;;
        *) iommu=${d##*/} ;;
        esac
        break
done
group=$(readlink "/sys/bus/pci/devices/$info_addr/iommu_group" 2>/dev/null)
group=${group##*/}
if [ -x /groupd/vfio-raw ] && [ -n "$group" ]; then
        if /groupd/vfio-raw --dump-info "$work/info.hex" "$info_addr" > "$work/vfio-raw.out" 2>&1; then
                echo "RIG-CAPTURE-BEGIN iommu-info"
                echo "# VFIO_IOMMU_GET_INFO raw buffer (TYPE1v2, vfio_iommu_type1_info + capability chain), group $group ($info_addr), kernel $(uname -r), iommu $iommu"
                cat "$work/info.hex"
                echo "RIG-CAPTURE-END iommu-info"
        else
                echo "RIG-CAPTURE-FAIL iommu-info: vfio-raw failed:"
                sed 's/^/  /' "$work/vfio-raw.out"
        fi
else
        echo "RIG-CAPTURE-FAIL iommu-info: no /groupd/vfio-raw or no group for $info_addr"
fi

echo "$printk" > /proc/sys/kernel/printk
