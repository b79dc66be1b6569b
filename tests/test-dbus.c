/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus API on a private system bus, with the real polkitd and groupd on the simulated host, as
 * tests/test-dbus.sh sets them up (DBUS_SYSTEM_BUS_ADDRESS, polkit rules from tests/dbus/rules.d: root is
 * always authorized by polkit; uid 1 "daemon" may acquire, but not group 2 nor with label "forbidden";
 * uid 65534 "nobody" may list and nothing else). Each scenario checks what a caller would notice: the
 * reply, the fds (the simulated host's fds answer STATUS), the signals, the properties. */
#include <check.h>
#include <dbus/dbus.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "groupd-client.h"
#include "fd-util.h"
#include "test-util.h"
#include "macro.h"

#define NAME "org.groupd1"
#define PATH "/org/groupd1"
#define MGR NAME ".Manager"
#define UID_DAEMON 1
#define UID_NOBODY 65534

/* ---------------------------------------------------------------- helpers */

static DBusConnection *connect_bus(void) {
        DBusError e;
        DBusConnection *c;

        dbus_error_init(&e);
        c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &e);
        ck_assert_msg(c, "cannot connect to the test bus: %s", e.message);
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        return c;
}

static void disconnect_bus(DBusConnection *c) {
        dbus_connection_close(c);
        dbus_connection_unref(c);
}

/* Sends call; returns the reply, or NULL with *ret_error set to the error name (static storage). */
static DBusMessage *send_call(DBusConnection *c, DBusMessage *call, char *err_name, size_t size, char *err_msg,
                              size_t msize) {
        DBusError e;
        DBusMessage *reply;

        dbus_error_init(&e);
        reply = dbus_connection_send_with_reply_and_block(c, call, 30000, &e);
        dbus_message_unref(call);
        if (err_name)
                snprintf(err_name, size, "%s", reply ? "" : e.name);
        if (err_msg)
                snprintf(err_msg, msize, "%s", reply ? "" : strempty(e.message));
        dbus_error_free(&e);
        return reply;
}

static DBusMessage *call0(DBusConnection *c, const char *path, const char *iface, const char *member) {
        DBusMessage *m = dbus_message_new_method_call(NAME, path, iface, member);
        char err[256], msg[512];
        DBusMessage *r = send_call(c, m, err, sizeof err, msg, sizeof msg);
        ck_assert_msg(r, "%s.%s failed: %s: %s", iface, member, err, msg);
        return r;
}

typedef struct Acquired {
        char path[128];
        char token[64];
        int container;
        unsigned groups[8];
        int group_fds[8];
        size_t n_groups;
        int lease_fd;
        char error[256];
        char message[1024];
} Acquired;

static void acquired_done(Acquired *a) {
        safe_close(a->container);
        for (size_t i = 0; i < a->n_groups; i++)
                safe_close(a->group_fds[i]);
        safe_close(a->lease_fd);
        a->container = a->lease_fd = -EBADF;
        a->n_groups = 0;
}

/* One Acquire option of any type, for acquire_with(). */
typedef struct Opt {
        const char *key;
        int type;               /* DBUS_TYPE_BOOLEAN, _UINT32, _UINT64, _STRING or _UNIX_FD */
        uint64_t u;             /* booleans, numbers, fds */
        const char *s;          /* strings */
} Opt;

/* Acquire(specs, opts), the reply checked and parsed into *a. */
static bool acquire_with(DBusConnection *c, const char *const *specs, const Opt *opts, size_t n_opts, Acquired *a) {
        DBusMessage *m = dbus_message_new_method_call(NAME, PATH, MGR, "Acquire"), *r;
        DBusMessageIter it, arr, dict, e, v, st, fa;

        *a = (Acquired) { .container = -EBADF, .lease_fd = -EBADF };
        dbus_message_iter_init_append(m, &it);
        ck_assert(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &arr));
        for (size_t i = 0; specs[i]; i++)
                ck_assert(dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &specs[i]));
        ck_assert(dbus_message_iter_close_container(&it, &arr));
        ck_assert(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict));
        for (size_t i = 0; i < n_opts; i++) {
                char sig[2] = { (char) opts[i].type, 0 };
                dbus_bool_t b = opts[i].u != 0;
                dbus_uint32_t u32 = (dbus_uint32_t) opts[i].u;
                dbus_uint64_t u64 = opts[i].u;
                int fd = (int) opts[i].u;
                const void *val = opts[i].type == DBUS_TYPE_BOOLEAN ? (const void *) &b :
                                  opts[i].type == DBUS_TYPE_UINT32 ? (const void *) &u32 :
                                  opts[i].type == DBUS_TYPE_UINT64 ? (const void *) &u64 :
                                  opts[i].type == DBUS_TYPE_UNIX_FD ? (const void *) &fd : (const void *) &opts[i].s;

                ck_assert(dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &e));
                ck_assert(dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &opts[i].key));
                ck_assert(dbus_message_iter_open_container(&e, DBUS_TYPE_VARIANT, sig, &v));
                ck_assert(dbus_message_iter_append_basic(&v, opts[i].type, val));
                ck_assert(dbus_message_iter_close_container(&e, &v));
                ck_assert(dbus_message_iter_close_container(&dict, &e));
        }
        ck_assert(dbus_message_iter_close_container(&it, &dict));

        r = send_call(c, m, a->error, sizeof a->error, a->message, sizeof a->message);
        if (!r)
                return false;
        ck_assert_str_eq(dbus_message_get_signature(r), "osha(uh)ah");
        const char *p;
        dbus_message_iter_init(r, &it);
        dbus_message_iter_get_basic(&it, &p);
        snprintf(a->path, sizeof a->path, "%s", p);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &p);
        snprintf(a->token, sizeof a->token, "%s", p);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &a->container);
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &arr);
        for (; dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT; dbus_message_iter_next(&arr)) {
                dbus_uint32_t g;
                ck_assert_uint_lt(a->n_groups, ELEMENTSOF(a->groups));
                dbus_message_iter_recurse(&arr, &st);
                dbus_message_iter_get_basic(&st, &g);
                dbus_message_iter_next(&st);
                a->groups[a->n_groups] = g;
                dbus_message_iter_get_basic(&st, &a->group_fds[a->n_groups]);
                a->n_groups++;
        }
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &fa);
        if (dbus_message_iter_get_arg_type(&fa) == DBUS_TYPE_UNIX_FD)
                dbus_message_iter_get_basic(&fa, &a->lease_fd);
        dbus_message_unref(r);
        return true;
}

/* Acquire(specs, options): label and owner when not NULL, owner-pidfd when >= 0, and one extra option when
 * extra_key is set: configure-iommu=true for "configure-iommu", else a string. Returns true on success;
 * false with a->error set. */
static bool acquire_opts(DBusConnection *c, const char *const *specs, const char *label, const char *owner,
                         int pidfd, const char *extra_key, Acquired *a) {
        Opt o[4];
        size_t n = 0;

        if (label)
                o[n++] = (Opt) { .key = "label", .type = DBUS_TYPE_STRING, .s = label };
        if (owner)
                o[n++] = (Opt) { .key = "owner", .type = DBUS_TYPE_STRING, .s = owner };
        if (pidfd >= 0)
                o[n++] = (Opt) { .key = "owner-pidfd", .type = DBUS_TYPE_UNIX_FD, .u = (uint64_t) pidfd };
        if (extra_key && streq(extra_key, "configure-iommu"))
                o[n++] = (Opt) { .key = extra_key, .type = DBUS_TYPE_BOOLEAN, .u = 1 };
        else if (extra_key)
                o[n++] = (Opt) { .key = extra_key, .type = DBUS_TYPE_STRING, .s = "x" };
        return acquire_with(c, specs, o, n, a);
}

static bool acquire(DBusConnection *c, const char *spec, const char *label, Acquired *a) {
        const char *specs[] = { spec, NULL };
        return acquire_opts(c, specs, label, NULL, -EBADF, NULL, a);
}

static bool release_token(DBusConnection *c, const char *token, char *err, size_t size) {
        DBusMessage *m = dbus_message_new_method_call(NAME, PATH, MGR, "Release"), *r;
        ck_assert(dbus_message_append_args(m, DBUS_TYPE_STRING, &token, DBUS_TYPE_INVALID));
        r = send_call(c, m, err, size, NULL, 0);
        if (r)
                dbus_message_unref(r);
        return r != NULL;
}

/* The simulated host's fds answer text requests. */
static void sim_status(int fd, char *buf, size_t size) {
        struct timeval tv = { .tv_sec = 5 };
        ssize_t n;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
        ck_assert_int_eq(send(fd, "STATUS", 6, MSG_NOSIGNAL), 6);
        n = recv(fd, buf, size - 1, 0);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
}

/* A property's value, as the variant's iterator, in a reply the caller unrefs. */
static DBusMessage *get_prop(DBusConnection *c, const char *path, const char *iface, const char *name,
                             DBusMessageIter *ret) {
        DBusMessage *m = dbus_message_new_method_call(NAME, path, DBUS_INTERFACE_PROPERTIES, "Get"), *r;
        DBusMessageIter it;
        char err[256], msg[512];

        ck_assert(dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID));
        r = send_call(c, m, err, sizeof err, msg, sizeof msg);
        ck_assert_msg(r, "Get %s %s.%s: %s: %s", path, iface, name, err, msg);
        dbus_message_iter_init(r, &it);
        ck_assert_int_eq(dbus_message_iter_get_arg_type(&it), DBUS_TYPE_VARIANT);
        dbus_message_iter_recurse(&it, ret);
        return r;
}

static bool prop_bool(DBusConnection *c, const char *path, const char *iface, const char *name) {
        DBusMessageIter v;
        DBusMessage *r = get_prop(c, path, iface, name, &v);
        dbus_bool_t b;
        ck_assert_int_eq(dbus_message_iter_get_arg_type(&v), DBUS_TYPE_BOOLEAN);
        dbus_message_iter_get_basic(&v, &b);
        dbus_message_unref(r);
        return b;
}

