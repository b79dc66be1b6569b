#!/bin/sh
# shellcheck shell=dash
# What groupd cannot do on POWER (pseries): a PHB where a host driver tried a 64-bit DMA window (DDW) at
# boot and the hypervisor refused it (ibm,create-pe-dma-window failed) is put on the kernel's failed-DDW
# list, and VFIO DMA through that PHB's group fails from then on: VFIO_IOMMU_MAP_DMA gets ENODEV, and the
# kernel says "in failed DDW device list" in its log only (no sysfs or device-tree trace, so groupd cannot
# name it in `groupctl show` or `dma`; README and groupd(8) say so). The lease itself works and the host
# driver comes back. This scenario pins that behaviour down, so that the documentation stays true.
. /groupd/ppc-lib.sh

if [ "$MACHINE" != pseries ]; then
        skip failed-ddw "pseries only (powernv has no DDW hypercalls)"
        exit 0
fi
if ! dmesg | grep -q "$VIRTIO_DEV.*ibm,create-pe-dma-window.*returned -"; then
        skip failed-ddw "virtio-net's DDW did not fail at boot here: $(dmesg | grep "$VIRTIO_DEV.*create-pe-dma-window")"
        exit 0
fi
g=$(group_of "$VIRTIO_DEV")
drv=$(driver_of "$VIRTIO_DEV")
if ! daemon_start; then
        fail failed-ddw "groupd did not start"
        exit 0
fi
if acquire_exec /tmp/ddw.out "$g" --label vm-ddw --exec -- spapr-standin v1 --limit 4294967296 --map 1048576; then
        wait "$ACQ_PID" 2>/dev/null
        if grep -q '^STEP enable ok' /tmp/ddw.out && grep -q '^STEP map-dma ENODEV' /tmp/ddw.out &&
                dmesg | grep -q "$VIRTIO_DEV.*in failed DDW device list"; then
                pass failed-ddw-map-enodev "group $g ($VIRTIO_DEV, whose DDW failed at boot): ENABLE works, MAP_DMA gets ENODEV; the kernel logs \"in failed DDW device list\""
        else
                fail failed-ddw-map-enodev "$(grep -E '^STEP' /tmp/ddw.out | tr '\n' '|') dmesg: $(dmesg | grep 'failed DDW' | tail -n 1)"
        fi
        if wait_until 150 is_on "$VIRTIO_DEV" "$drv" && wait_until 50 node_gone "$g"; then
                pass failed-ddw-restored "$drv back on $VIRTIO_DEV"
        else
                fail failed-ddw-restored "$VIRTIO_DEV on '$(driver_of "$VIRTIO_DEV")'"
        fi
else
        fail failed-ddw-map-enodev "acquire failed"
        daemon_log_tail
fi
daemon_stop
