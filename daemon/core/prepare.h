/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The kernel sequences of a lease, host only: no manager, no loop, no lease. They run on a worker thread
 * (they may block: an unbind is held up while a VMM has the device open) and read nothing the loop owns:
 * a Prepare holds copies of what it needs, and its results until the loop takes them.
 *
 *   prepare_acquire()  every device onto vfio-pci (driver_override first, so nothing else probes it), the
 *                      container and the groups opened and attached, the IOMMU type set if asked, the DMA
 *                      facts read, the owner's RLIMIT_MEMLOCK raised if asked. All or nothing: on failure
 *                      what this call changed, and only that, is undone, and the fds are closed.
 *   prepare_restore()  every device back as it was found. Idempotent: each step looks at the device
 *                      first, so it also finishes a half-done acquire or release found after a crash. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host.h"
#include "manager-error.h"

typedef struct LeaseDevice {
        char address[HOST_ADDR_MAX];
        unsigned group;
        char driver[HOST_DRIVER_MAX];     /* the driver it had before the lease, whatever it was (a host
                                           * driver, pci-stub, vfio-pci, a variant driver); "" none */
        char override[HOST_DRIVER_MAX];   /* its driver_override before the lease; "" none */
        char vfio_driver[HOST_DRIVER_MAX];/* the VFIO driver the acquire binds ("" means vfio-pci); unused
                                           * when the device was on a VFIO driver already */
} LeaseDevice;

/* Does an acquire assign this device (put it on a VFIO driver and hand it over)? Every device but a
 * bridge (PCI header type 1 or 2): vfio-pci refuses bridges, and the kernel accepts a group with its
 * bridges left as they are (driverless, or on pcieport). The one place this rule is written. */
bool lease_device_is_assigned(const HostDevice *d);

/* Why a group cannot be handed out whoever asks, before anything is touched: no device to assign (only
 * bridges), a device vfio-pci refuses (its deny list), a bridge on a driver the kernel does not accept
 * in a group used through VFIO. Returns true and says why in reason, or false. */
bool group_refusal(const HostGroup *g, char *reason, size_t size);


/* Is the group viable as it stands (every device on a VFIO-safe driver)? Says why not in reason. */
bool group_viability(const HostGroup *g, char *reason, size_t size);

typedef struct Prepare {
        Host *host;
        LeaseDevice *devices;          /* copies */
        size_t n_devices;
        unsigned *groups;
        size_t n_groups;

        /* What the acquire asks. */
        bool configure_iommu;
        bool memlock;                  /* raise memlock_pid's RLIMIT_MEMLOCK */
        bool viommu;
        uint64_t guest_ram;
        uint64_t memlock_max;          /* the policy's ceiling */
        pid_t memlock_pid;

        /* Results of prepare_acquire(): the fds until the loop takes them (TAKE_FD). */
        int container_fd;
        int *group_fds;                /* n_groups entries */
        uint32_t iommu_type;
        HostIommuInfo dma;
        int dma_errno;                 /* why GET_INFO failed, if it did (the acquire goes on) */
        uint64_t memlock_set;
        ManagerError error;

        /* A line per device of what a restore did ("0000:03:00.0 → e1000e, …"). */
        char detail[MANAGER_TEXT_MAX];

        /* How long each phase took (µs), for the debug log and the real-kernel benchmark. */
        uint64_t us_bind, us_open, us_attach;       /* acquire */
        uint64_t us_unbind, us_rebind;              /* restore */
} Prepare;

int prepare_new(Host *h, const LeaseDevice *devices, size_t n_devices, const unsigned *groups, size_t n_groups,
                Prepare **ret);
Prepare *prepare_free(Prepare *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Prepare *, prepare_free);

/* Returns 0, or a negative errno with p->error saying what failed (and p->detail what was put back). */
int prepare_acquire(Prepare *p);
/* Returns 0 or the first error; p->detail says what became of each device. */
int prepare_restore(Prepare *p);
