/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus edge's room: the connection to the system bus, the object registry (an object found by its
 * path for the length of a call), the one method dispatcher, Introspect (proto/org.groupd1.xml served
 * verbatim), Properties, ObjectManager, the names that leave the bus, the request lifecycle, and the
 * routing of the core's events to the objects' signals. */
#include <dbus/dbus.h>
#include <stdio.h>

#include "bus-caller.h"
#include "bus-group.h"
#include "bus-internal.h"
#include "bus-lease.h"
#include "bus-manager.h"
#include "log.h"
#include "wire-view.h"
#include "org.groupd1-xml.h"   /* bus_interface_xml[], generated from proto/org.groupd1.xml */

#define REQUESTS_MAX 1024
#define REQUESTS_PER_SENDER_MAX 32
#define INTERFACE_OBJECT_MANAGER "org.freedesktop.DBus.ObjectManager"

/* ---------------------------------------------------------------- objects */

void lease_path(const char *id, char *buf, size_t size) {
        assert(id);
        assert(buf);
        (void) snprintf(buf, size, PATH_LEASES "/%s", id);
}

void group_path(unsigned id, char *buf, size_t size) {
        assert(buf);
        (void) snprintf(buf, size, PATH_GROUPS "/%u", id);
}

bool lease_exported(const Lease *l) {
        assert(l);
        return l->state == LEASE_ACTIVE || l->state == LEASE_RELEASING;
}

/* ---------------------------------------------------------------- sending */

void bus_send(Bus *b, DBusMessage *m) {
        assert(b);
        if (!m)
                return;
        if (!dbus_connection_send(b->connection, m, NULL))
                log_oom();
        dbus_message_unref(m);
}

void reply_error(Bus *b, DBusMessage *call, const char *name, const char *fmt, ...) {
        char text[MANAGER_TEXT_MAX];
        va_list ap;

        assert(b);
        assert(call);
        assert(name);
        if (dbus_message_get_no_reply(call))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        bus_send(b, dbus_message_new_error(call, name, text));
}

void reply_oom(Bus *b, DBusMessage *call) {
        reply_error(b, call, DBUS_ERROR_NO_MEMORY, "out of memory");
}

void reply_basic(Bus *b, DBusMessage *call, int type, const void *value) {
        DBusMessage *reply = dbus_message_new_method_return(call);

        if (!reply || !dbus_message_append_args(reply, type, value, DBUS_TYPE_INVALID)) {
                if (reply)
                        dbus_message_unref(reply);
                return reply_oom(b, call);
        }
        bus_send(b, reply);
}

DBusMessage *new_signal(const char *path, const char *iface, const char *member) {
        return dbus_message_new_signal(path, iface, member);
}

void emit_properties_changed(Bus *b, const char *path, const char *iface,
                             void (*fill)(PropWriter *w, const void *a, const void *c), const void *a,
                             const void *c, const char *invalidated) {
        emit_properties_changed_subset(b, path, iface, fill, a, c, invalidated, NULL);
}

