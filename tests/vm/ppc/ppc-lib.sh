#!/bin/sh
# shellcheck shell=dash
# Sourced by the ppc64le scenarios after guest-lib.sh: which machine this is and which devices play
# which part, found in sysfs (pseries and powernv number them differently; run.sh gives both the same
# roles):
#
#   MACHINE     pseries or powernv
#   NET_DEV     an e1000e alone in its group (pseries: its own PHB; powernv: its own PE)
#   NET_GROUP   its group
#   PAIR_GROUP  the group of two functions: an edu without a driver and a NIC with one (not viable)
#   PAIR_EDU, PAIR_NIC, PAIR_NIC_DRIVER
#   EDU_DEV     an edu alone in its group (no driver): the DMA, memlock and KVM scenarios use it
#   EDU_GROUP
#   VIRTIO_DEV  virtio-net (pseries: the host driver may have set up a DDW on its PHB at boot)

case $(tr -d '\0' </proc/device-tree/compatible 2>/dev/null) in
*powernv*) MACHINE=powernv ;;
*) MACHINE=pseries ;;
esac
NET_DEV= NET_GROUP= PAIR_GROUP= PAIR_EDU= PAIR_NIC= PAIR_NIC_DRIVER= EDU_DEV= EDU_GROUP= VIRTIO_DEV=
for _g in $(ls "$groups" | sort -n); do
        _m=$(members "$_g")
        set -- $_m
        if [ $# -eq 1 ]; then
                case "$(cat "$pci/$1/vendor"):$(cat "$pci/$1/device")" in
                0x8086:0x10d3) NET_DEV=$1 NET_GROUP=$_g ;;
                0x1234:0x11e8) EDU_DEV=$1 EDU_GROUP=$_g ;;
                0x1af4:*) VIRTIO_DEV=$1 ;;
                esac
        elif [ $# -eq 2 ]; then
                PAIR_GROUP=$_g
                for _d in $_m; do
                        if [ "$(cat "$pci/$_d/vendor"):$(cat "$pci/$_d/device")" = 0x1234:0x11e8 ]; then
                                PAIR_EDU=$_d
                        else
                                PAIR_NIC=$_d PAIR_NIC_DRIVER=$(driver_of "$_d")
                        fi
                done
        fi
done
set --

# The DMA32 window the kernel gives a group on this machine (VFIO_IOMMU_SPAPR_TCE_GET_INFO).
case $MACHINE in
pseries) DMA32_SIZE=1073741824 ;;
powernv) DMA32_SIZE=2147483648 ;;
esac
