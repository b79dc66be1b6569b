/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of policy.c: the built-in policy, rules, and the errors of a bad policy file. */
#include <check.h>
#include <stdio.h>

#include "policy.h"
#include "test-util.h"

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

/* A memlock rule says who may have its RLIMIT_MEMLOCK raised; it gives no group. A caller covered only by
 * a memlock rule is refused every acquire, and its memlock is allowed with its ceiling. */
START_TEST(test_policy_memlock_rule_gives_no_group) {
        Policy *p = NULL;
        char msg[256], *err = NULL;
        HostDevice nic = dev("0000:02:00.0", 2, 0x8086, 0x10d3, 0x020000);
        HostGroup g2 = { .id = 2, .devices = &nic, .n_devices = 1 };
        PolicySubject carol = { .uid = 1002, .gid = 1002 }, dave = { .uid = 1003, .gid = 1003 };
        uint64_t max = 0;

        ck_assert_int_eq(policy_parse("memlock uid=1002 max=16G\n", "t.conf", &p, &err), 0);
        ck_assert_int_eq(policy_check_group(p, &carol, &g2, msg, sizeof msg), -EPERM);
        ck_assert_msg(strstr(msg, "uid 1002") && strstr(msg, "no allow rule"), "%s", msg);
        ck_assert_int_eq(policy_check_memlock(p, &carol, &max, msg, sizeof msg), 0);
        ck_assert_uint_eq(max, UINT64_C(16) << 30);
        ck_assert_int_eq(policy_check_memlock(p, &dave, &max, msg, sizeof msg), -EPERM);
        ck_assert_msg(strstr(msg, "uid 1003"), "%s", msg);
        policy_free(p);
}
END_TEST

/* allow gid=N covers a caller whose primary gid is N, and one for whom N is a supplementary group only. */
START_TEST(test_policy_supplementary_gid_granted) {
        Policy *p = NULL;
        char msg[256], *err = NULL;
        gid_t groups[] = { 27, 36 };
        HostDevice nic = dev("0000:02:00.0", 2, 0x8086, 0x10d3, 0x020000);
        HostGroup g2 = { .id = 2, .devices = &nic, .n_devices = 1 };
        PolicySubject primary = { .uid = 1004, .gid = 36 };
        PolicySubject supplementary = { .uid = 1005, .gid = 1005, .gids = groups, .n_gids = 2 };
        PolicySubject neither = { .uid = 1006, .gid = 1006, .gids = groups, .n_gids = 1 };

        ck_assert_int_eq(policy_parse("allow gid=36 iommu-group=2\nallow gid=36 class=0x02\n", "t.conf", &p, &err), 0);
        ck_assert_msg(policy_check_group(p, &primary, &g2, msg, sizeof msg) == 0, "%s", msg);
        ck_assert_msg(policy_check_group(p, &supplementary, &g2, msg, sizeof msg) == 0, "%s", msg);
        ck_assert_int_eq(policy_check_group(p, &neither, &g2, msg, sizeof msg), -EPERM);
        policy_free(p);
}
END_TEST

/* A standby rule names the devices kept on vfio-pci; it gives no group (a caller with only a standby rule
 * matching the group is refused), a never rule still wins, and it needs a MATCH. */
START_TEST(test_policy_standby_rule_gives_no_group) {
        Policy *p = NULL;
        char msg[256], note[256], *err = NULL;
        HostDevice nic = dev("0000:02:00.0", 2, 0x8086, 0x10d3, 0x020000);
        HostDevice gpu = dev("0000:01:00.0", 1, 0x10de, 0x1eb8, 0x030200);
        HostGroup g2 = { .id = 2, .devices = &nic, .n_devices = 1 };
        PolicySubject anyone = { .uid = 1002, .gid = 1002 }, root = { .uid = 0 };

        ck_assert_int_eq(policy_parse("standby class=0x02\n", "t.conf", &p, &err), 0);
        ck_assert(policy_device_standby(p, &nic, note, sizeof note));
        ck_assert_msg(strstr(note, "0000:02:00.0") && strstr(note, "t.conf:1: standby class=0x02"), "%s", note);
        ck_assert(!policy_device_standby(p, &gpu, NULL, 0));
        ck_assert_int_eq(policy_check_group(p, &anyone, &g2, msg, sizeof msg), -EPERM);
        ck_assert_msg(strstr(msg, "no allow rule"), "%s", msg);
        ck_assert_int_eq(policy_check_group(p, &root, &g2, msg, sizeof msg), 0);
        policy_free(p);

        ck_assert_int_eq(policy_parse("standby class=0x02\nnever vendor=0x8086\n", "t.conf", &p, &err), 0);
        ck_assert_int_eq(policy_check_group(p, &root, &g2, msg, sizeof msg), -EPERM);
        policy_free(p);

        ck_assert_int_eq(policy_parse("standby\n", "t.conf", &p, &err), -EINVAL);
        ck_assert_msg(strstr(err, "t.conf:1") && strstr(err, "'standby' needs at least one MATCH"), "%s", err);
        free(err);
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

START_TEST(test_policy_owner_any) {
        PolicySubject alice = { .uid = 1000, .gid = 1000 }, bob = { .uid = 1001, .gid = 1001 }, root = { .uid = 0 };
        HostDevice nic = dev("0000:02:00.0", 2, 0x8086, 0x10d3, 0x020000);
        HostGroup g2 = { .id = 2, .devices = &nic, .n_devices = 1 };
        Policy *p = NULL;
        char rule[256], *err = NULL;

        ck_assert_int_eq(policy_parse("owner-any uid=1000\n", "t.conf", &p, &err), 0);
        ck_assert_int_eq(policy_check_owner_any(p, &alice, rule, sizeof rule), 0);
        ck_assert_str_eq(rule, "rule \"owner-any uid=1000\", t.conf:1");
        ck_assert_int_eq(policy_check_owner_any(p, &bob, rule, sizeof rule), -EPERM);
        ck_assert_ptr_nonnull(strstr(rule, "no owner-any rule"));
        ck_assert_int_eq(policy_check_owner_any(p, &root, rule, sizeof rule), 0);
        /* It gives no group. */
        ck_assert_int_eq(policy_check_group(p, &alice, &g2, rule, sizeof rule), -EPERM);
        policy_free(p);
}
END_TEST

static Suite *policy_suite(void) {
        Suite *s = suite_create("policy");
        TCase *tc = tcase_create("policy");

        tcase_add_test(tc, test_policy_default);
        tcase_add_test(tc, test_policy_rules);
        tcase_add_test(tc, test_policy_standby_rule_gives_no_group);
        tcase_add_test(tc, test_policy_errors);
        tcase_add_test(tc, test_policy_callers);
        tcase_add_test(tc, test_policy_owner_any);
        tcase_add_test(tc, test_policy_memlock_rule_gives_no_group);
        tcase_add_test(tc, test_policy_supplementary_gid_granted);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(policy_suite(), NULL);
}
