/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Least privilege: once started, groupd keeps one capability.
 *
 *   CAP_SYS_RESOURCE  raising another process's RLIMIT_MEMLOCK with prlimit() (the VMM's locked-memory
 *                     allowance for a lease; another uid's process, or beyond its hard limit, needs it),
 *                     and passing fds over unix sockets beyond the in-flight limit (RLIMIT_NOFILE of the
 *                     sender) when many leases are handed out at once.
 *
 * Everything else groupd does needs no capability, because it runs as uid 0 and the files it touches
 * belong to root: the sysfs files that move devices between drivers (driver_override 0644, the drivers'
 * bind and unbind 0200, drivers_probe 0200), /dev/vfio/vfio (0666) and /dev/vfio/N (0600 root), the VFIO
 * and kvm-vfio ioctls (no capability check), pidfd_open() and /proc/PID/stat of any process, SO_PEERCRED,
 * its runtime directory, sd_notify() and the fd store. Dropped on purpose:
 *
 *   CAP_DAC_OVERRIDE  a /dev/vfio/N that a udev rule or another tool gave to some other user is not
 *                     groupd's to take: the acquire fails with "Permission denied" instead.
 *   CAP_SYS_ADMIN     VFIO needs it only for no-IOMMU mode, which groupd does not support.
 *   CAP_SYS_PTRACE    groupd reads only its own fdinfo, and owners' /proc/PID/stat (world-readable
 *                     unless /proc is mounted hidepid=, which the unit does not ask for).
 *   CAP_KILL          groupd never signals an owner; it waits for the owner to let go.
 *   CAP_SYS_MODULE    vfio-pci is loaded before the service (modprobe@vfio_pci.service).
 *
 * Capabilities are per thread, and new threads inherit the creator's: caps_drop() runs in main() before
 * the first thread exists (the simulated host's responder, the worker's job threads), so it covers them
 * all. */

#include <stdbool.h>

/* The kept set as a mask of capability bits (1 << CAP_x), for tests and messages. */
unsigned long long caps_kept_mask(void);

/* Drops every capability but the kept set from the effective, permitted and inheritable sets, and from
 * the bounding set when allowed (CAP_SETPCAP); clears the ambient set; locks the securebits so that
 * root regains nothing on execve(). Does nothing (and makes no capset() call) when the process has no
 * capability outside the kept set already, as under groupd.service's CapabilityBoundingSet=. A kept
 * capability the process does not have stays absent. Returns 1 if it dropped something, 0 if there was
 * nothing to drop, < 0 on failure. */
int caps_drop(void);
/* Whether CAP_SYS_RESOURCE is in the effective set. */
bool caps_have_sys_resource(void);
