/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus benchmark: groupd's Acquire + Release (waiting for LeaseEnded) on a private bus, and its
 * floor: a minimal libdbus-1 service whose methods have the same signatures and return the same number
 * of fds, and which emits the same signal. Both are driven by the same client loop.
 *
 *   bench-dbus groupd ADDRESS N GROUP     against org.groupd1 on the bus at ADDRESS
 *   bench-dbus floor ADDRESS N            starts the floor service on that bus, then measures it
 *
 * Prints "NAME_median,us,X" lines like bench-groupd. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#include <dbus/dbus.h>

#define FLOOR_NAME "org.groupd1.BenchFloor"

static void die(const char *what, DBusError *e) {
        fprintf(stderr, "bench-dbus: %s: %s\n", what, e && dbus_error_is_set(e) ? e->message : "failed");
        exit(1);
}

static DBusConnection *bus_connect(const char *address) {
        DBusError e;
        DBusConnection *c;

        dbus_error_init(&e);
        c = dbus_connection_open_private(address, &e);
        if (!c || !dbus_bus_register(c, &e))
                die("connect", &e);
        return c;
}

/* ---------------------------------------------------------------- the floor service */

static int dup_null(void) {
        return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static DBusHandlerResult floor_handle(DBusConnection *c, DBusMessage *m, void *userdata) {
        (void) userdata;
        if (dbus_message_is_method_call(m, FLOOR_NAME, "Acquire")) {
                DBusMessage *r = dbus_message_new_method_return(m);
                DBusMessageIter it, arr, st;
                const char *path = "/org/groupd1/lease/0123456789ab", *token = "00112233445566778899aabbccddeeff";
                int container = dup_null(), group = dup_null();
                uint32_t id = 2;

                dbus_message_iter_init_append(r, &it);
                dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &path);
                dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &token);
                dbus_message_iter_append_basic(&it, DBUS_TYPE_UNIX_FD, &container);
                dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(uh)", &arr);
                dbus_message_iter_open_container(&arr, DBUS_TYPE_STRUCT, NULL, &st);
                dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &id);
                dbus_message_iter_append_basic(&st, DBUS_TYPE_UNIX_FD, &group);
                dbus_message_iter_close_container(&arr, &st);
                dbus_message_iter_close_container(&it, &arr);
                dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "h", &arr);
                dbus_message_iter_close_container(&it, &arr);
                close(container); /* libdbus appended copies */
                close(group);
                dbus_connection_send(c, r, NULL);
                dbus_message_unref(r);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (dbus_message_is_method_call(m, FLOOR_NAME, "Release")) {
                DBusMessage *r = dbus_message_new_method_return(m);
                DBusMessage *s = dbus_message_new_signal("/org/groupd1", FLOOR_NAME, "LeaseEnded");
                const char *path = "/org/groupd1/lease/0123456789ab", *reason = "released",
                           *detail = "0000:02:00.0 → e1000e";
                uint32_t groups[] = { 2 };
                const uint32_t *gp = groups;

                dbus_connection_send(c, r, NULL);
                dbus_message_append_args(s, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_ARRAY, DBUS_TYPE_UINT32, &gp, 1,
                                         DBUS_TYPE_STRING, &reason, DBUS_TYPE_STRING, &detail, DBUS_TYPE_INVALID);
                dbus_connection_send(c, s, NULL);
                dbus_message_unref(r);
                dbus_message_unref(s);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

static void floor_serve(const char *address, int ready_fd) {
        static const DBusObjectPathVTable vt = { .message_function = floor_handle };
        DBusConnection *c = bus_connect(address);
        DBusError e;

        dbus_error_init(&e);
        if (dbus_bus_request_name(c, FLOOR_NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE, &e) !=
            DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER)
                die("request the floor's name", &e);
        dbus_connection_register_object_path(c, "/org/groupd1", &vt, NULL);
        (void) !write(ready_fd, "r", 1);
        close(ready_fd);
        while (dbus_connection_read_write_dispatch(c, -1))
                ;
        _exit(0);
}

/* ---------------------------------------------------------------- the client loop */

/* Calls Acquire, closes the fds, calls Release, waits for LeaseEnded of that lease. */
static void cycle(DBusConnection *c, const char *dest, const char *iface, const char *group) {
        DBusMessage *m, *r;
        DBusMessageIter it, arr, st;
        DBusError e;
        const char *path, *token;
        char lease[256], tok[64];
        int fd;

        dbus_error_init(&e);
        m = dbus_message_new_method_call(dest, "/org/groupd1", iface, "Acquire");
        dbus_message_iter_init_append(m, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &arr);
        dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &group);
        dbus_message_iter_close_container(&it, &arr);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &arr);
        dbus_message_iter_close_container(&it, &arr);
        r = dbus_connection_send_with_reply_and_block(c, m, 10000, &e);
        dbus_message_unref(m);
        if (!r)
                die("Acquire", &e);

        dbus_message_iter_init(r, &it);
        dbus_message_iter_get_basic(&it, &path);
        snprintf(lease, sizeof lease, "%s", path);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &token);
        snprintf(tok, sizeof tok, "%s", token);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &fd);
        close(fd);
        dbus_message_iter_next(&it);
        dbus_message_iter_recurse(&it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT) {
                dbus_message_iter_recurse(&arr, &st);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &fd);
                close(fd);
                dbus_message_iter_next(&arr);
        }
        dbus_message_unref(r);

        const char *t = tok;
        m = dbus_message_new_method_call(dest, "/org/groupd1", iface, "Release");
        dbus_message_append_args(m, DBUS_TYPE_STRING, &t, DBUS_TYPE_INVALID);
        r = dbus_connection_send_with_reply_and_block(c, m, 10000, &e);
        dbus_message_unref(m);
        if (!r)
                die("Release", &e);
        dbus_message_unref(r);

        /* LeaseEnded for our lease. */
        for (;;) {
                DBusMessage *s;
                while (!(s = dbus_connection_pop_message(c)))
                        if (!dbus_connection_read_write(c, 10000))
                                die("waiting for LeaseEnded", NULL);
                bool done = false;
                DBusMessageIter si;
                if (dbus_message_is_signal(s, iface, "LeaseEnded") && dbus_message_iter_init(s, &si) &&
                    dbus_message_iter_get_arg_type(&si) == DBUS_TYPE_OBJECT_PATH) {
                        const char *p;
                        dbus_message_iter_get_basic(&si, &p);
                        done = strcmp(p, lease) == 0;
                }
                dbus_message_unref(s);
                if (done)
                        return;
        }
}

