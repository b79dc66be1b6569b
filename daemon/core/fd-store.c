/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <poll.h>
#include <stdio.h>

#include "log.h"
#include "manager-internal.h"

typedef enum LeaseFdKind {
        LEASE_FD_CONTAINER,
        LEASE_FD_GROUP,
        LEASE_FD_OWNER,
        LEASE_FD_IOMMUFD,
        LEASE_FD_DEVICE,        /* by the device's index in the lease (an address has ':', which FDNAME= refuses) */
} LeaseFdKind;

/* Names keep to what systemd accepts in FDNAME= (printable ASCII, no ':', at most 255 characters). */
static void lease_fd_name(const Lease *l, LeaseFdKind kind, unsigned group, char *buf, size_t size) {
        if (kind == LEASE_FD_GROUP)
                (void) snprintf(buf, size, "lease-%s-group-%u", l->id, group);
        else if (kind == LEASE_FD_DEVICE)
                (void) snprintf(buf, size, "lease-%s-device-%u", l->id, group);
        else
                (void) snprintf(buf, size, "lease-%s-%s", l->id, kind == LEASE_FD_CONTAINER ? "container" :
                                kind == LEASE_FD_IOMMUFD ? "iommufd" : "owner");
}

/* Connection- and bus-name-owned leases store nothing: their owner dies with the daemon, and so do they. */
static bool lease_is_storable(const Lease *l) {
        return l->owner_kind == OWNER_PROCESS || l->owner_kind == OWNER_LEASE_FD;
}

static int lease_owner_fd(const Lease *l) {
        return l->owner_kind == OWNER_PROCESS ? l->owner_pidfd : l->lease_fd;
}

void manager_set_fd_store(Manager *m, ManagerFdStoreFunc func, void *userdata) {
        assert(m);
        m->fd_store_func = func;
        m->fd_store_userdata = userdata;
}

static void manager_store_fd(Manager *m, const Lease *l, LeaseFdKind kind, unsigned group, int fd) {
        char name[128];

        lease_fd_name(l, kind, group, name, sizeof name);
        m->fd_store_func(m, name, fd, m->fd_store_userdata);
}

void manager_store_lease_fds(Manager *m, Lease *l) {
        assert(m);
        assert(l);
        if (!m->fd_store_func || !lease_is_storable(l) || l->fds_stored)
                return;
        if (l->container_fd >= 0)
                manager_store_fd(m, l, LEASE_FD_CONTAINER, 0, l->container_fd);
        for (size_t i = 0; i < l->n_groups; i++)
                if (l->group_fds[i] >= 0)
                        manager_store_fd(m, l, LEASE_FD_GROUP, l->groups[i], l->group_fds[i]);
        if (l->iommufd >= 0)
                manager_store_fd(m, l, LEASE_FD_IOMMUFD, 0, l->iommufd);
        for (size_t i = 0; i < l->n_devices; i++)
                if (l->device_fds[i] >= 0)
                        manager_store_fd(m, l, LEASE_FD_DEVICE, (unsigned) i, l->device_fds[i]);
        if (lease_owner_fd(l) >= 0)
                manager_store_fd(m, l, LEASE_FD_OWNER, 0, lease_owner_fd(l));
        l->fds_stored = true;
}

/* A recovered lease's new pidfd, for the next restart. */
void manager_store_owner_fd(Manager *m, Lease *l) {
        assert(m);
        assert(l);
        if (!l->fds_stored)
                manager_store_lease_fds(m, l);
        else if (m->fd_store_func && lease_owner_fd(l) >= 0)
                manager_store_fd(m, l, LEASE_FD_OWNER, 0, lease_owner_fd(l));
}

void manager_unstore_lease_fds(Manager *m, Lease *l) {
        assert(m);
        assert(l);
        if (!l->fds_stored)
                return;
        l->fds_stored = false;
        if (!m->fd_store_func)
                return;
        manager_store_fd(m, l, LEASE_FD_CONTAINER, 0, -EBADF);
        for (size_t i = 0; i < l->n_groups; i++)
                manager_store_fd(m, l, LEASE_FD_GROUP, l->groups[i], -EBADF);
        if (l->delivery == LEASE_DELIVERY_IOMMUFD) {
                manager_store_fd(m, l, LEASE_FD_IOMMUFD, 0, -EBADF);
                for (size_t i = 0; i < l->n_devices; i++)
                        manager_store_fd(m, l, LEASE_FD_DEVICE, (unsigned) i, -EBADF);
        }
        manager_store_fd(m, l, LEASE_FD_OWNER, 0, -EBADF);
}

