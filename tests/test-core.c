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
#include "test-util.h"

#include <unistd.h>

#ifndef TOP_SRCDIR_DEFAULT
#define TOP_SRCDIR_DEFAULT "."
#endif

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
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.0", 7, "nouveau", NULL), 0);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.1", 7, NULL, NULL), 0);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.1000000000000000000000000000", 7, NULL, NULL), -EINVAL);
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
                { "allow uid=0 pci=0000:00:0*.0 host-critical\n", "by its whole address" },
                { "allow uid=0 class=0x0600 host-critical\n", "by its whole address" },
                { "allow cgroup=system.slice iommu-group=1\n", "bad WHO \"cgroup=system.slice\"" },
                { "allow unit= iommu-group=1\n", "bad WHO" },
                { "revoke uid=1 always\n", "'revoke' wants WHO [force]" },
                { "revoke\n", "'revoke' wants WHO [force]" },
                { "variant\n", "'variant' needs at least one MATCH" },
                { "variant vendor=0x15b3 host-critical\n", "bad MATCH \"host-critical\"" },
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

/* Callers by systemd unit and cgroup; host-critical lifts; who may revoke; refusals in words. */
START_TEST(test_policy_callers) {
        Policy *p = NULL;
        char msg[512], *err = NULL, unit[64];
        HostDevice nic = dev("0000:02:00.0", 2, 0x8086, 0x10d3, 0x020000);
        HostDevice usb = dev("0000:03:00.0", 3, 0x1b36, 0x000d, 0x0c0330);
        HostDevice vga = dev("0000:00:02.0", 4, 0x1234, 0x1111, 0x030000);
        HostDevice vga1 = dev("0000:00:02.1", 4, 0x1234, 0x1111, 0x030000);
        HostGroup g2 = { .id = 2, .devices = &nic, .n_devices = 1 };
        HostGroup g3 = { .id = 3, .devices = &usb, .n_devices = 1 };
        gid_t kvm = 36;
        PolicySubject virtqemud = { .uid = 107, .gid = 107, .cgroup = "/system.slice/virtqemud.service" };
        PolicySubject libvirtd = { .uid = 107, .gid = 107, .cgroup = "/system.slice/libvirtd.service" };
        PolicySubject unknown = { .uid = 107, .gid = 107 };
        PolicySubject vm = { .uid = 107, .gid = 107, .cgroup = "/machine.slice/machine-qemu\\x2d1.scope/emulator" };
        PolicySubject near = { .uid = 107, .gid = 107, .cgroup = "/machine.slicex/x.scope" };
        PolicySubject root = { .uid = 0 }, kvm_user = { .uid = 1000, .gid = 1000, .gids = &kvm, .n_gids = 1 };
        PolicySubject forcer = { .uid = 1001, .gid = 1001 }, nobody = { .uid = 65534, .gid = 65534 };

        ck_assert_int_eq(policy_unit_of_cgroup("/system.slice/virtqemud.service", unit, sizeof unit), 0);
        ck_assert_str_eq(unit, "virtqemud.service");
        ck_assert_int_eq(policy_unit_of_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service",
                                               unit, sizeof unit), 0);
        ck_assert_str_eq(unit, "user@1000.service");
        ck_assert_int_eq(policy_unit_of_cgroup("/", unit, sizeof unit), -ENOENT);
        ck_assert_int_eq(policy_unit_of_cgroup("/system.slice", unit, sizeof unit), -ENOENT);

        ck_assert_int_eq(policy_parse("allow unit=virtqemud.service iommu-group=2\n"
                                      "allow cgroup=/machine.slice/ iommu-group=3\n"
                                      "allow uid=0 pci=0000:00:02.0 host-critical\n"
                                      "revoke gid=36\n"
                                      "revoke uid=1001 force\n"
                                      "never class=0x01\n",
                                      "t.conf", &p, &err), 0);
        ck_assert_int_eq(policy_check_group(p, &virtqemud, &g2, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_group(p, &libvirtd, &g2, msg, sizeof msg), -EPERM);
        ck_assert_int_eq(policy_check_group(p, &unknown, &g2, msg, sizeof msg), -EPERM);
        ck_assert_int_eq(policy_check_group(p, &vm, &g3, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_group(p, &near, &g3, msg, sizeof msg), -EPERM);
        ck_assert_int_eq(policy_check_group(p, &virtqemud, &g3, msg, sizeof msg), -EPERM);

        /* host-critical: the device named, for whom the rule names. */
        ck_assert(policy_lifts_host_critical(p, &root, &vga));
        ck_assert(policy_lifts_host_critical(p, NULL, &vga));
        ck_assert(!policy_lifts_host_critical(p, &root, &vga1));
        ck_assert(!policy_lifts_host_critical(p, &kvm_user, &vga));

        /* revoke: root always, with force; gid 36 without; uid 1001 with; anyone else not. */
        ck_assert_int_eq(policy_check_revoke(p, &root, true, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_revoke(p, &kvm_user, false, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_revoke(p, &kvm_user, true, msg, sizeof msg), -EPERM);
        ck_assert_ptr_nonnull(strstr(msg, "not by force"));
        ck_assert_int_eq(policy_check_revoke(p, &forcer, true, msg, sizeof msg), 0);
        ck_assert_int_eq(policy_check_revoke(p, &nobody, false, msg, sizeof msg), -EPERM);

        /* A never rule says what the device is, the rule, and where it is. */
        HostDevice nvme = dev("0000:05:00.0", 5, 0x144d, 0xa808, 0x010802);
        ck_assert(policy_device_never(p, &nvme, msg, sizeof msg));
        ck_assert_str_eq(msg, "0000:05:00.0 is a mass storage controller, never handed out (rule \"never class=0x01\", t.conf:6)");
        policy_free(p);
        ck_assert_int_eq(policy_load(NULL, &p, NULL), 0);
        ck_assert(policy_device_never(p, &nvme, msg, sizeof msg));
        ck_assert_ptr_nonnull(strstr(msg, "the built-in policy"));
        ck_assert_ptr_null(strstr(msg, "built-in policy:"));
        policy_free(p);
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
        ck_assert_int_eq(lease_add_device(a, "0000:01:00.0", 1, "nouveau", NULL), 0);
        ck_assert_int_eq(lease_add_device(a, "0000:01:00.1", 1, "", "vfio-pci"), 0);
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
        tcase_add_test(tc, test_policy_callers);
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
