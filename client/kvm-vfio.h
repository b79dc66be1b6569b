/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Registering VFIO groups with a VM: the kvm-vfio pseudo device (KVM_CREATE_DEVICE of type
 * KVM_DEV_TYPE_VFIO), KVM_SET_DEVICE_ATTR in group KVM_DEV_VFIO_FILE (Debian 12's 6.1 headers call it
 * KVM_DEV_VFIO_GROUP; 6.6 renamed it, same values).
 *
 * Only the VM's own process can do this. The kernel refuses every ioctl on a KVM device from a process
 * whose memory map is not the VM's (virt/kvm/kvm_main.c, kvm_device_ioctl(): dev->kvm->mm !=
 * current->mm gives EIO), so a broker that was handed the fd cannot register anything: measured on 6.1
 * in the real-kernel tier (the daemon's ADD got EIO) and on 6.18 on the build machine (a forked child's
 * ADD gets EIO where its parent's gets EINVAL). So libgroupd, which runs in the VMM, does it: right after
 * an acquire hands the group fds over, and first thing before a release. When the VMM dies, the kernel
 * destroys the VM with its last fd and the device lets go of the groups by itself.
 *
 * The kernel's answers: EEXIST when a group is added twice, ENOENT when deleting one that is not there,
 * EINVAL for a file that is no VFIO group, ENXIO for SET_SPAPR_TCE where there is no sPAPR (x86), EIO
 * from a process that is not the VM's.
 *
 * The simulated host (groupd --host=sim) has no real group fds for a real kvm-vfio device to accept, so
 * it has a stand-in: a memfd named SIM_KVM_VFIO_MEMFD_NAME made with kvm_vfio_sim_new(). These functions
 * recognise it and apply the same rules to it, keeping the device's state in the memfd itself as text
 * ("vm PID", then a "group N" line per registered group), so that whoever holds it can read what is
 * registered; "the VM's process" is the pid that made it. */

#include <stdint.h>
#include <sys/types.h>
#include <linux/kvm.h>

#ifndef KVM_DEV_VFIO_FILE
#define KVM_DEV_VFIO_FILE 1                       /* = KVM_DEV_VFIO_GROUP */
#define KVM_DEV_VFIO_FILE_ADD 1                   /* = KVM_DEV_VFIO_GROUP_ADD */
#define KVM_DEV_VFIO_FILE_DEL 2                   /* = KVM_DEV_VFIO_GROUP_DEL */
#endif
#ifndef KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE
#define KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE 3
#endif

/* readlink of /proc/self/fd/N for a kvm-vfio device */
#define KVM_VFIO_ANON_INODE "anon_inode:kvm-vfio"
#define SIM_KVM_VFIO_MEMFD_NAME "groupd-sim-kvm-vfio"

typedef enum KvmVfioKind {
        KVM_VFIO_REAL = 1,
        KVM_VFIO_SIM = 2,
} KvmVfioKind;

/* Which kind of kvm-vfio device fd is: KVM_VFIO_REAL, KVM_VFIO_SIM, or -ENOTTY (neither), -EBADF. */
int kvm_vfio_kind(int fd);

/* What a VMM does to get a kvm-vfio device: /dev/kvm, KVM_CREATE_VM, KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO).
 * Returns the device fd and the VM's fd in *ret_vm (keep it: the device lives as long as the VM), or
 * negative errno. Only this process can use the device afterwards (the kernel gives others EIO). */
int kvm_vfio_create(int *ret_vm);

/* Makes the simulated host's kvm-vfio stand-in, owned by the calling process. Returns the fd (cloexec). */
int kvm_vfio_sim_new(void);

/* KVM_DEV_VFIO_FILE_ADD / _DEL of group_fd; group is the group's number (the sim's device records it).
 * Negative errno as the kernel answers (see above). */
int kvm_vfio_add(int kvm_fd, int group_fd, unsigned group);
int kvm_vfio_del(int kvm_fd, int group_fd, unsigned group);
/* KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE (struct kvm_vfio_spapr_tce { groupfd, tablefd }). The sim is x86:
 * ENXIO. */
int kvm_vfio_set_spapr_tce(int kvm_fd, int group_fd, int table_fd);

/* A hint for an error of these calls, for messages: " (it is registered with this VM already)", ... */
const char *kvm_vfio_error_hint(int r);
