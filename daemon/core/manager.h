/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The manager: the core of groupd. It owns the host, the policy, the leases and the state file, and
 * drives every lease from request to release. It knows nothing of sockets, D-Bus or the wire format: the
 * edges call it with a Caller and get answers as the core's own data (GroupView, DmaView, Lease) and
 * events; daemon/edge/wire-view.c is the one place where these become wire records. */

#include <systemd/sd-event.h>

#include "host.h"
#include "lease.h"
#include "manager-error.h"
#include "policy.h"

#define CALLER_GIDS_MAX 64
#define CALLER_CGROUP_MAX 512

typedef struct Caller {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        gid_t gids[CALLER_GIDS_MAX];
        size_t n_gids;
        uint64_t connection_id;      /* the native connection it came on; 0 for none */
        const char *bus_name;        /* a D-Bus caller's unique name: owns the lease unless a process or
                                      * lease fd does; NULL for native callers */
        bool authorized;             /* an edge authorized the request already (polkit): the policy file's
                                      * allow rules are skipped; its never rules still apply */
        char cgroup[CALLER_CGROUP_MAX]; /* its cgroup ("/system.slice/virtqemud.service"), "" unknown: what
                                      * unit= and cgroup= rules match */
        bool owner_any_authorized;   /* an edge authorized naming any process as owner (polkit
                                      * org.groupd1.acquire-for-other): the owner check and the policy
                                      * file's owner-any rules are skipped */
} Caller;

/* Fills c->cgroup from c->pid's cgroup (for unit= and cgroup= policy rules); leaves it "" when it cannot
 * be read (the process is gone, no cgroup v2). */
void caller_read_cgroup(Caller *c);

/* What subscribers hear. Values are the wire's event kinds (checked by the wire-view). */
typedef enum ManagerEvent {
        MANAGER_EVENT_LEASE_STARTED,
        MANAGER_EVENT_LEASE_RELEASING,   /* release begun; the host drivers are not back yet */
        MANAGER_EVENT_LEASE_ENDED,       /* release done; the lease is no longer in the manager's list */
        MANAGER_EVENT_GROUP_CHANGED,     /* a group's devices or drivers changed */
        MANAGER_EVENT_EVENTS_DROPPED,    /* never emitted by the core: an edge's last event to a subscriber
                                          * it dropped for falling behind (the wire's number kept here) */
        _MANAGER_EVENT_MAX,
        _MANAGER_EVENT_INVALID = -EINVAL,
} ManagerEvent;

typedef struct ManagerConfig {
        const char *runtime_dir;     /* the state file lives here */
        const char *policy_path;     /* NULL: the built-in default */
        uint64_t release_deadline_usec; /* when a held-up release is reported; 0: 10 s */
        bool keep_leases_on_exit;    /* on shutdown, keep leases owned by live processes, and lease-fd
                                      * leases whose fds are in the fd store (restart) */
} ManagerConfig;

typedef struct AcquireRequest {
        const char *const *specs;    /* group numbers or PCI addresses, 1 to LEASE_GROUPS_MAX */
        size_t n_specs;
        const char *label;
        OwnerKind owner;             /* OWNER_PROCESS (owner_pidfd), OWNER_LEASE_FD, or OWNER_CONNECTION for
                                      * the caller itself (its connection, or its bus name) */
        int owner_pidfd;             /* with OWNER_PROCESS; borrowed (duplicated) */
        bool configure_iommu;        /* set the container's IOMMU type (VFIO_SET_IOMMU) */
        bool kvm;                    /* the client registers the groups with its VM itself: recorded */
        bool memlock;                /* raise the owner's RLIMIT_MEMLOCK for guest_ram */
        bool viommu;                 /* with memlock: the guest has a vIOMMU */
        uint64_t guest_ram;          /* with memlock: bytes */
        LeaseDelivery delivery;      /* zero is legacy: what a request that does not say always got */
        bool grant_uid_set;          /* node-grant: grant_uid names the uid (root may name any, others only
                                      * themselves); unset, the caller's own */
        uid_t grant_uid;
} AcquireRequest;

/* An iommufd lease hands one fd per device, and a message carries at most 66 (the iommufd and a lease fd
 * besides): more devices than this take legacy delivery (auto) or are refused (iommufd). */
#define LEASE_DEVICE_FDS_MAX 64u

typedef struct Manager Manager;

