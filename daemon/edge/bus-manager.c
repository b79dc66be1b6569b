/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager object, /org/groupd1: its method table (ListGroups, GetGroup, ListLeases, Acquire with its
 * option table, Release, MemlockLimit), its properties, and its signals (LeaseStarted, LeaseEnded, NLeases). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "bus-caller.h"
#include "bus-manager.h"
#include "fd-util.h"
#include "log.h"
#include "memlock.h"
#include "wire-view.h"

/* ---------------------------------------------------------------- properties */

static void manager_properties(Bus *b, const BusObject *o, PropWriter *w) {
        assert(b);
        assert(w);
        pw_string(w, "Version", PACKAGE_VERSION);
        pw_string(w, "Host", manager_host_kind(b->manager));
        pw_u64(w, "StartedUsec", manager_started_usec(b->manager));
        pw_u32(w, "NLeases", (uint32_t) manager_n_leases(b->manager));
}

static void fill_manager_nleases(PropWriter *w, const void *a, const void *c) {
        pw_u32(w, "NLeases", (uint32_t) (uintptr_t) c);
}

/* ---------------------------------------------------------------- methods */

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

/* AcquireDelivery's reply after the lease path and token: (s delivery, ah container, a(uh) groups,
 * ah iommufd, a(sh) devices, as nodes, u grant_uid), each part filled in the mode that has it. */
static bool append_delivery(DBusMessageIter *it, const Lease *l) {
        const char *mode = lease_delivery_to_string(l->delivery);
        bool legacy = l->delivery == LEASE_DELIVERY_LEGACY, iommufd = l->delivery == LEASE_DELIVERY_IOMMUFD;
        dbus_uint32_t grant_uid = l->delivery == LEASE_DELIVERY_NODE_GRANT ? (dbus_uint32_t) l->grant_uid : 0;
        DBusMessageIter a, st;
        bool ok;

        ok = dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &mode) &&
             dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "h", &a) &&
             (!legacy || dbus_message_iter_append_basic(&a, DBUS_TYPE_UNIX_FD, &l->container_fd)) &&
             dbus_message_iter_close_container(it, &a) &&
             dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "(uh)", &a);
        for (size_t i = 0; legacy && i < l->n_groups && ok; i++) {
                dbus_uint32_t g = l->groups[i];
                ok = dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &g) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UNIX_FD, &l->group_fds[i]) &&
                     dbus_message_iter_close_container(&a, &st);
        }
        ok = ok && dbus_message_iter_close_container(it, &a) &&
             dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "h", &a) &&
             (!iommufd || dbus_message_iter_append_basic(&a, DBUS_TYPE_UNIX_FD, &l->iommufd)) &&
             dbus_message_iter_close_container(it, &a) &&
             dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "(sh)", &a);
        for (size_t i = 0; iommufd && i < l->n_devices && ok; i++) {
                const char *addr = l->devices[i].address;
                ok = dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &addr) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UNIX_FD, &l->device_fds[i]) &&
                     dbus_message_iter_close_container(&a, &st);
        }
        ok = ok && dbus_message_iter_close_container(it, &a) &&
             dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "s", &a);
        for (size_t i = 0; i < l->n_grants && ok; i++) {
                char node[HOST_NODE_MAX + 8];
                const char *n = node;
                (void) snprintf(node, sizeof node, "/dev/%s", l->grants[i].node);
                ok = dbus_message_iter_append_basic(&a, DBUS_TYPE_STRING, &n);
        }
        return ok && dbus_message_iter_close_container(it, &a) &&
               dbus_message_iter_append_basic(it, DBUS_TYPE_UINT32, &grant_uid);
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
                     dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &token);
        }
        if (ok && r->delivery_reply)
                ok = append_delivery(&it, l) && dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "h", &fa);
        else if (ok)
                ok = dbus_message_iter_append_basic(&it, DBUS_TYPE_UNIX_FD, &l->container_fd) &&
                     dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(uh)", &a);
        for (size_t i = 0; !r->delivery_reply && i < l->n_groups && ok; i++) {
                dbus_uint32_t g = l->groups[i];
                ok = dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &st) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &g) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UNIX_FD, &l->group_fds[i]) &&
                     dbus_message_iter_close_container(&a, &st);
        }
        if (!r->delivery_reply)
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
                .delivery = r->delivery,
                .grant_uid_set = r->grant_uid_set,
                .grant_uid = r->grant_uid,
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

static void execute_release_token(Request *r) {
        ManagerError err = {};

        r->caller.bus_name = r->sender;
        if (manager_release_token(r->bus->manager, &r->caller, r->spec, &err) < 0)
                return request_fail_manager(r, &err);
        bus_send(r->bus, dbus_message_new_method_return(r->message));
        request_free(r);
}

