/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dbus/dbus.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>

#include "bus-glue.h"
#include "bus.h"
#include "fd-util.h"
#include "log.h"
#include "memlock.h"
#include "wire-view.h"
#include "org.groupd1-xml.h"   /* bus_interface_xml[], generated from proto/org.groupd1.xml */

#define IFACE_MANAGER BUS_NAME ".Manager"
#define IFACE_GROUP BUS_NAME ".Group"
#define IFACE_LEASE BUS_NAME ".Lease"
#define PATH_GROUPS BUS_PATH "/group"
#define PATH_LEASES BUS_PATH "/lease"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"

#define ACTION_LIST BUS_NAME ".list"
#define ACTION_ACQUIRE BUS_NAME ".acquire"
#define ACTION_ACQUIRE_ANY BUS_NAME ".acquire-any"
#define ACTION_RELEASE_OTHER BUS_NAME ".release-other"
#define ACTION_MEMLOCK BUS_NAME ".memlock"

#define REQUESTS_MAX 1024
#define REQUESTS_PER_SENDER_MAX 32
#define POLKIT_TIMEOUT_MS (25 * 1000)
#define POLKIT_INTERACTIVE_TIMEOUT_MS (5 * 60 * 1000)

/* ---------------------------------------------------------------- errors: the one table */

static const char *const error_names[_GD_ERR_MAX] = {
        [GD_ERR_PROTOCOL] = DBUS_ERROR_INVALID_ARGS,
        [GD_ERR_VERSION] = DBUS_ERROR_NOT_SUPPORTED,
        [GD_ERR_INVALID] = BUS_NAME ".Error.Invalid",
        [GD_ERR_NOT_FOUND] = BUS_NAME ".Error.NotFound",
        [GD_ERR_BUSY] = BUS_NAME ".Error.Busy",
        [GD_ERR_DENIED] = BUS_NAME ".Error.Denied",
        [GD_ERR_NOT_VIABLE] = BUS_NAME ".Error.NotViable",
        [GD_ERR_HOST] = BUS_NAME ".Error.Host",
        [GD_ERR_LIMIT] = BUS_NAME ".Error.Limit",
        [GD_ERR_BAD_TOKEN] = BUS_NAME ".Error.BadToken",
        [GD_ERR_INTERNAL] = BUS_NAME ".Error.Internal",
        [GD_ERR_SHUTTING_DOWN] = BUS_NAME ".Error.ShuttingDown",
};

const char *bus_error_name(int gd_error) {
        if (gd_error <= 0 || gd_error >= _GD_ERR_MAX || !error_names[gd_error])
                return error_names[GD_ERR_INTERNAL];
        return error_names[gd_error];
}

const char *bus_error_name_from_errno(int errno_value) {
        return bus_error_name(gd_error_from_errno(errno_value));
}

/* ---------------------------------------------------------------- objects */

typedef enum RequestKind {
        REQUEST_LIST_GROUPS,
        REQUEST_GET_GROUP,
        REQUEST_LIST_LEASES,
        REQUEST_ACQUIRE,
        REQUEST_LEASE_RELEASE,
        REQUEST_RELEASE_TOKEN,
        REQUEST_MEMLOCK_LIMIT,
} RequestKind;

typedef struct Request Request;

typedef struct CallerCache CallerCache;

struct Bus {
        sd_event *event;
        Manager *manager;
        DBusConnection *connection;
        BusGlue *glue;
        bool accepting;
        bool registered;
        Request *requests;
        size_t n_requests;
        /* The interface blocks of proto/org.groupd1.xml, verbatim. */
        char *xml_manager, *xml_group, *xml_lease;
        /* Who the callers are, by unique name: a unique name is never given out twice on a bus and its
         * credentials cannot change, so the bus is asked once per caller, not once per call. An entry
         * goes when its name leaves the bus. */
        CallerCache *callers;
        size_t n_callers;
};

#define CALLER_CACHE_MAX 1024

struct CallerCache {
        char *name;
        Caller caller;   /* uid, gid, pid, gids */
        CallerCache *next;
};

static void caller_cache_drop(Bus *b, const char *name) {
        for (CallerCache **p = &b->callers; *p; p = &(*p)->next)
                if (streq((*p)->name, name)) {
                        CallerCache *c = *p;
                        *p = c->next;
                        free(c->name);
                        free(c);
                        b->n_callers--;
                        return;
                }
}

static const CallerCache *caller_cache_find(Bus *b, const char *name) {
        for (CallerCache *c = b->callers; c; c = c->next)
                if (streq(c->name, name))
                        return c;
        return NULL;
}

static void caller_cache_add(Bus *b, const char *name, const Caller *caller) {
        CallerCache *c;

        if (b->n_callers >= CALLER_CACHE_MAX)
                return; /* asking the bus again is correct, only slower */
        c = calloc(1, sizeof *c);
        if (!c || !(c->name = strdup(name))) {
                free(c);
                return;
        }
        c->caller = *caller;
        c->next = b->callers;
        b->callers = c;
        b->n_callers++;
}

/* A method call that waits for the bus (the caller's credentials), polkit, or the manager. */
struct Request {
        Bus *bus;                        /* NULL once the bus is gone while the manager still works on it */
        RequestKind kind;
        DBusMessage *message;
        char *sender;
        Caller caller;
        DBusPendingCall *pending;
        bool acquiring;                  /* handed to manager_acquire(), waiting for its answer */
        bool sender_gone;

        char **specs;                    /* ACQUIRE */
        size_t n_specs;
        char *label;
        OwnerKind owner;                 /* ACQUIRE: OWNER_CONNECTION stands for the caller's bus name */
        bool configure_iommu;
        bool kvm;
        bool memlock;
        int owner_pidfd;
        uint64_t guest_ram;              /* ACQUIRE with memlock; MEMLOCK_LIMIT */
        bool viommu;                     /* MEMLOCK_LIMIT */
        bool memlock_authorized;         /* ACQUIRE with memlock: polkit is (being) asked for ACTION_MEMLOCK too */
        AcquirePreview preview;
        char *spec;                      /* GET_GROUP; RELEASE_TOKEN: the token */
        char lease_id[LEASE_ID_LEN + 1]; /* LEASE_RELEASE */

        Request *prev, *next;
};

static void lease_path(const char *id, char *buf, size_t size) {
        (void) snprintf(buf, size, PATH_LEASES "/%s", id);
}

static void group_path(unsigned id, char *buf, size_t size) {
        (void) snprintf(buf, size, PATH_GROUPS "/%u", id);
}

/* A lease has an object while it is active or releasing: from LeaseStarted to LeaseEnded. */
static bool lease_exported(const Lease *l) {
        return l->state == LEASE_ACTIVE || l->state == LEASE_RELEASING;
}

/* ---------------------------------------------------------------- writing properties */

/* Writes properties into an a{sv} (GetAll, PropertiesChanged, InterfacesAdded), or the one asked for
 * into a variant (Get). libdbus fails an append only when out of memory: that is remembered, and the
 * message is then dropped. */
typedef struct PropWriter {
        DBusMessageIter *iter;
        const char *only;
        bool changes_only;      /* PropertiesChanged: leave out the const ones */
        bool found;
        bool oom;
        DBusMessageIter entry, var;
} PropWriter;

