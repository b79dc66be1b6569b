/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the host reports changed (uevents on linux, the controls on the simulated host), and what the core
 * makes of it: a lease whose device vanished ends (device-vanished), a lease whose device was rebound
 * behind groupd's back is marked and reported, and every other coming, going or rebinding of a device is
 * announced as GROUP_CHANGED. The reporter (an edge: sd-device's monitor, or the sim's watch fd) knows no
 * leases; this file knows no uevents. */
#include <assert.h>
#include <limits.h>
#include <stdio.h>

#include "log.h"
#include "manager-internal.h"

static Lease *lease_of_device(Manager *m, const char *address, const LeaseDevice **ret_device) {
        for (Lease *l = m->leases; l; l = l->next)
                for (size_t i = 0; i < l->n_devices; i++)
                        if (streq(l->devices[i].address, address)) {
                                if (ret_device)
                                        *ret_device = &l->devices[i];
                                return l;
                        }
        return NULL;
}

static void lease_mark_tampered(Lease *l, const char *address, const char *what) {
        char *note = NULL;

        if (asprintf(&note, "%s%s%s %s", strempty(l->tamper_note), l->tamper_note ? "; " : "", address, what) >= 0) {
                free(l->tamper_note);
                l->tamper_note = note;
        }
        l->tampered = true;
}

void manager_host_changed(Manager *m, const HostChange *c) {
        unsigned group = c ? c->group : UINT_MAX;
        const LeaseDevice *ld = NULL;
        char detail[MANAGER_TEXT_MAX];
        HostDevice d = {};
        Lease *l;
        bool present;

        assert(m);
        assert(c);

        l = lease_of_device(m, c->address, &ld);
        present = host_read_device(m->host, c->address, &d) >= 0;
        if (present && d.group != UINT_MAX)
                group = d.group;
        if (ld && group == UINT_MAX)
                group = ld->group;

        switch (c->kind) {
        case HOST_CHANGE_REMOVE:
                if (present)
                        return; /* came back already: its add follows */
                (void) snprintf(detail, sizeof detail, "%s was removed", c->address);
                if (l && l->state == LEASE_ACTIVE) {
                        audit_device_changed(l, c->address, "vanished: the lease ends, its other devices are restored");
                        (void) manager_release_lease(m, l, LEASE_REASON_DEVICE_VANISHED);
                } else if (l && l->state == LEASE_ACQUIRING) {
                        audit_device_changed(l, c->address, "vanished while the lease was being acquired");
                        (void) manager_release_lease(m, l, LEASE_REASON_DEVICE_VANISHED);
                } else
                        audit_device_changed(NULL, c->address, "was removed");
                manager_emit(m, MANAGER_EVENT_GROUP_CHANGED, NULL, group, 0, detail);
                return;

        case HOST_CHANGE_ADD:
                if (!present)
                        return;
                (void) snprintf(detail, sizeof detail, "%s appeared", c->address);
                audit_device_changed(NULL, c->address, "appeared");
                manager_emit(m, MANAGER_EVENT_GROUP_CHANGED, NULL, group, 0, detail);
                return;

        case HOST_CHANGE_BIND:
        case HOST_CHANGE_UNBIND:
                if (!present)
                        return;
                if (l && l->state != LEASE_ACTIVE)
                        return; /* groupd's own binding, while it acquires or releases */
                if (l) {
                        /* Active: its devices stay on their VFIO driver. Look at what is there now, not at
                         * what the event says (a late event of groupd's own acquire reads vfio-pci). */
                        if (d.vfio_driver)
                                return;
                        if (isempty(d.driver))
                                (void) snprintf(detail, sizeof detail,
                                                "was unbound from its VFIO driver behind groupd's back");
                        else
                                (void) snprintf(detail, sizeof detail, "was rebound to %s behind groupd's back",
                                                d.driver);
                        if (l->tamper_note && strstr(l->tamper_note, detail))
                                return; /* said already */
                        lease_mark_tampered(l, c->address, detail);
                        audit_device_changed(l, c->address, detail);
                        {
                                char full[MANAGER_TEXT_MAX + 128];
                                (void) snprintf(full, sizeof full, "%s %.900s (lease %s)", c->address, detail, l->id);
                                manager_emit(m, MANAGER_EVENT_GROUP_CHANGED, NULL, group, EBUSY, full);
                        }
                        return;
                }
                if (c->kind == HOST_CHANGE_BIND)
                        (void) snprintf(detail, sizeof detail, "%s was bound to %s", c->address,
                                        isempty(d.driver) ? c->driver : d.driver);
                else
                        (void) snprintf(detail, sizeof detail, "%s was unbound", c->address);
                manager_emit(m, MANAGER_EVENT_GROUP_CHANGED, NULL, group, 0, detail);
                return;

        default:
                return;
        }
}

static int on_host_watch(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ HostChange *changes = NULL;
        size_t n = 0;
        int r;

        r = host_watch_drain(m->host, &changes, &n);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the host's changes: %m");
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                manager_host_changed(m, &changes[i]);
        return 0;
}

int manager_watch_host(Manager *m) {
        int fd;

        assert(m);
        fd = host_watch_fd(m->host);
        if (fd == -EOPNOTSUPP)
                return 0; /* uevents: an edge listens */
        if (fd < 0)
                return fd;
        return sd_event_add_io(m->event, &m->host_watch_source, fd, EPOLLIN, on_host_watch, m);
}
