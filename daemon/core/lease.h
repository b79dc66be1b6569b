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

#include "host.h"
#include "prepare.h"
#include "token.h"

typedef struct Manager Manager;

/* The core's own words. The numeric values are the native protocol's (the edge's wire-view checks that
 * with static_assert and converts by value), and the strings are the state file's, which must stay
 * readable across versions: never renumber or rename, only append. */
typedef enum LeaseState {
        LEASE_ACQUIRING,
        LEASE_ACTIVE,
        LEASE_RELEASING,
        LEASE_RELEASED,
        _LEASE_STATE_MAX,
        _LEASE_STATE_INVALID = -EINVAL,
} LeaseState;

/* Why a lease ended. */
typedef enum LeaseReason {
        LEASE_REASON_RELEASED,            /* the holder asked */
        LEASE_REASON_CONNECTION_CLOSED,   /* the owning connection (or D-Bus name) went away */
        LEASE_REASON_OWNER_EXITED,        /* the owner process exited */
        LEASE_REASON_LEASE_FD_CLOSED,     /* every copy of the lease fd was closed */
        LEASE_REASON_SHUTDOWN,            /* the daemon shut down */
        LEASE_REASON_REVOKED,             /* an administrator revoked it */
        LEASE_REASON_DEVICE_VANISHED,     /* a device of the lease disappeared */
        LEASE_REASON_RECOVERED_DEAD,      /* found after a restart with its owner gone */
        LEASE_REASON_DAEMON_RESTARTED,    /* its owner may live, but the restarted daemon could not keep it:
                                           * its lease fd (or pidfd) was not in systemd's fd store */
        _LEASE_REASON_MAX,
        _LEASE_REASON_INVALID = -EINVAL,
} LeaseReason;

/* What a lease's lifetime is tied to. */
typedef enum OwnerKind {
        OWNER_CONNECTION,                 /* the native connection it was acquired on */
        OWNER_PROCESS,                    /* a process, watched through a pidfd */
        OWNER_LEASE_FD,                   /* a lease fd: ends when every copy of it is closed */
        OWNER_BUS_NAME,                   /* a D-Bus caller's unique name */
        _OWNER_KIND_MAX,
        _OWNER_KIND_INVALID = -EINVAL,
} OwnerKind;

const char *lease_delivery_to_string(LeaseDelivery d) _pure_;
LeaseDelivery lease_delivery_from_string(const char *s) _pure_;
const char *lease_state_to_string(LeaseState s) _pure_;
LeaseState lease_state_from_string(const char *s) _pure_;
const char *lease_reason_to_string(LeaseReason r) _pure_;
LeaseReason lease_reason_from_string(const char *s) _pure_;
const char *owner_kind_to_string(OwnerKind k) _pure_;
OwnerKind owner_kind_from_string(const char *s) _pure_;

/* An acquire names 1 to LEASE_GROUPS_MAX groups; a label is shorter than LEASE_LABEL_MAX bytes. */
#define LEASE_GROUPS_MAX 64u
#define LEASE_LABEL_MAX 256u


typedef struct Lease Lease;
struct Lease {
        Manager *manager;
        char id[LEASE_ID_LEN + 1];      /* public; logs and lists show this, never the token */
        char token[TOKEN_LEN + 1];
        char *label;

        uid_t uid;                      /* the client that acquired */
        gid_t gid;
        pid_t pid;

        OwnerKind owner_kind;
        uint64_t connection_id;         /* OWNER_CONNECTION */
        int owner_pidfd;                /* OWNER_PROCESS */
        pid_t owner_pid;
        uint64_t owner_starttime;       /* /proc/PID/stat field 22: tells a reused pid apart */
        int lease_fd;                   /* OWNER_LEASE_FD: our read end; the client has the write end */
        char *bus_name;                 /* OWNER_BUS_NAME: the D-Bus caller's unique name */
        sd_event_source *owner_source;
        sd_event_source *deadline_source;

        LeaseState state;
        LeaseState saved_state;         /* the state the state file last gave it (manager_save) */
        /* Its record in the state file, as last formatted (state.c): a write with many leases copies the
         * records of those that did not change instead of formatting them again. Holds the token. */
        char *state_record;
        size_t state_record_len;
        LeaseState state_record_state;
        uint64_t state_record_memlock;
        size_t state_record_n_grants;
        LeaseReason reason;               /* why it ended, once RELEASING */
        bool owner_gone;                /* the owner ended while ACQUIRING: release once prepared */
        bool recovered;                 /* taken back from the state file after a restart */
        bool configure_iommu;
        uint32_t iommu_type;
        uint64_t since_usec;            /* CLOCK_REALTIME */

        /* A revoke (manager_revoke()): past its deadline, with force, the owner process is sent SIGTERM,
         * then SIGKILL. The pidfd is a copy kept for that, as the release lets go of the owner's. */
        sd_event_source *revoke_source;
        int revoke_pidfd;
        bool revoke_force;
        unsigned revoke_stage;          /* 0 waiting for the deadline, 1 SIGTERM sent, 2 SIGKILL sent */

        /* A device of the lease was rebound (or unbound) behind groupd's back: what was seen. */
        bool tampered;
        char *tamper_note;

        unsigned *groups;
        size_t n_groups;
        LeaseDevice *devices;           /* every device we claimed, with its old driver */
        size_t n_devices;

        bool fds_stored;                /* its fds are in the service manager's fd store (see manager.h) */
        /* KVM: the client said it registers the groups with its VM (AcquireRequest.kvm). Only the VM's own
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

        /* Delivery: what the acquire asked (AUTO until prepared), then what it got. */
        LeaseDelivery delivery;
        uid_t grant_uid;                /* LEASE_DELIVERY_NODE_GRANT: who may open the nodes */
        int iommufd;                    /* LEASE_DELIVERY_IOMMUFD: the daemon's copies, as the others */
        int *device_fds;                /* n_devices entries: each device's cdev, in devices[] order */
        LeaseGrant *grants;             /* the nodes granted, with what they were before */
        size_t n_grants;

        Lease *prev, *next;
};

int lease_new(Manager *m, Lease **ret);
Lease *lease_free(Lease *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Lease *, lease_free);

int lease_set_state(Lease *l, LeaseState s);
void lease_close_fds(Lease *l);
int lease_add_group(Lease *l, unsigned group);
/* A device the lease claims, with the driver and driver_override it had (either NULL or "" for none). */
int lease_add_device(Lease *l, const char *address, unsigned group, const char *driver, const char *override);
int lease_add_grant(Lease *l, const LeaseGrant *g);
bool lease_has_group(const Lease *l, unsigned group);
/* The lease's groups as text, "3, 7". */
void lease_groups_to_text(const Lease *l, char *buf, size_t size);
/* The pid that stands for the lease's holder: the owner process if it has one, else the caller. */
pid_t lease_holder_pid(const Lease *l);
/* Does a restart need l's record in the state file? Not when it would find nothing to do: an owner that
 * dies with the daemon (a connection, a bus name) and only standby devices, which stay on vfio-pci. */
bool lease_needs_record(const Lease *l);
/* Every device of l is on standby: its release has no kernel work. */
bool lease_all_standby(const Lease *l);
/* Still holding its groups for its owner (not being released, nor ended). */
bool lease_is_live(const Lease *l);