static bool pw_open(PropWriter *w, const char *name, const char *sig) {
        if (w->oom || (w->only && !streq(w->only, name)))
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

static void pw_close(PropWriter *w) {
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

static void pw_string(PropWriter *w, const char *name, const char *value) {
        const char *v = strempty(value);
        pw_basic(w, name, DBUS_TYPE_STRING, &v);
}

static void pw_u32(PropWriter *w, const char *name, uint32_t value) {
        pw_basic(w, name, DBUS_TYPE_UINT32, &value);
}

static void pw_bool(PropWriter *w, const char *name, bool value) {
        dbus_bool_t v = value;
        pw_basic(w, name, DBUS_TYPE_BOOLEAN, &v);
}

static void pw_u64(PropWriter *w, const char *name, uint64_t value) {
        dbus_uint64_t v = value;
        pw_basic(w, name, DBUS_TYPE_UINT64, &v);
}

static void pw_path(PropWriter *w, const char *name, const char *path) {
        pw_basic(w, name, DBUS_TYPE_OBJECT_PATH, &path);
}

static bool append_u32_array(DBusMessageIter *iter, const uint32_t *v, size_t n) {
        DBusMessageIter a;

        if (!dbus_message_iter_open_container(iter, DBUS_TYPE_ARRAY, "u", &a))
                return false;
        if (n > 0 && !dbus_message_iter_append_fixed_array(&a, DBUS_TYPE_UINT32, &v, (int) n))
                return false;
        return dbus_message_iter_close_container(iter, &a);
}

static bool append_groups_array(DBusMessageIter *iter, const unsigned *groups, size_t n) {
        uint32_t v[LEASE_GROUPS_MAX];

        n = MIN(n, (size_t) LEASE_GROUPS_MAX);
        for (size_t i = 0; i < n; i++)
                v[i] = groups[i];
        return append_u32_array(iter, v, n);
}

static void manager_props(Bus *b, PropWriter *w) {
        pw_string(w, "Version", PACKAGE_VERSION);
        pw_string(w, "Host", manager_host_kind(b->manager));
        pw_u64(w, "StartedUsec", manager_started_usec(b->manager));
        pw_u32(w, "NLeases", (uint32_t) manager_n_leases(b->manager));
}

static bool pw_wants(const PropWriter *w, const char *name) {
        return !w->oom && (!w->only || streq(w->only, name));
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

/* The facts of a container, as groups and leases show them: 0 or empty where unknown. */
static void dma_props(const HostIommuInfo *d, PropWriter *w) {
        pw_iova(w, "IovaRanges", d);
        pw_u64(w, "PageSizes", (d->flags & HOST_IOMMU_PGSIZES) ? d->pgsizes : 0);
        pw_u32(w, "DmaAvailable", (d->flags & HOST_IOMMU_DMA_AVAIL) ? d->dma_avail : 0);
}

/* A group's DMA facts, from the manager (manager_dma_info(), as the native DMA_INFO): only asked for
 * when one of them is wanted, since it reads the group again. DmaNote is invalidated, never sent, in
 * PropertiesChanged. */
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
        dma_props(&d.dma, w);
        if (!w->changes_only)
                pw_string(w, "DmaNote", have ? d.note : err.message);
}

static void group_props(Manager *m, const GroupView *g, PropWriter *w) {
        const Lease *holder = g->holder;
        char path[128] = "/";

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

static void lease_props(const Lease *l, const char *state, PropWriter *w) {
        pw_string(w, "Id", l->id);
        pw_string(w, "Label", l->label);
        pw_u32(w, "Uid", (uint32_t) l->uid);
        pw_u32(w, "Pid", (uint32_t) l->pid);
        pw_string(w, "Owner", owner_kind_to_string(l->owner_kind));
        pw_u32(w, "OwnerPid", l->owner_kind == OWNER_PROCESS ? (uint32_t) l->owner_pid : 0);
        pw_string(w, "OwnerBusName", l->owner_kind == OWNER_BUS_NAME ? l->bus_name : "");
        pw_string(w, "State", state ?: lease_state_to_string(l->state));
        pw_u64(w, "SinceUsec", l->since_usec);
        if (pw_open(w, "Groups", "au")) {
                w->oom = !append_groups_array(&w->var, l->groups, l->n_groups);
                pw_close(w);
        }
        pw_u32(w, "IommuType", l->iommu_type);
        dma_props(&l->dma, w);
        pw_u64(w, "MemlockLimit", l->memlock);
        pw_bool(w, "KvmRegistered", l->kvm_registered);
}

/* ---------------------------------------------------------------- sending */

static void bus_send(Bus *b, DBusMessage *m) {
        if (!m)
                return;
        if (!dbus_connection_send(b->connection, m, NULL))
                log_oom();
        dbus_message_unref(m);
}

static void reply_error(Bus *b, DBusMessage *call, const char *name, const char *fmt, ...) _printf_(4, 5);
static void reply_error(Bus *b, DBusMessage *call, const char *name, const char *fmt, ...) {
        char text[MANAGER_TEXT_MAX];
        va_list ap;

        if (dbus_message_get_no_reply(call))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        bus_send(b, dbus_message_new_error(call, name, text));
}

static void reply_oom(Bus *b, DBusMessage *call) {
        reply_error(b, call, DBUS_ERROR_NO_MEMORY, "out of memory");
}

/* Answers call with one value of a basic type (type: DBUS_TYPE_*; value points at it), or out of memory. */
static void reply_basic(Bus *b, DBusMessage *call, int type, const void *value) {
        DBusMessage *reply = dbus_message_new_method_return(call);

        if (!reply || !dbus_message_append_args(reply, type, value, DBUS_TYPE_INVALID)) {
                if (reply)
                        dbus_message_unref(reply);
                return reply_oom(b, call);
        }
        bus_send(b, reply);
}

static DBusMessage *new_signal(const char *path, const char *iface, const char *member) {
        return dbus_message_new_signal(path, iface, member);
}

/* invalidated: one property named without its value, or NULL. */
static void emit_properties_changed(Bus *b, const char *path, const char *iface,
                                    void (*fill)(PropWriter *w, const void *a, const void *c), const void *a,
                                    const void *c, const char *invalidated) {
        DBusMessage *m = new_signal(path, DBUS_INTERFACE_PROPERTIES, "PropertiesChanged");
        DBusMessageIter it, dict, inval;
        PropWriter w = {};

        if (!m)
                return (void) log_oom();
        dbus_message_iter_init_append(m, &it);
        w.iter = &dict;
        w.changes_only = true;
        w.oom = !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &iface) ||
                !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (!w.oom)
                fill(&w, a, c);
        if (!w.oom)
                w.oom = !dbus_message_iter_close_container(&it, &dict) ||
                        !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &inval) ||
                        (invalidated && !dbus_message_iter_append_basic(&inval, DBUS_TYPE_STRING, &invalidated)) ||
                        !dbus_message_iter_close_container(&it, &inval);
        if (w.oom) {
                dbus_message_unref(m);
                return (void) log_oom();
        }
        bus_send(b, m);
}

static void fill_group(PropWriter *w, const void *a, const void *c) {
        group_props((Manager *) a, c, w);
}

static void fill_lease_state(PropWriter *w, const void *a, const void *c) {
        pw_string(w, "State", c);
}

static void fill_manager_nleases(PropWriter *w, const void *a, const void *c) {
        pw_u32(w, "NLeases", (uint32_t) (uintptr_t) c);
}

/* ---------------------------------------------------------------- requests */

static Request *request_free(Request *r) {
        if (!r)
                return NULL;
        if (r->bus) {
                if (r->prev)
                        r->prev->next = r->next;
                else
                        r->bus->requests = r->next;
                if (r->next)
                        r->next->prev = r->prev;
                r->bus->n_requests--;
        }
        if (r->pending) {
                dbus_pending_call_cancel(r->pending);
                dbus_pending_call_unref(r->pending);
        }
        if (r->message)
                dbus_message_unref(r->message);
        for (size_t i = 0; i < r->n_specs; i++)
                free(r->specs[i]);
        free(r->specs);
        free(r->label);
        free(r->spec);
        free(r->sender);
        safe_close(r->owner_pidfd);
        free(r);
        return NULL;
}

static int request_new(Bus *b, DBusMessage *call, RequestKind kind, Request **ret) {
        const char *sender = dbus_message_get_sender(call);
        size_t same = 0;
        Request *r;

        if (!sender)
                return -EINVAL;
        for (Request *x = b->requests; x; x = x->next)
                if (streq(x->sender, sender))
                        same++;
        if (b->n_requests >= REQUESTS_MAX || same >= REQUESTS_PER_SENDER_MAX)
                return -EUSERS;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->bus = b;
        r->kind = kind;
        r->owner_pidfd = -EBADF;
        r->message = dbus_message_ref(call);
        r->sender = strdup(sender);
        if (!r->sender) {
                dbus_message_unref(r->message);
                free(r);
                return -ENOMEM;
        }
        r->caller.uid = (uid_t) -1;
        r->caller.gid = (gid_t) -1;

        r->next = b->requests;
        if (b->requests)
                b->requests->prev = r;
        b->requests = r;
        b->n_requests++;
        *ret = r;
        return 0;
}

static void request_fail(Request *r, const char *name, const char *fmt, ...) _printf_(3, 4);
static void request_fail(Request *r, const char *name, const char *fmt, ...) {
        char text[MANAGER_TEXT_MAX];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (r->bus && !r->sender_gone)
                reply_error(r->bus, r->message, name, "%s", text);
        request_free(r);
}

static void request_fail_manager(Request *r, const ManagerError *err) {
        request_fail(r, bus_error_name(wire_error(err->code)), "%s", err->message);
}

/* Sends call and continues with cb(reply, r) when the answer (or an error) is there. */
static int request_call(Request *r, DBusMessage *call, int timeout_ms, DBusPendingCallNotifyFunction cb) {
        DBusPendingCall *pending = NULL;

        if (!dbus_connection_send_with_reply(r->bus->connection, call, &pending, timeout_ms)) {
                dbus_message_unref(call);
                return -ENOMEM;
        }
        dbus_message_unref(call);
        if (!pending)
                return -ENOTCONN;
        if (!dbus_pending_call_set_notify(pending, cb, r, NULL)) {
                dbus_pending_call_cancel(pending);
                dbus_pending_call_unref(pending);
                return -ENOMEM;
        }
        r->pending = pending;
        return 0;
}

/* Takes the reply of r's pending call. */
static DBusMessage *request_steal_reply(Request *r, DBusPendingCall *pending) {
        DBusMessage *reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(r->pending);
        r->pending = NULL;
        return reply;
}

/* ---------------------------------------------------------------- executing */

static void execute_list_groups(Request *r) {
        Bus *b = r->bus;
        GroupView *groups = NULL;
        size_t n = 0;
        DBusMessage *reply;
        DBusMessageIter it, a, st;
        bool ok;
        int k;

        k = manager_list_groups(b->manager, &groups, &n);
        if (k < 0)
                return request_fail(r, bus_error_name(GD_ERR_HOST), "cannot list the IOMMU groups: %s",
                                    strerror(-k));

        reply = dbus_message_new_method_return(r->message);
        ok = reply != NULL;
        if (ok) {
                dbus_message_iter_init_append(reply, &it);
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(uosbbo)", &a);
        }
        for (size_t i = 0; i < n && ok; i++) {
                char path[128], lpath[128] = "/";
                const char *p = path, *lp = lpath, *type = groups[i].group.type;
                dbus_uint32_t id = groups[i].group.id;
                dbus_bool_t viable = groups[i].viable, leased = !!groups[i].holder;

                group_path(id, path, sizeof path);
                if (leased)
                        lease_path(groups[i].holder->id, lpath, sizeof lpath);
                ok = dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &id) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_OBJECT_PATH, &p) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &type) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_BOOLEAN, &viable) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_BOOLEAN, &leased) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_OBJECT_PATH, &lp) &&
                     dbus_message_iter_close_container(&a, &st);
        }
        ok = ok && dbus_message_iter_close_container(&it, &a);
        group_views_free(groups, n);
        if (!ok) {
                if (reply)
                        dbus_message_unref(reply);
                reply_oom(b, r->message);
        } else
                bus_send(b, reply);
        request_free(r);
}

