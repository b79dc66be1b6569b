/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the Check suites share: running a suite, files and capabilities (test-util.c, no libraries but
 * Check), and driving a real groupd through libgroupd (test-daemon.c, for the suites that start one). */

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "groupd-client.h"

/* Runs every test of s (tcase NULL) or of one tcase, and gives main()'s exit status. */
int test_run_suite(Suite *s, const char *tcase);

void test_rm_rf(const char *dir);
void test_write_file(const char *path, const char *text);
void test_cat_to_stderr(const char *path);
bool test_file_contains(const char *path, const char *text);
bool test_fd_is_open(int fd);
/* Waits up to timeout_ms for fd to become readable (data, or the peer's hang-up), and fails the test
 * naming what it waited for otherwise: a blocking read in a test must never turn a bug into a hang. */
void test_wait_readable(int fd, int timeout_ms, const char *what);
/* A hex capability field ("CapEff", "CapPrm", ...) of a /proc/.../status file. */
uint64_t test_status_caps(const char *path, const char *field);
bool test_have_cap(int cap);   /* in this process's effective set */

/* ---------------------------------------------------------------- test-daemon.c */

/* SIGs the daemon at *pid and reaps it (calling pump, if given, while it stops); returns its wait status,
 * 0 when there was none. */
int test_daemon_stop(pid_t *pid, int sig, void (*pump)(void));

GdClient *test_connect(const char *socket_path);
GdClientLease *test_acquire(GdClient *c, const char *spec, const GdAcquireOptions *o);
/* The driver of a device as groupd reports it ("" when none). */
void test_device_driver(GdClient *c, const char *spec, const char *address, char *buf, size_t size);
#define assert_reported_driver(c, spec, addr, want) \
        do {                                                                                            \
                char _d[64];                                                                            \
                test_device_driver(c, spec, addr, _d, sizeof _d);                                       \
                ck_assert_msg(strcmp(_d, want) == 0, "%s: driver \"%s\", want \"%s\"", addr, _d, want); \
        } while (0)
/* The GdLeaseState of lease id, or -1 when it is not listed; *ret_n (if given): how many are. */
int test_lease_state(GdClient *c, const char *id, size_t *ret_n);
size_t test_count_leases(GdClient *c);
/* Waits (10 s) for LEASE_ENDED of lease id, asserting every driver came back; returns its reason and,
 * if detail is given, the detail. */
int test_wait_ended(GdClient *c, const char *id, char *detail, size_t size);
