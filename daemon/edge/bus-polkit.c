/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* All authorization of the D-Bus edge, as bolt's bolt-bouncer.c keeps it: which polkit action each request
 * needs, the root shortcut, the details the rules can decide on, and the asynchronous CheckAuthorization
 * (the request waits, the loop does not). */
#include <inttypes.h>
#include <stdio.h>

#include "bus-lease.h"
#include "bus-polkit.h"
#include "log.h"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"

#define ACTION_LIST BUS_NAME ".list"
#define ACTION_ACQUIRE BUS_NAME ".acquire"
#define ACTION_ACQUIRE_ANY BUS_NAME ".acquire-any"
#define ACTION_RELEASE_OTHER BUS_NAME ".release-other"
#define ACTION_MEMLOCK BUS_NAME ".memlock"
#define ACTION_ACQUIRE_FOR_OTHER BUS_NAME ".acquire-for-other"
#define ACTION_REVOKE_FORCE BUS_NAME ".revoke-force"

#define POLKIT_TIMEOUT_MS (25 * 1000)
#define POLKIT_INTERACTIVE_TIMEOUT_MS (5 * 60 * 1000)

/* The action each request needs, in one place. NULL: none, the Manager's Release(token): the token is
 * the proof, as on the native socket, and the caller is identified only for the log. Two decide further
 * in request_authorize(): Acquire needs acquire-any instead when the policy file does not give the groups
 * to the caller, and memlock as well with that option; a lease's own bus-name owner needs nothing to
 * release it. */
static const char *const request_actions[_REQUEST_KIND_MAX] = {
        [REQUEST_LIST_GROUPS] = ACTION_LIST,
        [REQUEST_GET_GROUP] = ACTION_LIST,
        [REQUEST_LIST_LEASES] = ACTION_LIST,
        [REQUEST_MEMLOCK_LIMIT] = ACTION_LIST,
        [REQUEST_ACQUIRE] = ACTION_ACQUIRE,
        [REQUEST_LEASE_RELEASE] = ACTION_RELEASE_OTHER,
        [REQUEST_RELEASE_TOKEN] = NULL,
        [REQUEST_LEASE_REVOKE] = ACTION_RELEASE_OTHER,
};

/* ---------------------------------------------------------------- the details */

static bool append_dict_ss(DBusMessageIter *dict, const char *key, const char *value) {
        DBusMessageIter e;
        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
               dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &value) &&
               dbus_message_iter_close_container(dict, &e);
}

/* Acquire: the groups, their devices, the label, the owner; with memlock the guest's RAM and viommu. */
static bool append_details_acquire(Request *r, DBusMessageIter *details) {
        char text[GD_TEXT_MAX] = "";
        bool ok;

        assert(r->kind == REQUEST_ACQUIRE);
        for (size_t i = 0; i < r->preview.n_groups; i++)
                (void) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%u", i ? "," : "",
                                r->preview.groups[i]);
        ok = append_dict_ss(details, "groups", text) && append_dict_ss(details, "devices", r->preview.devices) &&
             append_dict_ss(details, "label", strempty(r->label)) &&
             append_dict_ss(details, "owner",
                            r->owner == OWNER_PROCESS ? "process" :
                            r->owner == OWNER_LEASE_FD ? "lease-fd" : "bus-name") &&
             append_dict_ss(details, "delivery", lease_delivery_to_string(r->delivery));
        if (ok && r->memlock) {
                (void) snprintf(text, sizeof text, "%" PRIu64, r->guest_ram);
                ok = append_dict_ss(details, "guest-ram", text) &&
                     append_dict_ss(details, "viommu", r->viommu ? "true" : "false");
        }
        if (ok && r->owner_pid > 0) {
                /* A process that is not the caller's own: who it is, for acquire-for-other's rules. */
                (void) snprintf(text, sizeof text, "%i", (int) r->owner_pid);
                ok = append_dict_ss(details, "owner-pid", text);
                (void) snprintf(text, sizeof text, "%u", (unsigned) r->owner_uid);
                ok = ok && append_dict_ss(details, "owner-uid", text);
        }
        return ok;
}

/* A lease's Release by another: the lease, its groups, its label. */
static bool append_details_lease_release(Request *r, DBusMessageIter *details) {
        Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
        char text[GD_TEXT_MAX] = "";

        assert(r->kind == REQUEST_LEASE_RELEASE || r->kind == REQUEST_LEASE_REVOKE);
        for (size_t i = 0; l && i < l->n_groups; i++)
                (void) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%u", i ? "," : "", l->groups[i]);
        return append_dict_ss(details, "lease", r->lease_id) && append_dict_ss(details, "groups", text) &&
               append_dict_ss(details, "label", l ? strempty(l->label) : "") &&
               (r->kind != REQUEST_LEASE_REVOKE || append_dict_ss(details, "force", r->force ? "true" : "false"));
}

/* ---------------------------------------------------------------- CheckAuthorization */

static void on_polkit_reply(DBusPendingCall *pending, void *userdata);