static void execute_get_group(Request *r) {
        ManagerError err = {};
        GroupView g = {};
        char path[128];
        const char *p = path;

        if (manager_get_group(r->bus->manager, r->spec, &g, &err) < 0)
                return request_fail_manager(r, &err);
        group_path(g.group.id, path, sizeof path);
        group_view_done(&g);
        reply_basic(r->bus, r->message, DBUS_TYPE_OBJECT_PATH, &p);
        request_free(r);
}

static void execute_list_leases(Request *r) {
        Bus *b = r->bus;
        DBusMessage *reply = dbus_message_new_method_return(r->message);
        DBusMessageIter it, a, st;
        bool ok = reply != NULL;

        if (ok) {
                dbus_message_iter_init_append(reply, &it);
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(ossssuuau)", &a);
        }
        for (Lease *l = manager_first_lease(b->manager); l && ok; l = l->next) {
                char path[128];
                const char *p = path, *id = l->id, *label = strempty(l->label),
                           *owner = owner_kind_to_string(l->owner_kind),
                           *state = lease_state_to_string(l->state);
                dbus_uint32_t uid = (uint32_t) l->uid,
                              opid = l->owner_kind == OWNER_PROCESS ? (uint32_t) l->owner_pid : 0;

                if (l->state == LEASE_RELEASED)
                        continue;
                lease_path(l->id, path, sizeof path);
                ok = dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_OBJECT_PATH, &p) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &id) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &label) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &owner) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &state) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &uid) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &opid) &&
                     append_groups_array(&st, l->groups, l->n_groups) &&
                     dbus_message_iter_close_container(&a, &st);
        }
        ok = ok && dbus_message_iter_close_container(&it, &a);
        if (!ok) {
                if (reply)
                        dbus_message_unref(reply);
                reply_oom(b, r->message);
        } else
                bus_send(b, reply);
        request_free(r);
}

static int on_acquire_done(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata) {
        Request *r = userdata;
        DBusMessage *reply = NULL;
        DBusMessageIter it, a, st, fa;
        char path[128];
        const char *p = path, *token;
        bool ok;

        if (!r->bus || r->sender_gone) {
                /* Nobody to hand the lease to: the manager releases it. */
                request_free(r);
                return -ECONNRESET;
        }
        if (err) {
                request_fail_manager(r, err);
                return 0;
        }

        lease_path(l->id, path, sizeof path);
        token = l->token;
        reply = dbus_message_new_method_return(r->message);
        ok = reply != NULL;
        if (ok) {
                dbus_message_iter_init_append(reply, &it);
                ok = dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &p) &&
                     dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &token) &&
                     dbus_message_iter_append_basic(&it, DBUS_TYPE_UNIX_FD, &l->container_fd) &&
                     dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(uh)", &a);
        }
        for (size_t i = 0; i < l->n_groups && ok; i++) {
                dbus_uint32_t g = l->groups[i];
                ok = dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &g) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UNIX_FD, &l->group_fds[i]) &&
                     dbus_message_iter_close_container(&a, &st);
        }
        ok = ok && dbus_message_iter_close_container(&it, &a) &&
             dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "h", &fa);
        if (ok && *lease_fd >= 0)
                ok = dbus_message_iter_append_basic(&fa, DBUS_TYPE_UNIX_FD, lease_fd);
        ok = ok && dbus_message_iter_close_container(&it, &fa);
        /* libdbus duplicated the fds: the manager closes its client end of the lease fd. */
        ok = ok && dbus_connection_send(r->bus->connection, reply, NULL);
        if (reply)
                dbus_message_unref(reply);
        if (!ok) {
                log_warning("Failed to hand lease %s to %s: out of memory.", l->id, r->sender);
                request_free(r);
                return -ENOMEM;
        }
        request_free(r);
        return 0;
}

static void execute_acquire(Request *r) {
        ManagerError err = {};
        AcquireRequest req = {
                .specs = (const char *const *) r->specs,
                .n_specs = r->n_specs,
                .label = r->label,
                .owner = r->owner,
                .owner_pidfd = r->owner_pidfd,
                .configure_iommu = r->configure_iommu,
                .kvm = r->kvm,
                .memlock = r->memlock,
                .viommu = r->viommu,
                .guest_ram = r->guest_ram,
        };

        r->caller.authorized = true;
        r->caller.bus_name = r->sender;
        r->acquiring = true;
        if (manager_acquire(r->bus->manager, &r->caller, &req, on_acquire_done, r, &err) < 0) {
                r->acquiring = false;
                request_fail_manager(r, &err);
        }
        /* Else on_acquire_done() answers and frees r. caller.bus_name points into r, which lives that long;
         * the manager copied it. */
}

static void execute_lease_release(Request *r, bool revoke) {
        Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
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

static void execute_release_token(Request *r) {
        ManagerError err = {};

        r->caller.bus_name = r->sender;
        if (manager_release_token(r->bus->manager, &r->caller, r->spec, &err) < 0)
                return request_fail_manager(r, &err);
        bus_send(r->bus, dbus_message_new_method_return(r->message));
        request_free(r);
}

/* The memlock rule for the groups the specs name (memlock_limit_for_groups(): a repeated group counts
 * once), with the devices and the sPAPR window the manager reports for them (as groupctl memlock). */
static void execute_memlock_limit(Request *r) {
        ManagerError err = {};
        MemlockGroup groups[LEASE_GROUPS_MAX];
        MemlockInput in = {};
        dbus_uint64_t limit = 0;
        uint64_t l64 = 0;
        int k;

        for (size_t i = 0; i < r->n_specs && i < LEASE_GROUPS_MAX; i++) {
                _cleanup_(dma_view_done) DmaView d = {};

                if (manager_dma_info(r->bus->manager, r->specs[i], &d, &err) < 0)
                        return request_fail_manager(r, &err);
                groups[i] = (MemlockGroup) {
                        .id = d.group,
                        .n_devices = d.n_devices,
                        .spapr_dma32_window = (d.dma.flags & HOST_IOMMU_SPAPR) ? d.dma.spapr_dma32_size : 0,
                };
        }
        k = memlock_limit_for_groups(r->guest_ram, r->viommu, groups, MIN(r->n_specs, (size_t) LEASE_GROUPS_MAX),
                                     &l64, &in);
        if (k == -ERANGE)
                return request_fail(r, bus_error_name(GD_ERR_INVALID),
                                    "guest_ram %" PRIu64 " x %u devices: the limit does not fit in 64 bits",
                                    r->guest_ram, r->viommu ? in.n_devices : 1);
        if (k < 0)
                return request_fail(r, bus_error_name(GD_ERR_INVALID),
                                    "cannot compute the limit: the groups have no device to assign");
        limit = l64;
        reply_basic(r->bus, r->message, DBUS_TYPE_UINT64, &limit);
        request_free(r);
}

static bool request_is_lease_owner(Request *r) {
        Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
        return l && l->owner_kind == OWNER_BUS_NAME && streq_ptr(l->bus_name, r->sender);
}

static void request_execute(Request *r) {
        switch (r->kind) {
        case REQUEST_LIST_GROUPS:
                return execute_list_groups(r);
        case REQUEST_GET_GROUP:
                return execute_get_group(r);
        case REQUEST_LIST_LEASES:
                return execute_list_leases(r);
        case REQUEST_ACQUIRE:
                return execute_acquire(r);
        case REQUEST_LEASE_RELEASE:
                return execute_lease_release(r, !request_is_lease_owner(r));
        case REQUEST_RELEASE_TOKEN:
                return execute_release_token(r);
        case REQUEST_MEMLOCK_LIMIT:
                return execute_memlock_limit(r);
        }
}

/* ---------------------------------------------------------------- polkit */

static bool append_dict_ss(DBusMessageIter *dict, const char *key, const char *value) {
        DBusMessageIter e;
        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
               dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &value) &&
               dbus_message_iter_close_container(dict, &e);
}