/* The memlock rule for the groups the specs name (memlock_limit_for_groups(): a repeated group counts
 * once), with the devices the manager reports for them (as groupctl memlock). */
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
                groups[i] = (MemlockGroup) { .id = d.group, .n_devices = d.n_devices };
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

/* Acquire's options as they are read: what the option parsers learn besides the request's fields. */
typedef struct AcquireOptions {
        const char *owner;       /* points into the message */
        bool have_pidfd;
        bool have_guest_ram;
} AcquireOptions;

/* One option of Acquire's a{sv}: its name, the D-Bus type of its value, and the parser that takes the value
 * at var into r or o (on a bad value it replies and returns false). offset: the bool field of Request
 * that option_bool() sets. */
typedef struct AcquireOption {
        const char *key;
        int type;
        bool (*parse)(Bus *b, DBusMessage *m, DBusMessageIter *var, const struct AcquireOption *opt, Request *r,
                      AcquireOptions *o);
        size_t offset;
} AcquireOption;

static bool option_label(Bus *b, DBusMessage *m, DBusMessageIter *var, const AcquireOption *opt, Request *r,
                         AcquireOptions *o) {
        const char *s;

        dbus_message_iter_get_basic(var, &s);
        if (strlen(s) >= LEASE_LABEL_MAX) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID), "option \"label\" is longer than %u bytes",
                            LEASE_LABEL_MAX - 1);
                return false;
        }
        free(r->label);
        r->label = strdup(s);
        if (!r->label) {
                reply_oom(b, m);
                return false;
        }
        return true;
}

static bool option_owner(Bus *b, DBusMessage *m, DBusMessageIter *var, const AcquireOption *opt, Request *r,
                         AcquireOptions *o) {
        dbus_message_iter_get_basic(var, &o->owner);
        if (!streq(o->owner, "name") && !streq(o->owner, "process") && !streq(o->owner, "lease-fd")) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"owner\" is \"%.64s\": want \"name\", \"process\" or \"lease-fd\"", o->owner);
                return false;
        }
        return true;
}

static bool option_owner_pidfd(Bus *b, DBusMessage *m, DBusMessageIter *var, const AcquireOption *opt,
                               Request *r, AcquireOptions *o) {
        int fd;

        dbus_message_iter_get_basic(var, &fd);  /* a fresh duplicate: ours to close */
        safe_close(r->owner_pidfd);
        r->owner_pidfd = fd;
        o->have_pidfd = true;
        return true;
}

static bool option_bool(Bus *b, DBusMessage *m, DBusMessageIter *var, const AcquireOption *opt, Request *r,
                        AcquireOptions *o) {
        dbus_bool_t v;

        assert(opt->offset > 0 && opt->offset < sizeof *r);
        dbus_message_iter_get_basic(var, &v);
        *(bool *) ((uint8_t *) r + opt->offset) = v;
        return true;
}

static bool option_guest_ram(Bus *b, DBusMessage *m, DBusMessageIter *var, const AcquireOption *opt,
                             Request *r, AcquireOptions *o) {
        dbus_uint64_t v;
        uint64_t limit;

        dbus_message_iter_get_basic(var, &v);
        if (v == 0) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"guest-ram\" is 0: give the guest's RAM in bytes");
                return false;
        }
        /* Refused here rather than after the devices were bound: the limit must fit. */
        if (memlock_limit(&(MemlockInput) { .guest_ram = v, .n_devices = 1, .rule = memlock_rule_host() },
                          &limit) < 0) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"guest-ram\" is %" PRIu64 " bytes: the memlock limit for it does not fit in "
                            "64 bits", (uint64_t) v);
                return false;
        }
        r->guest_ram = v;
        o->have_guest_ram = true;
        return true;
}

/* Each option once: its name, its type, its parser. */
static bool option_delivery(Bus *b, DBusMessage *m, DBusMessageIter *var, const AcquireOption *opt,
                            Request *r, AcquireOptions *o) {
        const char *v;
        LeaseDelivery d;

        dbus_message_iter_get_basic(var, &v);
        d = lease_delivery_from_string(v);
        if (d < 0) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID), "option \"delivery\" is \"%.64s\": want \"auto\", "
                            "\"iommufd\", \"legacy\" or \"node-grant\"", v);
                return false;
        }
        r->delivery = d;
        return true;
}

