/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libgroupd: the client library of groupd, for VMMs and tools.
 *
 *         GdClient *c;
 *         GdClientLease *l;
 *         const char *groups[] = { "7" };
 *         r = gd_client_connect(NULL, &c);
 *         r = gd_client_acquire(c, groups, 1, &(GdAcquireOptions) { .label = "vm1" }, &l);
 *         ... use l->container_fd, l->group_fds[i] ...
 *         r = gd_client_release(c, l->token);
 *         gd_client_lease_free(l);
 *         gd_client_free(c);
 *
 * Every call is synchronous (blocking) on one connection; a connection is not thread-safe. Functions
 * return 0 (or a positive count) on success and a negative errno on failure. When the daemon answered
 * with an error, the call returns -errno (the daemon's errno if it sent one, else one matching the
 * GdError code) and gd_client_error_code() / gd_client_error_message() tell what the daemon said until
 * the next call. Every fd the library hands out is close-on-exec and belongs to the caller. Events that
 * arrive while waiting for a reply are queued for gd_client_next_event() (up to 4096; beyond that the
 * oldest are dropped). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "groupd-proto.h"

typedef struct GdClient GdClient;

/* path NULL: $GROUPD_SOCKET if set, else the default (/run/groupd/socket). Says HELLO. */
int gd_client_connect(const char *path, GdClient **ret);
/* Takes an already connected SOCK_SEQPACKET socket (a VMM's manager may hand one over; tests use a
 * socketpair). Takes ownership of fd, even on failure; makes it blocking and close-on-exec. Says HELLO. */
int gd_client_new_from_fd(int fd, GdClient **ret);
GdClient *gd_client_free(GdClient *c);
int gd_client_get_fd(GdClient *c);               /* for poll(): readable when an event is waiting */

int gd_client_error_code(GdClient *c);           /* GdError of the last failed call, 0 if none */
const char *gd_client_error_message(GdClient *c);/* the daemon's message, or a local one; never NULL */
const char *gd_client_daemon_host(GdClient *c);  /* "linux", "sim" (from HELLO) */

/* Groups. The arrays are owned by the caller: free with gd_groups_free(). */
int gd_client_list_groups(GdClient *c, GdGroup **ret, size_t *ret_n);
int gd_client_show_group(GdClient *c, const char *spec, GdGroup **ret); /* one group; gd_groups_free(g, 1) */

typedef struct GdAcquireOptions {
        const char *label;      /* the VM's name or UUID; may be NULL */
        bool configure_iommu;   /* VFIO_SET_IOMMU on the container */
        int owner_pidfd;        /* >= 0: the lease ends when this process exits (borrowed, not closed).
                                 * Use -1 (or -EBADF) for none: the connection owns the lease. */
        bool lease_fd;          /* the owner is a lease fd, returned in GdClientLease.lease_fd */
        int kvm_fd;             /* > 0: this process's kvm-vfio device (KVM_CREATE_DEVICE, KVM_DEV_TYPE_VFIO):
                                 * the library adds every group to it as soon as the fds arrive (see
                                 * gd_client_lease_kvm_add()); 0 or negative: none */
        uint64_t memlock_guest_ram; /* > 0: have groupd raise the owner's RLIMIT_MEMLOCK for a guest of this
                                 * much RAM (bytes); the owner is the owner process, else the caller */
        bool viommu;            /* with memlock_guest_ram: the guest has a vIOMMU */
        /* How the devices are delivered: "auto" (NULL means the same: iommufd where the kernel has it, else
         * legacy), "iommufd", "legacy" or "node-grant" (see GdClientLease). A caller that can use only a
         * container and group fds says "legacy". With kvm_fd, auto means legacy (the library registers
         * group fds; a VMM that takes iommufd registers its cdevs with KVM itself). The library asks with
         * GD_ACQUIRE_DELIVERY; a daemon older than the modes calls that malformed (ERROR protocol), and then
         * auto and legacy are asked again as protocol 1 did (legacy; the connection remembers), while iommufd
         * and node-grant fail with -EOPNOTSUPP. */
        const char *delivery;
        bool grant_uid_set;     /* node-grant: grant grant_uid (root may name any uid, others only their own);
                                 * unset: the caller's uid */
        uint32_t grant_uid;
} GdAcquireOptions;

typedef struct GdClientLease {
        char token[GD_TOKEN_LEN + 1];
        GdLease lease;          /* id, label, groups, ... */
        uint32_t iommu_type;
        int container_fd;
        int *group_fds;         /* one per lease.groups[i] */
        size_t n_group_fds;
        int lease_fd;           /* -EBADF unless asked for */
        GdDma dma;              /* the container's DMA facts (with configure_iommu), else dma.flags 0 */
        uint64_t memlock;       /* the RLIMIT_MEMLOCK groupd set on the owner, or 0 */
        int kvm_fd;             /* the kvm-vfio device the groups are registered with (the library's own
                                 * copy), or -EBADF */
        /* The delivery used (GdDelivery): legacy fills container_fd and group_fds; iommufd fills iommufd
         * (IOMMU_OPTION_RLIMIT_MODE set to per-process) and one unbound cdev fd per device, labelled with
         * its PCI address (container_fd -EBADF, no group fds: /dev/vfio/N is never opened); node-grant hands
         * no fds: grant_uid may open the nodes itself while the lease lasts. */
        uint32_t delivery;
        int iommufd;
        int *device_fds;
        char **device_addresses;/* device_fds[i] is the cdev of device_addresses[i] ("0000:00:03.0") */
        size_t n_device_fds;
        uint32_t grant_uid;
        char **nodes;           /* node-grant: "/dev/vfio/3", ... */
        size_t n_nodes;
} GdClientLease;