static int request_authorize(Request *r, const char *action);

static void on_polkit_reply(DBusPendingCall *pending, void *userdata) {
        Request *r = userdata;
        DBusMessage *reply = request_steal_reply(r, pending);
        DBusMessageIter it, st;
        dbus_bool_t authorized = FALSE, challenge = FALSE;

        if (!reply)
                return request_fail(r, bus_error_name(GD_ERR_DENIED), "no answer from polkit");
        if (dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_ERROR) {
                DBusError e;
                dbus_error_init(&e);
                (void) dbus_set_error_from_message(&e, reply);
                log_warning("polkit failed to decide for %s: %s: %s", r->sender, e.name, strna(e.message));
                request_fail(r, bus_error_name(GD_ERR_DENIED), "cannot ask polkit (%s): %s", e.name,
                             strna(e.message));
                dbus_error_free(&e);
                dbus_message_unref(reply);
                return;
        }
        if (dbus_message_iter_init(reply, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_STRUCT) {
                dbus_message_iter_recurse(&it, &st);
                if (dbus_message_iter_get_arg_type(&st) == DBUS_TYPE_BOOLEAN) {
                        dbus_message_iter_get_basic(&st, &authorized);
                        if (dbus_message_iter_next(&st) && dbus_message_iter_get_arg_type(&st) == DBUS_TYPE_BOOLEAN)
                                dbus_message_iter_get_basic(&st, &challenge);
                }
        }
        dbus_message_unref(reply);

        if (!authorized) {
                bool interactive = dbus_message_get_allow_interactive_authorization(r->message);
                const char *what = r->memlock_authorized ? " with the option \"memlock\" (" ACTION_MEMLOCK ")" : "";
                log_notice("polkit refused %s to %s (uid %u, pid %i)%s.", dbus_message_get_member(r->message),
                           r->sender, (unsigned) r->caller.uid, (int) r->caller.pid,
                           challenge ? ": authentication required" : "");
                if (challenge && !interactive)
                        return request_fail(r, DBUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                            "%s%s needs authentication: call again allowing interactive "
                                            "authorization", dbus_message_get_member(r->message), what);
                return request_fail(r, bus_error_name(GD_ERR_DENIED), "not authorized by polkit for %s%s",
                                    dbus_message_get_member(r->message), what);
        }
        /* An acquire that raises the owner's RLIMIT_MEMLOCK needs that granted as well. */
        if (r->kind == REQUEST_ACQUIRE && r->memlock && !r->memlock_authorized) {
                int k;

                r->memlock_authorized = true;
                k = request_authorize(r, ACTION_MEMLOCK);
                if (k < 0)
                        request_fail(r, bus_error_name(GD_ERR_DENIED), "cannot ask polkit: %s", strerror(-k));
                return;
        }
        request_execute(r);
}

static int request_authorize(Request *r, const char *action) {
        bool interactive = dbus_message_get_allow_interactive_authorization(r->message);
        DBusMessage *call;
        DBusMessageIter it, subj, dict, e, var, details;
        const char *kind = "system-bus-name", *key = "name", *cancel = "";
        dbus_uint32_t flags = interactive ? 1 : 0;  /* AllowUserInteraction */
        char text[GD_TEXT_MAX];
        bool ok;

        call = dbus_message_new_method_call(POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE, "CheckAuthorization");
        if (!call)
                return -ENOMEM;
        dbus_message_iter_init_append(call, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_STRUCT, NULL, &subj) &&
             dbus_message_iter_append_basic(&subj, DBUS_TYPE_STRING, &kind) &&
             dbus_message_iter_open_container(&subj, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
             dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
             dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key) &&
             dbus_message_iter_open_container(&e, DBUS_TYPE_VARIANT, "s", &var) &&
             dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &r->sender) &&
             dbus_message_iter_close_container(&e, &var) && dbus_message_iter_close_container(&dict, &e) &&
             dbus_message_iter_close_container(&subj, &dict) && dbus_message_iter_close_container(&it, &subj) &&
             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &action) &&
             dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{ss}", &details);

        /* What rules can decide on: the groups, their devices, the label, the owner. */
        if (ok && r->kind == REQUEST_ACQUIRE) {
                text[0] = 0;
                for (size_t i = 0; i < r->preview.n_groups; i++)
                        (void) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%u", i ? "," : "",
                                        r->preview.groups[i]);
                ok = append_dict_ss(&details, "groups", text) &&
                     append_dict_ss(&details, "devices", r->preview.devices) &&
                     append_dict_ss(&details, "label", strempty(r->label)) &&
                     append_dict_ss(&details, "owner",
                                    r->owner == OWNER_PROCESS ? "process" :
                                    r->owner == OWNER_LEASE_FD ? "lease-fd" : "bus-name");
                if (ok && r->memlock) {
                        (void) snprintf(text, sizeof text, "%" PRIu64, r->guest_ram);
                        ok = append_dict_ss(&details, "guest-ram", text) &&
                             append_dict_ss(&details, "viommu", r->viommu ? "true" : "false");
                }
        }
        if (ok && r->kind == REQUEST_LEASE_RELEASE) {
                Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
                text[0] = 0;
                for (size_t i = 0; l && i < l->n_groups; i++)
                        (void) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%u", i ? "," : "",
                                        l->groups[i]);
                ok = append_dict_ss(&details, "lease", r->lease_id) && append_dict_ss(&details, "groups", text) &&
                     append_dict_ss(&details, "label", l ? strempty(l->label) : "");
        }
        ok = ok && dbus_message_iter_close_container(&it, &details) &&
             dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT32, &flags) &&
             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &cancel);
        if (!ok) {
                dbus_message_unref(call);
                return -ENOMEM;
        }
        return request_call(r, call, interactive ? POLKIT_INTERACTIVE_TIMEOUT_MS : POLKIT_TIMEOUT_MS,
                            on_polkit_reply);
}

/* The caller is known: check what needs no authority, then ask polkit. */
static void request_continue(Request *r) {
        ManagerError err = {};
        const char *action = ACTION_LIST;
        int k;

        switch (r->kind) {
        case REQUEST_ACQUIRE:
                /* Refuse at once what no authorization would change (bad specs, busy, never). */
                k = manager_acquire_preview(r->bus->manager, &r->caller, (const char *const *) r->specs,
                                            r->n_specs, &r->preview, &err);
                if (k < 0)
                        return request_fail_manager(r, &err);
                action = r->preview.allowed_by_policy ? ACTION_ACQUIRE : ACTION_ACQUIRE_ANY;
                break;
        case REQUEST_LEASE_RELEASE: {
                Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
                if (!l || !lease_exported(l))
                        return request_fail(r, bus_error_name(GD_ERR_NOT_FOUND), "no lease %s", r->lease_id);
                if (request_is_lease_owner(r))
                        return request_execute(r);
                action = ACTION_RELEASE_OTHER;
                break;
        }
        case REQUEST_RELEASE_TOKEN:
                /* The token is the proof: whoever holds it may end the lease, as on the native socket. The
                 * caller was identified only for the log. */
                return request_execute(r);
        default:
                break;
        }

        /* polkitd always authorizes root for anything, whatever the rules say: asking would only cost a
         * bus round trip (about 1.2 ms, most of a D-Bus Acquire). systemd's services do the same. The
         * policy file's never rules still apply to root, in the manager. */
        if (r->caller.uid == 0)
                return request_execute(r);

        k = request_authorize(r, action);
        if (k < 0)
                request_fail(r, bus_error_name(GD_ERR_DENIED), "cannot ask polkit: %s", strerror(-k));
}