static void prop_string(DBusConnection *c, const char *path, const char *iface, const char *name, char *buf,
                        size_t size) {
        DBusMessageIter v;
        DBusMessage *r = get_prop(c, path, iface, name, &v);
        const char *s;
        int t = dbus_message_iter_get_arg_type(&v);
        ck_assert(t == DBUS_TYPE_STRING || t == DBUS_TYPE_OBJECT_PATH);
        dbus_message_iter_get_basic(&v, &s);
        snprintf(buf, size, "%s", s);
        dbus_message_unref(r);
}

static uint32_t prop_u32(DBusConnection *c, const char *path, const char *iface, const char *name) {
        DBusMessageIter v;
        DBusMessage *r = get_prop(c, path, iface, name, &v);
        dbus_uint32_t u;
        ck_assert_int_eq(dbus_message_iter_get_arg_type(&v), DBUS_TYPE_UINT32);
        dbus_message_iter_get_basic(&v, &u);
        dbus_message_unref(r);
        return u;
}

static uint64_t prop_u64(DBusConnection *c, const char *path, const char *iface, const char *name) {
        DBusMessageIter v;
        DBusMessage *r = get_prop(c, path, iface, name, &v);
        dbus_uint64_t u;
        ck_assert_int_eq(dbus_message_iter_get_arg_type(&v), DBUS_TYPE_UINT64);
        dbus_message_iter_get_basic(&v, &u);
        dbus_message_unref(r);
        return u;
}

/* An a(tt) property (IovaRanges) into ranges[max][2]; returns how many there were. */
static size_t prop_ranges(DBusConnection *c, const char *path, const char *iface, const char *name,
                          uint64_t (*ranges)[2], size_t max) {
        DBusMessageIter v, a, st;
        DBusMessage *r = get_prop(c, path, iface, name, &v);
        size_t n = 0;

        char *sig = dbus_message_iter_get_signature(&v);

        ck_assert_str_eq(sig, "a(tt)");
        dbus_free(sig);
        dbus_message_iter_recurse(&v, &a);
        for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRUCT; dbus_message_iter_next(&a), n++) {
                dbus_uint64_t start, end;
                dbus_message_iter_recurse(&a, &st);
                dbus_message_iter_get_basic(&st, &start);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &end);
                if (n < max) {
                        ranges[n][0] = start;
                        ranges[n][1] = end;
                }
        }
        dbus_message_unref(r);
        return n;
}

/* "addr=driver addr=driver" from a group's Devices property. */
static void group_drivers(DBusConnection *c, unsigned group, char *buf, size_t size) {
        char path[64];
        DBusMessageIter v, a, st;
        DBusMessage *r;
        size_t off = 0;

        snprintf(path, sizeof path, PATH "/group/%u", group);
        r = get_prop(c, path, NAME ".Group", "Devices", &v);
        buf[0] = 0;
        dbus_message_iter_recurse(&v, &a);
        for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRUCT; dbus_message_iter_next(&a)) {
                const char *addr, *drv;
                dbus_message_iter_recurse(&a, &st);
                dbus_message_iter_get_basic(&st, &addr);
                for (int i = 0; i < 4; i++)
                        dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &drv);
                off += (size_t) snprintf(buf + off, size - off, "%s%s=%s", off ? " " : "", addr, drv);
        }
        dbus_message_unref(r);
}

static size_t count_leases(DBusConnection *c) {
        DBusMessage *r = call0(c, PATH, MGR, "ListLeases");
        DBusMessageIter it, a;
        size_t n = 0;

        ck_assert_str_eq(dbus_message_get_signature(r), "a(ossssuuau)");
        dbus_message_iter_init(r, &it);
        dbus_message_iter_recurse(&it, &a);
        for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRUCT; dbus_message_iter_next(&a))
                n++;
        dbus_message_unref(r);
        return n;
}

/* Is path among GetManagedObjects' objects? */
static bool managed_has(DBusConnection *c, const char *path) {
        DBusMessage *r = call0(c, PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects");
        DBusMessageIter it, a, e;
        bool found = false;

        ck_assert_str_eq(dbus_message_get_signature(r), "a{oa{sa{sv}}}");
        dbus_message_iter_init(r, &it);
        dbus_message_iter_recurse(&it, &a);
        for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&a)) {
                const char *p;
                dbus_message_iter_recurse(&a, &e);
                dbus_message_iter_get_basic(&e, &p);
                found = found || streq(p, path);
        }
        dbus_message_unref(r);
        return found;
}

static void subscribe(DBusConnection *c) {
        DBusError e;
        dbus_error_init(&e);
        dbus_bus_add_match(c, "type='signal',sender='" NAME "'", &e);
        ck_assert_msg(!dbus_error_is_set(&e), "%s", e.message);
        dbus_bus_add_match(c, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'", &e);
        ck_assert_msg(!dbus_error_is_set(&e), "%s", e.message);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* Waits (up to 10 s) for a signal member on path (any path if NULL) whose first string argument after
 * the path equals arg (if set). Returns it (unref it), or NULL on timeout. Other messages are dropped. */
static DBusMessage *wait_signal(DBusConnection *c, const char *member, const char *path, const char *arg0) {
        uint64_t deadline = now_usec() + 10000000ULL;

        while (now_usec() < deadline) {
                DBusMessage *m;

                while ((m = dbus_connection_pop_message(c))) {
                        const char *first = NULL;
                        if (dbus_message_get_type(m) == DBUS_MESSAGE_TYPE_SIGNAL &&
                            streq(dbus_message_get_member(m), member)) {
                                DBusMessageIter it;
                                if (dbus_message_iter_init(m, &it) &&
                                    (dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_STRING ||
                                     dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_OBJECT_PATH))
                                        dbus_message_iter_get_basic(&it, &first);
                                if ((!path || streq_ptr(dbus_message_get_path(m), path)) &&
                                    (!arg0 || streq_ptr(first, arg0)))
                                        return m;
                        }
                        dbus_message_unref(m);
                }
                if (!dbus_connection_read_write(c, 100))
                        break;
        }
        return NULL;
}

/* PropertiesChanged of a group: the value of its Leased in the changed set (which must be there). */
static bool wait_group_leased_changed(DBusConnection *c, const char *path) {
        DBusMessage *m = wait_signal(c, "PropertiesChanged", path, NAME ".Group");
        DBusMessageIter it, d, e, v;
        dbus_bool_t leased = FALSE;
        bool found = false;

        ck_assert_msg(m, "no PropertiesChanged for %s", path);
        ck_assert_str_eq(dbus_message_get_signature(m), "sa{sv}as");
        dbus_message_iter_init(m, &it);
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &d);
        for (; dbus_message_iter_get_arg_type(&d) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&d)) {
                const char *k;
                dbus_message_iter_recurse(&d, &e);
                dbus_message_iter_get_basic(&e, &k);
                if (!streq(k, "Leased"))
                        continue;
                dbus_message_iter_next(&e);
                dbus_message_iter_recurse(&e, &v);
                dbus_message_iter_get_basic(&v, &leased);
                found = true;
        }
        dbus_message_unref(m);
        ck_assert_msg(found, "PropertiesChanged of %s lacks Leased", path);
        return leased;
}

/* LeaseEnded(o, au, s reason, s detail) for path: returns the reason. */
static void wait_lease_ended(DBusConnection *c, const char *path, char *reason, size_t size) {
        DBusMessage *m = wait_signal(c, "LeaseEnded", PATH, path);
        DBusMessageIter it;
        const char *s;

        ck_assert_msg(m, "no LeaseEnded for %s", path);
        ck_assert_str_eq(dbus_message_get_signature(m), "oauss");
        dbus_message_iter_init(m, &it);
        dbus_message_iter_next(&it);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &s);
        snprintf(reason, size, "%s", s);
        dbus_message_unref(m);
}

/* Runs fn as uid in a child with its own bus connection; the child's result comes back in *res. */
typedef struct AsResult {
        bool ok;
        char error[256];
        char message[1024];
        char status[512];
} AsResult;

static void run_as(uid_t uid, void (*fn)(DBusConnection *c, const void *arg, AsResult *res), const void *arg,
                   AsResult *res) {
        int p[2];
        pid_t pid;
        int status;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                AsResult r = {};
                close(p[0]);
                if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0) {
                        snprintf(r.error, sizeof r.error, "setresuid: %s", strerror(errno));
                } else {
                        DBusError e;
                        DBusConnection *c;
                        dbus_error_init(&e);
                        c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &e);
                        if (!c)
                                snprintf(r.error, sizeof r.error, "connect: %s", e.message);
                        else {
                                fn(c, arg, &r);
                                dbus_connection_close(c);
                                dbus_connection_unref(c);
                        }
                }
                (void) !write(p[1], &r, sizeof r);
                _exit(0);
        }
        close(p[1]);
        test_wait_readable(p[0], 20000, "the child's result");
        ck_assert_int_eq(read(p[0], res, sizeof *res), (ssize_t) sizeof *res);
        close(p[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

static void as_acquire(DBusConnection *c, const void *arg, AsResult *res) {
        const char *const *a = arg;  /* spec, label */
        Acquired acq;

        res->ok = acquire(c, a[0], a[1], &acq);
        snprintf(res->error, sizeof res->error, "%s", acq.error);
        snprintf(res->message, sizeof res->message, "%s", acq.message);
        if (res->ok && acq.n_groups == 1) {
                char buf[256];
                sim_status(acq.group_fds[0], buf, sizeof buf);
                snprintf(res->status, sizeof res->status, "%s", buf);
        }
        acquired_done(&acq);
        if (res->ok)
                (void) release_token(c, acq.token, NULL, 0);
}

static void as_lease_release(DBusConnection *c, const void *arg, AsResult *res) {
        DBusMessage *m = dbus_message_new_method_call(NAME, arg, NAME ".Lease", "Release"), *r;
        r = send_call(c, m, res->error, sizeof res->error, res->message, sizeof res->message);
        res->ok = r != NULL;
        if (r)
                dbus_message_unref(r);
}

static void settle(DBusConnection *c) {
        /* Every lease of an earlier test gone: the sim host is shared by the whole run. */
        for (int i = 0; i < 100 && count_leases(c) > 0; i++)
                usleep(50000);
        ck_assert_uint_eq(count_leases(c), 0);
}

/* ---------------------------------------------------------------- scenarios */

START_TEST(test_introspect_is_the_proto_file) {
        DBusConnection *c = connect_bus();
        const char *top = getenv("TOP_SRCDIR");
        char path[512], *xml = NULL;
        const char *s;
        size_t n = 0;
        FILE *f;
        DBusMessage *r;
        static const char *const ifaces[] = { NAME ".Manager", NAME ".Group", NAME ".Lease" };
        static const char *const paths[] = { PATH, PATH "/group/1", NULL };

        ck_assert_ptr_nonnull(top);
        snprintf(path, sizeof path, "%s/proto/org.groupd1.xml", top);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_gt(getdelim(&xml, &n, 0, f), 0);
        fclose(f);

        for (size_t i = 0; i < 2; i++) {
                char open[128], *start, *end, *block;

                r = call0(c, paths[i], DBUS_INTERFACE_INTROSPECTABLE, "Introspect");
                ck_assert(dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID));
                snprintf(open, sizeof open, "  <interface name=\"%s\">", ifaces[i]);
                start = strstr(xml, open);
                ck_assert_ptr_nonnull(start);
                end = strstr(start, "  </interface>\n");
                ck_assert_ptr_nonnull(end);
                block = strndup(start, (size_t) (end - start));
                ck_assert_msg(strstr(s, block), "%s does not serve the %s block of proto/org.groupd1.xml verbatim",
                              paths[i], ifaces[i]);
                free(block);
                if (i == 0) {
                        ck_assert_ptr_nonnull(strstr(s, "<node name=\"group\"/>"));
                        ck_assert_ptr_nonnull(strstr(s, "org.freedesktop.DBus.ObjectManager"));
                }
                dbus_message_unref(r);
        }
        r = call0(c, PATH "/group", DBUS_INTERFACE_INTROSPECTABLE, "Introspect");
        ck_assert(dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID));
        ck_assert_ptr_nonnull(strstr(s, "<node name=\"7\"/>"));
        dbus_message_unref(r);
        free(xml);
        disconnect_bus(c);
}
END_TEST