static bool option_grant_uid(Bus *b, DBusMessage *m, DBusMessageIter *var, const AcquireOption *opt,
                             Request *r, AcquireOptions *o) {
        dbus_uint32_t v;

        dbus_message_iter_get_basic(var, &v);
        r->grant_uid = (uid_t) v;
        r->grant_uid_set = true;
        return true;
}

static const AcquireOption acquire_options[] = {
        { "label", DBUS_TYPE_STRING, option_label },
        { "owner", DBUS_TYPE_STRING, option_owner },
        { "owner-pidfd", DBUS_TYPE_UNIX_FD, option_owner_pidfd },
        { "configure-iommu", DBUS_TYPE_BOOLEAN, option_bool, offsetof(Request, configure_iommu) },
        { "memlock", DBUS_TYPE_BOOLEAN, option_bool, offsetof(Request, memlock) },
        { "guest-ram", DBUS_TYPE_UINT64, option_guest_ram },
        { "viommu", DBUS_TYPE_BOOLEAN, option_bool, offsetof(Request, viommu) },
        { "kvm", DBUS_TYPE_BOOLEAN, option_bool, offsetof(Request, kvm) },
        { "delivery", DBUS_TYPE_STRING, option_delivery },
        { "grant-uid", DBUS_TYPE_UINT32, option_grant_uid },
};

static const AcquireOption *acquire_option_find(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(acquire_options); i++)
                if (streq(acquire_options[i].key, key))
                        return &acquire_options[i];
        return NULL;
}

/* Takes one option, {s v}, into r and o; on a bad one replies and returns false. */
static bool parse_acquire_option(Bus *b, DBusMessage *m, DBusMessageIter *entry, Request *r, AcquireOptions *o) {
        const AcquireOption *opt;
        DBusMessageIter e, var;
        const char *key;
        int t;

        dbus_message_iter_recurse(entry, &e);
        dbus_message_iter_get_basic(&e, &key);
        dbus_message_iter_next(&e);
        dbus_message_iter_recurse(&e, &var);
        t = dbus_message_iter_get_arg_type(&var);

        opt = acquire_option_find(key);
        if (!opt) {
                char known[256] = "";

                for (size_t i = 0; i < ELEMENTSOF(acquire_options); i++)
                        (void) snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                                        acquire_options[i].key);
                reply_error(b, m, bus_error_name(GD_ERR_INVALID), "unknown option \"%.64s\" (known: %s)", key, known);
                return false;
        }
        if (t != opt->type) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID), "option \"%s\" has the wrong type '%c'", key,
                            (char) t);
                return false;
        }
        return opt->parse(b, m, &var, opt, r, o);
}

/* Parses Acquire's (as, a{sv}) into r; on a bad argument replies and returns false. */
static bool parse_acquire(Bus *b, DBusMessage *m, Request *r) {
        AcquireOptions o = { .owner = "name" };
        DBusMessageIter it, dict;

        assert(b);
        assert(m);
        assert(r);
        dbus_message_iter_init(m, &it);
        if (!parse_specs(b, m, &it, r))
                return false;
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &dict);
        for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&dict))
                if (!parse_acquire_option(b, m, &dict, r, &o))
                        return false;

        /* What the options say together. */
        if (streq(o.owner, "process")) {
                if (!o.have_pidfd) {
                        reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                                    "owner \"process\" needs the option \"owner-pidfd\"");
                        return false;
                }
                r->owner = OWNER_PROCESS;
        } else if (o.have_pidfd) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"owner-pidfd\" goes with owner \"process\" only");
                return false;
        } else if (streq(o.owner, "lease-fd"))
                r->owner = OWNER_LEASE_FD;

        if (r->memlock && !o.have_guest_ram) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"memlock\" needs the option \"guest-ram\" (the guest's RAM in bytes)");
                return false;
        }
        if (!r->memlock && o.have_guest_ram) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID), "option \"guest-ram\" goes with \"memlock\" only");
                return false;
        }
        if (!r->memlock && r->viommu) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"viommu\" only says how to count memlock: it goes with \"memlock\" only");
                return false;
        }
        if (r->grant_uid_set && r->delivery != LEASE_DELIVERY_NODE_GRANT) {
                reply_error(b, m, bus_error_name(GD_ERR_INVALID),
                            "option \"grant-uid\" goes with delivery \"node-grant\" only");
                return false;
        }
        /* Acquire's reply carries a container and group fds: legacy delivery only (auto means it there). */
        if (!r->delivery_reply) {
                if (r->delivery == LEASE_DELIVERY_AUTO)
                        r->delivery = LEASE_DELIVERY_LEGACY;
                if (r->delivery != LEASE_DELIVERY_LEGACY) {
                        reply_error(b, m, DBUS_ERROR_INVALID_ARGS, "Acquire hands over container and group fds "
                                    "only: for delivery \"%s\" call AcquireDelivery",
                                    lease_delivery_to_string(r->delivery));
                        return false;
                }
        }
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

