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

/* An unbind of a leased device is also the first half of its removal (the kernel unbinds, then removes):
 * look again a second later (the kernel sends both within microseconds; a loaded host may deliver them
 * further apart), and report only a device that is still there without its VFIO driver. */
#define UNBIND_SETTLE_USEC (1000 * 1000ULL)

typedef struct UnbindCheck {
        Manager *manager;
        HostChange change;
} UnbindCheck;

static void lease_report_tampered(Manager *m, Lease *l, const HostChange *c, unsigned group, const HostDevice *d);

static int on_unbind_settled(sd_event_source *s, uint64_t usec, void *userdata) {
        UnbindCheck *u = userdata;
        Manager *m = u->manager;
        const LeaseDevice *ld = NULL;
        HostDevice d = {};
        Lease *l;

        l = lease_of_device(m, u->change.address, &ld);
        if (l && l->state == LEASE_ACTIVE && host_read_device(m->host, u->change.address, &d) >= 0 && !d.vfio_driver)
                lease_report_tampered(m, l, &u->change, d.group != UINT_MAX ? d.group : ld->group, &d);
        /* Done: the loop lets go of the source (dispatch holds it until we return), which frees u. */
        (void) sd_event_source_set_floating(s, false);
        return 0;
}

static void lease_report_tampered(Manager *m, Lease *l, const HostChange *c, unsigned group, const HostDevice *d) {
        char detail[MANAGER_TEXT_MAX], full[MANAGER_TEXT_MAX + 128];

        if (isempty(d->driver))
                (void) snprintf(detail, sizeof detail, "was unbound from its VFIO driver behind groupd's back");
        else
                (void) snprintf(detail, sizeof detail, "was rebound to %s behind groupd's back", d->driver);
        if (l->tamper_note && strstr(l->tamper_note, detail))
                return; /* said already */
        lease_mark_tampered(l, c->address, detail);
        audit_device_changed(l, c->address, detail);
        (void) snprintf(full, sizeof full, "%s %.900s (lease %s)", c->address, detail, l->id);
        manager_emit(m, MANAGER_EVENT_GROUP_CHANGED, NULL, group, EBUSY, full);
}

/* Schedules on_unbind_settled(); the timer owns its UnbindCheck (freed with the source, which floats: the
 * event loop frees it when it has fired, or when the loop goes). */
static int unbind_check_later(Manager *m, const HostChange *c) {
        _cleanup_free_ UnbindCheck *u = NULL;
        sd_event_source *src = NULL;
        int r;

        u = calloc(1, sizeof *u);
        if (!u)
                return -ENOMEM;
        u->manager = m;
        u->change = *c;
        r = sd_event_add_time_relative(m->event, &src, CLOCK_MONOTONIC, UNBIND_SETTLE_USEC, 0, on_unbind_settled, u);
        if (r < 0)
                return r;
        (void) sd_event_source_set_destroy_callback(src, free);
        TAKE_PTR(u);
        /* Owned by the loop from here; it lets go once fired (on_unbind_settled()) or when it is freed. */
        (void) sd_event_source_set_floating(src, true);
        sd_event_source_unref(src);
        return 0;
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
                        if (c->kind == HOST_CHANGE_UNBIND && isempty(d.driver) && unbind_check_later(m, c) >= 0)
                                return;
                        lease_report_tampered(m, l, c, group, &d);
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