START_TEST(test_allowed_caller_gets_working_fds) {
        DBusConnection *c = connect_bus();
        Acquired a;
        char buf[512], reason[64];
        AsResult res;
        static const char *const daemon_args[] = { "3", "vm3" };

        settle(c);
        subscribe(c);

        /* root: polkit authorizes it. */
        ck_assert_msg(acquire(c, "0000:01:00.1", "vm1", &a), "acquire: %s: %s", a.error, a.message);
        ck_assert(prop_bool(c, PATH "/group/1", NAME ".Group", "Leased"));
        ck_assert_uint_eq(strlen(a.token), 32);
        ck_assert_uint_eq(a.n_groups, 1);
        ck_assert_uint_eq(a.groups[0], 1);
        ck_assert_int_lt(a.lease_fd, 0);   /* owner "name": no lease fd */
        sim_status(a.group_fds[0], buf, sizeof buf);
        ck_assert_str_eq(buf, "group=1 viable=1 container=yes devices=0000:01:00.0,0000:01:00.1");
        sim_status(a.container, buf, sizeof buf);
        ck_assert_str_eq(buf, "container iommu=none groups=1");
        group_drivers(c, 1, buf, sizeof buf);
        ck_assert_str_eq(buf, "0000:01:00.0=vfio-pci 0000:01:00.1=vfio-pci");

        /* The VMM closes its fds (or the kernel would hold the unbind up), and releases. */
        acquired_done(&a);
        ck_assert(release_token(c, a.token, NULL, 0));
        wait_lease_ended(c, a.path, reason, sizeof reason);
        ck_assert_str_eq(reason, "released");
        group_drivers(c, 1, buf, sizeof buf);
        ck_assert_str_eq(buf, "0000:01:00.0=nouveau 0000:01:00.1=snd_hda_intel");

        /* configure-iommu: the container comes with its IOMMU type set. */
        const char *specs2[] = { "2", NULL };
        ck_assert_msg(acquire_opts(c, specs2, "iommu", NULL, -EBADF, "configure-iommu", &a), "%s: %s", a.error,
                      a.message);
        sim_status(a.container, buf, sizeof buf);
        ck_assert_str_eq(buf, "container iommu=type1v2 groups=2");
        ck_assert_uint_ne(prop_u32(c, a.path, NAME ".Lease", "IommuType"), 0);
        acquired_done(&a);
        ck_assert(release_token(c, a.token, NULL, 0));
        wait_lease_ended(c, a.path, reason, sizeof reason);

        /* uid 1: the policy file (root only) does not cover it, so acquire-any, which the rules grant. */
        run_as(UID_DAEMON, as_acquire, daemon_args, &res);
        ck_assert_msg(res.ok, "uid 1 acquire: %s: %s", res.error, res.message);
        ck_assert_str_eq(res.status, "group=3 viable=1 container=yes devices=0000:03:00.0,0000:03:00.1");
        settle(c);
        disconnect_bus(c);
}
END_TEST

START_TEST(test_denied_caller_changes_nothing) {
        DBusConnection *c = connect_bus();
        char before6[256], before2[256], after[256];
        AsResult res;
        static const char *const nobody_args[] = { "6", "usb" };
        static const char *const daemon_g2[] = { "2", "nic" };
        static const char *const daemon_forbidden[] = { "1", "forbidden" };

        settle(c);
        group_drivers(c, 6, before6, sizeof before6);
        group_drivers(c, 2, before2, sizeof before2);

        run_as(UID_NOBODY, as_acquire, nobody_args, &res);
        ck_assert_msg(!res.ok, "uid 65534 was given group 6");
        ck_assert_str_eq(res.error, "org.groupd1.Error.Denied");
        ck_assert_ptr_nonnull(strstr(res.message, "polkit"));

        /* The details reach the rules: uid 1 may acquire, but not group 2, nor with label "forbidden". */
        run_as(UID_DAEMON, as_acquire, daemon_g2, &res);
        ck_assert_msg(!res.ok, "uid 1 was given group 2");
        ck_assert_str_eq(res.error, "org.groupd1.Error.Denied");
        run_as(UID_DAEMON, as_acquire, daemon_forbidden, &res);
        ck_assert_msg(!res.ok, "uid 1 was given group 1 with label \"forbidden\"");
        ck_assert_str_eq(res.error, "org.groupd1.Error.Denied");

        ck_assert_uint_eq(count_leases(c), 0);
        group_drivers(c, 6, after, sizeof after);
        ck_assert_str_eq(after, before6);
        group_drivers(c, 2, after, sizeof after);
        ck_assert_str_eq(after, before2);
        ck_assert(!prop_bool(c, PATH "/group/6", NAME ".Group", "Leased"));

        /* The never rules apply to everyone, root included, after polkit. */
        Acquired a;
        ck_assert(!acquire(c, "5", NULL, &a));
        ck_assert_str_eq(a.error, "org.groupd1.Error.Denied");
        ck_assert_ptr_nonnull(strstr(a.message, "never"));
        disconnect_bus(c);
}
END_TEST

START_TEST(test_name_vanishes_lease_ends) {
        DBusConnection *watch = connect_bus(), *owner;
        DBusMessage *m;
        char buf[256], reason[64], name[64];
        Acquired a;

        settle(watch);
        subscribe(watch);
        owner = connect_bus();
        snprintf(name, sizeof name, "%s", dbus_bus_get_unique_name(owner));

        ck_assert_msg(acquire(owner, "6", "vm6", &a), "%s: %s", a.error, a.message);
        m = wait_signal(watch, "LeaseStarted", PATH, a.path);
        ck_assert_msg(m, "no LeaseStarted");
        dbus_message_unref(m);
        prop_string(watch, a.path, NAME ".Lease", "Owner", buf, sizeof buf);
        ck_assert_str_eq(buf, "bus-name");
        prop_string(watch, a.path, NAME ".Lease", "OwnerBusName", buf, sizeof buf);
        ck_assert_str_eq(buf, name);

        /* The caller dies: its fds close, it leaves the bus. */
        acquired_done(&a);
        disconnect_bus(owner);
        wait_lease_ended(watch, a.path, reason, sizeof reason);
        ck_assert_str_eq(reason, "connection-closed");
        m = wait_signal(watch, "InterfacesRemoved", PATH, a.path);
        ck_assert_msg(m, "no InterfacesRemoved");
        dbus_message_unref(m);
        ck_assert(!managed_has(watch, a.path));
        ck_assert(!prop_bool(watch, PATH "/group/6", NAME ".Group", "Leased"));
        disconnect_bus(watch);
}
END_TEST

