/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "lease.h"
#include "log.h"
#include "text-util.h"

static const char *const lease_state_table[_LEASE_STATE_MAX] = {
        [LEASE_ACQUIRING] = "acquiring",
        [LEASE_ACTIVE] = "active",
        [LEASE_RELEASING] = "releasing",
        [LEASE_RELEASED] = "released",
};
DEFINE_STRING_TABLE_LOOKUP(lease_state, LeaseState, lease_state_table);

static const char *const lease_reason_table[_LEASE_REASON_MAX] = {
        [LEASE_REASON_RELEASED] = "released",
        [LEASE_REASON_CONNECTION_CLOSED] = "connection-closed",
        [LEASE_REASON_OWNER_EXITED] = "owner-exited",
        [LEASE_REASON_LEASE_FD_CLOSED] = "lease-fd-closed",
        [LEASE_REASON_SHUTDOWN] = "shutdown",
        [LEASE_REASON_REVOKED] = "revoked",
        [LEASE_REASON_DEVICE_VANISHED] = "device-vanished",
        [LEASE_REASON_RECOVERED_DEAD] = "recovered-dead",
        [LEASE_REASON_DAEMON_RESTARTED] = "daemon-restarted",
};
DEFINE_STRING_TABLE_LOOKUP(lease_reason, LeaseReason, lease_reason_table);

static const char *const lease_delivery_table[_LEASE_DELIVERY_MAX] = {
        [LEASE_DELIVERY_LEGACY] = "legacy",
        [LEASE_DELIVERY_IOMMUFD] = "iommufd",
        [LEASE_DELIVERY_NODE_GRANT] = "node-grant",
        [LEASE_DELIVERY_AUTO] = "auto",
};
DEFINE_STRING_TABLE_LOOKUP(lease_delivery, LeaseDelivery, lease_delivery_table);

static const char *const owner_kind_table[_OWNER_KIND_MAX] = {
        [OWNER_CONNECTION] = "connection",
        [OWNER_PROCESS] = "process",
        [OWNER_LEASE_FD] = "lease-fd",
        [OWNER_BUS_NAME] = "bus-name",
};
DEFINE_STRING_TABLE_LOOKUP(owner_kind, OwnerKind, owner_kind_table);

int lease_new(Manager *m, Lease **ret) {
        Lease *l;
        int r;

        assert(ret);

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->manager = m;
        l->owner_pidfd = -EBADF;
        l->revoke_pidfd = -EBADF;
        l->lease_fd = -EBADF;
        l->container_fd = -EBADF;
        l->iommufd = -EBADF;
        l->state = LEASE_ACQUIRING;

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
        l->iommufd = safe_close(l->iommufd);
        if (l->device_fds)
                close_many(l->device_fds, l->n_devices);
}

Lease *lease_free(Lease *l) {
        if (!l)
                return NULL;
        lease_close_fds(l);
        sd_event_source_disable_unref(l->owner_source);
        sd_event_source_disable_unref(l->deadline_source);
        sd_event_source_disable_unref(l->revoke_source);
        safe_close(l->revoke_pidfd);
        free(l->tamper_note);
        safe_close(l->owner_pidfd);
        safe_close(l->lease_fd);
        /* Wipe the token before the memory goes back to the allocator. */
        explicit_bzero(l->token, sizeof l->token);
        if (l->state_record)
                explicit_bzero(l->state_record, l->state_record_len);
        free(l->state_record);
        free(l->label);
        free(l->bus_name);
        free(l->groups);
        free(l->group_fds);
        free(l->device_fds);
        free(l->devices);
        free(l->grants);
        free(l);
        return NULL;
}

int lease_set_state(Lease *l, LeaseState s) {
        static const bool allowed[_LEASE_STATE_MAX][_LEASE_STATE_MAX] = {
                [LEASE_ACQUIRING][LEASE_ACTIVE] = true,
                [LEASE_ACQUIRING][LEASE_RELEASED] = true,
                [LEASE_ACQUIRING][LEASE_RELEASING] = true, /* recovered half-way through */
                [LEASE_ACTIVE][LEASE_RELEASING] = true,
                [LEASE_RELEASING][LEASE_RELEASED] = true,
        };

        assert(l);
        assert(l->state >= 0 && l->state < _LEASE_STATE_MAX);

        if (s < 0 || s >= _LEASE_STATE_MAX)
                return -EINVAL;
        if (l->state == s)
                return -EALREADY;
        if (!allowed[l->state][s])
                return -EBUSY;

        log_debug("Lease %s: %s → %s", l->id, lease_state_to_string(l->state), lease_state_to_string(s));
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

int lease_add_device(Lease *l, const char *address, unsigned group, const char *driver, const char *override) {
        LeaseDevice *d;

        if (strlen(address) >= HOST_ADDR_MAX || strlen(strempty(driver)) >= HOST_DRIVER_MAX ||
            strlen(strempty(override)) >= HOST_DRIVER_MAX)
                return -EINVAL;

        d = reallocarray(l->devices, l->n_devices + 1, sizeof *d);
        if (!d)
                return -ENOMEM;
        l->devices = d;
        {
                int *f = reallocarray(l->device_fds, l->n_devices + 1, sizeof *f);
                if (!f)
                        return -ENOMEM;
                l->device_fds = f;
                f[l->n_devices] = -EBADF;
        }
        d = &l->devices[l->n_devices++];
        *d = (LeaseDevice) { .group = group };
        strcpy(d->address, address);
        strcpy(d->driver, strempty(driver));
        strcpy(d->override, strempty(override));
        return 0;
}

int lease_add_grant(Lease *l, const LeaseGrant *g) {
        LeaseGrant *a;

        assert(l);
        assert(g);
        a = reallocarray(l->grants, l->n_grants + 1, sizeof *a);
        if (!a)
                return -ENOMEM;
        l->grants = a;
        l->grants[l->n_grants++] = *g;
        return 0;
}

bool lease_all_standby(const Lease *l) {
        assert(l);
        for (size_t i = 0; i < l->n_devices; i++)
                if (!l->devices[i].standby)
                        return false;
        return l->n_devices > 0;
}

bool lease_needs_record(const Lease *l) {
        assert(l);
        /* Node grants are put back by a restart too: a node-grant lease is always recorded. */
        return l->owner_kind == OWNER_PROCESS || l->owner_kind == OWNER_LEASE_FD ||
               l->delivery == LEASE_DELIVERY_NODE_GRANT || l->n_grants > 0 || !lease_all_standby(l);
}

pid_t lease_holder_pid(const Lease *l) {
        assert(l);
        return l->owner_kind == OWNER_PROCESS ? l->owner_pid : l->pid;
}

bool lease_is_live(const Lease *l) {
        assert(l);
        return l->state == LEASE_ACQUIRING || l->state == LEASE_ACTIVE;
}

void lease_groups_to_text(const Lease *l, char *buf, size_t size) {
        assert(l);
        assert(buf && size > 0);
        buf[0] = 0;
        for (size_t i = 0; i < l->n_groups; i++)
                text_append(buf, size, "%u", l->groups[i]);
}
