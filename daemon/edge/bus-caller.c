/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who a caller is: its uid, gid, pid and groups from the bus's GetConnectionCredentials, asked once per
 * unique name and kept until the name leaves the bus. */
#include "bus-caller.h"
#include "bus-polkit.h"
#include "log.h"

#define CALLER_CACHE_MAX 1024

struct CallerCache {
        char *name;
        Caller caller;   /* uid, gid, pid, gids */
        CallerCache *next;
};

void caller_cache_drop(Bus *b, const char *name) {
        assert(b);
        assert(name);
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

void caller_cache_clear(Bus *b) {
        assert(b);
        while (b->callers)
                caller_cache_drop(b, b->callers->name);
        assert(b->n_callers == 0);
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
        caller_read_cgroup(&r->caller);  /* for unit= and cgroup= rules, as for native callers */
        if (r->bus)
                caller_cache_add(r->bus, r->sender, &r->caller);
        request_authorize(r);
}

void request_start(Request *r) {
        const CallerCache *known;
        DBusMessage *call;
        int k;

        assert(r);
        assert(r->bus);
        assert(r->execute);
        known = caller_cache_find(r->bus, r->sender);
        if (known) {
                r->caller.uid = known->caller.uid;
                r->caller.gid = known->caller.gid;
                r->caller.pid = known->caller.pid;
                memcpy(r->caller.gids, known->caller.gids, sizeof r->caller.gids);
                r->caller.n_gids = known->caller.n_gids;
                return request_authorize(r);
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