START_TEST(test_properties_and_object_manager) {
        DBusConnection *c = connect_bus(), *other;
        DBusMessage *m;
        char buf[256], reason[64];
        Acquired a;

        settle(c);
        subscribe(c);
        ck_assert_uint_eq(prop_u32(c, PATH, MGR, "NLeases"), 0);
        prop_string(c, PATH, MGR, "Host", buf, sizeof buf);
        ck_assert_str_eq(buf, "sim");

        ck_assert_msg(acquire(c, "1", "vm-props", &a), "%s: %s", a.error, a.message);
        m = wait_signal(c, "InterfacesAdded", PATH, a.path);
        ck_assert_msg(m, "no InterfacesAdded for %s", a.path);
        dbus_message_unref(m);
        ck_assert(wait_group_leased_changed(c, PATH "/group/1"));
        ck_assert(managed_has(c, a.path));
        ck_assert_uint_eq(count_leases(c), 1);
        ck_assert_uint_eq(prop_u32(c, PATH, MGR, "NLeases"), 1);
        prop_string(c, a.path, NAME ".Lease", "State", buf, sizeof buf);
        ck_assert_str_eq(buf, "active");
        prop_string(c, a.path, NAME ".Lease", "Label", buf, sizeof buf);
        ck_assert_str_eq(buf, "vm-props");
        ck_assert_uint_eq(prop_u32(c, a.path, NAME ".Lease", "Uid"), 0);
        ck_assert(prop_bool(c, PATH "/group/1", NAME ".Group", "Leased"));
        prop_string(c, PATH "/group/1", NAME ".Group", "Lease", buf, sizeof buf);
        ck_assert_str_eq(buf, a.path);
        prop_string(c, PATH "/group/1", NAME ".Group", "HolderLabel", buf, sizeof buf);
        ck_assert_str_eq(buf, "vm-props");

        /* A second caller is refused, with the holder named. */
        other = connect_bus();
        Acquired b;
        ck_assert(!acquire(other, "1", NULL, &b));
        ck_assert_str_eq(b.error, "org.groupd1.Error.Busy");
        ck_assert_msg(strstr(b.message, "vm-props"), "busy message does not name the holder: %s", b.message);
        disconnect_bus(other);

        acquired_done(&a);
        ck_assert(release_token(c, a.token, NULL, 0));
        wait_lease_ended(c, a.path, reason, sizeof reason);
        ck_assert_str_eq(reason, "released");
        m = wait_signal(c, "InterfacesRemoved", PATH, a.path);
        ck_assert_msg(m, "no InterfacesRemoved");
        dbus_message_unref(m);
        ck_assert(!wait_group_leased_changed(c, PATH "/group/1"));
        ck_assert(!managed_has(c, a.path));
        ck_assert_uint_eq(prop_u32(c, PATH, MGR, "NLeases"), 0);
        ck_assert(!prop_bool(c, PATH "/group/1", NAME ".Group", "Leased"));
        prop_string(c, PATH "/group/1", NAME ".Group", "Lease", buf, sizeof buf);
        ck_assert_str_eq(buf, "/");

        /* The object is gone too. */
        m = dbus_message_new_method_call(NAME, a.path, DBUS_INTERFACE_PROPERTIES, "GetAll");
        const char *iface = NAME ".Lease";
        ck_assert(dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID));
        ck_assert(!send_call(c, m, buf, sizeof buf, NULL, 0));
        ck_assert_str_eq(buf, DBUS_ERROR_UNKNOWN_OBJECT);
        disconnect_bus(c);
}
END_TEST

START_TEST(test_process_and_lease_fd_owners_outlive_the_caller) {
        DBusConnection *watch = connect_bus(), *caller;
        const char *specs6[] = { "6", NULL }, *specs3[] = { "3", NULL };
        char reason[64], name[64];
        Acquired a, b;
        DBusMessage *m;
        pid_t child;
        int pidfd;

        settle(watch);
        subscribe(watch);

        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        pidfd = (int) syscall(SYS_pidfd_open, child, 0);
        ck_assert_int_ge(pidfd, 0);

        caller = connect_bus();
        snprintf(name, sizeof name, "%s", dbus_bus_get_unique_name(caller));
        ck_assert_msg(acquire_opts(caller, specs6, "qemu", "process", pidfd, NULL, &a), "%s: %s", a.error, a.message);
        ck_assert_int_lt(a.lease_fd, 0);
        ck_assert_msg(acquire_opts(caller, specs3, "guarded", "lease-fd", -EBADF, NULL, &b), "%s: %s", b.error,
                      b.message);
        ck_assert_int_ge(b.lease_fd, 0);
        ck_assert_uint_eq(prop_u32(watch, a.path, NAME ".Lease", "OwnerPid"), (uint32_t) child);

        /* The caller (libvirt, say) goes away; once groupd has seen that, both leases are still there. */
        disconnect_bus(caller);
        m = wait_signal(watch, "NameOwnerChanged", NULL, name);
        ck_assert_msg(m, "the caller's name did not vanish");
        dbus_message_unref(m);
        ck_assert_uint_eq(count_leases(watch), 2);
        ck_assert(managed_has(watch, a.path) && managed_has(watch, b.path));

        /* The VMMs let go of the groups (so that the kernel does not hold the unbind up); then the owner
         * process exits: its lease ends. */
        b.container = safe_close(b.container);
        b.group_fds[0] = safe_close(b.group_fds[0]);
        acquired_done(&a);
        kill(child, SIGKILL);
        ck_assert_int_eq(waitpid(child, NULL, 0), child);
        wait_lease_ended(watch, a.path, reason, sizeof reason);
        ck_assert_str_eq(reason, "owner-exited");

        /* Every copy of the lease fd closed: that lease ends. */
        b.lease_fd = safe_close(b.lease_fd);
        wait_lease_ended(watch, b.path, reason, sizeof reason);
        ck_assert_str_eq(reason, "lease-fd-closed");

        safe_close(pidfd);
        acquired_done(&b);
        disconnect_bus(watch);
}
END_TEST

START_TEST(test_release_other_needs_polkit) {
        DBusConnection *c = connect_bus(), *owner;
        char reason[64];
        AsResult res;
        Acquired a;

        settle(c);
        subscribe(c);
        owner = connect_bus();
        ck_assert_msg(acquire(owner, "2", "nic", &a), "%s: %s", a.error, a.message);

        run_as(UID_NOBODY, as_lease_release, a.path, &res);
        ck_assert(!res.ok);
        ck_assert_str_eq(res.error, "org.groupd1.Error.Denied");
        ck_assert_uint_eq(count_leases(c), 1);

        /* uid 1: no rule decides, so the default (auth_admin) asks for authentication, which this caller
         * did not allow. */
        run_as(UID_DAEMON, as_lease_release, a.path, &res);
        ck_assert(!res.ok);
        ck_assert_str_eq(res.error, DBUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
        ck_assert_uint_eq(count_leases(c), 1);

        /* Another root connection: polkit authorizes root, and the lease is revoked (the VMM has let go). */
        acquired_done(&a);
        ck_assert(!streq(dbus_bus_get_unique_name(c), dbus_bus_get_unique_name(owner)));
        DBusMessage *m = dbus_message_new_method_call(NAME, a.path, NAME ".Lease", "Release");
        DBusMessage *r = send_call(c, m, NULL, 0, NULL, 0);
        ck_assert_ptr_nonnull(r);
        dbus_message_unref(r);
        wait_lease_ended(c, a.path, reason, sizeof reason);
        ck_assert_str_eq(reason, "revoked");

        disconnect_bus(owner);
        disconnect_bus(c);
}
END_TEST

START_TEST(test_bad_input_is_named) {
        DBusConnection *c = connect_bus();
        const char *specs[] = { "1", NULL };
        char err[256];
        Acquired a;

        settle(c);
        ck_assert(!acquire_opts(c, specs, NULL, NULL, -EBADF, "colour", &a));
        ck_assert_str_eq(a.error, "org.groupd1.Error.Invalid");
        ck_assert_ptr_nonnull(strstr(a.message, "\"colour\""));
        ck_assert(!acquire_opts(c, specs, NULL, "process", -EBADF, NULL, &a));
        ck_assert_str_eq(a.error, "org.groupd1.Error.Invalid");
        ck_assert_ptr_nonnull(strstr(a.message, "owner-pidfd"));
        ck_assert(!acquire_opts(c, specs, NULL, "everyone", -EBADF, NULL, &a));
        ck_assert_str_eq(a.error, "org.groupd1.Error.Invalid");
        ck_assert(!acquire(c, "zz", NULL, &a));
        ck_assert_str_eq(a.error, "org.groupd1.Error.Invalid");
        ck_assert_ptr_nonnull(strstr(a.message, "\"zz\""));
        ck_assert(!acquire(c, "99", NULL, &a));
        ck_assert_str_eq(a.error, "org.groupd1.Error.NotFound");

        ck_assert(!release_token(c, "nonsense", err, sizeof err));
        ck_assert_str_eq(err, "org.groupd1.Error.Invalid");
        ck_assert(!release_token(c, "0123456789abcdef0123456789abcdef", err, sizeof err));
        ck_assert_str_eq(err, "org.groupd1.Error.BadToken");

        DBusMessage *m = dbus_message_new_method_call(NAME, PATH, MGR, "GetGroup");
        dbus_uint32_t n = 1;
        ck_assert(dbus_message_append_args(m, DBUS_TYPE_UINT32, &n, DBUS_TYPE_INVALID));
        ck_assert(!send_call(c, m, err, sizeof err, NULL, 0));
        ck_assert_str_eq(err, DBUS_ERROR_INVALID_ARGS);

        m = dbus_message_new_method_call(NAME, PATH, MGR, "GetGroup");
        const char *spec = "0000:03:00.1";
        ck_assert(dbus_message_append_args(m, DBUS_TYPE_STRING, &spec, DBUS_TYPE_INVALID));
        DBusMessage *r = send_call(c, m, err, sizeof err, NULL, 0);
        ck_assert_msg(r, "GetGroup: %s", err);
        const char *p;
        ck_assert(dbus_message_get_args(r, NULL, DBUS_TYPE_OBJECT_PATH, &p, DBUS_TYPE_INVALID));
        ck_assert_str_eq(p, PATH "/group/3");
        dbus_message_unref(r);

        ck_assert_uint_eq(count_leases(c), 0);
        disconnect_bus(c);
}
END_TEST

/* Every Acquire option is known by name and checked for its type: a value of the wrong type is refused
 * naming the option, and the list of known options that an unknown one gets names them all. */
START_TEST(test_every_option_checks_its_type) {
        static const struct {
                const char *key;
                int wrong;   /* a type the option does not take */
        } options[] = {
                { "label", DBUS_TYPE_UINT32 },           { "owner", DBUS_TYPE_UINT32 },
                { "owner-pidfd", DBUS_TYPE_UINT32 },     { "configure-iommu", DBUS_TYPE_UINT32 },
                { "memlock", DBUS_TYPE_STRING },         { "guest-ram", DBUS_TYPE_UINT32 },
                { "viommu", DBUS_TYPE_STRING },          { "kvm", DBUS_TYPE_UINT32 },
        };
        DBusConnection *c = connect_bus();
        const char *specs[] = { "1", NULL };
        Acquired a;
        char want[64], known[1024];

        settle(c);
        ck_assert(!acquire_opts(c, specs, NULL, NULL, -EBADF, "colour", &a));
        ck_assert_str_eq(a.error, "org.groupd1.Error.Invalid");
        snprintf(known, sizeof known, "%s", a.message);
        for (size_t i = 0; i < ELEMENTSOF(options); i++) {
                Opt o = { .key = options[i].key, .type = options[i].wrong, .u = 1, .s = "x" };

                ck_assert_msg(strstr(known, options[i].key), "the known options (%s) lack %s", known,
                              options[i].key);
                ck_assert_msg(!acquire_with(c, specs, &o, 1, &a), "option %s of the wrong type was taken",
                              options[i].key);
                ck_assert_str_eq(a.error, "org.groupd1.Error.Invalid");
                snprintf(want, sizeof want, "option \"%s\" has the wrong type", options[i].key);
                ck_assert_msg(strstr(a.message, want), "%s: %s", options[i].key, a.message);
        }
        ck_assert_uint_eq(count_leases(c), 0);
        ck_assert(!prop_bool(c, PATH "/group/1", NAME ".Group", "Leased"));
        disconnect_bus(c);
}
END_TEST

/* Callers that leave right after asking, while groupd still waits for the bus or polkit or the host:
 * nothing may be left held. */
START_TEST(test_caller_vanishes_mid_request) {
        DBusConnection *c = connect_bus();
        char buf[256];

        settle(c);
        for (int i = 0; i < 20; i++) {
                DBusConnection *gone = connect_bus();
                DBusMessage *m = dbus_message_new_method_call(NAME, PATH, MGR, "Acquire");
                DBusMessageIter it, a, d;
                const char *spec = "1";

                dbus_message_iter_init_append(m, &it);
                ck_assert(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &a));
                ck_assert(dbus_message_iter_append_basic(&a, DBUS_TYPE_STRING, &spec));
                ck_assert(dbus_message_iter_close_container(&it, &a));
                ck_assert(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &d));
                ck_assert(dbus_message_iter_close_container(&it, &d));
                ck_assert(dbus_connection_send(gone, m, NULL));
                dbus_message_unref(m);
                dbus_connection_flush(gone);
                if (i % 2)
                        usleep(2000 * (unsigned) i);  /* vanish at different stages */
                disconnect_bus(gone);
        }
        settle(c);
        ck_assert(!prop_bool(c, PATH "/group/1", NAME ".Group", "Leased"));
        group_drivers(c, 1, buf, sizeof buf);
        ck_assert_str_eq(buf, "0000:01:00.0=nouveau 0000:01:00.1=snd_hda_intel");
        disconnect_bus(c);
}
END_TEST