/* Asks polkit whether r's sender may do action; on_polkit_reply() goes on. */
static int polkit_check(Request *r, const char *action) {
        bool interactive;
        DBusMessage *call;
        DBusMessageIter it, subj, dict, e, var, details;
        const char *kind = "system-bus-name", *key = "name", *cancel = "";
        dbus_uint32_t flags;
        bool ok;

        assert(r);
        assert(r->bus);
        assert(action);
        interactive = dbus_message_get_allow_interactive_authorization(r->message);
        flags = interactive ? 1 : 0;  /* AllowUserInteraction */
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
        /* What rules can decide on. */
        if (ok && r->kind == REQUEST_ACQUIRE)
                ok = append_details_acquire(r, &details);
        if (ok && (r->kind == REQUEST_LEASE_RELEASE || r->kind == REQUEST_LEASE_REVOKE))
                ok = append_details_lease_release(r, &details);
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

static void on_polkit_reply(DBusPendingCall *pending, void *userdata) {
        Request *r = userdata;
        DBusMessage *reply;
        DBusMessageIter it, st;
        dbus_bool_t authorized = FALSE, challenge = FALSE;

        assert(r);
        reply = request_steal_reply(r, pending);
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
                const char *action = r->actions[r->i_action];
                const char *what = streq(action, ACTION_MEMLOCK) ? " with the option \"memlock\" (" ACTION_MEMLOCK ")" :
                                   streq(action, ACTION_ACQUIRE_FOR_OTHER) ?
                                           " naming another's process as owner (" ACTION_ACQUIRE_FOR_OTHER ")" :
                                   streq(action, ACTION_REVOKE_FORCE) ? " by force (" ACTION_REVOKE_FORCE ")" : "";
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
        /* The next action the request needs, if any (memlock, acquire-for-other, revoke-force). */
        if (++r->i_action < r->n_actions) {
                int k = polkit_check(r, r->actions[r->i_action]);
                if (k < 0)
                        request_fail(r, bus_error_name(GD_ERR_DENIED), "cannot ask polkit: %s", strerror(-k));
                return;
        }
        request_authorized(r);
}

/* Every action granted (or none needed): what polkit granted goes to the core, then the body runs. */
void request_authorized(Request *r) {
        assert(r);
        for (size_t i = 0; i < r->n_actions; i++)
                if (streq(r->actions[i], ACTION_ACQUIRE_FOR_OTHER))
                        r->caller.owner_any_authorized = true;
        if (r->kind == REQUEST_LEASE_REVOKE)
                r->caller.authorized = true;   /* polkit (or root) decided: the policy file's revoke rules not */
        request_execute(r);
}

/* ---------------------------------------------------------------- the decision */

void request_authorize(Request *r) {
        ManagerError err = {};
        const char *action;
        int k;

        assert(r);
        assert(r->bus);
        assert(r->kind >= 0 && r->kind < _REQUEST_KIND_MAX);
        action = request_actions[r->kind];

        switch (r->kind) {
        case REQUEST_ACQUIRE:
                /* Refuse at once what no authorization would change (bad specs, busy, never). */
                k = manager_acquire_preview(r->bus->manager, &r->caller, (const char *const *) r->specs,
                                            r->n_specs, &r->preview, &err);
                if (k < 0)
                        return request_fail_manager(r, &err);
                if (!r->preview.allowed_by_policy)
                        action = ACTION_ACQUIRE_ANY;
                r->actions[r->n_actions++] = action;
                if (r->memlock)
                        r->actions[r->n_actions++] = ACTION_MEMLOCK;
                /* An owner process that is not the caller's own (nor a descendant, nor of its uid). */
                if (r->owner == OWNER_PROCESS && r->owner_pidfd >= 0) {
                        k = manager_check_owner(r->bus->manager, &r->caller, r->owner_pidfd, &r->owner_pid,
                                                &r->owner_uid, &err);
                        if (k == -EPERM)
                                r->actions[r->n_actions++] = ACTION_ACQUIRE_FOR_OTHER;
                        else if (k < 0)
                                return request_fail_manager(r, &err);
                        else
                                r->owner_pid = 0; /* its own: nothing to tell polkit */
                }
                action = NULL;
                break;
        case REQUEST_LEASE_REVOKE: {
                Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
                if (!l || !lease_exported(l))
                        return request_fail(r, bus_error_name(GD_ERR_NOT_FOUND), "no lease %s", r->lease_id);
                /* release-other, and revoke-force to end its owner process past the deadline. */
                r->actions[r->n_actions++] = action;
                action = r->force ? ACTION_REVOKE_FORCE : NULL;
                break;
        }
        case REQUEST_LEASE_RELEASE: {
                Lease *l = manager_find_lease(r->bus->manager, r->lease_id);
                if (!l || !lease_exported(l))
                        return request_fail(r, bus_error_name(GD_ERR_NOT_FOUND), "no lease %s", r->lease_id);
                if (request_is_lease_owner(r))
                        return request_execute(r);
                break;
        }
        default:
                break;
        }
        if (action)
                r->actions[r->n_actions++] = action;
        if (r->n_actions == 0)
                return request_authorized(r);

        /* polkitd always authorizes root for anything, whatever the rules say: asking would only cost a
         * bus round trip (about 1.2 ms, most of a D-Bus Acquire). systemd's services do the same. The
         * policy file's never rules still apply to root, in the manager. */
        if (r->caller.uid == 0)
                return request_authorized(r);

        r->i_action = 0;
        k = polkit_check(r, r->actions[0]);
        if (k < 0)
                request_fail(r, bus_error_name(GD_ERR_DENIED), "cannot ask polkit: %s", strerror(-k));
}