static void on_credentials(DBusPendingCall *pending, void *userdata) {
        Request *r = userdata;
        DBusMessage *reply = request_steal_reply(r, pending);
        DBusMessageIter it, dict, e, var;
        bool have_uid = false;

        if (!reply || dbus_message_get_type(reply) != DBUS_MESSAGE_TYPE_METHOD_RETURN ||
            !dbus_message_iter_init(reply, &it) || dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY) {
                if (reply)
                        dbus_message_unref(reply);
                return request_fail(r, bus_error_name(GD_ERR_INTERNAL), "cannot identify the caller %s",
                                    r->sender);
        }
        dbus_message_iter_recurse(&it, &dict);
        for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&dict)) {
                const char *key;
                dbus_message_iter_recurse(&dict, &e);
                dbus_message_iter_get_basic(&e, &key);
                dbus_message_iter_next(&e);
                dbus_message_iter_recurse(&e, &var);
                if (streq(key, "UnixUserID") && dbus_message_iter_get_arg_type(&var) == DBUS_TYPE_UINT32) {
                        dbus_uint32_t v;
                        dbus_message_iter_get_basic(&var, &v);
                        r->caller.uid = v;
                        have_uid = true;
                } else if (streq(key, "ProcessID") && dbus_message_iter_get_arg_type(&var) == DBUS_TYPE_UINT32) {
                        dbus_uint32_t v;
                        dbus_message_iter_get_basic(&var, &v);
                        r->caller.pid = (pid_t) v;
                } else if (streq(key, "UnixGroupIDs") && dbus_message_iter_get_arg_type(&var) == DBUS_TYPE_ARRAY) {
                        DBusMessageIter a;
                        dbus_message_iter_recurse(&var, &a);
                        for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_UINT32 &&
                               r->caller.n_gids < CALLER_GIDS_MAX;
                             dbus_message_iter_next(&a)) {
                                dbus_uint32_t v;
                                dbus_message_iter_get_basic(&a, &v);
                                r->caller.gids[r->caller.n_gids++] = v;
                        }
                }
        }
        dbus_message_unref(reply);
        if (!have_uid)
                return request_fail(r, bus_error_name(GD_ERR_INTERNAL), "the bus did not say who %s is",
                                    r->sender);
        if (r->caller.n_gids > 0)
                r->caller.gid = r->caller.gids[0];
        if (r->bus)
                caller_cache_add(r->bus, r->sender, &r->caller);
        request_continue(r);
}

static void request_start(Request *r) {
        const CallerCache *known = caller_cache_find(r->bus, r->sender);
        DBusMessage *call;
        int k;

        if (known) {
                r->caller.uid = known->caller.uid;
                r->caller.gid = known->caller.gid;
                r->caller.pid = known->caller.pid;
                memcpy(r->caller.gids, known->caller.gids, sizeof r->caller.gids);
                r->caller.n_gids = known->caller.n_gids;
                return request_continue(r);
        }

        call = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
                                            "GetConnectionCredentials");
        if (!call || !dbus_message_append_args(call, DBUS_TYPE_STRING, &r->sender, DBUS_TYPE_INVALID)) {
                if (call)
                        dbus_message_unref(call);
                return request_fail(r, DBUS_ERROR_NO_MEMORY, "out of memory");
        }
        k = request_call(r, call, -1, on_credentials);
        if (k < 0)
                request_fail(r, bus_error_name(GD_ERR_INTERNAL), "cannot identify the caller: %s", strerror(-k));
}

/* ---------------------------------------------------------------- method calls */

static bool check_signature(Bus *b, DBusMessage *m, const char *sig) {
        if (streq(strempty(dbus_message_get_signature(m)), sig))
                return true;
        reply_error(b, m, DBUS_ERROR_INVALID_ARGS, "%s takes (%s), not (%s)", dbus_message_get_member(m), sig,
                    strempty(dbus_message_get_signature(m)));
        return false;
}

static const char *request_error_name(int k) {
        return k == -EUSERS ? bus_error_name(GD_ERR_LIMIT) : bus_error_name_from_errno(k);
}

/* Parses the specs (as) at it into r; on a bad argument replies and returns false. */
static bool parse_specs(Bus *b, DBusMessage *m, DBusMessageIter *it, Request *r) {
        ManagerError err = {};
        DBusMessageIter a;

        dbus_message_iter_recurse(it, &a);
        for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING; dbus_message_iter_next(&a)) {
                const char *s;
                char **n;

                if (r->n_specs > LEASE_GROUPS_MAX)
                        break; /* one too many is enough for the manager's check below to refuse */
                dbus_message_iter_get_basic(&a, &s);
                if (strlen(s) >= GD_SPEC_MAX) {
                        reply_error(b, m, bus_error_name(GD_ERR_INVALID), "group or device \"%.64s…\" is too long",
                                    s);
                        return false;
                }
                n = reallocarray(r->specs, r->n_specs + 1, sizeof *n);
                if (!n || !(n[r->n_specs] = strdup(s))) {
                        if (n)
                                r->specs = n;
                        reply_oom(b, m);
                        return false;
                }
                r->specs = n;
                r->n_specs++;
        }
        if (manager_check_request_size(r->n_specs, &err) < 0) {
                reply_error(b, m, bus_error_name(wire_error(err.code)), "%s", err.message);
                return false;
        }
        return true;
}

/* Parses Acquire's (as, a{sv}) into r; on a bad argument replies and returns false. */
static bool parse_acquire(Bus *b, DBusMessage *m, Request *r) {
        DBusMessageIter it, dict, e, var;
        const char *owner = "name";
        bool have_pidfd = false, have_guest_ram = false, memlock = false, viommu = false;

        dbus_message_iter_init(m, &it);
        if (!parse_specs(b, m, &it, r))
                return false;
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &dict);
        for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&dict)) {
                const char *key;
                int t;

                dbus_message_iter_recurse(&dict, &e);
                dbus_message_iter_get_basic(&e, &key);
                dbus_message_iter_next(&e);
                dbus_message_iter_recurse(&e, &var);
                t = dbus_message_iter_get_arg_type(&var);

                if (streq(key, "label") && t == DBUS_TYPE_STRING) {
                        const char *s;
                        dbus_message_iter_get_basic(&var, &s);
                        if (strlen(s) >= LEASE_LABEL_MAX) {
                                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                            "option \"label\" is longer than %u bytes", LEASE_LABEL_MAX - 1);
                                return false;
                        }
                        free(r->label);
                        r->label = strdup(s);
                        if (!r->label) {
                                reply_oom(b, m);
                                return false;
                        }
                } else if (streq(key, "owner") && t == DBUS_TYPE_STRING) {
                        dbus_message_iter_get_basic(&var, &owner);
                        if (!streq(owner, "name") && !streq(owner, "process") && !streq(owner, "lease-fd")) {
                                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                            "option \"owner\" is \"%.64s\": want \"name\", \"process\" or "
                                            "\"lease-fd\"", owner);
                                return false;
                        }
                } else if (streq(key, "owner-pidfd") && t == DBUS_TYPE_UNIX_FD) {
                        int fd;
                        dbus_message_iter_get_basic(&var, &fd);  /* a fresh duplicate: ours to close */
                        safe_close(r->owner_pidfd);
                        r->owner_pidfd = fd;
                        have_pidfd = true;
                } else if (streq(key, "configure-iommu") && t == DBUS_TYPE_BOOLEAN) {
                        dbus_bool_t v;
                        dbus_message_iter_get_basic(&var, &v);
                        r->configure_iommu = v;
                } else if (streq(key, "kvm") && t == DBUS_TYPE_BOOLEAN) {
                        dbus_bool_t v;
                        dbus_message_iter_get_basic(&var, &v);
                        r->kvm = v;
                } else if (streq(key, "memlock") && t == DBUS_TYPE_BOOLEAN) {
                        dbus_bool_t v;
                        dbus_message_iter_get_basic(&var, &v);
                        memlock = v;
                } else if (streq(key, "viommu") && t == DBUS_TYPE_BOOLEAN) {
                        dbus_bool_t v;
                        dbus_message_iter_get_basic(&var, &v);
                        viommu = v;
                } else if (streq(key, "guest-ram") && t == DBUS_TYPE_UINT64) {
                        dbus_uint64_t v;
                        uint64_t limit;
                        dbus_message_iter_get_basic(&var, &v);
                        if (v == 0) {
                                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                            "option \"guest-ram\" is 0: give the guest's RAM in bytes");
                                return false;
                        }
                        /* Refused here rather than after the devices were bound: the limit must fit. */
                        if (memlock_limit(&(MemlockInput) { .guest_ram = v, .n_devices = 1 }, &limit) < 0) {
                                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                            "option \"guest-ram\" is %" PRIu64 " bytes: the memlock limit for it "
                                            "does not fit in 64 bits", (uint64_t) v);
                                return false;
                        }
                        r->guest_ram = v;
                        have_guest_ram = true;
                } else if (streq(key, "label") || streq(key, "owner") || streq(key, "owner-pidfd") ||
                           streq(key, "configure-iommu") || streq(key, "kvm") || streq(key, "memlock") ||
                           streq(key, "viommu") || streq(key, "guest-ram")) {
                        reply_error(b, m, bus_error_name(GD_ERR_INVALID), "option \"%s\" has the wrong type '%c'",
                                    key, (char) t);
                        return false;
                } else {
                        reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                    "unknown option \"%.64s\" (known: label, owner, owner-pidfd, configure-iommu, "
                                    "memlock, guest-ram, viommu, kvm)",
                                    key);
                        return false;
                }
        }

        if (streq(owner, "process")) {
                if (!have_pidfd) {
                        reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                    "owner \"process\" needs the option \"owner-pidfd\"");
                        return false;
                }
                r->owner = OWNER_PROCESS;
        } else if (have_pidfd) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"owner-pidfd\" goes with owner \"process\" only");
                return false;
        } else if (streq(owner, "lease-fd"))
                r->owner = OWNER_LEASE_FD;

        if (memlock && !have_guest_ram) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"memlock\" needs the option \"guest-ram\" (the guest's RAM in bytes)");
                return false;
        }
        if (!memlock && have_guest_ram) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"guest-ram\" goes with \"memlock\" only");
                return false;
        }
        if (!memlock && viommu) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"viommu\" only says how to count memlock: it goes with \"memlock\" only");
                return false;
        }
        r->memlock = memlock;
        r->viommu = viommu;
        return true;
}

