/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdio.h>

#include "log.h"
#include "manager-internal.h"
#include "state.h"

/* The one path by which an owner's end ends its leases, whatever the owner was. A lease still being
 * acquired ends as soon as its devices are prepared (manager_release_lease() defers it). */
static void lease_owner_gone(Lease *l, LeaseReason reason, const char *what) {
        if (!lease_is_live(l))
                return;
        log_info("Owner of lease %s (\"%s\") is gone: %s.", l->id, strempty(l->label), what);
        (void) manager_release_lease(l->manager, l, reason);
}

static int on_owner_exited(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Lease *l = userdata;
        char what[64];

        (void) snprintf(what, sizeof what, "pid %i exited", (int) l->owner_pid);
        lease_owner_gone(l, LEASE_REASON_OWNER_EXITED, what);
        return 0;
}

static int on_lease_fd_closed(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        lease_owner_gone(userdata, LEASE_REASON_LEASE_FD_CLOSED, "every copy of its lease fd was closed");
        return 0;
}

void manager_connection_closed(Manager *m, uint64_t connection_id) {
        Lease *next;

        assert(m);
        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->owner_kind == OWNER_CONNECTION && l->connection_id == connection_id)
                        lease_owner_gone(l, LEASE_REASON_CONNECTION_CLOSED, "its connection closed");
        }
}

void manager_bus_name_vanished(Manager *m, const char *name) {
        Lease *next;

        assert(m);
        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->owner_kind == OWNER_BUS_NAME && (!name || streq_ptr(l->bus_name, name)))
                        lease_owner_gone(l, LEASE_REASON_CONNECTION_CLOSED,
                                         name ? "its D-Bus name left the bus" : "groupd lost the bus");
        }
}

int pidfd_get_pid(int pidfd, pid_t *ret) {
        char path[64], line[128];
        FILE *f;
        int r = -ENOENT;

        assert(ret);
        if (pidfd < 0)
                return -EBADF;
        (void) snprintf(path, sizeof path, "/proc/self/fdinfo/%i", pidfd);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                int pid;
                if (sscanf(line, "Pid: %i", &pid) == 1) {
                        r = pid > 0 ? 0 : -ESRCH; /* -1: the process is gone already */
                        if (r == 0)
                                *ret = pid;
                        break;
                }
        }
        fclose(f);
        return r == -ENOENT ? -EBADF : r;  /* no Pid: line: not a pidfd */
}

int lease_watch_owner(Lease *l) {
        Manager *m;

        assert(l);
        assert(!l->owner_source);
        m = l->manager;

        switch (l->owner_kind) {
        case OWNER_PROCESS:
                return sd_event_add_io(m->event, &l->owner_source, l->owner_pidfd, EPOLLIN, on_owner_exited, l);
        case OWNER_LEASE_FD:
                return sd_event_add_io(m->event, &l->owner_source, l->lease_fd, EPOLLIN, on_lease_fd_closed, l);
        default:
                return 0;
        }
}

bool lease_owner_alive(const Lease *l) {
        uint64_t t;

        assert(l);
        if (l->owner_kind != OWNER_PROCESS || l->owner_pid <= 0)
                return false;
        if (process_starttime(l->owner_pid, &t) < 0)
                return false;
        return l->owner_starttime == 0 || t == l->owner_starttime;
}