/* Run after polkitd was stopped: D-Bus callers other than root are refused (fail closed), properties
 * still answer. Root needs no polkit (polkitd always authorizes it). */
START_TEST(test_without_polkitd_nothing_is_granted) {
        DBusConnection *c = connect_bus();
        static const char *const daemon_g1[] = { "1", "no-polkit" };
        AsResult res;
        Acquired a;
        char reason[64];

        subscribe(c);
        run_as(UID_DAEMON, as_acquire, daemon_g1, &res);
        ck_assert_msg(!res.ok, "uid 1 was given group 1 without polkitd");
        ck_assert_str_eq(res.error, "org.groupd1.Error.Denied");
        ck_assert_msg(strstr(res.message, "polkit"), "%s", res.message);
        ck_assert_uint_eq(prop_u32(c, PATH, MGR, "NLeases"), 0);
        ck_assert(!prop_bool(c, PATH "/group/1", NAME ".Group", "Leased"));

        ck_assert_msg(acquire(c, "1", NULL, &a), "root without polkitd: %s: %s", a.error, a.message);
        char path[256], token[64];
        snprintf(path, sizeof path, "%s", a.path);
        snprintf(token, sizeof token, "%s", a.token);
        acquired_done(&a); /* the fds closed, as a VMM does: else the release waits for us */
        ck_assert(release_token(c, token, NULL, 0));
        wait_lease_ended(c, path, reason, sizeof reason);
        ck_assert_str_eq(reason, "released");
        disconnect_bus(c);
}
END_TEST

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* One Acquire and Release round trip, measured: GROUPD_DBUS_ROUNDS times (default 100). The figure goes to
 * stderr; the test asserts only that every round works. */
START_TEST(test_round_trip) {
        DBusConnection *c = connect_bus();
        const char *env = getenv("GROUPD_DBUS_ROUNDS");
        size_t rounds = env ? (size_t) strtoul(env, NULL, 10) : 100;
        uint64_t *calls = calloc(rounds, sizeof *calls), *full = calloc(rounds, sizeof *full);
        char reason[64];

        ck_assert(calls && full && rounds > 0);
        settle(c);
        subscribe(c);
        for (size_t i = 0; i < rounds; i++) {
                Acquired a;
                uint64_t t0 = now_usec(), t1;

                ck_assert_msg(acquire(c, "2", "bench", &a), "round %zu: %s: %s", i, a.error, a.message);
                acquired_done(&a);
                ck_assert(release_token(c, a.token, NULL, 0));
                t1 = now_usec();
                wait_lease_ended(c, a.path, reason, sizeof reason);
                calls[i] = t1 - t0;
                full[i] = now_usec() - t0;
        }
        qsort(calls, rounds, sizeof *calls, cmp_u64);
        qsort(full, rounds, sizeof *full, cmp_u64);
        fprintf(stderr,
                "test-dbus: %zu rounds on the private bus: Acquire+Release calls median %.3f ms (p90 %.3f ms); "
                "until LeaseEnded median %.3f ms\n",
                rounds, calls[rounds / 2] / 1000.0, calls[rounds * 9 / 10] / 1000.0, full[rounds / 2] / 1000.0);

        /* The same rounds on the native socket, for comparison (its leases show on the bus too). */
        const char *sock = getenv("GROUPD_TEST_SOCKET");
        GdClient *native = NULL;
        ck_assert_ptr_nonnull(sock);
        ck_assert_int_ge(gd_client_connect(sock, &native), 0);
        for (size_t i = 0; i < rounds; i++) {
                const char *specs[] = { "2" };
                GdAcquireOptions opts = { .label = "bench-native", .owner_pidfd = -EBADF };
                GdClientLease *l = NULL;
                char path[128], token[GD_TOKEN_LEN + 1];
                uint64_t t0 = now_usec(), t1;

                ck_assert_int_ge(gd_client_acquire(native, specs, 1, &opts, &l), 0);
                snprintf(path, sizeof path, PATH "/lease/%s", l->lease.id);
                snprintf(token, sizeof token, "%s", l->token);
                gd_client_lease_free(l);
                ck_assert_int_ge(gd_client_release(native, token), 0);
                t1 = now_usec();
                wait_lease_ended(c, path, reason, sizeof reason);
                calls[i] = t1 - t0;
                full[i] = now_usec() - t0;
        }
        gd_client_free(native);
        qsort(calls, rounds, sizeof *calls, cmp_u64);
        qsort(full, rounds, sizeof *full, cmp_u64);
        fprintf(stderr, "test-dbus: the same on the native socket: calls median %.3f ms; until LeaseEnded median %.3f ms\n",
                calls[rounds / 2] / 1000.0, full[rounds / 2] / 1000.0);

        /* Where the time goes: a bare round trip to the daemon (Peer.Ping, answered by libdbus), and one
         * through the caller lookup and polkit (ListLeases: credentials, CheckAuthorization, reply). */
        for (size_t i = 0; i < rounds; i++) {
                uint64_t t0 = now_usec();
                dbus_message_unref(call0(c, PATH, "org.freedesktop.DBus.Peer", "Ping"));
                calls[i] = now_usec() - t0;
                t0 = now_usec();
                ck_assert_uint_eq(count_leases(c), 0);
                full[i] = now_usec() - t0;
        }
        qsort(calls, rounds, sizeof *calls, cmp_u64);
        qsort(full, rounds, sizeof *full, cmp_u64);
        fprintf(stderr, "test-dbus: Peer.Ping median %.3f ms; ListLeases (credentials + polkit) median %.3f ms\n",
                calls[rounds / 2] / 1000.0, full[rounds / 2] / 1000.0);
        free(calls);
        free(full);
        disconnect_bus(c);
}
END_TEST

/* ---------------------------------------------------------------- DMA facts, memlock, kvm */

#define GROUP NAME ".Group"
#define LEASE NAME ".Lease"

/* PropertiesChanged of a group: DmaSource from the changed set (it must be there), whether DmaNote was
 * invalidated, and Leased: 1 or 0 when in the changed set, -1 when not (only what changed is sent). */
static int wait_group_dma_changed(DBusConnection *c, const char *path, char *source, size_t size,
                                  bool *note_invalidated) {
        DBusMessage *m = wait_signal(c, "PropertiesChanged", path, GROUP);
        DBusMessageIter it, d, e, v, inv;
        dbus_bool_t leased = FALSE;
        bool have_leased = false;

        ck_assert_msg(m, "no PropertiesChanged for %s", path);
        source[0] = 0;
        *note_invalidated = false;
        dbus_message_iter_init(m, &it);
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &d);
        for (; dbus_message_iter_get_arg_type(&d) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&d)) {
                const char *k, *str;
                dbus_message_iter_recurse(&d, &e);
                dbus_message_iter_get_basic(&e, &k);
                dbus_message_iter_next(&e);
                dbus_message_iter_recurse(&e, &v);
                ck_assert_msg(!streq(k, "DmaNote"), "DmaNote is only invalidated, yet it came with a value");
                /* A lease changes neither: only what changed is sent. */
                ck_assert_msg(!streq(k, "Type") && !streq(k, "Regions"), "%s sent, yet a lease cannot change it", k);
                if (streq(k, "Leased")) {
                        dbus_message_iter_get_basic(&v, &leased);
                        have_leased = true;
                } else if (streq(k, "DmaSource")) {
                        dbus_message_iter_get_basic(&v, &str);
                        snprintf(source, size, "%s", str);
                }
        }
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &inv);
        for (; dbus_message_iter_get_arg_type(&inv) == DBUS_TYPE_STRING; dbus_message_iter_next(&inv)) {
                const char *k;
                dbus_message_iter_get_basic(&inv, &k);
                *note_invalidated = *note_invalidated || streq(k, "DmaNote");
        }
        dbus_message_unref(m);
        ck_assert_msg(source[0], "PropertiesChanged of %s lacks DmaSource", path);
        return have_leased ? !!leased : -1;
}

/* The simulated host's x86 IOMMU, as the native test-integration sees it: two IOVA ranges around the MSI
 * window 0xfee00000-0xfeefffff, 4K/2M/1G pages, 65535 mappings. */