int manager_offer_stored_fd(Manager *m, const char *name, int fd_consume) {
        _cleanup_close_ int fd = fd_consume;
        void *a;

        assert(m);
        if (isempty(name) || strlen(name) > 255)
                return -EINVAL;
        a = reallocarray(m->stored, m->n_stored + 1, sizeof *m->stored);
        if (!a)
                return -ENOMEM;
        m->stored = a;
        m->stored[m->n_stored].name = strdup(name);
        if (!m->stored[m->n_stored].name)
                return -ENOMEM;
        m->stored[m->n_stored].fd = TAKE_FD(fd);
        m->n_stored++;
        return 0;
}

/* The stored fd of that name, taken out of the offered set; -EBADF if none came back. */
static int manager_claim_stored_fd(Manager *m, const Lease *l, LeaseFdKind kind, unsigned group) {
        char name[128];

        lease_fd_name(l, kind, group, name, sizeof name);
        for (size_t i = 0; i < m->n_stored; i++)
                if (m->stored[i].fd >= 0 && streq(m->stored[i].name, name))
                        return TAKE_FD(m->stored[i].fd);
        return -EBADF;
}

/* Gives a recovered lease the fds the store kept for it. Returns what they say of its owner: > 0 alive (a
 * pidfd of the recorded pid whose process runs, or a lease fd whose write end is still open somewhere),
 * -ESRCH gone (its pidfd or lease fd came back, and says so), 0 unknown (no owner fd came back). */
int manager_recover_lease_fds(Manager *m, Lease *l) {
        _cleanup_close_ int owner_fd = -EBADF;
        bool any;

        assert(m);
        assert(l);
        if (!lease_is_storable(l))
                return 0;

        l->container_fd = manager_claim_stored_fd(m, l, LEASE_FD_CONTAINER, 0);
        any = l->container_fd >= 0;
        for (size_t i = 0; i < l->n_groups; i++) {
                l->group_fds[i] = manager_claim_stored_fd(m, l, LEASE_FD_GROUP, l->groups[i]);
                any = any || l->group_fds[i] >= 0;
        }
        l->iommufd = manager_claim_stored_fd(m, l, LEASE_FD_IOMMUFD, 0);
        any = any || l->iommufd >= 0;
        for (size_t i = 0; i < l->n_devices; i++) {
                l->device_fds[i] = manager_claim_stored_fd(m, l, LEASE_FD_DEVICE, (unsigned) i);
                any = any || l->device_fds[i] >= 0;
        }
        owner_fd = manager_claim_stored_fd(m, l, LEASE_FD_OWNER, 0);
        any = any || owner_fd >= 0;
        l->fds_stored = any; /* whatever came back is still in the store, until the release drops it */

        if (owner_fd < 0)
                return 0;
        if (l->owner_kind == OWNER_PROCESS) {
                pid_t pid;
                /* -ESRCH: the process is gone (its pidfd says pid -1). */
                if (pidfd_get_pid(owner_fd, &pid) < 0 || pid != l->owner_pid)
                        return -ESRCH;
                l->owner_pidfd = TAKE_FD(owner_fd);
        } else {
                struct pollfd p = { .fd = owner_fd, .events = POLLIN };
                /* POLLHUP on the read end: every write end (the owner's lease fd) is closed. */
                if (poll(&p, 1, 0) < 0 || (p.revents & (POLLHUP|POLLERR|POLLNVAL)))
                        return -ESRCH;
                l->lease_fd = TAKE_FD(owner_fd);
        }
        return 1;
}

/* Fds the store gave back that no lease claimed: a lease the state file does not know (any more). */
void manager_drop_unclaimed_fds(Manager *m) {
        assert(m);
        for (size_t i = 0; i < m->n_stored; i++)
                if (m->stored[i].fd >= 0) {
                        log_notice("Dropping fd \"%s\" from the fd store: no lease of the state file claims it.",
                                   m->stored[i].name);
                        if (m->fd_store_func)
                                m->fd_store_func(m, m->stored[i].name, -EBADF, m->fd_store_userdata);
                }
        manager_close_stored(m);
}

void manager_close_stored(Manager *m) {
        assert(m);
        for (size_t i = 0; i < m->n_stored; i++) {
                safe_close(m->stored[i].fd);
                free(m->stored[i].name);
        }
        m->stored = mfree(m->stored);
        m->n_stored = 0;
}
