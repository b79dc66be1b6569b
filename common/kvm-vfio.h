/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The kvm-vfio pseudo device's attributes. Debian 12's headers (6.1) name them KVM_DEV_VFIO_GROUP*;
 * 6.6 renamed them KVM_DEV_VFIO_FILE* with the same values, since the device accepts a VFIO device cdev
 * as well as a group. The FILE names are defined here where the headers lack them. */

#include <linux/kvm.h>

#ifndef KVM_DEV_VFIO_FILE
#define KVM_DEV_VFIO_FILE 1                       /* = KVM_DEV_VFIO_GROUP */
#define KVM_DEV_VFIO_FILE_ADD 1                   /* = KVM_DEV_VFIO_GROUP_ADD */
#define KVM_DEV_VFIO_FILE_DEL 2                   /* = KVM_DEV_VFIO_GROUP_DEL */
#endif
#ifndef KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE
#define KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE 3
#endif

/* The name the kernel gives a kvm-vfio device's anonymous inode (readlink of /proc/self/fd/N gives
 * "anon_inode:kvm-vfio"). */
#define KVM_VFIO_ANON_INODE "anon_inode:kvm-vfio"

/* The simulated host's stand-in for a kvm-vfio device: a memfd of this name (see daemon/host-sim.c). */
#define SIM_KVM_VFIO_MEMFD_NAME "groupd-sim-kvm-vfio"
