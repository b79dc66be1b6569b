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
 *                      The delivery decides what is opened: the container and the groups (legacy), one
 *                      /dev/iommu and the devices' cdevs, never /dev/vfio/N (iommufd), or nothing but an
 *                      ACL entry on each /dev/vfio/N for one uid (node-grant).
 *   prepare_restore()  the grants revoked (each node's ACL and mode as before), then every device back as
 *                      it was found. Idempotent: each step looks at the device
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
        bool standby;                     /* a standby rule keeps it on vfio-pci: a restore leaves it there */
} LeaseDevice;

/* How a lease's devices reach the VMM. Zero is legacy, so that a request that does not say (an old
 * client, an edge that does not know the modes) gets what it always got. */
typedef enum LeaseDelivery {
        LEASE_DELIVERY_LEGACY,            /* the container fd and the group fds (/dev/vfio/N) */
        LEASE_DELIVERY_IOMMUFD,           /* one /dev/iommu fd and one unbound cdev fd per device */
        LEASE_DELIVERY_NODE_GRANT,        /* nothing opened: one uid may open the group nodes itself */
        LEASE_DELIVERY_AUTO,              /* asked only: iommufd where the kernel has it, else legacy */
        _LEASE_DELIVERY_MAX,
        _LEASE_DELIVERY_INVALID = -EINVAL,
} LeaseDelivery;

/* A node granted to a uid for a node-grant lease, and what it was before, to be put back exactly. */
typedef struct LeaseGrant {
        char node[HOST_NODE_MAX];       /* relative to the dev root: "vfio/3" */
        HostNodeAccess before;
} LeaseGrant;

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
        LeaseDelivery delivery;        /* AUTO is resolved here (iommufd where /dev/iommu and
                                        * every device's cdev exist once bound, else legacy) */
        uid_t grant_uid;               /* node-grant */
        bool configure_iommu;
        bool memlock;                  /* raise memlock_pid's RLIMIT_MEMLOCK */
        bool viommu;
        uint64_t guest_ram;
        uint64_t memlock_max;          /* the policy's ceiling */
        pid_t memlock_pid;

        /* Results of prepare_acquire(): the fds until the loop takes them (TAKE_FD). */
        int container_fd;
        int *group_fds;                /* n_groups entries */
        int iommufd;                   /* iommufd delivery: RLIMIT_MODE per-process, checked */
        int *device_fds;               /* iommufd delivery: n_devices entries, unbound cdevs */
        LeaseGrant *grants;            /* node-grant: in, to revoke (restore); out, what was granted */
        size_t n_grants;
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
/* Copies the grants a release must revoke into p. */
int prepare_set_grants(Prepare *p, const LeaseGrant *grants, size_t n);
Prepare *prepare_free(Prepare *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Prepare *, prepare_free);

/* Returns 0, or a negative errno with p->error saying what failed (and p->detail what was put back). */
int prepare_acquire(Prepare *p);
/* Returns 0 or the first error; p->detail says what became of each device. */
int prepare_restore(Prepare *p);