/* specs: group numbers ("7") or PCI addresses. opts may be NULL (defaults; note owner_pidfd must be set
 * to -1 explicitly in a zero-initialized struct only if 0 is not meant: the library treats owner_pidfd
 * == 0 as "none" too, since fd 0 is never a pidfd a VMM would pass). */
int gd_client_acquire(GdClient *c, const char *const *specs, size_t n_specs, const GdAcquireOptions *opts,
                      GdClientLease **ret);
GdClientLease *gd_client_lease_free(GdClientLease *l);  /* closes the fds it still holds */
int gd_client_release(GdClient *c, const char *token);
/* Revokes someone's lease by its public id (root, or a caller a "revoke" policy rule covers): its release
 * starts at once; the holder has deadline_sec (0: the daemon's release deadline) to let go; with
 * GD_REVOKE_FORCE, past it, its owner process is sent SIGTERM, then SIGKILL. Returns once the revocation
 * has started; the lease's LEASE_ENDED event (reason revoked) says when it is over. */
int gd_client_revoke(GdClient *c, const char *lease_id, uint32_t deadline_sec, uint32_t flags);

/* KVM registration, done here in the VMM because the kernel lets only the VM's own process use its
 * kvm-vfio device (anyone else, groupd included, gets EIO; see client/kvm-vfio.h).
 *
 * gd_client_lease_kvm_add() adds every group of the lease to kvm_fd (KVM_DEV_VFIO_FILE_ADD), keeping a
 * copy of kvm_fd in l->kvm_fd; on failure it deletes what it added and returns the kernel's error (EEXIST:
 * registered already, EINVAL: not a VFIO group, ENOTTY: not a kvm-vfio device, EIO: not the VM's
 * process). gd_client_lease_kvm_del() deletes them again (ENOENT for one the VM had not is no error) and
 * drops the copy. gd_client_release_lease() deletes first, then releases; gd_client_lease_free() deletes
 * too if still registered. A VMM that dies needs none of this: the kernel destroys its VM with its last
 * fd, and the device lets go of the groups. The simulated host's stand-in device (kvm_vfio_sim_new() in
 * client/kvm-vfio.h, a memfd named "groupd-sim-kvm-vfio") is understood as well. */
int gd_client_lease_kvm_add(GdClient *c, GdClientLease *l, int kvm_fd);
int gd_client_lease_kvm_del(GdClient *c, GdClientLease *l);
/* KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE for one group of a registered lease (ppc64; ENXIO elsewhere): attaches
 * the VM's TCE table (table_fd, from KVM_CREATE_SPAPR_TCE_64 on the VM) to the group's hardware DMA window,
 * so that KVM can update the window in real mode. The kernel needs that window to exist and to match the
 * table (same bus offset, page size no smaller, size no larger). With the sPAPR v2 IOMMU the default DMA32
 * window is only created by the container's first map, so the library makes it exist (a SPAPR_TCE_CREATE
 * the kernel refuses after making the default window; nothing is mapped) when the kernel refuses, and asks
 * again: call this any time after
 * the acquire (configure_iommu, or after the VMM's own VFIO_SET_IOMMU) for a table over the DMA32 window.
 * For a 64-bit window the VMM creates it first (VFIO_IOMMU_SPAPR_TCE_CREATE); EINVAL says so. */
int gd_client_lease_set_spapr_tce(GdClient *c, GdClientLease *l, unsigned group, int table_fd);
/* Deletes the groups from KVM, then RELEASE with the lease's token. */
int gd_client_release_lease(GdClient *c, GdClientLease *l);

/* A group's DMA facts (the lease's container when known, else the reserved regions); free with
 * gd_dma_info_free(). */
int gd_client_dma_info(GdClient *c, const char *spec, GdDmaInfo **ret);

int gd_client_list_leases(GdClient *c, GdLease **ret, size_t *ret_n);

int gd_client_status(GdClient *c, GdStatus *ret);      /* free the strings with gd_status_done() */
void gd_status_done(GdStatus *s);

/* Events. mask: bitmask of (1u << GdEventKind), 0 = all. next_event waits up to timeout_ms (-1: forever;
 * 0: poll) and returns 1 with *ret filled (free with gd_event_done()), 0 on timeout, or negative errno
 * (-ECONNRESET when the daemon went away). */
int gd_client_subscribe(GdClient *c, uint32_t mask);
int gd_client_next_event(GdClient *c, int timeout_ms, GdEvent *ret);
void gd_event_done(GdEvent *e);
