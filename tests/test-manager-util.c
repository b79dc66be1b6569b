/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>

#include "test-manager-util.h"

void test_heard_event(Manager *m, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                      const char *detail, void *userdata) {
        Heard *h = userdata;

        switch (kind) {
        case MANAGER_EVENT_LEASE_STARTED:
                h->started++;
                break;
        case MANAGER_EVENT_LEASE_RELEASING:
                h->releasing++;
                break;
        case MANAGER_EVENT_LEASE_ENDED:
                h->ended++;
                h->last_reason = l->reason;
                h->reasons |= 1u << l->reason;
                h->n_leases_at_end = manager_n_leases(m);
                snprintf(h->last_detail, sizeof h->last_detail, "%s", detail ?: "");
                break;
        default:
                break;
        }
}

int test_answer_acquired(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata) {
        Answer *a = userdata;

        a->done = true;
        a->lease = l;
        if (err)
                a->err = *err;
        if (lease_fd && *lease_fd >= 0)
                a->lease_fd = fcntl(*lease_fd, F_DUPFD_CLOEXEC, 3);
        return 0;
}

void test_run_until(sd_event *e, const bool *flag) {
        for (int i = 0; i < 1000 && !*flag; i++)
                ck_assert_int_ge(sd_event_run(e, 10 * 1000), 0);
        ck_assert_msg(*flag, "timed out waiting for the manager");
}

void test_run_until_ended(sd_event *e, Heard *h, unsigned n) {
        for (int i = 0; i < 1000 && h->ended < n; i++)
                ck_assert_int_ge(sd_event_run(e, 10 * 1000), 0);
        ck_assert_uint_ge(h->ended, n);
}

void test_store_fd(Manager *m, const char *name, int fd, void *userdata) {
        Stored *s = userdata;

        for (size_t i = 0; i < s->n; i++)
                if (streq(s->names[i], name)) {
                        s->fds[i] = safe_close(s->fds[i]);
                        if (fd >= 0)
                                s->fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                        return;
                }
        if (fd < 0 || s->n >= ELEMENTSOF(s->fds))
                return;
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
        s->fds[s->n++] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
}
