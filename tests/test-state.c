/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of state.c: the state file's round trip and refusals, a process's start time. */
#include <check.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lease.h"
#include "state.h"
#include "token.h"
#include "test-util.h"

#ifndef TOP_SRCDIR_DEFAULT
#define TOP_SRCDIR_DEFAULT "."
#endif

/* fsync() and rename() watched (-Wl,--wrap): the file must be on disk before it replaces the old one, and
 * a failed write (the disk full, an I/O error) must leave the old one in place. */
static int fsync_fail_errno;
static unsigned fsyncs, renames, fsyncs_before_rename;
int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd) {
        fsyncs++;
        if (fsync_fail_errno) {
                errno = fsync_fail_errno;
                return -1;
        }
        return __real_fsync(fd);
}
int __real_rename(const char *a, const char *b);
int __wrap_rename(const char *a, const char *b);
int __wrap_rename(const char *a, const char *b) {
        renames++;
        fsyncs_before_rename = fsyncs;
        return __real_rename(a, b);
}

START_TEST(test_state_round_trip) {
        char dir[] = "/tmp/groupd-state.XXXXXX", path[64];
        Lease *a = NULL, *b = NULL, *back = NULL;
        unsigned line = 0;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/state", dir);

        /* No file: no leases. */
        ck_assert_int_eq(state_read(path, NULL, &back, &line), 0);
        ck_assert_ptr_null(back);

        ck_assert_int_eq(lease_new(NULL, &a), 0);
        ck_assert_int_eq(lease_set_state(a, LEASE_ACTIVE), 0);
        a->label = strdup("vm one; \"quoted\" 100%\n");
        a->uid = 107;
        a->pid = 4242;
        a->owner_kind = OWNER_PROCESS;
        a->owner_pid = 4243;
        a->owner_starttime = 123456789;
        a->configure_iommu = true;
        a->since_usec = 1700000000000000ULL;
        ck_assert_int_eq(lease_add_group(a, 1), 0);
        ck_assert_int_eq(lease_add_device(a, "0000:01:00.0", 1, "nouveau", NULL), 0);
        ck_assert_int_eq(lease_add_device(a, "0000:01:00.1", 1, "", "vfio-pci"), 0);
        a->devices[1].standby = true;            /* kept on vfio-pci at release */
        ck_assert_int_eq(lease_new(NULL, &b), 0); /* still acquiring: recorded too */
        ck_assert_int_eq(lease_add_group(b, 12), 0);
        ck_assert_int_eq(lease_add_group(b, 13), 0);
        a->next = b;

        ck_assert_int_eq(state_write(path, a), 0);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);

        ck_assert_int_eq(state_read(path, NULL, &back, &line), 0);
        ck_assert_ptr_nonnull(back);
        ck_assert_str_eq(back->id, a->id);
        ck_assert(token_equal(back->token, a->token));
        ck_assert_str_eq(back->label, a->label);
        ck_assert_int_eq(back->state, LEASE_ACTIVE);
        ck_assert_int_eq(back->owner_kind, OWNER_PROCESS);
        ck_assert_int_eq(back->owner_pid, 4243);
        ck_assert_uint_eq(back->owner_starttime, 123456789);
        ck_assert_uint_eq(back->uid, 107);
        ck_assert(back->configure_iommu);
        ck_assert_uint_eq(back->since_usec, a->since_usec);
        ck_assert(back->recovered);
        ck_assert_uint_eq(back->n_devices, 2);
        ck_assert_str_eq(back->devices[0].driver, "nouveau");
        ck_assert_str_eq(back->devices[0].override, "");
        ck_assert_str_eq(back->devices[1].driver, "");
        ck_assert_str_eq(back->devices[1].override, "vfio-pci");
        ck_assert(!back->devices[0].standby);
        ck_assert(back->devices[1].standby);
        ck_assert_ptr_nonnull(back->next);
        ck_assert_int_eq(back->next->state, LEASE_ACQUIRING);
        ck_assert_uint_eq(back->next->n_groups, 2);
        ck_assert_ptr_null(back->next->next);

        lease_free(back->next);
        lease_free(back);
        a->next = NULL;
        lease_free(a);
        lease_free(b);

        /* Today's files read as they were written: devices without override= have none. */
        {
                char v1[512];
                snprintf(v1, sizeof v1, "%s/tests/data/state-v1.state", getenv("TOP_SRCDIR") ?: TOP_SRCDIR_DEFAULT);
                ck_assert_int_eq(state_read(v1, NULL, &back, &line), 0);
                ck_assert_ptr_nonnull(back->next);
                ck_assert_str_eq(back->next->devices[1].driver, "e1000");
                ck_assert_str_eq(back->next->devices[1].override, "");
                ck_assert_str_eq(back->next->devices[0].driver, "");
                for (Lease *x = back, *n; x; x = n) {
                        n = x->next;
                        lease_free(x);
                }
        }
        /* An unknown field on a device line is refused. */
        FILE *g = fopen(path, "we");
        fputs("groupd-state 1\nlease 6cdc36278a81 9384c228b2fe70439c4afad9ad979998 active process uid=0 gid=0 "
              "pid=1 owner-pid=2 owner-start=3 conn=2 iommu=1 since=1 kvm=0 memlock=0 label=x\ngroup 6\n"
              "device 0000:06:00.0 6 xhci_hcd colour=blue\nend\n", g);
        fclose(g);
        ck_assert_int_eq(state_read(path, NULL, &back, &line), -EBADMSG);
        ck_assert_uint_eq(line, 4);

        /* A cut or corrupt file is refused, naming the line. */
        FILE *f = fopen(path, "we");
        fputs("groupd-state 1\nlease abc\n", f);
        fclose(f);
        ck_assert_int_eq(state_read(path, NULL, &back, &line), -EBADMSG);
        ck_assert_uint_eq(line, 2);
        f = fopen(path, "we");
        fputs("something else\n", f);
        fclose(f);
        ck_assert_int_eq(state_read(path, NULL, &back, &line), -EBADMSG);

        unlink(path);
        rmdir(dir);
}
END_TEST