static void assert_sim_facts(DBusConnection *c, const char *path, const char *iface) {
        uint64_t r[8][2];
        size_t n = prop_ranges(c, path, iface, "IovaRanges", r, ELEMENTSOF(r));

        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(r[0][0], 0);
        ck_assert_uint_eq(r[0][1], 0xfedfffff);
        ck_assert_uint_eq(r[1][0], 0xfef00000);
        for (size_t i = 0; i < n; i++)
                ck_assert(r[i][1] < 0xfee00000 || r[i][0] > 0xfeefffff);
        ck_assert_uint_eq(prop_u64(c, path, iface, "PageSizes"), 0x40201000);
        ck_assert_uint_eq(prop_u32(c, path, iface, "DmaAvailable"), 65535);
}

START_TEST(test_dma_facts_are_properties) {
        DBusConnection *c = connect_bus();
        const char *specs[] = { "2", NULL };
        const Opt opts[] = { { "configure-iommu", DBUS_TYPE_BOOLEAN, 1 } };
        const char *g2 = PATH "/group/2";
        char buf[512], reason[64];
        uint64_t r[4][2];
        bool inval;
        int leased;
        Acquired a;

        settle(c);
        subscribe(c);
        /* A free group: no container to ask, only its reserved regions; the note says why. */
        prop_string(c, g2, GROUP, "DmaSource", buf, sizeof buf);
        ck_assert_str_eq(buf, "sysfs");
        ck_assert_uint_eq(prop_ranges(c, g2, GROUP, "IovaRanges", r, ELEMENTSOF(r)), 0);
        ck_assert_uint_eq(prop_u64(c, g2, GROUP, "PageSizes"), 0);
        ck_assert_uint_eq(prop_u32(c, g2, GROUP, "DmaAvailable"), 0);
        prop_string(c, g2, GROUP, "DmaNote", buf, sizeof buf);
        ck_assert_msg(strstr(buf, "not leased"), "DmaNote of a free group: %s", buf);

        /* Leased with the IOMMU configured: the container's facts, on the group and on the lease. */
        ck_assert_msg(acquire_with(c, specs, opts, ELEMENTSOF(opts), &a), "%s: %s", a.error, a.message);
        leased = wait_group_dma_changed(c, g2, buf, sizeof buf, &inval);
        ck_assert_int_eq(leased, 1);
        ck_assert_str_eq(buf, "container");
        ck_assert(inval);
        prop_string(c, g2, GROUP, "DmaSource", buf, sizeof buf);
        ck_assert_str_eq(buf, "container");
        prop_string(c, g2, GROUP, "DmaNote", buf, sizeof buf);
        ck_assert_str_eq(buf, "");
        assert_sim_facts(c, g2, GROUP);
        assert_sim_facts(c, a.path, LEASE);
        ck_assert_uint_ne(prop_u32(c, a.path, LEASE, "IommuType"), 0);
        ck_assert_uint_eq(prop_u64(c, a.path, LEASE, "MemlockLimit"), 0);
        ck_assert(!prop_bool(c, a.path, LEASE, "KvmRegistered"));

        /* Released: the group's facts are sysfs' again, announced (the note invalidated). */
        acquired_done(&a);
        ck_assert(release_token(c, a.token, NULL, 0));
        /* First when the release begins (the container is no longer asked: only the DMA facts, which are
         * all that changed; Leased is not sent again), then when it ended. */
        leased = wait_group_dma_changed(c, g2, buf, sizeof buf, &inval);
        ck_assert_int_eq(leased, -1);
        ck_assert_str_eq(buf, "sysfs");
        wait_lease_ended(c, a.path, reason, sizeof reason);
        leased = wait_group_dma_changed(c, g2, buf, sizeof buf, &inval);
        ck_assert_int_eq(leased, 0);
        ck_assert_str_eq(buf, "sysfs");
        ck_assert(inval);
        prop_string(c, g2, GROUP, "DmaNote", buf, sizeof buf);
        ck_assert_msg(strstr(buf, "not leased"), "DmaNote after the release: %s", buf);

        /* Without configure-iommu: no facts, and the group's note says how to get them. */
        ck_assert_msg(acquire(c, "2", NULL, &a), "%s: %s", a.error, a.message);
        ck_assert_uint_eq(prop_u32(c, a.path, LEASE, "IommuType"), 0);
        ck_assert_uint_eq(prop_ranges(c, a.path, LEASE, "IovaRanges", r, ELEMENTSOF(r)), 0);
        ck_assert_uint_eq(prop_u64(c, a.path, LEASE, "PageSizes"), 0);
        prop_string(c, g2, GROUP, "DmaSource", buf, sizeof buf);
        ck_assert_str_eq(buf, "sysfs");
        prop_string(c, g2, GROUP, "DmaNote", buf, sizeof buf);
        ck_assert_msg(strstr(buf, "configure-iommu"), "DmaNote of a lease without facts: %s", buf);
        acquired_done(&a);
        ck_assert(release_token(c, a.token, NULL, 0));
        wait_lease_ended(c, a.path, reason, sizeof reason);
        disconnect_bus(c);
}
END_TEST

/* Memlock and kvm as root (polkit is not asked; the policy lets root raise the limit): the owner's limit is
 * raised to 8 GiB + 1 GiB and shown on the lease, or, where groupd lacks CAP_SYS_RESOURCE (as it runs
 * here, the same as this test), the acquire is refused saying so and rolled back, as test-integration
 * expects of the native socket. */
START_TEST(test_acquire_memlock_and_kvm) {
        DBusConnection *c = connect_bus();
        const char *specs[] = { "2", NULL };
        char buf[256], reason[64];
        int pidfd;
        pid_t pid;
        Acquired a;

        settle(c);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit low = { 1 << 20, 1 << 20 };
                (void) setrlimit(RLIMIT_MEMLOCK, &low);
                pause();
                _exit(0);
        }
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        ck_assert_int_ge(pidfd, 0);
        const Opt opts[] = {
                { "owner", DBUS_TYPE_STRING, .s = "process" },
                { "owner-pidfd", DBUS_TYPE_UNIX_FD, (uint64_t) pidfd },
                { "configure-iommu", DBUS_TYPE_BOOLEAN, 1 },
                { "memlock", DBUS_TYPE_BOOLEAN, 1 },
                { "guest-ram", DBUS_TYPE_UINT64, UINT64_C(8) << 30 },
                { "kvm", DBUS_TYPE_BOOLEAN, 1 },
        };
        usleep(100000);   /* the child's setrlimit */
        if (test_have_cap(CAP_SYS_RESOURCE)) {
                struct rlimit rl;
                ck_assert_msg(acquire_with(c, specs, opts, ELEMENTSOF(opts), &a), "%s: %s", a.error, a.message);
                ck_assert_uint_eq(prop_u64(c, a.path, LEASE, "MemlockLimit"), UINT64_C(9) << 30);
                ck_assert(prop_bool(c, a.path, LEASE, "KvmRegistered"));
                ck_assert_int_eq(prlimit(pid, RLIMIT_MEMLOCK, NULL, &rl), 0);
                ck_assert_uint_eq(rl.rlim_cur, UINT64_C(9) << 30);
                assert_sim_facts(c, a.path, LEASE);
                acquired_done(&a);
                ck_assert(release_token(c, a.token, NULL, 0));
                subscribe(c);
                wait_lease_ended(c, a.path, reason, sizeof reason);
        } else {
                ck_assert(!acquire_with(c, specs, opts, ELEMENTSOF(opts), &a));
                ck_assert_str_eq(a.error, "org.groupd1.Error.Host");
                ck_assert_msg(strstr(a.message, "CAP_SYS_RESOURCE"), "%s", a.message);
                /* Rolled back: no lease, the device is back on its driver. */
                ck_assert_uint_eq(count_leases(c), 0);
                group_drivers(c, 2, buf, sizeof buf);
                ck_assert_str_eq(buf, "0000:02:00.0=e1000e");
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(pidfd);
        disconnect_bus(c);
}
END_TEST

/* kvm alone: recorded on the lease (groupd never touches the VM's kvm-vfio device). */
START_TEST(test_acquire_kvm_is_recorded) {
        DBusConnection *c = connect_bus();
        const char *specs[] = { "2", NULL };
        const Opt opts[] = { { "kvm", DBUS_TYPE_BOOLEAN, 1 } };
        char reason[64];
        Acquired a;

        settle(c);
        subscribe(c);
        ck_assert_msg(acquire_with(c, specs, opts, ELEMENTSOF(opts), &a), "%s: %s", a.error, a.message);
        ck_assert(prop_bool(c, a.path, LEASE, "KvmRegistered"));
        ck_assert_uint_eq(prop_u64(c, a.path, LEASE, "MemlockLimit"), 0);
        acquired_done(&a);
        ck_assert(release_token(c, a.token, NULL, 0));
        wait_lease_ended(c, a.path, reason, sizeof reason);
        disconnect_bus(c);
}
END_TEST

/* Each bad memlock or kvm option is refused naming it, and nothing is held. */
START_TEST(test_bad_memlock_options_are_named) {
        DBusConnection *c = connect_bus();
        const char *specs[] = { "2", NULL };
        static const struct {
                Opt opts[2];
                size_t n;
                const char *named;
        } cases[] = {
                { { { "memlock", DBUS_TYPE_STRING, .s = "yes" } }, 1, "\"memlock\"" },
                { { { "kvm", DBUS_TYPE_UINT32, 1 } }, 1, "\"kvm\"" },
                { { { "viommu", DBUS_TYPE_STRING, .s = "x" } }, 1, "\"viommu\"" },
                { { { "memlock", DBUS_TYPE_BOOLEAN, 1 }, { "guest-ram", DBUS_TYPE_UINT32, 1u << 30 } }, 2, "\"guest-ram\"" },
                { { { "memlock", DBUS_TYPE_BOOLEAN, 1 } }, 1, "\"guest-ram\"" },
                { { { "memlock", DBUS_TYPE_BOOLEAN, 1 }, { "guest-ram", DBUS_TYPE_UINT64, 0 } }, 2, "\"guest-ram\"" },
                { { { "memlock", DBUS_TYPE_BOOLEAN, 1 }, { "guest-ram", DBUS_TYPE_UINT64, UINT64_MAX } }, 2,
                  "\"guest-ram\"" },
                { { { "guest-ram", DBUS_TYPE_UINT64, 1u << 30 } }, 1, "\"guest-ram\"" },
                { { { "viommu", DBUS_TYPE_BOOLEAN, 1 } }, 1, "\"viommu\"" },
        };
        Acquired a;

        settle(c);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ck_assert_msg(!acquire_with(c, specs, cases[i].opts, cases[i].n, &a), "case %zu was taken", i);
                ck_assert_str_eq(a.error, "org.groupd1.Error.Invalid");
                ck_assert_msg(strstr(a.message, cases[i].named), "case %zu: \"%s\" does not name %s", i, a.message,
                              cases[i].named);
        }
        ck_assert_uint_eq(count_leases(c), 0);
        disconnect_bus(c);
}
END_TEST