void emit_properties_changed_subset(Bus *b, const char *path, const char *iface,
                                    void (*fill)(PropWriter *w, const void *a, const void *c), const void *a,
                                    const void *c, const char *invalidated, const char *const *subset) {
        DBusMessage *m;
        DBusMessageIter it, dict, inval;
        PropWriter w = { .subset = subset };

        assert(b);
        assert(path);
        assert(iface);
        assert(fill);
        m = new_signal(path, DBUS_INTERFACE_PROPERTIES, "PropertiesChanged");
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

/* ---------------------------------------------------------------- requests */

Request *request_free(Request *r) {
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

static int request_add(Bus *b, DBusMessage *call, RequestKind kind, void (*execute)(Request *r), Request **ret) {
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
        r->execute = execute;
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

int request_new(Bus *b, DBusMessage *call, RequestKind kind, void (*execute)(Request *r), Request **ret) {
        int k;

        assert(b);
        assert(call);
        assert(kind >= 0 && kind < _REQUEST_KIND_MAX);
        assert(execute);
        assert(ret);

        if (!b->accepting) {
                reply_error(b, call, bus_error_name(GD_ERR_SHUTTING_DOWN), "groupd is shutting down");
                return -ESHUTDOWN;
        }
        k = request_add(b, call, kind, execute, ret);
        if (k < 0)
                reply_error(b, call, bus_error_name_from_errno(k), "cannot take the request: %s",
                            k == -EUSERS ? "too many requests pending" : strerror(-k));
        return k;
}

void request_fail(Request *r, const char *name, const char *fmt, ...) {
        char text[MANAGER_TEXT_MAX];
        va_list ap;

        assert(r);
        assert(name);
        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (r->bus && !r->sender_gone)
                reply_error(r->bus, r->message, name, "%s", text);
        request_free(r);
}

void request_fail_manager(Request *r, const ManagerError *err) {
        assert(err);
        request_fail(r, bus_error_name(wire_error(err->code)), "%s", err->message);
}

int request_call(Request *r, DBusMessage *call, int timeout_ms, DBusPendingCallNotifyFunction cb) {
        DBusPendingCall *pending = NULL;

        assert(r);
        assert(r->bus);
        assert(!r->pending);
        assert(call);
        assert(cb);
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

DBusMessage *request_steal_reply(Request *r, DBusPendingCall *pending) {
        DBusMessage *reply;

        assert(r);
        assert(r->pending == pending);
        reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(r->pending);
        r->pending = NULL;
        return reply;
}

/* The connection is gone or going: the requests that wait for the bus or polkit are dropped; those the
 * manager still works on are detached from the bus, and its answer frees them (there is nobody left to
 * hand a lease to: it is let go). */
static void requests_drop_all(Bus *b) {
        assert(b);
        while (b->requests) {
                Request *r = b->requests;

                if (!r->acquiring) {
                        request_free(r);
                        continue;
                }
                r->sender_gone = true;
                b->requests = r->next;
                if (b->requests)
                        b->requests->prev = NULL;
                b->n_requests--;
                r->bus = NULL;
                r->prev = r->next = NULL;
        }
        assert(b->n_requests == 0);
}

void request_execute(Request *r) {
        assert(r);
        assert(r->bus);
        assert(r->execute);
        r->execute(r);
}

/* ---------------------------------------------------------------- the object registry */

/* Finds the object path names, for the length of one call: BUS_OBJECT_NONE when there is none. */
static BusObjectKind object_find(Bus *b, const char *path, BusObject *ret) {
        const char *rest;

        assert(b);
        assert(path);
        assert(ret);

        *ret = (BusObject) {};
        if (streq(path, BUS_PATH)) {
                ret->vtable = &bus_manager_vtable;
                return ret->kind = BUS_OBJECT_MANAGER;
        }
        if (streq(path, PATH_GROUPS))
                return ret->kind = BUS_OBJECT_GROUPS;
        if (streq(path, PATH_LEASES))
                return ret->kind = BUS_OBJECT_LEASES;
        if ((rest = startswith_word(path, PATH_GROUPS "/"))) {
                if (isempty(rest) || strspn(rest, "0123456789") != strlen(rest) || strlen(rest) > 10)
                        return BUS_OBJECT_NONE;
                if (manager_get_group(b->manager, rest, &ret->group, NULL) < 0)
                        return BUS_OBJECT_NONE;
                ret->vtable = &bus_group_vtable;
                return ret->kind = BUS_OBJECT_GROUP;
        }
        if ((rest = startswith_word(path, PATH_LEASES "/"))) {
                Lease *l = manager_find_lease(b->manager, rest);
                if (!l || !lease_exported(l))
                        return BUS_OBJECT_NONE;
                ret->lease = l;
                ret->vtable = &bus_lease_vtable;
                return ret->kind = BUS_OBJECT_LEASE;
        }
        return BUS_OBJECT_NONE;
}

static void object_done(BusObject *o) {
        group_view_done(&o->group);
}

/* ---------------------------------------------------------------- org.freedesktop.DBus.Properties */

static void method_get(Bus *b, DBusMessage *m, const BusObject *o) {
        const char *iface = NULL, *name = NULL, *own = o->vtable ? o->vtable->interface : NULL;
        DBusMessage *reply;
        DBusMessageIter it;
        PropWriter w = {};

        assert(b);
        assert(m);
        dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID);
        if (!own || (!isempty(iface) && !streq(iface, own)))
                return reply_error(b, m, DBUS_ERROR_UNKNOWN_INTERFACE, "%s has no interface %s",
                                   dbus_message_get_path(m), iface);

        reply = dbus_message_new_method_return(m);
        if (!reply)
                return reply_oom(b, m);
        dbus_message_iter_init_append(reply, &it);
        w.iter = &it;
        w.only = name;
        o->vtable->properties(b, o, &w);
        if (!w.found && !w.oom) {
                dbus_message_unref(reply);
                return reply_error(b, m, DBUS_ERROR_UNKNOWN_PROPERTY, "%s has no property %s", own, name);
        }
        if (w.oom) {
                dbus_message_unref(reply);
                return reply_oom(b, m);
        }
        bus_send(b, reply);
}

static void method_get_all(Bus *b, DBusMessage *m, const BusObject *o) {
        const char *iface = NULL, *own = o->vtable ? o->vtable->interface : NULL;
        DBusMessage *reply;
        DBusMessageIter it, dict;
        PropWriter w = { .iter = &dict };

        assert(b);
        assert(m);
        dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID);
        reply = dbus_message_new_method_return(m);
        if (!reply)
                return reply_oom(b, m);
        dbus_message_iter_init_append(reply, &it);
        w.oom = !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        /* Other interfaces (Properties itself, Peer, ...) have no properties: an empty dict. */
        if (!w.oom && own && (isempty(iface) || streq(iface, own)))
                o->vtable->properties(b, o, &w);
        if (!w.oom)
                w.oom = !dbus_message_iter_close_container(&it, &dict);
        if (w.oom) {
                dbus_message_unref(reply);
                return reply_oom(b, m);
        }
        bus_send(b, reply);
}

static void method_set(Bus *b, DBusMessage *m, const BusObject *o) {
        reply_error(b, m, DBUS_ERROR_PROPERTY_READ_ONLY, "every property of groupd is read-only");
}

/* ---------------------------------------------------------------- org.freedesktop.DBus.ObjectManager */

/* Appends the interfaces-and-properties of one lease object: {s a{sv}}. */
static bool append_lease_interfaces(Bus *b, DBusMessageIter *ifaces, const Lease *l) {
        const BusObject o = { .kind = BUS_OBJECT_LEASE, .vtable = &bus_lease_vtable, .lease = l };
        DBusMessageIter e, dict;
        const char *name = o.vtable->interface;
        PropWriter w = { .iter = &dict };

        assert(b);
        assert(l);
        if (!dbus_message_iter_open_container(ifaces, DBUS_TYPE_DICT_ENTRY, NULL, &e) ||
            !dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &name) ||
            !dbus_message_iter_open_container(&e, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        o.vtable->properties(b, &o, &w);
        return !w.oom && dbus_message_iter_close_container(&e, &dict) &&
               dbus_message_iter_close_container(ifaces, &e);
}

static void method_get_managed_objects(Bus *b, DBusMessage *m, const BusObject *o) {
        DBusMessage *reply = dbus_message_new_method_return(m);
        DBusMessageIter it, objs, e, ifaces;
        bool ok = reply != NULL;

        assert(b);
        assert(o->kind == BUS_OBJECT_MANAGER);
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
                     append_lease_interfaces(b, &ifaces, l) && dbus_message_iter_close_container(&e, &ifaces) &&
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

/* ---------------------------------------------------------------- org.freedesktop.DBus.Introspectable */

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

static void method_introspect(Bus *b, DBusMessage *m, const BusObject *o) {
        _cleanup_free_ char *xml = NULL;
        size_t size = 0;
        FILE *f;

        assert(b);
        assert(o);
        f = open_memstream(&xml, &size);
        if (!f)
                return reply_oom(b, m);
        fputs(DBUS_INTROSPECT_1_0_XML_DOCTYPE_DECL_NODE "<node>\n", f);
        switch (o->kind) {
        case BUS_OBJECT_MANAGER:
                fputs(b->xml_manager, f);
                fputs(introspect_object_manager, f);
                fputs(introspect_standard, f);
                fputs("  <node name=\"group\"/>\n  <node name=\"lease\"/>\n", f);
                break;
        case BUS_OBJECT_GROUP:
                fputs(b->xml_group, f);
                fputs(introspect_standard, f);
                break;
        case BUS_OBJECT_LEASE:
                fputs(b->xml_lease, f);
                fputs(introspect_standard, f);
                break;
        case BUS_OBJECT_GROUPS: {
                _cleanup_free_ unsigned *ids = NULL;
                size_t n = 0;
                (void) manager_list_group_ids(b->manager, &ids, &n);
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "  <node name=\"%u\"/>\n", ids[i]);
                break;
        }
        case BUS_OBJECT_LEASES:
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

/* ---------------------------------------------------------------- dispatching */

static const BusMethod introspectable_methods[] = {
        { "Introspect", "", method_introspect },
        {}
};

static const BusMethod properties_methods[] = {
        { "Get", "ss", method_get },
        { "GetAll", "s", method_get_all },
        { "Set", "ssv", method_set },
        {}
};

static const BusMethod object_manager_methods[] = {
        { "GetManagedObjects", "", method_get_managed_objects },
        {}
};

static const BusVTable introspectable_vtable = { DBUS_INTERFACE_INTROSPECTABLE, introspectable_methods, NULL };
static const BusVTable properties_vtable = { DBUS_INTERFACE_PROPERTIES, properties_methods, NULL };
static const BusVTable object_manager_vtable = { INTERFACE_OBJECT_MANAGER, object_manager_methods, NULL };

#define OBJECT_VTABLES_MAX 4

/* The interfaces of o, its own first. (org.freedesktop.DBus.Peer is libdbus's own.) */
static size_t object_vtables(const BusObject *o, const BusVTable *ret[static OBJECT_VTABLES_MAX]) {
        size_t n = 0;

        assert(o);
        if (o->vtable)
                ret[n++] = o->vtable;
        if (o->kind == BUS_OBJECT_MANAGER)
                ret[n++] = &object_manager_vtable;
        ret[n++] = &introspectable_vtable;
        ret[n++] = &properties_vtable;
        assert(n <= OBJECT_VTABLES_MAX);
        return n;
}

static bool check_signature(Bus *b, DBusMessage *m, const char *sig) {
        if (streq(strempty(dbus_message_get_signature(m)), sig))
                return true;
        reply_error(b, m, DBUS_ERROR_INVALID_ARGS, "%s takes (%s), not (%s)", dbus_message_get_member(m), sig,
                    strempty(dbus_message_get_signature(m)));
        return false;
}

/* The one dispatcher: the method by interface and name (a call without an interface takes the first
 * interface of the object that has the name), then its arguments' signature, then its handler. */
static void object_dispatch(Bus *b, DBusMessage *m, const BusObject *o) {
        const char *iface = dbus_message_get_interface(m), *member = dbus_message_get_member(m);
        const BusVTable *vtables[OBJECT_VTABLES_MAX];
        size_t n;

        assert(b);
        assert(m);
        assert(member);
        n = object_vtables(o, vtables);
        for (size_t i = 0; i < n; i++) {
                if (iface && !streq(iface, vtables[i]->interface))
                        continue;
                for (const BusMethod *x = vtables[i]->methods; x->name; x++) {
                        if (!streq(x->name, member))
                                continue;
                        if (check_signature(b, m, x->in_signature))
                                x->handler(b, m, o);
                        return;
                }
                if (iface)
                        return reply_error(b, m, DBUS_ERROR_UNKNOWN_METHOD, "no method %s in %s", member, iface);
        }
        reply_error(b, m, DBUS_ERROR_UNKNOWN_METHOD, "no method %s.%s on %s", strna(iface), member,
                    dbus_message_get_path(m));
}

static DBusHandlerResult on_message(DBusConnection *c, DBusMessage *m, void *userdata) {
        Bus *b = userdata;
        const char *path = dbus_message_get_path(m);
        BusObject o;

        assert(b);
        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;

        if (object_find(b, path, &o) == BUS_OBJECT_NONE) {
                reply_error(b, m, DBUS_ERROR_UNKNOWN_OBJECT, "no object %s", path);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        object_dispatch(b, m, &o);
        object_done(&o);
        return DBUS_HANDLER_RESULT_HANDLED;
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
        requests_drop_all(b);
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

/* ObjectManager's InterfacesAdded / InterfacesRemoved for a lease's object. */
static void emit_interfaces(Bus *b, const Lease *l, bool added) {
        DBusMessage *m = new_signal(BUS_PATH, INTERFACE_OBJECT_MANAGER,
                                    added ? "InterfacesAdded" : "InterfacesRemoved");
        DBusMessageIter it, a;
        char path[128];
        const char *p = path, *iface = IFACE_LEASE;
        bool ok = m != NULL;

        assert(b);
        assert(l);
        lease_path(l->id, path, sizeof path);
        if (ok) {
                dbus_message_iter_init_append(m, &it);
                ok = dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &p);
        }
        if (ok && added)
                ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sa{sv}}", &a) &&
                     append_lease_interfaces(b, &a, l) && dbus_message_iter_close_container(&it, &a);
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

/* The core's events as signals, in the order a watcher can rely on: a lease's object appears before
 * LeaseStarted names it, and goes after LeaseEnded. */
static void on_manager_event(Manager *mgr, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                             const char *detail, void *userdata) {
        Bus *b = userdata;

        assert(b);
        if (!b->registered)
                return;

        switch (kind) {
        case MANAGER_EVENT_LEASE_STARTED:
                assert(l);
                emit_interfaces(b, l, true);
                bus_manager_emit_lease_started(b, l);
                for (size_t i = 0; i < l->n_groups; i++)
                        bus_group_emit_changed(b, l->groups[i], GROUP_CHANGE_HOLDER);
                bus_manager_emit_n_leases(b);
                break;
        case MANAGER_EVENT_LEASE_RELEASING:
                assert(l);
                bus_lease_emit_state(b, l, "releasing");
                /* Its groups' DMA facts are the container's no more (nothing else of them changed yet). */
                for (size_t i = 0; i < l->n_groups; i++)
                        bus_group_emit_changed(b, l->groups[i], GROUP_CHANGE_DMA);
                break;
        case MANAGER_EVENT_LEASE_ENDED:
                assert(l);
                bus_manager_emit_lease_ended(b, l, detail);
                emit_interfaces(b, l, false);
                for (size_t i = 0; i < l->n_groups; i++)
                        bus_group_emit_changed(b, l->groups[i], GROUP_CHANGE_HOLDER);
                /* The manager has dropped the lease already: the count is the one that stays. */
                bus_manager_emit_n_leases(b);
                break;
        case MANAGER_EVENT_GROUP_CHANGED:
                bus_group_emit_changed(b, group, GROUP_CHANGE_ANY);
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

int bus_new(sd_event *e, Manager *m, Bus **ret) {
        static const DBusObjectPathVTable vtable = { .message_function = on_message };
        _cleanup_(bus_freep) Bus *b = NULL;
        DBusError error;
        int k;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->n_leases_sent = UINT32_MAX;
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
        caller_cache_clear(b);
        requests_drop_all(b);
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
