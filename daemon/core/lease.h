/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A lease: one owner holds one or more groups in one container. The manager drives its state machine:
 *
 *         ACQUIRING ──(host prepared)──▶ ACTIVE ──(owner gone, release, …)──▶ RELEASING ──▶ RELEASED
 *             └──────────(prepare failed: rolled back, never announced)──────────────────────┘
 *
 * lease_set_state() is the one setter: it refuses transitions the machine does not have and logs
 * old → new. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "groupd-proto.h"
#include "host.h"
#include "token.h"

typedef struct Manager Manager;

typedef struct LeaseDevice {
        char address[HOST_ADDR_MAX];
        unsigned group;
        char driver[HOST_DRIVER_MAX];   /* the host driver it had before the lease ("" none) */
} LeaseDevice;

typedef struct Lease Lease;
struct Lease {
        Manager *manager;
        char id[LEASE_ID_LEN + 1];      /* public; logs and lists show this, never the token */
        char token[GD_TOKEN_LEN + 1];
        char *label;

        uid_t uid;                      /* the client that acquired */
        gid_t gid;
        pid_t pid;

        GdOwnerKind owner_kind;
        uint64_t connection_id;         /* GD_OWNER_CONNECTION */
        int owner_pidfd;                /* GD_OWNER_PROCESS */
        pid_t owner_pid;
        uint64_t owner_starttime;       /* /proc/PID/stat field 22: tells a reused pid apart */
        int lease_fd;                   /* GD_OWNER_LEASE_FD: our read end; the client has the write end */
        char *bus_name;                 /* GD_OWNER_BUS_NAME: the D-Bus caller's unique name */
        sd_event_source *owner_source;
        sd_event_source *deadline_source;

        GdLeaseState state;
        GdReason reason;                /* why it ended, once RELEASING */
        bool owner_gone;                /* the owner ended while ACQUIRING: release once prepared */
        bool recovered;                 /* taken back from the state file after a restart */
        bool configure_iommu;
        uint32_t iommu_type;
        uint64_t since_usec;            /* CLOCK_REALTIME */

        unsigned *groups;
        size_t n_groups;
        LeaseDevice *devices;           /* every device we claimed, with its old driver */
        size_t n_devices;

        bool fds_stored;                /* its fds are in the service manager's fd store (see manager.h) */
        /* KVM: the client said it registers the groups with its VM (GD_ACQUIRE_KVM). Only the VM's own
         * process can use its kvm-vfio device (the kernel gives anyone else EIO), so groupd never holds or
         * touches it; when the VMM dies, the kernel drops the registration with the VM. */
        bool kvm_registered;

        /* DMA facts of the container (dma.flags 0: none, the IOMMU type was not set by us), and memlock. */
        HostIommuInfo dma;
        int dma_errno;                  /* why GET_INFO failed, if it did */
        bool memlock_asked;
        bool viommu;
        uint64_t guest_ram;
        uint64_t memlock_max;           /* the policy's ceiling for this caller */
        pid_t memlock_pid;              /* whose limit is raised */
        uint64_t memlock;               /* the limit set; 0 none */

        int container_fd;               /* the daemon's own copies; -EBADF when closed or not recovered */
        int *group_fds;                 /* n_groups entries */

        Lease *prev, *next;
};

int lease_new(Manager *m, Lease **ret);
Lease *lease_free(Lease *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Lease *, lease_free);

int lease_set_state(Lease *l, GdLeaseState s);
void lease_close_fds(Lease *l);
int lease_add_group(Lease *l, unsigned group);
int lease_add_device(Lease *l, const char *address, unsigned group, const char *driver);
bool lease_has_group(const Lease *l, unsigned group);

/* A view for the wire / the bus; the strings point into the lease (do not free them), groups into l. */
void lease_to_gd(const Lease *l, GdLease *ret);