/* uid 1 may acquire group 3 (polkit rules), but org.groupd1.memlock falls to the action's default
 * (auth_admin, and there is no agent): refused, saying so, nothing held. */
static void as_acquire_memlock(DBusConnection *c, const void *arg, AsResult *res) {
        const char *specs[] = { "3", NULL };
        const Opt opts[] = {
                { "memlock", DBUS_TYPE_BOOLEAN, 1 },
                { "guest-ram", DBUS_TYPE_UINT64, UINT64_C(1) << 30 },
        };
        Acquired a;

        res->ok = acquire_with(c, specs, opts, ELEMENTSOF(opts), &a);
        snprintf(res->error, sizeof res->error, "%s", a.error);
        snprintf(res->message, sizeof res->message, "%s", a.message);
        acquired_done(&a);
        if (res->ok)
                (void) release_token(c, a.token, NULL, 0);
}

START_TEST(test_memlock_needs_its_own_polkit_action) {
        DBusConnection *c = connect_bus();
        const char *plain[] = { "3", NULL };
        AsResult res;

        settle(c);
        run_as(UID_DAEMON, as_acquire_memlock, NULL, &res);
        ck_assert(!res.ok);
        /* Not in an active session: auth_admin is a challenge nobody can answer here. */
        ck_assert_msg(streq(res.error, "org.groupd1.Error.Denied") ||
                      streq(res.error, DBUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED), "%s", res.error);
        ck_assert_msg(strstr(res.message, "org.groupd1.memlock"), "%s", res.message);
        ck_assert_uint_eq(count_leases(c), 0);
        /* The same acquire without memlock is allowed: it was the memlock action that refused. */
        run_as(UID_DAEMON, as_acquire, plain, &res);
        ck_assert_msg(res.ok, "%s: %s", res.error, res.message);
        settle(c);
        disconnect_bus(c);
}
END_TEST

/* MemlockLimit(specs, guest_ram, viommu): the arithmetic of common/memlock.h with the devices groupd
 * counts. */
static bool memlock_limit_call(DBusConnection *c, const char *const *specs, uint64_t ram, bool viommu,
                               uint64_t *ret, char *err, size_t size) {
        DBusMessage *m = dbus_message_new_method_call(NAME, PATH, MGR, "MemlockLimit"), *r;
        DBusMessageIter it, arr;
        dbus_uint64_t t = ram, limit = 0;
        dbus_bool_t b = viommu;

        dbus_message_iter_init_append(m, &it);
        ck_assert(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &arr));
        for (size_t i = 0; specs[i]; i++)
                ck_assert(dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &specs[i]));
        ck_assert(dbus_message_iter_close_container(&it, &arr));
        ck_assert(dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT64, &t));
        ck_assert(dbus_message_iter_append_basic(&it, DBUS_TYPE_BOOLEAN, &b));
        r = send_call(c, m, err, size, NULL, 0);
        if (!r)
                return false;
        ck_assert(dbus_message_get_args(r, NULL, DBUS_TYPE_UINT64, &limit, DBUS_TYPE_INVALID));
        dbus_message_unref(r);
        *ret = limit;
        return true;
}

START_TEST(test_memlock_limit) {
        DBusConnection *c = connect_bus();
        const char *two[] = { "2", NULL }, *two_twice[] = { "2", "0000:02:00.0", NULL },
                   *three[] = { "3", NULL }, *both[] = { "2", "3", NULL }, *none[] = { "99", NULL };
        char err[256];
        uint64_t limit;

        ck_assert_msg(memlock_limit_call(c, two, UINT64_C(8) << 30, false, &limit, err, sizeof err), "%s", err);
        ck_assert_uint_eq(limit, UINT64_C(9663676416));
        /* The same group named twice counts once. */
        ck_assert(memlock_limit_call(c, two_twice, UINT64_C(8) << 30, true, &limit, err, sizeof err));
        ck_assert_uint_eq(limit, UINT64_C(9663676416));
        /* vIOMMU: once per device; group 3 has two, group 2 one. */
        ck_assert(memlock_limit_call(c, three, UINT64_C(8) << 30, true, &limit, err, sizeof err));
        ck_assert_uint_eq(limit, (UINT64_C(16) << 30) + (UINT64_C(1) << 30));
        ck_assert(memlock_limit_call(c, both, UINT64_C(8) << 30, true, &limit, err, sizeof err));
        ck_assert_uint_eq(limit, (UINT64_C(24) << 30) + (UINT64_C(1) << 30));
        ck_assert(memlock_limit_call(c, both, UINT64_C(8) << 30, false, &limit, err, sizeof err));
        ck_assert_uint_eq(limit, UINT64_C(9663676416));

        ck_assert(!memlock_limit_call(c, two, 0, false, &limit, err, sizeof err));
        ck_assert_str_eq(err, "org.groupd1.Error.Invalid");
        ck_assert(!memlock_limit_call(c, two, UINT64_MAX, false, &limit, err, sizeof err));
        ck_assert_str_eq(err, "org.groupd1.Error.Invalid");
        ck_assert(!memlock_limit_call(c, none, UINT64_C(8) << 30, false, &limit, err, sizeof err));
        ck_assert_str_eq(err, "org.groupd1.Error.NotFound");
        disconnect_bus(c);
}
END_TEST

/* ---------------------------------------------------------------- owners that are not the caller's own */

/* Acquires group 3 as the child's uid, naming *(pid_t *) arg as owner process. */
static void as_acquire_for(DBusConnection *c, const void *arg, AsResult *res) {
        const char *specs[] = { "3", NULL };
        pid_t owner = *(const pid_t *) arg;
        int pidfd = (int) syscall(SYS_pidfd_open, owner, 0);
        Acquired a;

        if (pidfd < 0) {
                snprintf(res->error, sizeof res->error, "pidfd_open(%i): %s", (int) owner, strerror(errno));
                return;
        }
        res->ok = acquire_opts(c, specs, "for-other", "process", pidfd, NULL, &a);
        snprintf(res->error, sizeof res->error, "%s", a.error);
        snprintf(res->message, sizeof res->message, "%s", a.message);
        acquired_done(&a);
        if (res->ok)
                (void) release_token(c, a.token, NULL, 0);
        close(pidfd);
}

/* A caller that names another uid's process as owner needs polkit's acquire-for-other; the rules here
 * grant it for processes of nobody and for nothing else. Its own process needs nothing more. */
START_TEST(test_owner_of_another_uid_needs_polkit) {
        DBusConnection *c = connect_bus();
        pid_t me = getpid(), nobody;
        AsResult res;

        settle(c);
        /* root's process (this test), named by uid 1: refused, naming the action; nothing held. */
        run_as(UID_DAEMON, as_acquire_for, &me, &res);
        ck_assert(!res.ok);
        ck_assert_msg(strstr(res.message, "org.groupd1.acquire-for-other"), "%s: %s", res.error, res.message);
        ck_assert_uint_eq(count_leases(c), 0);

        /* A process of nobody's: the rules grant it. */
        nobody = fork();
        ck_assert_int_ge(nobody, 0);
        if (nobody == 0) {
                if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(1);
                pause();
                _exit(0);
        }
        usleep(100000);
        run_as(UID_DAEMON, as_acquire_for, &nobody, &res);
        kill(nobody, SIGKILL);
        waitpid(nobody, NULL, 0);
        ck_assert_msg(res.ok, "%s: %s", res.error, res.message);
        settle(c);
        disconnect_bus(c);
}
END_TEST

/* Lease.Revoke(deadline, force): root revokes a process-owned lease whose owner holds on; with force the
 * owner is ended past the deadline and the lease ends "revoked". Without polkit's release-other (uid 1),
 * refused and the lease stays. */
static void as_revoke(DBusConnection *c, const void *arg, AsResult *res) {
        DBusMessage *m = dbus_message_new_method_call(NAME, arg, NAME ".Lease", "Revoke"), *r;
        dbus_uint32_t deadline = 1;
        dbus_bool_t force = TRUE;

        ck_assert(dbus_message_append_args(m, DBUS_TYPE_UINT32, &deadline, DBUS_TYPE_BOOLEAN, &force,
                                           DBUS_TYPE_INVALID));
        r = send_call(c, m, res->error, sizeof res->error, res->message, sizeof res->message);
        res->ok = r != NULL;
        if (r)
                dbus_message_unref(r);
}

