/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <dbus/dbus.h>

#include "manager.h"

/* Writes properties into an a{sv} (GetAll, PropertiesChanged, InterfacesAdded), or the one asked for
 * into a variant (Get). libdbus fails an append only when out of memory: that is remembered, and the
 * message is then dropped. */
typedef struct PropWriter {
        DBusMessageIter *iter;
        const char *only;
        bool changes_only;      /* PropertiesChanged: leave out the const ones */
        const char *const *subset; /* PropertiesChanged: only these (NULL-terminated; NULL: every one) */
        bool found;
        bool oom;
        DBusMessageIter entry, var;
} PropWriter;

/* Open and close the entry (or, for Get, the variant) of one property; pw_open() returns false when the
 * property is not asked for or memory ran out. */
bool pw_open(PropWriter *w, const char *name, const char *sig);
void pw_close(PropWriter *w);
/* Whether the property is asked for: write it, or leave out work only it needs. */
bool pw_wants(const PropWriter *w, const char *name);
void pw_string(PropWriter *w, const char *name, const char *value);
void pw_u32(PropWriter *w, const char *name, uint32_t value);
void pw_bool(PropWriter *w, const char *name, bool value);
void pw_u64(PropWriter *w, const char *name, uint64_t value);
void pw_path(PropWriter *w, const char *name, const char *path);
/* The facts of a container, as groups and leases show them: 0 or empty where unknown. */
void pw_dma(PropWriter *w, const HostIommuInfo *d);

bool append_u32_array(DBusMessageIter *iter, const uint32_t *v, size_t n);
bool append_groups_array(DBusMessageIter *iter, const unsigned *groups, size_t n);
