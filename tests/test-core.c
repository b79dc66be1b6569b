/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the core: tokens, the lease state machine, the policy, the state file. */
#include <check.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lease.h"
#include "policy.h"
#include "state.h"
#include "token.h"
#include "wire-view.h"
#include "worker.h"
#include "ratelimit.h"
#include "test-util.h"

#include <unistd.h>

/* ---------------------------------------------------------------- tokens */

START_TEST(test_token_format) {
        char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1], id[LEASE_ID_LEN + 1];

        ck_assert_int_eq(token_generate(a), 0);
        ck_assert_int_eq(token_generate(b), 0);
        ck_assert_uint_eq(strlen(a), TOKEN_LEN);
        ck_assert(token_is_valid(a));
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(lease_id_generate(id), 0);
        ck_assert_uint_eq(strlen(id), LEASE_ID_LEN);
        ck_assert_uint_eq(strspn(id, "0123456789abcdef"), LEASE_ID_LEN);
}
END_TEST

START_TEST(test_token_equal) {
        char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];

        ck_assert_int_eq(token_generate(a), 0);
        memcpy(b, a, sizeof b);
        ck_assert(token_equal(a, b));
        b[TOKEN_LEN - 1] = b[TOKEN_LEN - 1] == 'a' ? 'b' : 'a';
        ck_assert(!token_equal(a, b));
        b[TOKEN_LEN - 1] = a[TOKEN_LEN - 1];
        b[0] = b[0] == 'a' ? 'b' : 'a';
        ck_assert(!token_equal(a, b));
        /* Not tokens at all. */
        ck_assert(!token_equal(a, "short"));
        ck_assert(!token_equal("", ""));
        ck_assert(!token_equal("0123456789ABCDEF0123456789ABCDEF", "0123456789ABCDEF0123456789ABCDEF"));
}
END_TEST

/* 128 bits: across many tokens every hex digit appears at every position. */
START_TEST(test_token_randomness) {
        unsigned seen[TOKEN_LEN] = {};
        char t[TOKEN_LEN + 1];

        for (int i = 0; i < 2000; i++) {
                ck_assert_int_eq(token_generate(t), 0);
                for (unsigned k = 0; k < TOKEN_LEN; k++) {
                        unsigned v = (unsigned) (t[k] <= '9' ? t[k] - '0' : t[k] - 'a' + 10);
                        seen[k] |= 1u << v;
                }
        }
        for (unsigned k = 0; k < TOKEN_LEN; k++)
                ck_assert_uint_eq(seen[k], 0xffffu);
}
END_TEST

/* ---------------------------------------------------------------- the lease state machine */

START_TEST(test_lease_states) {
        Lease *l = NULL;

        ck_assert_int_eq(lease_new(NULL, &l), 0);
        ck_assert_int_eq(l->state, LEASE_ACQUIRING);
        ck_assert_int_eq(l->container_fd, -EBADF);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACQUIRING), -EALREADY);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACTIVE), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACQUIRING), -EBUSY);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASED), -EBUSY); /* must pass through RELEASING */
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASING), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACTIVE), -EBUSY);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASED), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASING), -EBUSY);
        ck_assert_int_eq(lease_set_state(l, _LEASE_STATE_MAX), -EINVAL);
        lease_free(l);

        /* A failed acquire ends without ever being active. */
        ck_assert_int_eq(lease_new(NULL, &l), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASED), 0);
        lease_free(l);
}
END_TEST

START_TEST(test_lease_groups_devices) {
        Lease *l = NULL;
        GdLease v;

        ck_assert_int_eq(lease_new(NULL, &l), 0);
        ck_assert_int_eq(lease_add_group(l, 7), 0);
        ck_assert_int_eq(lease_add_group(l, 3), 0);
        ck_assert_int_eq(lease_add_group(l, 7), -EEXIST);
        ck_assert(lease_has_group(l, 3));
        ck_assert(!lease_has_group(l, 4));
        ck_assert_int_eq(l->group_fds[0], -EBADF);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.0", 7, "nouveau"), 0);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.1", 7, NULL), 0);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.1000000000000000000000000000", 7, NULL), -EINVAL);
        ck_assert_str_eq(l->devices[1].driver, "");

        wire_lease(l, &v);
        ck_assert_str_eq(v.id, l->id);
        ck_assert_uint_eq(v.n_groups, 2);
        ck_assert_uint_eq(v.groups[1], 3);
        ck_assert_str_eq(v.label, "");
        lease_free(l);
}
END_TEST