/* Called on the loop when an acquire finishes. On success lease is set and err NULL; the lease's fds
 * (lease->container_fd and lease->group_fds for legacy delivery, lease->iommufd and lease->device_fds for
 * iommufd, none for node-grant: lease->delivery says which) are the daemon's copies, to be sent (not closed) by the edge;
 * *lease_fd is the client's end of the lease fd (if one was asked), which the edge takes (TAKE_FD) and
 * closes once sent. Return < 0 if the reply could not be delivered: the lease is then released at once.
 * On failure lease is NULL and err says what failed; nothing was left changed. */
typedef int (*AcquireDone)(Manager *m, Lease *lease, int *lease_fd, const ManagerError *err, void *userdata);

/* An event for subscribers. For MANAGER_EVENT_GROUP_CHANGED, l is NULL and group is set. With
 * MANAGER_EVENT_LEASE_ENDED the lease has left the manager's list already (manager_n_leases() no longer
 * counts it) and is freed when the listeners return. */
typedef void (*ManagerEventFunc)(Manager *m, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                                 const char *detail, void *userdata);

/* Takes the host on success only (manager_free() frees it then); on failure the caller keeps it. */
int manager_new(sd_event *e, Host *host, const ManagerConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Loads the policy and takes back the state file's leases (reconcile). */
int manager_start(Manager *m, ManagerError *err);

int manager_add_listener(Manager *m, ManagerEventFunc func, void *userdata);
void manager_remove_listener(Manager *m, ManagerEventFunc func, void *userdata);

/* A group as the core sees it: what the host says, whether it is viable and why not, what the policy
 * says of its devices, and who holds it. */
typedef struct GroupView {
        HostGroup group;             /* devices, regions, type */
        bool viable;
        char *viability;             /* why not viable ("" when viable) */
        bool never;                  /* a never rule (or the built-in deny) forbids a device */
        char *policy_note;           /* which, and why ("" when none) */
        const Lease *holder;         /* borrowed: valid until the loop runs again; NULL when free */
} GroupView;
void group_view_done(GroupView *v);
void group_views_free(GroupView *v, size_t n);

/* Views; free with group_views_free(). */
int manager_list_groups(Manager *m, GroupView **ret, size_t *ret_n);
/* Views of the groups ids[0..n) (from manager_list_group_ids()), skipping any that vanished meanwhile: a
 * big host's list read a batch at a time, so that it never holds every group at once. */
int manager_group_views(Manager *m, const unsigned *ids, size_t n, GroupView **ret, size_t *ret_n);
int manager_get_group(Manager *m, const char *spec, GroupView *ret, ManagerError *err);
/* The group numbers the host has, ascending (cheaper than the views when only they matter). */
int manager_list_group_ids(Manager *m, unsigned **ret, size_t *ret_n);
const char *manager_host_kind(Manager *m);   /* "linux", "sim" */
size_t manager_n_leases(Manager *m);
Lease *manager_first_lease(Manager *m);   /* iterate with l->next */

/* What an acquire would take, for an edge that authorizes first (polkit) and wants to tell the
 * authority what is asked: the groups the specs name (duplicates folded), their devices, and whether the
 * policy file's allow rules cover them for this caller. Refuses, with *err, what manager_acquire() would
 * refuse whoever asks: bad specs, unknown or empty groups, held groups, never rules. */
typedef struct AcquirePreview {
        unsigned groups[LEASE_GROUPS_MAX];
        size_t n_groups;
        char devices[MANAGER_TEXT_MAX];   /* "0000:01:00.0, 0000:01:00.1" */
        bool allowed_by_policy;
} AcquirePreview;
int manager_acquire_preview(Manager *m, const Caller *c, const char *const *specs, size_t n_specs,
                            AcquirePreview *ret, ManagerError *err);

/* The one request-size check: an acquire names 1 to LEASE_GROUPS_MAX groups. Edges that collect specs
 * stop at one more than that and let this refuse. */
int manager_check_request_size(size_t n_specs, ManagerError *err);

/* Would manager_acquire() let caller c name the process behind owner_pidfd as owner (OWNER_PROCESS)? 0
 * if so; -EPERM (*err naming the rule) if it needs a grant: root, an owner-any policy rule, or an edge's
 * authorization (set c->owner_any_authorized and call manager_acquire()). For an edge that authorizes
 * first: the D-Bus side asks polkit org.groupd1.acquire-for-other on -EPERM, with *ret_pid and *ret_uid
 * (the named process and its real uid, for polkit's details; either may be NULL). -ESRCH, -EBADF: not a
 * live process's pidfd. */
int manager_check_owner(Manager *m, const Caller *c, int owner_pidfd, pid_t *ret_pid, uid_t *ret_uid,
                        ManagerError *err);

/* Starts an acquire. Returns < 0 with *err set if it was refused at once (bad spec, denied, busy);
 * otherwise done is called later, exactly once. */
int manager_acquire(Manager *m, const Caller *c, const AcquireRequest *req, AcquireDone done, void *userdata,
                    ManagerError *err);

/* Revokes lease id (its public id): for root and for callers a "revoke" policy rule covers (or that an edge
 * authorized already: c->authorized). The release
 * starts at once (so the kernel relays its device request to a VMM that holds a device open); deadline_usec
 * (0: the release deadline) is how long the holder has to let go; past it, with force (a "revoke ... force"
 * rule, or root; process-owned leases only), its owner process is sent SIGTERM, then SIGKILL, and the
 * release completes. A lease being released already can be revoked by force still. */
int manager_revoke(Manager *m, const Caller *c, const char *id, uint64_t deadline_usec, bool force,
                   ManagerError *err);

/* What changed on the host (a uevent, or the simulated host's controls): a device of a lease that vanished
 * ends it (device-vanished); one rebound behind groupd's back marks it and is reported; devices and groups
 * that come, go or change driver outside a lease are announced (GROUP_CHANGED). A host that reports its own
 * changes (host_watch_fd(): the simulated host) is watched by the manager itself; on linux an edge listens
 * to uevents and calls this. */
void manager_host_changed(Manager *m, const HostChange *c);

/* Starts the release of the lease with this token. */
int manager_release_token(Manager *m, const Caller *c, const char *token, ManagerError *err);
int manager_release_lease(Manager *m, Lease *l, LeaseReason reason);

/* The DMA facts of a group: from its lease's container when the lease configured the IOMMU, else its
 * sysfs reserved regions only, with a note saying why (a free group is not opened just to look: that
 * would take /dev/vfio/N from anyone else for the moment, and needs a container of its own). */
typedef enum DmaSource {
        DMA_SOURCE_SYSFS,            /* values as the wire's DMA sources */
        DMA_SOURCE_CONTAINER,
} DmaSource;
typedef struct DmaView {
        unsigned group;
        DmaSource source;
        HostIommuInfo dma;           /* with DMA_SOURCE_CONTAINER */
        HostGroup host;              /* the group as read: its reserved regions */
        unsigned n_devices;          /* the devices an acquire would assign (lease_device_is_assigned) */
        bool kvm;                    /* its lease's client registered it with a VM */
        char note[MANAGER_TEXT_MAX];
} DmaView;
void dma_view_done(DmaView *v);
int manager_dma_info(Manager *m, const char *spec, DmaView *ret, ManagerError *err);

/* The native connection went away: leases it owns end. */
void manager_connection_closed(Manager *m, uint64_t connection_id);
/* A D-Bus unique name left the bus (NULL: the bus itself is gone): leases it owns (OWNER_BUS_NAME) end. */
void manager_bus_name_vanished(Manager *m, const char *name);
Lease *manager_find_lease(Manager *m, const char *id);   /* by public id; NULL if none */

/* Releases every lease (keeping those owned by live processes with keep_leases_on_exit) and calls done
 * once none is releasing any more, or when the release deadline passed. */
int manager_shutdown(Manager *m, void (*done)(Manager *m, void *userdata), void *userdata);

/* The fd store (systemd's FileDescriptorStoreMax=): so that a restart takes a lease back WITH its fds, the
 * manager names each fd a restart needs and asks the edge to keep it outside the process. Leases owned by
 * a process or by a lease fd are stored: "lease-ID-container", "lease-ID-group-N" for each group, and
 * "lease-ID-owner" (the owner's pidfd, or the read end of the lease fd). Connection-owned leases store
 * nothing: their connection dies with the daemon, and so do they.
 *
 * func(m, name, fd, userdata): fd >= 0 asks to store fd (borrowed; the edge sends a copy) under name; fd
 * < 0 asks to drop every fd stored under name. A lease's fds are dropped when its release starts, before
 * the unbind (a stored group fd would hold the group open, and the kernel would hold the unbind up). */
typedef void (*ManagerFdStoreFunc)(Manager *m, const char *name, int fd, void *userdata);
void manager_set_fd_store(Manager *m, ManagerFdStoreFunc func, void *userdata);

/* Before manager_start(): an fd that came back from the store, with its name. Always takes the fd. The
 * reconcile gives each lease of the state file its fds back (an owner fd whose owner still lives keeps the
 * lease active, watched again); fds no lease claims are closed and dropped from the store. */
int manager_offer_stored_fd(Manager *m, const char *name, int fd_consume);

uint64_t manager_started_usec(Manager *m);
