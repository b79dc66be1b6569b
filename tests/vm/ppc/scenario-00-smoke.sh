#!/bin/sh
# shellcheck shell=dash
# Smoke: the machine's IOMMU groups, their devices and drivers, and what the kernel said about DMA
# windows at boot.
for g in $(ls "$groups" | sort -n); do
        note "group $g: $(group_state "$g")"
done
dmesg | grep -i -E 'ddw|dma window|iommu|tce|kvm' | head -n 40 | sed 's/^/  dmesg: /'
ls /dev/kvm >/dev/null 2>&1 && pass smoke-kvm "/dev/kvm there" || skip smoke-kvm "no /dev/kvm"
if [ -c /dev/vfio/vfio ]; then
        pass smoke-vfio "/dev/vfio/vfio there, $(ls "$groups" | wc -l) groups"
else
        fail smoke-vfio "no /dev/vfio/vfio"
fi