/* ---------------------------------------------------------------- policy */

static HostDevice dev(const char *addr, unsigned group, uint16_t vendor, uint16_t device, uint32_t class_code) {
        HostDevice d = { .vendor = vendor, .device = device, .class_code = class_code, .group = group };
        snprintf(d.address, sizeof d.address, "%s", addr);
        return d;
}

START_TEST(test_policy_default) {
        Policy *p = NULL;
        char msg[256];
        HostDevice nvme = dev("0000:05:00.0", 5, 0x144d, 0xa808, 0x010802);
        HostDevice gpu = dev("0000:01:00.0", 1, 0x10de, 0x1eb8, 0x030200);
        HostGroup g5 = { .id = 5, .devices = &nvme, .n_devices = 1 };
        HostGroup g1 = { .id = 1, .devices = &gpu, .n_devices = 1 };
        PolicySubject root = { .uid = 0 }, user = { .uid = 1000, .gid = 1000 };

        ck_assert_int_eq(policy_load(NULL, &p, NULL), 0);
        ck_assert(policy_device_never(p, &nvme, msg, sizeof msg));
        ck_assert_ptr_nonnull(strstr(msg, "never class=0x01"));
        ck_assert_int_eq(policy_check_group(p, &root, &g5, msg, sizeof msg), -EPERM);
        ck_assert_ptr_nonnull(strstr(msg, "0000:05:00.0"));
        ck_assert_int_eq(policy_check_group(p, &root, &g1, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_group(p, &user, &g1, msg, sizeof msg), -EPERM);
        ck_assert_ptr_nonnull(strstr(msg, "uid 1000"));
        policy_free(p);
}
END_TEST

START_TEST(test_policy_rules) {
        Policy *p = NULL;
        char msg[256], *err = NULL;
        gid_t kvm = 36;
        HostDevice gpu[2] = { dev("0000:01:00.0", 1, 0x10de, 0x1eb8, 0x030200),
                              dev("0000:01:00.1", 1, 0x10de, 0x10fa, 0x040300) };
        HostDevice nic = dev("0000:02:00.0", 2, 0x8086, 0x10d3, 0x020000);
        HostDevice other = dev("0000:03:00.0", 3, 0x1234, 0x11e8, 0x00ff00);
        HostGroup g1 = { .id = 1, .devices = gpu, .n_devices = 2 };
        HostGroup g2 = { .id = 2, .devices = &nic, .n_devices = 1 };
        HostGroup g3 = { .id = 3, .devices = &other, .n_devices = 1 };
        PolicySubject alice = { .uid = 1000, .gid = 1000 };
        PolicySubject bob = { .uid = 1001, .gid = 1001, .gids = &kvm, .n_gids = 1 };
        PolicySubject root = { .uid = 0 };

        ck_assert_int_eq(policy_parse("# test\n"
                                      "allow uid=1000 pci=0000:01:00.*\n"
                                      "allow gid=36 iommu-group=2   # the NIC\n"
                                      "allow anyone device=0x1234:0x11e8\n"
                                      "never vendor=0x8086 class=0x0200\n",
                                      "t.conf", &p, &err), 0);
        /* Alice: both GPU functions are covered by her glob. */
        ck_assert_int_eq(policy_check_group(p, &alice, &g1, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_group(p, &alice, &g3, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_group(p, &bob, &g1, msg, sizeof msg), -EPERM);
        ck_assert_ptr_nonnull(strstr(msg, "0000:01:00.0"));
        /* The NIC is allowed to kvm, but the never rule wins, even for root. */
        ck_assert_int_eq(policy_check_group(p, &bob, &g2, msg, sizeof msg), -EPERM);
        ck_assert_ptr_nonnull(strstr(msg, "t.conf:5"));
        ck_assert_int_eq(policy_check_group(p, &root, &g2, msg, sizeof msg), -EPERM);
        policy_free(p);

        /* A rule covering one function only does not give the group. */
        ck_assert_int_eq(policy_parse("allow uid=1000 pci=0000:01:00.0\n", "t.conf", &p, &err), 0);
        ck_assert_int_eq(policy_check_group(p, &alice, &g1, msg, sizeof msg), -EPERM);
        ck_assert_ptr_nonnull(strstr(msg, "0000:01:00.1"));
        policy_free(p);
}
END_TEST

START_TEST(test_policy_errors) {
        static const struct {
                const char *text;
                const char *want;
        } bad[] = {
                { "allow\n", "t.conf:1" },
                { "\n\nallow uid=1000\n", "t.conf:3: 'allow' needs at least one MATCH" },
                { "permit uid=1 iommu-group=1\n", "unknown rule \"permit\"" },
                { "allow uid=x iommu-group=1\n", "bad WHO \"uid=x\"" },
                { "allow user=no-such-user-here iommu-group=1\n", "unknown user or group" },
                { "allow uid=1 iommu-group=one\n", "bad MATCH \"iommu-group=one\"" },
                { "never class=0x0123456\n", "bad MATCH \"class=0x0123456\"" },
                { "never class=01\n", "bad MATCH" },
                { "never device=0x10de\n", "bad MATCH" },
                { "never colour=blue\n", "bad MATCH \"colour=blue\"" },
                { "never\n", "needs at least one MATCH" },
                { "owner-any\n", "'owner-any' wants WHO" },
                { "owner-any uid=1 iommu-group=1\n", "'owner-any' wants WHO" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Policy *p = NULL;
                char *err = NULL;
                ck_assert_int_eq(policy_parse(bad[i].text, "t.conf", &p, &err), -EINVAL);
                ck_assert_ptr_null(p);
                ck_assert_msg(err && strstr(err, bad[i].want), "\"%s\": got \"%s\", want \"%s\"", bad[i].text,
                              err ?: "(null)", bad[i].want);
                free(err);
        }

        Policy *p = NULL;
        ck_assert_int_eq(policy_load("/nonexistent/policy.conf", &p, NULL), -ENOENT);
}
END_TEST

START_TEST(test_policy_owner_any) {
        PolicySubject alice = { .uid = 1000, .gid = 1000 }, bob = { .uid = 1001, .gid = 1001 }, root = { .uid = 0 };
        HostDevice nic = dev("0000:02:00.0", 2, 0x8086, 0x10d3, 0x020000);
        HostGroup g2 = { .id = 2, .devices = &nic, .n_devices = 1 };
        Policy *p = NULL;
        char rule[256], *err = NULL;

        ck_assert_int_eq(policy_parse("owner-any uid=1000\n", "t.conf", &p, &err), 0);
        ck_assert_int_eq(policy_check_owner_any(p, &alice, rule, sizeof rule), 0);
        ck_assert_str_eq(rule, "t.conf:1: owner-any uid=1000");
        ck_assert_int_eq(policy_check_owner_any(p, &bob, rule, sizeof rule), -EPERM);
        ck_assert_ptr_nonnull(strstr(rule, "no owner-any rule"));
        ck_assert_int_eq(policy_check_owner_any(p, &root, rule, sizeof rule), 0);
        /* It gives no group. */
        ck_assert_int_eq(policy_check_group(p, &alice, &g2, rule, sizeof rule), -EPERM);
        policy_free(p);
}
END_TEST

START_TEST(test_ratelimit) {
        RateLimit rl = RATELIMIT_INIT(1000, 3);
        unsigned held = 99;

        for (int i = 0; i < 3; i++) {
                ck_assert(ratelimit_below(&rl, 100 + i, &held));
                ck_assert_uint_eq(held, 0);
        }
        for (int i = 0; i < 5; i++)
                ck_assert(!ratelimit_below(&rl, 200 + i, &held));
        /* The next interval lets one through, and it learns how many were held back. */
        ck_assert(ratelimit_below(&rl, 1200, &held));
        ck_assert_uint_eq(held, 5);
        ck_assert(ratelimit_below(&rl, 1201, NULL));
        ck_assert(ratelimit_below(&rl, 1202, &held));
        ck_assert_uint_eq(held, 0);
        ck_assert(!ratelimit_below(&rl, 1203, NULL));
        ck_assert_uint_eq(ratelimit_take_suppressed(&rl), 1);
        ck_assert_uint_eq(ratelimit_take_suppressed(&rl), 0);
}
END_TEST

/* ---------------------------------------------------------------- state file */

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
        ck_assert_int_eq(lease_add_device(a, "0000:01:00.0", 1, "nouveau"), 0);
        ck_assert_int_eq(lease_add_device(a, "0000:01:00.1", 1, ""), 0);
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
        ck_assert_str_eq(back->devices[1].driver, "");
        ck_assert_ptr_nonnull(back->next);
        ck_assert_int_eq(back->next->state, LEASE_ACQUIRING);
        ck_assert_uint_eq(back->next->n_groups, 2);
        ck_assert_ptr_null(back->next->next);

        lease_free(back->next);
        lease_free(back);
        a->next = NULL;
        lease_free(a);
        lease_free(b);

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

START_TEST(test_process_starttime) {
        uint64_t a = 0, b = 0;
        ck_assert_int_eq(process_starttime(getpid(), &a), 0);
        ck_assert_int_eq(process_starttime(getpid(), &b), 0);
        ck_assert_uint_eq(a, b);
        ck_assert_uint_gt(a, 0);
        ck_assert_int_eq(process_starttime(0x3fffffff, &a), -ESRCH);
}
END_TEST

/* ---------------------------------------------------------------- worker */

typedef struct TestJob {
        int wait_fd;          /* >= 0: block reading it (a held-up unbind) */
        int result;
        bool done;
        pthread_t thread;
} TestJob;

static int test_job_run(void *userdata) {
        TestJob *t = userdata;
        char c;
        t->thread = pthread_self();
        if (t->wait_fd >= 0)
                return read(t->wait_fd, &c, 1) == 1 ? 7 : -EIO;
        return 42;
}

static void test_job_done(int result, void *userdata) {
        TestJob *t = userdata;
        t->result = result;
        t->done = true;
}

static void run_until(sd_event *e, const bool *flag) {
        for (int i = 0; i < 500 && !*flag; i++)
                ck_assert_int_ge(sd_event_run(e, 10 * 1000), 0);
        ck_assert_msg(*flag, "job did not finish");
}

/* Threads are reused, but a job is never queued behind one that is held up. */
START_TEST(test_worker_never_queues) {
        sd_event *e = NULL;
        Worker *w = NULL;
        TestJob quick = { .wait_fd = -1 }, held, after = { .wait_fd = -1 };
        int p[2];

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_ge(worker_new(e, &w), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        held = (TestJob) { .wait_fd = p[0] };

        ck_assert_int_ge(worker_submit(w, test_job_run, test_job_done, &quick), 0);
        run_until(e, &quick.done);
        ck_assert_int_eq(quick.result, 42);

        /* The idle thread takes the held-up job; the next one must still run at once. */
        ck_assert_int_ge(worker_submit(w, test_job_run, test_job_done, &held), 0);
        ck_assert_int_ge(worker_submit(w, test_job_run, test_job_done, &after), 0);
        ck_assert_uint_eq(worker_running(w), 2);
        run_until(e, &after.done);
        ck_assert_int_eq(after.result, 42);
        ck_assert(!held.done);

        ck_assert_int_eq(write(p[1], "x", 1), 1);
        run_until(e, &held.done);
        ck_assert_int_eq(held.result, 7);
        ck_assert_uint_eq(worker_running(w), 0);
        /* A thread was kept and used again: two threads ran the three jobs. (Which one took the held-up
         * job depends on who woke first: any idle thread takes a pending job.) */
        ck_assert(pthread_equal(quick.thread, held.thread) || pthread_equal(quick.thread, after.thread) ||
                  pthread_equal(held.thread, after.thread));

        close(p[0]);
        close(p[1]);
        worker_free(w);
        sd_event_unref(e);
}
END_TEST

static Suite *core_suite(void) {
        Suite *s = suite_create("core");
        TCase *tc;

        tc = tcase_create("token");
        tcase_add_test(tc, test_token_format);
        tcase_add_test(tc, test_policy_owner_any);
        tcase_add_test(tc, test_ratelimit);
        tcase_add_test(tc, test_token_equal);
        tcase_add_test(tc, test_token_randomness);
        suite_add_tcase(s, tc);

        tc = tcase_create("lease");
        tcase_add_test(tc, test_lease_states);
        tcase_add_test(tc, test_lease_groups_devices);
        suite_add_tcase(s, tc);

        tc = tcase_create("policy");
        tcase_add_test(tc, test_policy_default);
        tcase_add_test(tc, test_policy_rules);
        tcase_add_test(tc, test_policy_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("state");
        tcase_add_test(tc, test_state_round_trip);
        tcase_add_test(tc, test_process_starttime);
        suite_add_tcase(s, tc);

        tc = tcase_create("worker");
        tcase_add_test(tc, test_worker_never_queues);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(core_suite(), NULL);
}
