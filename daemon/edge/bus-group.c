/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A Group object, /org/groupd1/group/N: its properties (with the DMA facts) and their changes, and the
 * Manager's GroupChanged. A group has no methods. */
#include <stdio.h>

#include "bus-group.h"
#include "log.h"
#include "wire-view.h"

/* A group's DMA facts, from the manager (manager_dma_info(), as the native DMA_INFO): only asked for
 * when one of them is wanted, since it reads the group again. DmaNote is invalidated, never sent, in
 * PropertiesChanged. */
/* ---------------------------------------------------------------- properties */

static void group_dma_props(Manager *m, const GroupView *g, PropWriter *w) {
        static const char *const names[] = { "DmaSource", "IovaRanges", "PageSizes", "DmaAvailable", "DmaNote" };
        _cleanup_(dma_view_done) DmaView d = {};
        ManagerError err = {};
        char spec[16];
        bool wanted = false, have;

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                wanted = wanted || pw_wants(w, names[i]);
        if (!wanted)
                return;
        (void) snprintf(spec, sizeof spec, "%u", g->group.id);
        have = manager_dma_info(m, spec, &d, &err) >= 0;
        if (!have)
                log_debug("Cannot get the DMA facts of group %u: %s", g->group.id, err.message);
        pw_string(w, "DmaSource", gd_dma_source_to_string(have ? (int) d.source : GD_DMA_SOURCE_SYSFS));
        pw_dma(w, &d.dma);
        if (!w->changes_only)
                pw_string(w, "DmaNote", have ? d.note : err.message);
}

static void group_props(Manager *m, const GroupView *g, PropWriter *w) {
        const Lease *holder = g->holder;
        char path[128] = "/";

        assert(m);
        assert(g);
        assert(w);
        if (holder)
                lease_path(holder->id, path, sizeof path);
        if (!w->changes_only)
                pw_u32(w, "Id", g->group.id);
        pw_string(w, "Type", g->group.type);
        pw_bool(w, "Viable", g->viable);
        pw_string(w, "Viability", g->viability);
        if (pw_open(w, "Devices", "a(sqquss)")) {
                DBusMessageIter a, st;
                w->oom = !dbus_message_iter_open_container(&w->var, DBUS_TYPE_ARRAY, "(sqquss)", &a);
                for (size_t i = 0; i < g->group.n_devices && !w->oom; i++) {
                        const HostDevice *d = &g->group.devices[i];
                        const char *addr = d->address, *drv = d->driver, *ovr = d->driver_override;
                        dbus_uint16_t ven = d->vendor, dev = d->device;
                        dbus_uint32_t cls = d->class_code;
                        w->oom = !dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &addr) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT16, &ven) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT16, &dev) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &cls) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &drv) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &ovr) ||
                                 !dbus_message_iter_close_container(&a, &st);
                }
                if (!w->oom)
                        w->oom = !dbus_message_iter_close_container(&w->var, &a);
                pw_close(w);
        }
        if (pw_open(w, "Regions", "a(tts)")) {
                DBusMessageIter a, st;
                w->oom = !dbus_message_iter_open_container(&w->var, DBUS_TYPE_ARRAY, "(tts)", &a);
                for (size_t i = 0; i < g->group.n_regions && !w->oom; i++) {
                        dbus_uint64_t start = g->group.regions[i].start, end = g->group.regions[i].end;
                        const char *type = g->group.regions[i].type;
                        w->oom = !dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT64, &start) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT64, &end) ||
                                 !dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &type) ||
                                 !dbus_message_iter_close_container(&a, &st);
                }
                if (!w->oom)
                        w->oom = !dbus_message_iter_close_container(&w->var, &a);
                pw_close(w);
        }
        pw_bool(w, "Leased", holder);
        pw_path(w, "Lease", path);
        pw_string(w, "HolderLabel", holder ? holder->label : "");
        pw_u32(w, "HolderUid", holder ? (uint32_t) holder->uid : 0);
        pw_u32(w, "HolderPid", holder ? (uint32_t) lease_holder_pid(holder) : 0);
        pw_bool(w, "Never", g->never);
        pw_string(w, "PolicyNote", g->policy_note);
        group_dma_props(m, g, w);
}

static void group_properties(Bus *b, const BusObject *o, PropWriter *w) {
        assert(b);
        assert(o->kind == BUS_OBJECT_GROUP);
        group_props(b->manager, &o->group, w);
}

/* A group has no methods: a table with none, so that the one dispatcher answers UnknownMethod. */
static const BusMethod group_methods[] = {
        {}
};

const BusVTable bus_group_vtable = { IFACE_GROUP, group_methods, group_properties };

/* ---------------------------------------------------------------- signals */

static void fill_group(PropWriter *w, const void *a, const void *c) {
        group_props((Manager *) a, c, w);
}

/* The properties a lease's coming and going can change (Type, Regions, Never and PolicyNote cannot), and
 * those its release's start does. */
static const char *const holder_props[] = {
        "Viable", "Viability", "Devices", "Leased", "Lease", "HolderLabel", "HolderUid", "HolderPid",
        "DmaSource", "IovaRanges", "PageSizes", "DmaAvailable", NULL,
};
static const char *const dma_props[] = { "DmaSource", "IovaRanges", "PageSizes", "DmaAvailable", NULL };

void bus_group_emit_changed(Bus *b, unsigned group, GroupChange what) {
        const char *const *subset = what == GROUP_CHANGE_HOLDER ? holder_props :
                                    what == GROUP_CHANGE_DMA ? dma_props : NULL;
        bool signal = what != GROUP_CHANGE_DMA;
        GroupView g = {};
        char path[128], id[16];
        const char *p = path;
        dbus_uint32_t g32 = group;
        DBusMessage *m;

        assert(b);
        group_path(group, path, sizeof path);
        (void) snprintf(id, sizeof id, "%u", group);
        if (manager_get_group(b->manager, id, &g, NULL) >= 0) {
                emit_properties_changed_subset(b, path, IFACE_GROUP, fill_group, b->manager, &g, "DmaNote",
                                               subset);
                group_view_done(&g);
        }
        if (!signal)
                return;
        m = new_signal(BUS_PATH, IFACE_MANAGER, "GroupChanged");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_UINT32, &g32, DBUS_TYPE_OBJECT_PATH, &p, DBUS_TYPE_INVALID)) {
                dbus_message_unref(m);
                m = NULL;
        }
        bus_send(b, m);
}
