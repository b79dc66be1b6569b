/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A Lease object, /org/groupd1/lease/ID: Release, its properties, and the change of its State. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bus-caller.h"
#include "bus-lease.h"
#include "log.h"

/* ---------------------------------------------------------------- properties */

static void lease_props(const Lease *l, PropWriter *w) {
        assert(l);
        assert(w);
        pw_string(w, "Id", l->id);
        pw_string(w, "Label", l->label);
        pw_u32(w, "Uid", (uint32_t) l->uid);
        pw_u32(w, "Pid", (uint32_t) l->pid);
        pw_string(w, "Owner", owner_kind_to_string(l->owner_kind));
        pw_u32(w, "OwnerPid", l->owner_kind == OWNER_PROCESS ? (uint32_t) l->owner_pid : 0);
        pw_string(w, "OwnerBusName", l->owner_kind == OWNER_BUS_NAME ? l->bus_name : "");
        pw_string(w, "State", lease_state_to_string(l->state));
        pw_u64(w, "SinceUsec", l->since_usec);
        if (pw_open(w, "Groups", "au")) {
                w->oom = !append_groups_array(&w->var, l->groups, l->n_groups);
                pw_close(w);
        }
        pw_u32(w, "IommuType", l->iommu_type);
        pw_dma(w, &l->dma);
        pw_u64(w, "MemlockLimit", l->memlock);
        pw_bool(w, "KvmRegistered", l->kvm_registered);
}

static void lease_properties(Bus *b, const BusObject *o, PropWriter *w) {
        assert(o->kind == BUS_OBJECT_LEASE);
        lease_props(o->lease, w);
}

/* ---------------------------------------------------------------- methods */

bool request_is_lease_owner(Request *r) {
        Lease *l;

        assert(r);
        assert(r->bus);
        l = manager_find_lease(r->bus->manager, r->lease_id);
        return l && l->owner_kind == OWNER_BUS_NAME && streq_ptr(l->bus_name, r->sender);
}

static void execute_lease_release(Request *r) {
        Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
        bool revoke = !request_is_lease_owner(r);
        DBusMessage *reply;
        int k;

        if (!l || !lease_exported(l))
                return request_fail(r, bus_error_name(GD_ERR_NOT_FOUND), "no lease %s", r->lease_id);
        if (l->state != LEASE_ACTIVE)
                return request_fail(r, bus_error_name(GD_ERR_BUSY), "lease %s is being released already", l->id);
        log_info("Lease %s %s over D-Bus by %s (uid %u, pid %i).", l->id, revoke ? "revoked" : "released",
                 r->sender, (unsigned) r->caller.uid, (int) r->caller.pid);
        k = manager_release_lease(r->bus->manager, l, revoke ? LEASE_REASON_REVOKED : LEASE_REASON_RELEASED);
        if (k < 0)
                return request_fail(r, bus_error_name_from_errno(k), "cannot release lease %s: %s", l->id,
                                    strerror(-k));
        reply = dbus_message_new_method_return(r->message);
        if (!reply)
                reply_oom(r->bus, r->message);
        else
                bus_send(r->bus, reply);
        request_free(r);
}

static void method_release(Bus *b, DBusMessage *m, const BusObject *o) {
        Request *r;

        assert(o->kind == BUS_OBJECT_LEASE);
        if (request_new(b, m, REQUEST_LEASE_RELEASE, execute_lease_release, &r) < 0)
                return;
        (void) snprintf(r->lease_id, sizeof r->lease_id, "%s", o->lease->id);
        request_start(r);
}

/* Revoke(deadline_sec, force): an administrator ends the lease; with force, past the deadline its owner
 * process is sent SIGTERM, then SIGKILL. release-other (and revoke-force) from polkit. */
static void execute_lease_revoke(Request *r) {
        ManagerError err = {};

        log_info("Lease %s revoked over D-Bus by %s (uid %u, pid %i): deadline %" PRIu64 " ms%s.", r->lease_id,
                 r->sender, (unsigned) r->caller.uid, (int) r->caller.pid, r->deadline_usec / 1000,
                 r->force ? ", then by force" : "");
        if (manager_revoke(r->bus->manager, &r->caller, r->lease_id, r->deadline_usec, r->force, &err) < 0)
                return request_fail_manager(r, &err);
        bus_send(r->bus, dbus_message_new_method_return(r->message));
        request_free(r);
}

static void method_revoke(Bus *b, DBusMessage *m, const BusObject *o) {
        dbus_uint32_t deadline = 0;
        dbus_bool_t force = FALSE;
        Request *r;

        assert(o->kind == BUS_OBJECT_LEASE);
        (void) dbus_message_get_args(m, NULL, DBUS_TYPE_UINT32, &deadline, DBUS_TYPE_BOOLEAN, &force,
                                     DBUS_TYPE_INVALID);
        if (deadline > 86400)
                return reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                   "deadline %u s is longer than a day (0: groupd's release deadline)", deadline);
        if (request_new(b, m, REQUEST_LEASE_REVOKE, execute_lease_revoke, &r) < 0)
                return;
        (void) snprintf(r->lease_id, sizeof r->lease_id, "%s", o->lease->id);
        r->deadline_usec = (uint64_t) deadline * 1000000ULL;
        r->force = force;
        request_start(r);
}

static const BusMethod lease_methods[] = {
        { "Release", "", method_release },
        { "Revoke", "ub", method_revoke },
        {}
};

const BusVTable bus_lease_vtable = { IFACE_LEASE, lease_methods, lease_properties };

/* ---------------------------------------------------------------- signals */

static void fill_lease_state(PropWriter *w, const void *a, const void *c) {
        pw_string(w, "State", c);
}

void bus_lease_emit_state(Bus *b, const Lease *l, const char *state) {
        char path[128];

        assert(b);
        assert(l);
        assert(state);
        lease_path(l->id, path, sizeof path);
        emit_properties_changed(b, path, IFACE_LEASE, fill_lease_state, NULL, state, NULL);
}
