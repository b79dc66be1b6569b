/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "lease.h"
#include "log.h"

int lease_new(Manager *m, Lease **ret) {
        Lease *l;
        int r;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->manager = m;
        l->owner_pidfd = -EBADF;
        l->lease_fd = -EBADF;
        l->container_fd = -EBADF;
        l->state = GD_LEASE_ACQUIRING;

        r = lease_id_generate(l->id);
        if (r >= 0)
                r = token_generate(l->token);
        if (r < 0) {
                free(l);
                return r;
        }

        *ret = l;
        return 0;
}

void lease_close_fds(Lease *l) {
        l->container_fd = safe_close(l->container_fd);
        if (l->group_fds)
                close_many(l->group_fds, l->n_groups);
}

Lease *lease_free(Lease *l) {
        if (!l)
                return NULL;
        lease_close_fds(l);
        sd_event_source_disable_unref(l->owner_source);
        sd_event_source_disable_unref(l->deadline_source);
        safe_close(l->owner_pidfd);
        safe_close(l->lease_fd);
        /* Wipe the token before the memory goes back to the allocator. */
        explicit_bzero(l->token, sizeof l->token);
        free(l->label);
        free(l->bus_name);
        free(l->groups);
        free(l->group_fds);
        free(l->devices);
        free(l);
        return NULL;
}

int lease_set_state(Lease *l, GdLeaseState s) {
        static const bool allowed[_GD_LEASE_STATE_MAX][_GD_LEASE_STATE_MAX] = {
                [GD_LEASE_ACQUIRING][GD_LEASE_ACTIVE] = true,
                [GD_LEASE_ACQUIRING][GD_LEASE_RELEASED] = true,
                [GD_LEASE_ACQUIRING][GD_LEASE_RELEASING] = true, /* recovered half-way through */
                [GD_LEASE_ACTIVE][GD_LEASE_RELEASING] = true,
                [GD_LEASE_RELEASING][GD_LEASE_RELEASED] = true,
        };

        if (s < 0 || s >= _GD_LEASE_STATE_MAX)
                return -EINVAL;
        if (l->state == s)
                return -EALREADY;
        if (!allowed[l->state][s])
                return -EBUSY;

        log_debug("Lease %s: %s → %s", l->id, gd_lease_state_to_string(l->state), gd_lease_state_to_string(s));
        l->state = s;
        return 0;
}

bool lease_has_group(const Lease *l, unsigned group) {
        for (size_t i = 0; i < l->n_groups; i++)
                if (l->groups[i] == group)
                        return true;
        return false;
}

int lease_add_group(Lease *l, unsigned group) {
        unsigned *g;
        int *f;

        if (lease_has_group(l, group))
                return -EEXIST;

        g = reallocarray(l->groups, l->n_groups + 1, sizeof *g);
        if (!g)
                return -ENOMEM;
        l->groups = g;
        f = reallocarray(l->group_fds, l->n_groups + 1, sizeof *f);
        if (!f)
                return -ENOMEM;
        l->group_fds = f;

        l->groups[l->n_groups] = group;
        l->group_fds[l->n_groups] = -EBADF;
        l->n_groups++;
        return 0;
}

int lease_add_device(Lease *l, const char *address, unsigned group, const char *driver) {
        LeaseDevice *d;

        if (strlen(address) >= HOST_ADDR_MAX || strlen(strempty(driver)) >= HOST_DRIVER_MAX)
                return -EINVAL;

        d = reallocarray(l->devices, l->n_devices + 1, sizeof *d);
        if (!d)
                return -ENOMEM;
        l->devices = d;
        d = &l->devices[l->n_devices++];
        *d = (LeaseDevice) { .group = group };
        strcpy(d->address, address);
        strcpy(d->driver, strempty(driver));
        return 0;
}

void lease_to_gd(const Lease *l, GdLease *ret) {
        *ret = (GdLease) {
                .id = (char *) l->id,
                .label = l->label ?: (char *) "",
                .uid = (uint32_t) l->uid,
                .pid = (uint32_t) l->pid,
                .owner_kind = l->owner_kind,
                .owner_pid = l->owner_kind == GD_OWNER_PROCESS ? (uint32_t) l->owner_pid : 0,
                .state = l->state,
                .since_usec = l->since_usec,
                .groups = l->groups,
                .n_groups = (uint16_t) l->n_groups,
        };
}