/* Parses MemlockLimit's (as, t, b) into r; on a bad argument replies and returns false. */
static bool parse_memlock_limit(Bus *b, DBusMessage *m, Request *r) {
        DBusMessageIter it;
        dbus_uint64_t ram;
        dbus_bool_t viommu;

        dbus_message_iter_init(m, &it);
        if (!parse_specs(b, m, &it, r))
                return false;
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &ram);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &viommu);
        if (ram == 0) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID), "guest_ram is 0: give the guest's RAM in bytes");
                return false;
        }
        r->guest_ram = ram;
        r->viommu = viommu;
        return true;
}

static DBusHandlerResult start_request(Bus *b, DBusMessage *m, RequestKind kind, const char *lease_id) {
        Request *r = NULL;
        int k;

        if (!b->accepting) {
                reply_error(b, m, bus_error_name(GD_ERR_SHUTTING_DOWN), "groupd is shutting down");
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        k = request_new(b, m, kind, &r);
        if (k < 0) {
                reply_error(b, m, request_error_name(k), "cannot take the request: %s",
                            k == -EUSERS ? "too many requests pending" : strerror(-k));
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if ((kind == REQUEST_ACQUIRE && !parse_acquire(b, m, r)) ||
            (kind == REQUEST_MEMLOCK_LIMIT && !parse_memlock_limit(b, m, r))) {
                request_free(r);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (kind == REQUEST_GET_GROUP || kind == REQUEST_RELEASE_TOKEN) {
                const char *spec;
                dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &spec, DBUS_TYPE_INVALID);
                r->spec = strdup(spec);
                if (!r->spec) {
                        reply_oom(b, m);
                        request_free(r);
                        return DBUS_HANDLER_RESULT_HANDLED;
                }
        }
        if (lease_id)
                (void) snprintf(r->lease_id, sizeof r->lease_id, "%s", lease_id);
        request_start(r);
        return DBUS_HANDLER_RESULT_HANDLED;
}


/* ---------------------------------------------------------------- properties, introspection */

typedef enum ObjectKind {
        OBJECT_NONE,
        OBJECT_MANAGER,
        OBJECT_GROUPS,     /* /org/groupd1/group: a directory of groups */
        OBJECT_LEASES,
        OBJECT_GROUP,
        OBJECT_LEASE,
} ObjectKind;

typedef struct Object {
        ObjectKind kind;
        GroupView group;   /* OBJECT_GROUP; group_view_done() */
        Lease *lease;      /* OBJECT_LEASE */
} Object;

static ObjectKind object_find(Bus *b, const char *path, Object *ret) {
        const char *rest;

        *ret = (Object) {};
        if (streq(path, BUS_PATH))
                return ret->kind = OBJECT_MANAGER;
        if (streq(path, PATH_GROUPS))
                return ret->kind = OBJECT_GROUPS;
        if (streq(path, PATH_LEASES))
                return ret->kind = OBJECT_LEASES;
        if ((rest = startswith_word(path, PATH_GROUPS "/"))) {
                if (isempty(rest) || strspn(rest, "0123456789") != strlen(rest) || strlen(rest) > 10)
                        return OBJECT_NONE;
                if (manager_get_group(b->manager, rest, &ret->group, NULL) < 0)
                        return OBJECT_NONE;
                return ret->kind = OBJECT_GROUP;
        }
        if ((rest = startswith_word(path, PATH_LEASES "/"))) {
                Lease *l = manager_find_lease(b->manager, rest);
                if (!l || !lease_exported(l))
                        return OBJECT_NONE;
                ret->lease = l;
                return ret->kind = OBJECT_LEASE;
        }
        return OBJECT_NONE;
}

static void object_done(Object *o) {
        group_view_done(&o->group);
}

static const char *object_interface(ObjectKind k) {
        switch (k) {
        case OBJECT_MANAGER:
                return IFACE_MANAGER;
        case OBJECT_GROUP:
                return IFACE_GROUP;
        case OBJECT_LEASE:
                return IFACE_LEASE;
        default:
                return NULL;
        }
}

static void object_props(Bus *b, const Object *o, PropWriter *w) {
        switch (o->kind) {
        case OBJECT_MANAGER:
                return manager_props(b, w);
        case OBJECT_GROUP:
                return group_props(b->manager, &o->group, w);
        case OBJECT_LEASE:
                return lease_props(o->lease, NULL, w);
        default:
                return;
        }
}

static void method_properties(Bus *b, DBusMessage *m, const Object *o) {
        const char *member = dbus_message_get_member(m), *iface = NULL, *name = NULL;
        const char *own = object_interface(o->kind);
        DBusMessage *reply;
        DBusMessageIter it, dict;
        PropWriter w = {};

        if (streq(member, "Get")) {
                if (!check_signature(b, m, "ss"))
                        return;
                dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID);
        } else if (streq(member, "GetAll")) {
                if (!check_signature(b, m, "s"))
                        return;
                dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID);
        } else if (streq(member, "Set")) {
                return reply_error(b, m, DBUS_ERROR_PROPERTY_READ_ONLY, "every property of groupd is read-only");
        } else
                return reply_error(b, m, DBUS_ERROR_UNKNOWN_METHOD, "no method %s in %s", member,
                                   DBUS_INTERFACE_PROPERTIES);

        reply = dbus_message_new_method_return(m);
        if (!reply)
                return reply_oom(b, m);
        dbus_message_iter_init_append(reply, &it);

        if (name) {
                if (!own || (!isempty(iface) && !streq(iface, own))) {
                        dbus_message_unref(reply);
                        return reply_error(b, m, DBUS_ERROR_UNKNOWN_INTERFACE, "%s has no interface %s",
                                           dbus_message_get_path(m), iface);
                }
                w.iter = &it;
                w.only = name;
                object_props(b, o, &w);
                if (!w.found && !w.oom) {
                        dbus_message_unref(reply);
                        return reply_error(b, m, DBUS_ERROR_UNKNOWN_PROPERTY, "%s has no property %s", own, name);
                }
        } else {
                w.iter = &dict;
                w.oom = !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
                /* Other interfaces (Properties itself, Peer, ...) have no properties: an empty dict. */
                if (!w.oom && own && (isempty(iface) || streq(iface, own)))
                        object_props(b, o, &w);
                if (!w.oom)
                        w.oom = !dbus_message_iter_close_container(&it, &dict);
        }
        if (w.oom) {
                dbus_message_unref(reply);
                return reply_oom(b, m);
        }
        bus_send(b, reply);
}

