/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writing properties: into an a{sv} (GetAll, PropertiesChanged, InterfacesAdded), or the one asked for
 * into a variant (Get). */
#include <assert.h>

#include "bus-prop.h"

bool pw_open(PropWriter *w, const char *name, const char *sig) {
        assert(w);
        assert(w->iter);
        assert(name);
        assert(sig);
        if (!pw_wants(w, name))
                return false;
        w->found = true;
        if (w->only)
                w->oom = !dbus_message_iter_open_container(w->iter, DBUS_TYPE_VARIANT, sig, &w->var);
        else
                w->oom = !dbus_message_iter_open_container(w->iter, DBUS_TYPE_DICT_ENTRY, NULL, &w->entry) ||
                         !dbus_message_iter_append_basic(&w->entry, DBUS_TYPE_STRING, &name) ||
                         !dbus_message_iter_open_container(&w->entry, DBUS_TYPE_VARIANT, sig, &w->var);
        return !w->oom;
}

void pw_close(PropWriter *w) {
        assert(w);
        if (w->oom)
                return;
        if (w->only)
                w->oom = !dbus_message_iter_close_container(w->iter, &w->var);
        else
                w->oom = !dbus_message_iter_close_container(&w->entry, &w->var) ||
                         !dbus_message_iter_close_container(w->iter, &w->entry);
}

static void pw_basic(PropWriter *w, const char *name, int type, const void *value) {
        char sig[2] = { (char) type, 0 };

        if (!pw_open(w, name, sig))
                return;
        w->oom = !dbus_message_iter_append_basic(&w->var, type, value);
        pw_close(w);
}

void pw_string(PropWriter *w, const char *name, const char *value) {
        const char *v = strempty(value);
        pw_basic(w, name, DBUS_TYPE_STRING, &v);
}

void pw_u32(PropWriter *w, const char *name, uint32_t value) {
        pw_basic(w, name, DBUS_TYPE_UINT32, &value);
}

void pw_bool(PropWriter *w, const char *name, bool value) {
        dbus_bool_t v = value;
        pw_basic(w, name, DBUS_TYPE_BOOLEAN, &v);
}

void pw_u64(PropWriter *w, const char *name, uint64_t value) {
        dbus_uint64_t v = value;
        pw_basic(w, name, DBUS_TYPE_UINT64, &v);
}

void pw_path(PropWriter *w, const char *name, const char *path) {
        pw_basic(w, name, DBUS_TYPE_OBJECT_PATH, &path);
}

bool append_u32_array(DBusMessageIter *iter, const uint32_t *v, size_t n) {
        DBusMessageIter a;

        if (!dbus_message_iter_open_container(iter, DBUS_TYPE_ARRAY, "u", &a))
                return false;
        if (n > 0 && !dbus_message_iter_append_fixed_array(&a, DBUS_TYPE_UINT32, &v, (int) n))
                return false;
        return dbus_message_iter_close_container(iter, &a);
}

bool append_groups_array(DBusMessageIter *iter, const unsigned *groups, size_t n) {
        uint32_t v[LEASE_GROUPS_MAX];

        n = MIN(n, (size_t) LEASE_GROUPS_MAX);
        for (size_t i = 0; i < n; i++)
                v[i] = groups[i];
        return append_u32_array(iter, v, n);
}

static bool in_subset(const char *const *subset, const char *name) {
        if (!subset)
                return true;
        for (; *subset; subset++)
                if (streq(*subset, name))
                        return true;
        return false;
}

bool pw_wants(const PropWriter *w, const char *name) {
        return !w->oom && (!w->only || streq(w->only, name)) && in_subset(w->subset, name);
}

static void pw_iova(PropWriter *w, const char *name, const HostIommuInfo *d) {
        DBusMessageIter a, st;

        if (!pw_open(w, name, "a(tt)"))
                return;
        w->oom = !dbus_message_iter_open_container(&w->var, DBUS_TYPE_ARRAY, "(tt)", &a);
        for (size_t i = 0; (d->flags & HOST_IOMMU_IOVA) && i < d->n_iova && !w->oom; i++) {
                dbus_uint64_t start = d->iova[i].start, end = d->iova[i].end;
                w->oom = !dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) ||
                         !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT64, &start) ||
                         !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT64, &end) ||
                         !dbus_message_iter_close_container(&a, &st);
        }
        if (!w->oom)
                w->oom = !dbus_message_iter_close_container(&w->var, &a);
        pw_close(w);
}

void pw_dma(PropWriter *w, const HostIommuInfo *d) {
        pw_iova(w, "IovaRanges", d);
        pw_u64(w, "PageSizes", (d->flags & HOST_IOMMU_PGSIZES) ? d->pgsizes : 0);
        pw_u32(w, "DmaAvailable", (d->flags & HOST_IOMMU_DMA_AVAIL) ? d->dma_avail : 0);
}