static void method_list_groups(Bus *b, DBusMessage *m, const BusObject *o) {
        Request *r;

        if (request_new(b, m, REQUEST_LIST_GROUPS, execute_list_groups, &r) >= 0)
                request_start(r);
}

static void method_list_leases(Bus *b, DBusMessage *m, const BusObject *o) {
        Request *r;

        if (request_new(b, m, REQUEST_LIST_LEASES, execute_list_leases, &r) >= 0)
                request_start(r);
}

/* GetGroup and Release: one string argument, a group's spec or a lease's token. */
static void start_with_string(Bus *b, DBusMessage *m, RequestKind kind, void (*execute)(Request *r)) {
        const char *s = NULL;
        Request *r;

        if (request_new(b, m, kind, execute, &r) < 0)
                return;
        (void) dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID);
        assert(s);
        r->spec = strdup(s);
        if (!r->spec) {
                reply_oom(b, m);
                request_free(r);
                return;
        }
        request_start(r);
}

static void method_get_group(Bus *b, DBusMessage *m, const BusObject *o) {
        start_with_string(b, m, REQUEST_GET_GROUP, execute_get_group);
}

static void method_release(Bus *b, DBusMessage *m, const BusObject *o) {
        start_with_string(b, m, REQUEST_RELEASE_TOKEN, execute_release_token);
}

/* Acquire (legacy delivery, its reply the container and group fds) and AcquireDelivery (any mode, auto
 * by default, and a reply that says what came): one request, two replies. */
static void start_acquire(Bus *b, DBusMessage *m, bool delivery_reply) {
        Request *r;

        if (request_new(b, m, REQUEST_ACQUIRE, execute_acquire, &r) < 0)
                return;
        r->delivery_reply = delivery_reply;
        r->delivery = delivery_reply ? LEASE_DELIVERY_AUTO : LEASE_DELIVERY_LEGACY;
        if (!parse_acquire(b, m, r))
                return (void) request_free(r);
        request_start(r);
}

static void method_acquire(Bus *b, DBusMessage *m, const BusObject *o) {
        start_acquire(b, m, false);
}

static void method_acquire_delivery(Bus *b, DBusMessage *m, const BusObject *o) {
        start_acquire(b, m, true);
}

static void method_memlock_limit(Bus *b, DBusMessage *m, const BusObject *o) {
        Request *r;

        if (request_new(b, m, REQUEST_MEMLOCK_LIMIT, execute_memlock_limit, &r) < 0)
                return;
        if (!parse_memlock_limit(b, m, r))
                return (void) request_free(r);
        request_start(r);
}

static const BusMethod manager_methods[] = {
        { "ListGroups", "", method_list_groups },
        { "GetGroup", "s", method_get_group },
        { "ListLeases", "", method_list_leases },
        { "Acquire", "asa{sv}", method_acquire },
        { "AcquireDelivery", "asa{sv}", method_acquire_delivery },
        { "Release", "s", method_release },
        { "MemlockLimit", "astb", method_memlock_limit },
        {}
};

const BusVTable bus_manager_vtable = { IFACE_MANAGER, manager_methods, manager_properties };

/* ---------------------------------------------------------------- signals */

void bus_manager_emit_lease_started(Bus *b, const Lease *l) {
        char path[128];
        const char *p = path, *id, *label;
        DBusMessage *m;
        DBusMessageIter it;
        bool ok;

        assert(b);
        assert(l);
        id = l->id;
        label = strempty(l->label);
        lease_path(l->id, path, sizeof path);
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
}

void bus_manager_emit_lease_ended(Bus *b, const Lease *l, const char *detail) {
        char path[128];
        const char *p = path, *reason, *d = strempty(detail);
        DBusMessage *m;
        DBusMessageIter it;
        bool ok;

        assert(b);
        assert(l);
        reason = lease_reason_to_string(l->reason);
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
}

/* Only when the count is not the one last announced (events that leave it as it was announce nothing). */
void bus_manager_emit_n_leases(Bus *b) {
        uint32_t n;

        assert(b);
        n = (uint32_t) manager_n_leases(b->manager);
        if (n == b->n_leases_sent)
                return;
        b->n_leases_sent = n;
        emit_properties_changed(b, BUS_PATH, IFACE_MANAGER, fill_manager_nleases, NULL, (const void *) (uintptr_t) n,
                                NULL);
}