/* Appends the interfaces-and-properties of one lease object: {s a{sv}}. */
static bool append_lease_interfaces(DBusMessageIter *ifaces, const Lease *l) {
        DBusMessageIter e, dict;
        const char *name = IFACE_LEASE;
        PropWriter w = { .iter = &dict };

        if (!dbus_message_iter_open_container(ifaces, DBUS_TYPE_DICT_ENTRY, NULL, &e) ||
            !dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &name) ||
            !dbus_message_iter_open_container(&e, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        lease_props(l, NULL, &w);
        return !w.oom && dbus_message_iter_close_container(&e, &dict) &&
               dbus_message_iter_close_container(ifaces, &e);
}

static void method_get_managed_objects(Bus *b, DBusMessage *m) {
        DBusMessage *reply = dbus_message_new_method_return(m);
        DBusMessageIter it, objs, e, ifaces;
        bool ok = reply != NULL;

        if (ok) {
                dbus_message_iter_init_append(reply, &it);
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{oa{sa{sv}}}", &objs);
        }
        for (Lease *l = manager_first_lease(b->manager); l && ok; l = l->next) {
                char path[128];
                const char *p = path;

                if (!lease_exported(l))
                        continue;
                lease_path(l->id, path, sizeof path);
                ok = dbus_message_iter_open_container(&objs, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
                     dbus_message_iter_append_basic(&e, DBUS_TYPE_OBJECT_PATH, &p) &&
                     dbus_message_iter_open_container(&e, DBUS_TYPE_ARRAY, "{sa{sv}}", &ifaces) &&
                     append_lease_interfaces(&ifaces, l) && dbus_message_iter_close_container(&e, &ifaces) &&
                     dbus_message_iter_close_container(&objs, &e);
        }
        ok = ok && dbus_message_iter_close_container(&it, &objs);
        if (!ok) {
                if (reply)
                        dbus_message_unref(reply);
                return reply_oom(b, m);
        }
        bus_send(b, reply);
}

static const char introspect_standard[] =
        "  <interface name=\"org.freedesktop.DBus.Peer\">\n"
        "    <method name=\"Ping\"/>\n"
        "    <method name=\"GetMachineId\">\n"
        "      <arg type=\"s\" name=\"machine_uuid\" direction=\"out\"/>\n"
        "    </method>\n"
        "  </interface>\n"
        "  <interface name=\"org.freedesktop.DBus.Introspectable\">\n"
        "    <method name=\"Introspect\">\n"
        "      <arg name=\"xml_data\" type=\"s\" direction=\"out\"/>\n"
        "    </method>\n"
        "  </interface>\n"
        "  <interface name=\"org.freedesktop.DBus.Properties\">\n"
        "    <method name=\"Get\">\n"
        "      <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"property_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"value\" type=\"v\" direction=\"out\"/>\n"
        "    </method>\n"
        "    <method name=\"GetAll\">\n"
        "      <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"props\" type=\"a{sv}\" direction=\"out\"/>\n"
        "    </method>\n"
        "    <method name=\"Set\">\n"
        "      <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"property_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"value\" type=\"v\" direction=\"in\"/>\n"
        "    </method>\n"
        "    <signal name=\"PropertiesChanged\">\n"
        "      <arg type=\"s\" name=\"interface_name\"/>\n"
        "      <arg type=\"a{sv}\" name=\"changed_properties\"/>\n"
        "      <arg type=\"as\" name=\"invalidated_properties\"/>\n"
        "    </signal>\n"
        "  </interface>\n";

static const char introspect_object_manager[] =
        "  <interface name=\"org.freedesktop.DBus.ObjectManager\">\n"
        "    <method name=\"GetManagedObjects\">\n"
        "      <arg type=\"a{oa{sa{sv}}}\" name=\"object_paths_interfaces_and_properties\" direction=\"out\"/>\n"
        "    </method>\n"
        "    <signal name=\"InterfacesAdded\">\n"
        "      <arg type=\"o\" name=\"object_path\"/>\n"
        "      <arg type=\"a{sa{sv}}\" name=\"interfaces_and_properties\"/>\n"
        "    </signal>\n"
        "    <signal name=\"InterfacesRemoved\">\n"
        "      <arg type=\"o\" name=\"object_path\"/>\n"
        "      <arg type=\"as\" name=\"interfaces\"/>\n"
        "    </signal>\n"
        "  </interface>\n";

static void method_introspect(Bus *b, DBusMessage *m, const Object *o) {
        _cleanup_free_ char *xml = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&xml, &size);
        if (!f)
                return reply_oom(b, m);
        fputs(DBUS_INTROSPECT_1_0_XML_DOCTYPE_DECL_NODE "<node>\n", f);
        switch (o->kind) {
        case OBJECT_MANAGER:
                fputs(b->xml_manager, f);
                fputs(introspect_object_manager, f);
                fputs(introspect_standard, f);
                fputs("  <node name=\"group\"/>\n  <node name=\"lease\"/>\n", f);
                break;
        case OBJECT_GROUP:
                fputs(b->xml_group, f);
                fputs(introspect_standard, f);
                break;
        case OBJECT_LEASE:
                fputs(b->xml_lease, f);
                fputs(introspect_standard, f);
                break;
        case OBJECT_GROUPS: {
                _cleanup_free_ unsigned *ids = NULL;
                size_t n = 0;
                (void) manager_list_group_ids(b->manager, &ids, &n);
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "  <node name=\"%u\"/>\n", ids[i]);
                break;
        }
        case OBJECT_LEASES:
                for (Lease *l = manager_first_lease(b->manager); l; l = l->next)
                        if (lease_exported(l))
                                fprintf(f, "  <node name=\"%s\"/>\n", l->id);
                break;
        default:
                break;
        }
        fputs("</node>\n", f);
        if (fclose(f) != 0)
                return reply_oom(b, m);

        const char *x = xml;
        reply_basic(b, m, DBUS_TYPE_STRING, &x);
}

static DBusHandlerResult on_message(DBusConnection *c, DBusMessage *m, void *userdata) {
        Bus *b = userdata;
        const char *iface = dbus_message_get_interface(m), *member = dbus_message_get_member(m);
        const char *path = dbus_message_get_path(m);
        DBusHandlerResult result = DBUS_HANDLER_RESULT_HANDLED;
        Object o;

        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;

        if (object_find(b, path, &o) == OBJECT_NONE) {
                reply_error(b, m, DBUS_ERROR_UNKNOWN_OBJECT, "no object %s", path);
                return DBUS_HANDLER_RESULT_HANDLED;
        }

        if (streq_ptr(iface, DBUS_INTERFACE_INTROSPECTABLE) || (!iface && streq(member, "Introspect"))) {
                if (streq(member, "Introspect"))
                        method_introspect(b, m, &o);
                else
                        reply_error(b, m, DBUS_ERROR_UNKNOWN_METHOD, "no method %s", member);
        } else if (streq_ptr(iface, DBUS_INTERFACE_PROPERTIES))
                method_properties(b, m, &o);
        else if (o.kind == OBJECT_MANAGER && streq_ptr(iface, "org.freedesktop.DBus.ObjectManager") &&
                 streq(member, "GetManagedObjects"))
                method_get_managed_objects(b, m);
        else if (o.kind == OBJECT_MANAGER && (!iface || streq(iface, IFACE_MANAGER))) {
                if (streq(member, "ListGroups") && check_signature(b, m, ""))
                        result = start_request(b, m, REQUEST_LIST_GROUPS, NULL);
                else if (streq(member, "GetGroup") && check_signature(b, m, "s"))
                        result = start_request(b, m, REQUEST_GET_GROUP, NULL);
                else if (streq(member, "ListLeases") && check_signature(b, m, ""))
                        result = start_request(b, m, REQUEST_LIST_LEASES, NULL);
                else if (streq(member, "Acquire") && check_signature(b, m, "asa{sv}"))
                        result = start_request(b, m, REQUEST_ACQUIRE, NULL);
                else if (streq(member, "Release") && check_signature(b, m, "s"))
                        result = start_request(b, m, REQUEST_RELEASE_TOKEN, NULL);
                else if (streq(member, "MemlockLimit") && check_signature(b, m, "astb"))
                        result = start_request(b, m, REQUEST_MEMLOCK_LIMIT, NULL);
                else if (!streq(member, "ListGroups") && !streq(member, "GetGroup") &&
                         !streq(member, "ListLeases") && !streq(member, "Acquire") && !streq(member, "Release") &&
                         !streq(member, "MemlockLimit"))
                        reply_error(b, m, DBUS_ERROR_UNKNOWN_METHOD, "no method %s in %s", member, IFACE_MANAGER);
        } else if (o.kind == OBJECT_LEASE && (!iface || streq(iface, IFACE_LEASE)) && streq(member, "Release")) {
                if (check_signature(b, m, ""))
                        result = start_request(b, m, REQUEST_LEASE_RELEASE, o.lease->id);
        } else
                reply_error(b, m, DBUS_ERROR_UNKNOWN_METHOD, "no method %s.%s on %s", strna(iface), member, path);

        object_done(&o);
        return result;
}

/* ---------------------------------------------------------------- the bus's own signals */

static void on_name_vanished(Bus *b, const char *name) {
        Request *next;

        caller_cache_drop(b, name);
        for (Request *r = b->requests; r; r = next) {
                next = r->next;
                if (!streq(r->sender, name))
                        continue;
                if (r->acquiring)
                        r->sender_gone = true;  /* the manager answers later; the lease is then let go */
                else
                        request_free(r);
        }
        manager_bus_name_vanished(b->manager, name);
}

static void on_disconnected(Bus *b) {
        log_error("Lost the connection to the system bus; leases owned by D-Bus callers end.");
        b->accepting = false;
        while (b->requests) {
                Request *r = b->requests;
                if (r->acquiring) {
                        r->sender_gone = true;
                        b->requests = r->next;
                        if (b->requests)
                                b->requests->prev = NULL;
                        b->n_requests--;
                        r->bus = NULL;
                        r->prev = r->next = NULL;
                } else
                        request_free(r);
        }
        /* Every D-Bus name is gone for us: the leases they own end (the manager's one owner-gone path). */
        manager_bus_name_vanished(b->manager, NULL);
}

static DBusHandlerResult on_filter(DBusConnection *c, DBusMessage *m, void *userdata) {
        Bus *b = userdata;

        if (dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged") &&
            streq_ptr(dbus_message_get_sender(m), DBUS_SERVICE_DBUS)) {
                const char *name, *old_owner, *new_owner;
                if (dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old_owner,
                                          DBUS_TYPE_STRING, &new_owner, DBUS_TYPE_INVALID) &&
                    name[0] == ':' && isempty(new_owner))
                        on_name_vanished(b, name);
        } else if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected"))
                on_disconnected(b);
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

/* ---------------------------------------------------------------- manager events → signals */

