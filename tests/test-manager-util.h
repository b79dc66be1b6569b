/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the suites that drive a Manager in-process share (test-manager, test-delivery): a listener that
 * counts what it heard, an acquire's answer, running the loop until something happened, and a stand-in
 * for systemd's fd store. */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "manager.h"

typedef struct Heard {
        unsigned started, releasing, ended;
        LeaseReason last_reason;
        unsigned reasons;            /* a bit per reason heard with LEASE_ENDED */
        size_t n_leases_at_end;      /* manager_n_leases() when LEASE_ENDED came */
        char last_detail[1024];
} Heard;
/* A ManagerEventFunc; userdata a Heard. */
void test_heard_event(Manager *m, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                      const char *detail, void *userdata);

typedef struct Answer {
        bool done;
        Lease *lease;
        ManagerError err;
        int lease_fd;               /* a copy of the client's end, with OWNER_LEASE_FD (-EBADF: none) */
} Answer;
#define ANSWER_INIT ((Answer) { .lease_fd = -EBADF })
/* An AcquireDone; userdata an Answer. */
int test_answer_acquired(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata);

/* Runs the loop until *flag is true, or until h heard n LEASE_ENDED (10 s at most; fails the test). */
void test_run_until(sd_event *e, const bool *flag);
void test_run_until_ended(sd_event *e, Heard *h, unsigned n);

/* systemd's fd store as the tests keep it: copies of the fds by name. */
typedef struct Stored {
        char names[16][128];
        int fds[16];
        size_t n;
} Stored;
/* A ManagerFdStoreFunc; userdata a Stored. */
void test_store_fd(Manager *m, const char *name, int fd, void *userdata);
