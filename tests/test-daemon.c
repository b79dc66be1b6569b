/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "test-util.h"

int test_daemon_stop(pid_t *pid, int sig, void (*pump)(void)) {
        int status = 0;

        if (*pid <= 0)
                return 0;
        kill(*pid, sig);
        if (pump)
                while (waitpid(*pid, &status, WNOHANG) == 0)
                        pump();
        else
                (void) waitpid(*pid, &status, 0);
        *pid = -1;
        return status;
}

GdClient *test_connect(const char *socket_path) {
        GdClient *c = NULL;
        int r = gd_client_connect(socket_path, &c);
        ck_assert_msg(r >= 0, "connect: %s", strerror(-r));
        return c;
}

GdClientLease *test_acquire(GdClient *c, const char *spec, const GdAcquireOptions *o) {
        GdClientLease *l = NULL;
        const char *specs[] = { spec };
        int r = gd_client_acquire(c, specs, 1, o, &l);
        ck_assert_msg(r >= 0, "acquire %s: %s", spec, gd_client_error_message(c));
        return l;
}

void test_device_driver(GdClient *c, const char *spec, const char *address, char *buf, size_t size) {
        GdGroup *g = NULL;
        int r = gd_client_show_group(c, spec, &g);
        ck_assert_msg(r >= 0, "show %s: %s", spec, gd_client_error_message(c));
        buf[0] = 0;
        for (size_t i = 0; i < g->n_devices; i++)
                if (strcmp(g->devices[i].address, address) == 0)
                        snprintf(buf, size, "%s", g->devices[i].driver);
        gd_groups_free(g, 1);
}

int test_lease_state(GdClient *c, const char *id, size_t *ret_n) {
        GdLease *l = NULL;
        size_t n = 0;
        int state = -1;

        ck_assert_int_ge(gd_client_list_leases(c, &l, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (strcmp(l[i].id, id) == 0)
                        state = (int) l[i].state;
        gd_leases_free(l, n);
        if (ret_n)
                *ret_n = n;
        return state;
}

size_t test_count_leases(GdClient *c) {
        size_t n;
        (void) test_lease_state(c, "", &n);
        return n;
}

int test_wait_ended(GdClient *c, const char *id, char *detail, size_t size) {
        for (;;) {
                GdEvent e = {};
                int r = gd_client_next_event(c, 10000, &e);
                ck_assert_msg(r > 0, "no LEASE_ENDED for %s (r=%d)", id, r);
                if (e.kind == GD_EVENT_LEASE_ENDED && strcmp(e.lease.id, id) == 0) {
                        int reason = (int) e.reason;
                        ck_assert_msg(e.errno_value == 0, "lease %s ended with %s: %s", id, strerror(e.errno_value),
                                      e.detail ?: "");
                        if (detail)
                                snprintf(detail, size, "%s", e.detail ?: "");
                        gd_event_done(&e);
                        return reason;
                }
                gd_event_done(&e);
        }
}