/* signal: GroupChanged too (a holder or the devices changed), not only PropertiesChanged. */
static void emit_group_changed(Bus *b, unsigned group, bool signal) {
        GroupView g = {};
        char path[128], id[16];
        const char *p = path;
        dbus_uint32_t g32 = group;
        DBusMessage *m;

        group_path(group, path, sizeof path);
        (void) snprintf(id, sizeof id, "%u", group);
        if (manager_get_group(b->manager, id, &g, NULL) >= 0) {
                emit_properties_changed(b, path, IFACE_GROUP, fill_group, b->manager, &g, "DmaNote");
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

static void emit_interfaces(Bus *b, const Lease *l, bool added) {
        DBusMessage *m = new_signal(BUS_PATH, "org.freedesktop.DBus.ObjectManager",
                                    added ? "InterfacesAdded" : "InterfacesRemoved");
        DBusMessageIter it, a;
        char path[128];
        const char *p = path, *iface = IFACE_LEASE;
        bool ok = m != NULL;

        lease_path(l->id, path, sizeof path);
        if (ok) {
                dbus_message_iter_init_append(m, &it);
                ok = dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &p);
        }
        if (ok && added)
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sa{sv}}", &a) &&
                     append_lease_interfaces(&a, l) && dbus_message_iter_close_container(&it, &a);
        else if (ok)
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &a) &&
                     dbus_message_iter_append_basic(&a, DBUS_TYPE_STRING, &iface) &&
                     dbus_message_iter_close_container(&it, &a);
        if (!ok) {
                if (m)
                        dbus_message_unref(m);
                return (void) log_oom();
        }
        bus_send(b, m);
}

static void on_manager_event(Manager *mgr, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                             const char *detail, void *userdata) {
        Bus *b = userdata;
        char path[128];
        const char *p = path;
        DBusMessage *m = NULL;
        DBusMessageIter it;
        bool ok;

        if (!b->registered)
                return;

        switch (kind) {
        case MANAGER_EVENT_LEASE_STARTED: {
                const char *id = l->id, *label = strempty(l->label);

                lease_path(l->id, path, sizeof path);
                emit_interfaces(b, l, true);
                m = new_signal(BUS_PATH, IFACE_MANAGER, "LeaseStarted");
                ok = m != NULL;
                if (ok) {
                        dbus_message_iter_init_append(m, &it);
                        ok = dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &p) &&
                             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &id) &&
                             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &label) &&
                             append_groups_array(&it, l->groups, l->n_groups);
                }
                if (!ok && m) {
                        dbus_message_unref(m);
                        m = NULL;
                }
                bus_send(b, m);
                for (size_t i = 0; i < l->n_groups; i++)
                        emit_group_changed(b, l->groups[i], true);
                emit_properties_changed(b, BUS_PATH, IFACE_MANAGER, fill_manager_nleases, NULL,
                                        (const void *) (uintptr_t) manager_n_leases(mgr), NULL);
                break;
        }
        case MANAGER_EVENT_LEASE_RELEASING:
                lease_path(l->id, path, sizeof path);
                emit_properties_changed(b, path, IFACE_LEASE, fill_lease_state, NULL, "releasing", NULL);
                /* Its groups' DMA facts are the container's no more. */
                for (size_t i = 0; i < l->n_groups; i++)
                        emit_group_changed(b, l->groups[i], false);
                break;
        case MANAGER_EVENT_LEASE_ENDED: {
                const char *reason = lease_reason_to_string(l->reason), *d = strempty(detail);

                lease_path(l->id, path, sizeof path);
                m = new_signal(BUS_PATH, IFACE_MANAGER, "LeaseEnded");
                ok = m != NULL;
                if (ok) {
                        dbus_message_iter_init_append(m, &it);
                        ok = dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &p) &&
                             append_groups_array(&it, l->groups, l->n_groups) &&
                             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &reason) &&
                             dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &d);
                }
                if (!ok && m) {
                        dbus_message_unref(m);
                        m = NULL;
                }
                bus_send(b, m);
                emit_interfaces(b, l, false);
                for (size_t i = 0; i < l->n_groups; i++)
                        emit_group_changed(b, l->groups[i], true);
                /* The manager has dropped the lease already: the count is the one that stays. */
                emit_properties_changed(b, BUS_PATH, IFACE_MANAGER, fill_manager_nleases, NULL,
                                        (const void *) (uintptr_t) manager_n_leases(mgr), NULL);
                break;
        }
        case MANAGER_EVENT_GROUP_CHANGED:
                emit_group_changed(b, group, true);
                break;
        default:
                break;
        }
}

/* ---------------------------------------------------------------- set-up */

/* The <interface name="NAME"> ... </interface> block of the embedded XML, with its indentation and the
 * line break after it: what the daemon serves is the file's text. */
static char *xml_interface_block(const char *name) {
        _cleanup_free_ char *open = NULL;
        const char *start, *end;

        if (asprintf(&open, "  <interface name=\"%s\">", name) < 0)
                return NULL;
        start = strstr(bus_interface_xml, open);
        if (!start)
                return NULL;
        end = strstr(start, "  </interface>\n");
        if (!end)
                return NULL;
        end += strlen("  </interface>\n");
        return strndup(start, (size_t) (end - start));
}

static int bus_error_to_errno(const DBusError *e) {
        if (dbus_error_has_name(e, DBUS_ERROR_NO_MEMORY))
                return -ENOMEM;
        if (dbus_error_has_name(e, DBUS_ERROR_FILE_NOT_FOUND) || dbus_error_has_name(e, DBUS_ERROR_NO_SERVER))
                return -ENOENT;
        if (dbus_error_has_name(e, DBUS_ERROR_ACCESS_DENIED))
                return -EACCES;
        return -ECONNREFUSED;
}

int bus_new(sd_event *e, Manager *m, Bus **ret) {
        static const DBusObjectPathVTable vtable = { .message_function = on_message };
        _cleanup_(bus_freep) Bus *b = NULL;
        DBusError error;
        int k;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(e);
        b->manager = m;
        b->xml_manager = xml_interface_block(IFACE_MANAGER);
        b->xml_group = xml_interface_block(IFACE_GROUP);
        b->xml_lease = xml_interface_block(IFACE_LEASE);
        if (!b->xml_manager || !b->xml_group || !b->xml_lease)
                return -ENOMEM;

        /* Connecting and taking the name block, once, at start-up, before anything is served. */
        dbus_error_init(&error);
        b->connection = dbus_bus_get_private(DBUS_BUS_SYSTEM, &error);
        if (!b->connection) {
                k = bus_error_to_errno(&error);
                log_debug("Cannot connect to the system bus: %s", strna(error.message));
                dbus_error_free(&error);
                return k;
        }
        dbus_connection_set_exit_on_disconnect(b->connection, FALSE);

        k = dbus_bus_request_name(b->connection, BUS_NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE, &error);
        if (k < 0) {
                log_error("Cannot own %s on the system bus: %s", BUS_NAME, strna(error.message));
                k = bus_error_to_errno(&error);
                dbus_error_free(&error);
                return k == -ECONNREFUSED ? -EACCES : k;
        }
        if (k != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
                log_error("%s is owned by another process on the system bus.", BUS_NAME);
                return -EEXIST;
        }

        /* Every unique name that leaves the bus: owners of leases and callers still waiting. */
        dbus_bus_add_match(b->connection,
                           "type='signal',sender='" DBUS_SERVICE_DBUS "',interface='" DBUS_INTERFACE_DBUS "',"
                           "member='NameOwnerChanged',arg2=''",
                           &error);
        if (dbus_error_is_set(&error)) {
                log_error("Cannot watch names on the system bus: %s", strna(error.message));
                k = bus_error_to_errno(&error);
                dbus_error_free(&error);
                return k;
        }

        if (!dbus_connection_add_filter(b->connection, on_filter, b, NULL) ||
            !dbus_connection_register_fallback(b->connection, BUS_PATH, &vtable, b))
                return -ENOMEM;
        b->registered = true;

        k = bus_glue_attach(b->connection, e, &b->glue);
        if (k < 0)
                return k;
        k = manager_add_listener(m, on_manager_event, b);
        if (k < 0)
                return k;
        b->accepting = true;

        *ret = TAKE_PTR(b);
        return 0;
}

void bus_stop_accepting(Bus *b) {
        if (b)
                b->accepting = false;
}

Bus *bus_free(Bus *b) {
        if (!b)
                return NULL;
        if (b->manager)
                manager_remove_listener(b->manager, on_manager_event, b);
        while (b->callers)
                caller_cache_drop(b, b->callers->name);
        /* Requests the manager still works on are detached: its answer frees them. */
        while (b->requests) {
                Request *r = b->requests;
                if (r->acquiring) {
                        b->requests = r->next;
                        if (b->requests)
                                b->requests->prev = NULL;
                        b->n_requests--;
                        r->bus = NULL;
                        r->prev = r->next = NULL;
                } else
                        request_free(r);
        }
        if (b->connection) {
                if (b->registered) {
                        dbus_connection_remove_filter(b->connection, on_filter, b);
                        (void) dbus_connection_unregister_object_path(b->connection, BUS_PATH);
                }
                dbus_connection_flush(b->connection);
                bus_glue_free(b->glue);
                dbus_connection_close(b->connection);
                dbus_connection_unref(b->connection);
        }
        free(b->xml_manager);
        free(b->xml_group);
        free(b->xml_lease);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}