static void run(DBusConnection *c, const char *dest, const char *iface, const char *group, size_t n,
                const char *name) {
        uint64_t *s = calloc(n, sizeof *s);
        DBusError e;
        char match[256];

        dbus_error_init(&e);
        snprintf(match, sizeof match, "type='signal',sender='%s',interface='%s',member='LeaseEnded'", dest, iface);
        dbus_bus_add_match(c, match, &e);
        if (dbus_error_is_set(&e))
                die("add match", &e);
        for (size_t i = 0; i < n / 10 + 1; i++)
                cycle(c, dest, iface, group);
        for (size_t i = 0; i < n; i++) {
                uint64_t t0 = bench_now_ns();
                cycle(c, dest, iface, group);
                s[i] = bench_now_ns() - t0;
        }
        bench_report(name, s, n);
        free(s);
}

int main(int argc, char **argv) {
        if (argc == 5 && strcmp(argv[1], "groupd") == 0) {
                DBusConnection *c = bus_connect(argv[2]);
                run(c, "org.groupd1", "org.groupd1.Manager", argv[4], strtoul(argv[3], NULL, 10), "dbus_cycle");
                dbus_connection_close(c);
                dbus_connection_unref(c);
                return 0;
        }
        if (argc == 4 && strcmp(argv[1], "floor") == 0) {
                int p[2];
                char b;
                if (pipe2(p, O_CLOEXEC) < 0)
                        return 1;
                pid_t pid = fork();
                if (pid == 0) {
                        close(p[0]);
                        floor_serve(argv[2], p[1]);
                }
                close(p[1]);
                if (read(p[0], &b, 1) != 1) {
                        fprintf(stderr, "bench-dbus: the floor service did not start\n");
                        return 1;
                }
                DBusConnection *c = bus_connect(argv[2]);
                run(c, FLOOR_NAME, FLOOR_NAME, "2", strtoul(argv[3], NULL, 10), "dbus_floor_cycle");
                dbus_connection_close(c);
                dbus_connection_unref(c);
                kill(pid, SIGTERM);
                waitpid(pid, NULL, 0);
                return 0;
        }
        fprintf(stderr, "usage: bench-dbus groupd ADDRESS N GROUP | floor ADDRESS N\n");
        return 2;
}