static char *read_all(const char *path) {
        FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&text, &n, 0, f) < 0) {
                free(text);
                text = NULL;
        }
        fclose(f);
        return text;
}

START_TEST(test_state_durable) {
        char dir[] = "/tmp/groupd-state.XXXXXX", path[64], tmp[80];
        Lease *a = NULL;
        char *before, *after;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/state", dir);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        ck_assert_int_eq(lease_new(NULL, &a), 0);
        ck_assert_int_eq(lease_add_group(a, 2), 0);
        ck_assert_int_eq(lease_add_device(a, "0000:02:00.0", 2, "e1000e", NULL), 0);

        /* Written, synced, then renamed into place. */
        fsyncs = renames = fsyncs_before_rename = 0;
        fsync_fail_errno = 0;
        ck_assert_int_eq(state_write(path, a), 0);
        ck_assert_uint_eq(renames, 1);
        ck_assert_uint_ge(fsyncs_before_rename, 1);
        before = read_all(path);
        ck_assert_ptr_nonnull(strstr(before, a->id));

        /* The disk fails this time: the error is returned, the previous file stays, no temporary is left. */
        ck_assert_int_eq(lease_add_group(a, 3), 0);
        fsyncs = renames = 0;
        fsync_fail_errno = EIO;
        ck_assert_int_eq(state_write(path, a), -EIO);
        fsync_fail_errno = ENOSPC;
        ck_assert_int_eq(state_write(path, a), -ENOSPC);
        fsync_fail_errno = 0;
        ck_assert_uint_eq(renames, 0);
        after = read_all(path);
        ck_assert_str_eq(after, before);
        ck_assert_int_eq(access(tmp, F_OK), -1);

        free(before);
        free(after);
        lease_free(a);
        test_rm_rf(dir);
}
END_TEST

START_TEST(test_process_starttime) {
        uint64_t a = 0, b = 0;
        ck_assert_int_eq(process_starttime(getpid(), &a), 0);
        ck_assert_int_eq(process_starttime(getpid(), &b), 0);
        ck_assert_uint_eq(a, b);
        ck_assert_uint_gt(a, 0);
        ck_assert_int_eq(process_starttime(0x3fffffff, &a), -ESRCH);
}
END_TEST

static Suite *state_suite(void) {
        Suite *s = suite_create("state");
        TCase *tc = tcase_create("state");

        tcase_add_test(tc, test_state_round_trip);
        tcase_add_test(tc, test_process_starttime);
        tcase_add_test(tc, test_state_durable);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(state_suite(), NULL);
}