START_TEST(test_revoke_by_force) {
        DBusConnection *c = connect_bus();
        const char *specs[] = { "6", NULL };
        char err[256] = "", reason[64] = "", path[128], byte = 0;
        int sp[2], pidfd, status;
        AsResult res;
        Acquired a;
        pid_t owner;

        settle(c);
        subscribe(c);
        /* The owner: a VMM that takes the group fd and never lets go, ignoring SIGTERM. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        owner = fork();
        ck_assert_int_ge(owner, 0);
        if (owner == 0) {
                int fds[2];
                size_t n = 0;
                char b;
                close(sp[0]);
                signal(SIGTERM, SIG_IGN);
                if (fd_recv_msg(sp[1], &b, 1, fds, 2, &n) < 0 || n != 2)
                        _exit(1);
                (void) !write(sp[1], "k", 1);
                pause();
                _exit(0);
        }
        close(sp[1]);
        pidfd = (int) syscall(SYS_pidfd_open, owner, 0);
        ck_assert_int_ge(pidfd, 0);
        ck_assert_msg(acquire_opts(c, specs, "stubborn", "process", pidfd, NULL, &a), "%s: %s", a.error, a.message);
        ck_assert_int_eq(fd_send_msg(sp[0], "f", 1, (int[]) { a.container, a.group_fds[0] }, 2), 0);
        test_wait_readable(sp[0], 10000, "the owner's receipt of the fds");
        ck_assert_int_eq(read(sp[0], &byte, 1), 1);
        snprintf(path, sizeof path, "%s", a.path);
        acquired_done(&a);              /* this process lets go; the owner does not */

        /* uid 1 has no release-other: refused, the lease stays. */
        run_as(UID_DAEMON, as_revoke, path, &res);
        ck_assert(!res.ok);
        ck_assert_msg(streq(res.error, "org.groupd1.Error.Denied") ||
                      streq(res.error, DBUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED), "%s: %s", res.error,
                      res.message);
        ck_assert_uint_eq(count_leases(c), 1);

        {
                DBusMessage *m = dbus_message_new_method_call(NAME, path, NAME ".Lease", "Revoke"), *r;
                dbus_uint32_t deadline = 1;
                dbus_bool_t force = TRUE;
                ck_assert(dbus_message_append_args(m, DBUS_TYPE_UINT32, &deadline, DBUS_TYPE_BOOLEAN, &force,
                                                   DBUS_TYPE_INVALID));
                r = send_call(c, m, err, sizeof err, NULL, 0);
                ck_assert_msg(r, "%s", err);
                dbus_message_unref(r);
        }
        /* The owner holds the group: past the deadline SIGTERM (ignored), then SIGKILL. */
        test_wait_readable(pidfd, 20000, "the owner's end by force");
        ck_assert_int_eq(waitpid(owner, &status, 0), owner);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status 0x%x", status);
        close(pidfd);
        close(sp[0]);
        wait_lease_ended(c, path, reason, sizeof reason);
        ck_assert_str_eq(reason, "revoked");
        settle(c);
        disconnect_bus(c);
}
END_TEST

/* ---------------------------------------------------------------- delivery modes */

typedef struct Delivered {
        char error[256], message[512];
        char delivery[32], path[128], token[64];
        unsigned n_container, n_groups, n_iommufd, n_devices, n_nodes;
        char node[64];
        uint32_t grant_uid;
} Delivered;

/* AcquireDelivery(specs, {delivery, grant-uid}); every fd of the reply closed. */
static bool acquire_delivery(DBusConnection *c, const char *spec, const char *delivery, int64_t grant_uid,
                             Delivered *d) {
        DBusMessage *m = dbus_message_new_method_call(NAME, PATH, MGR, "AcquireDelivery"), *r;
        DBusMessageIter it, arr, dict, e, v, sub, st;
        const char *key, *val;
        dbus_uint32_t u;

        *d = (Delivered) {};
        dbus_message_iter_init_append(m, &it);
        ck_assert(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &arr));
        ck_assert(dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &spec));
        ck_assert(dbus_message_iter_close_container(&it, &arr));
        ck_assert(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict));
        if (delivery) {
                key = "delivery";
                val = delivery;
                ck_assert(dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
                          dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key) &&
                          dbus_message_iter_open_container(&e, DBUS_TYPE_VARIANT, "s", &v) &&
                          dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &val) &&
                          dbus_message_iter_close_container(&e, &v) && dbus_message_iter_close_container(&dict, &e));
        }
        if (grant_uid >= 0) {
                key = "grant-uid";
                u = (dbus_uint32_t) grant_uid;
                ck_assert(dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
                          dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key) &&
                          dbus_message_iter_open_container(&e, DBUS_TYPE_VARIANT, "u", &v) &&
                          dbus_message_iter_append_basic(&v, DBUS_TYPE_UINT32, &u) &&
                          dbus_message_iter_close_container(&e, &v) && dbus_message_iter_close_container(&dict, &e));
        }
        ck_assert(dbus_message_iter_close_container(&it, &dict));
        r = send_call(c, m, d->error, sizeof d->error, d->message, sizeof d->message);
        if (!r)
                return false;
        ck_assert_str_eq(dbus_message_get_signature(r), "ossaha(uh)aha(sh)asuah");
        dbus_message_iter_init(r, &it);
        dbus_message_iter_get_basic(&it, &val);
        snprintf(d->path, sizeof d->path, "%s", val);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &val);
        snprintf(d->token, sizeof d->token, "%s", val);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &val);
        snprintf(d->delivery, sizeof d->delivery, "%s", val);
        /* container (ah), groups (a(uh)), iommufd (ah), devices (a(sh)), nodes (as), grant_uid, lease fd */
        for (int part = 0; part < 5; part++) {
                unsigned *count = (unsigned *[]) { &d->n_container, &d->n_groups, &d->n_iommufd, &d->n_devices,
                                                   &d->n_nodes }[part];
                dbus_message_iter_next(&it);
                dbus_message_iter_recurse(&it, &sub);
                for (; dbus_message_iter_get_arg_type(&sub) != DBUS_TYPE_INVALID; dbus_message_iter_next(&sub)) {
                        int fd;
                        (*count)++;
                        if (dbus_message_iter_get_arg_type(&sub) == DBUS_TYPE_UNIX_FD) {
                                dbus_message_iter_get_basic(&sub, &fd);
                                close(fd);
                        } else if (dbus_message_iter_get_arg_type(&sub) == DBUS_TYPE_STRUCT) {
                                dbus_message_iter_recurse(&sub, &st);
                                dbus_message_iter_next(&st);
                                dbus_message_iter_get_basic(&st, &fd);
                                close(fd);
                        } else {
                                dbus_message_iter_get_basic(&sub, &val);
                                snprintf(d->node, sizeof d->node, "%s", val);
                        }
                }
        }
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &d->grant_uid);
        dbus_message_unref(r);
        return true;
}

/* AcquireDelivery: auto is legacy on a host without iommufd (the default sim, as Debian's kernels);
 * node-grant hands over no fd and names the node and the uid; Acquire refuses the other modes, naming
 * the method to call. */
START_TEST(test_acquire_delivery) {
        DBusConnection *c = connect_bus();
        const char *specs[] = { "6", NULL };
        const Opt iommufd[] = { { "delivery", DBUS_TYPE_STRING, .s = "iommufd" } };
        char reason[64];
        Delivered d;
        Acquired a;

        settle(c);
        subscribe(c);
        ck_assert_msg(acquire_delivery(c, "6", NULL, -1, &d), "%s: %s", d.error, d.message);
        ck_assert_str_eq(d.delivery, "legacy");
        ck_assert_uint_eq(d.n_container, 1);
        ck_assert_uint_eq(d.n_groups, 1);
        ck_assert_uint_eq(d.n_iommufd + d.n_devices + d.n_nodes, 0);
        ck_assert(release_token(c, d.token, NULL, 0));
        wait_lease_ended(c, d.path, reason, sizeof reason);

        ck_assert_msg(acquire_delivery(c, "6", "node-grant", 65534, &d), "%s: %s", d.error, d.message);
        ck_assert_str_eq(d.delivery, "node-grant");
        ck_assert_uint_eq(d.n_container + d.n_groups + d.n_iommufd + d.n_devices, 0);
        ck_assert_uint_eq(d.n_nodes, 1);
        ck_assert_str_eq(d.node, "/dev/vfio/6");
        ck_assert_uint_eq(d.grant_uid, 65534);
        ck_assert(release_token(c, d.token, NULL, 0));
        wait_lease_ended(c, d.path, reason, sizeof reason);

        /* Bad: an unknown mode, a grant uid without node-grant, and a mode Acquire cannot hand over. */
        ck_assert(!acquire_delivery(c, "6", "carrier-pigeon", -1, &d));
        ck_assert_msg(strstr(d.message, "\"delivery\""), "%s", d.message);
        ck_assert(!acquire_delivery(c, "6", "legacy", 0, &d));
        ck_assert_msg(strstr(d.message, "grant-uid"), "%s", d.message);
        ck_assert(!acquire_with(c, specs, iommufd, 1, &a));
        ck_assert_msg(strstr(a.message, "AcquireDelivery"), "%s", a.message);
        acquired_done(&a);
        ck_assert_uint_eq(count_leases(c), 0);
        disconnect_bus(c);
}
END_TEST

static Suite *dbus_suite(void) {
        Suite *s = suite_create("dbus");
        TCase *tc = tcase_create("private bus and polkitd");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_introspect_is_the_proto_file);
        tcase_add_test(tc, test_allowed_caller_gets_working_fds);
        tcase_add_test(tc, test_denied_caller_changes_nothing);
        tcase_add_test(tc, test_name_vanishes_lease_ends);
        tcase_add_test(tc, test_properties_and_object_manager);
        tcase_add_test(tc, test_process_and_lease_fd_owners_outlive_the_caller);
        tcase_add_test(tc, test_release_other_needs_polkit);
        tcase_add_test(tc, test_bad_input_is_named);
        tcase_add_test(tc, test_every_option_checks_its_type);
        tcase_add_test(tc, test_caller_vanishes_mid_request);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_dma_facts_are_properties);
        tcase_add_test(tc, test_acquire_memlock_and_kvm);
        tcase_add_test(tc, test_acquire_kvm_is_recorded);
        tcase_add_test(tc, test_bad_memlock_options_are_named);
        tcase_add_test(tc, test_memlock_needs_its_own_polkit_action);
        tcase_add_test(tc, test_memlock_limit);
        tcase_add_test(tc, test_owner_of_another_uid_needs_polkit);
        tcase_add_test(tc, test_revoke_by_force);
        tcase_add_test(tc, test_acquire_delivery);
        suite_add_tcase(s, tc);

        tc = tcase_create("without polkitd");
        tcase_add_test(tc, test_without_polkitd_nothing_is_granted);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        if (!getenv("DBUS_SYSTEM_BUS_ADDRESS")) {
                fprintf(stderr, "test-dbus: run it through tests/test-dbus.sh, which sets up the private bus\n");
                return 77;
        }
        /* tests/test-dbus.sh runs the suite with polkitd, then stops polkitd and runs the last case. */
        return test_run_suite(dbus_suite(), getenv("GROUPD_TEST_NO_POLKIT") ? "without polkitd" : "private bus and polkitd");
}
