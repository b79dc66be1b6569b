/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device truth, on the simulated host with the real daemon: every device comes back exactly as found
 * (driver and driver_override), bridges are never assigned, what vfio-pci or the host cannot give is
 * refused before anything is touched and says why, callers named by cgroup, the host watched (a device
 * removed, added, rebound behind groupd's back), and revoke with a deadline and force. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "groupd-client.h"
#include "macro.h"
#include "test-util.h"

static char runtime_dir[256];
static char socket_path[300];
static pid_t daemon_pid = -1;

/* Every case of what a device may be on before a lease, and what the host stands on. */
static const char topology[] =
        "group 1\n"   /* on vfio-pci with driver_override vfio-pci: as driverctl or libvirt's unmanaged mode */
        "device 0000:01:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e driver=vfio-pci override=vfio-pci\n"
        "group 2\n"   /* on vfio-pci without an override (bound through new_id, say) */
        "device 0000:02:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e driver=vfio-pci\n"
        "group 3\n"   /* on a VFIO variant driver */
        "device 0000:03:00.0 vendor=0x15b3 device=0x101e class=0x020000 native=mlx5_core variant=mlx5_vfio_pci driver=mlx5_vfio_pci override=mlx5_vfio_pci\n"
        "group 4\n"   /* on pci-stub, without an override */
        "device 0000:04:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e driver=pci-stub\n"
        "group 5\n"   /* no driver, an override naming a driver that is not loaded */
        "device 0000:05:00.0 vendor=0x1234 device=0x11e8 class=0x00ff00 driver= override=vendor_drv\n"
        "group 6\n"   /* a host driver */
        "device 0000:06:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e\n"
        "group 7\n"   /* a PCIe root port alone */
        "device 0000:00:1c.0 vendor=0x8086 device=0xa110 class=0x060400 native=pcieport\n"
        "group 8\n"   /* on vfio-pci's deny list */
        "device 0000:08:00.0 vendor=0x8086 device=0x37c8 class=0x0b4000 native=qat_c62x denylisted\n"
        "group 9\n"   /* a driverless PCIe-to-PCI bridge and an endpoint behind it */
        "device 0000:09:00.0 vendor=0x1b36 device=0x000e class=0x060400\n"
        "device 0000:0a:00.0 vendor=0x8086 device=0x100e class=0x020000 native=e1000\n"
        "group 10\n"  /* the host bridge */
        "device 0000:00:00.0 vendor=0x8086 device=0x29c0 class=0x060000\n"
        "group 11\n"  /* the ISA/LPC bridge */
        "device 0000:00:1f.0 vendor=0x8086 device=0x2918 class=0x060100 native=lpc_ich\n"
        "group 12\n"  /* the boot VGA device */
        "device 0000:0c:00.0 vendor=0x1234 device=0x1111 class=0x030000 native=bochs-drm boot_vga\n"
        "group 13\n"  /* a USB controller with the root filesystem's disk behind it */
        "device 0000:0d:00.0 vendor=0x1b36 device=0x000d class=0x0c0330 native=xhci_hcd mounted=/\n"
        "group 14\n"  /* an NVMe disk holding swap (no never rule in this test's policy) */
        "device 0000:0e:00.0 vendor=0x144d device=0xa808 class=0x010802 native=nvme swap\n"
        "group 15\n"  /* the NIC of the default route */
        "device 0000:0f:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e route=eth0\n"
        "group 16\n"  /* two functions: group mates */
        "device 0000:11:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e\n"
        "device 0000:11:00.1 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e\n"
        "group 17\n"
        "device 0000:12:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e\n"
        "group 18\n"  /* a ConnectX function on its host driver, with a VFIO variant driver for it */
        "device 0000:13:00.0 vendor=0x15b3 device=0x1021 class=0x020000 native=mlx5_core variant=mlx5_vfio_pci\n";

static void daemon_start_with(const char *policy_text) {
        const char *bin = getenv("GROUPD_BIN");
        char policy[300], log[300], topo[300];

        ck_assert_msg(bin, "GROUPD_BIN not set (run through make check)");
        snprintf(policy, sizeof policy, "%s/policy.conf", runtime_dir);
        snprintf(log, sizeof log, "%s/groupd.log", runtime_dir);
        snprintf(topo, sizeof topo, "%s/host.topo", runtime_dir);
        test_write_file(policy, policy_text);
        test_write_file(topo, topology);

        daemon_pid = fork();
        ck_assert_int_ge(daemon_pid, 0);
        if (daemon_pid == 0) {
                char a0[400], a1[400], a2[400], a3[400];
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                snprintf(a0, sizeof a0, "--host=sim:%s", topo);
                snprintf(a1, sizeof a1, "--runtime-dir=%s", runtime_dir);
                snprintf(a2, sizeof a2, "--socket=%s", socket_path);
                snprintf(a3, sizeof a3, "--policy=%s", policy);
                execl(bin, "groupd", a0, a1, a2, a3, "--release-deadline=1", "--no-bus", "-v", (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 400; i++) {
                GdClient *c = NULL;
                if (gd_client_connect(socket_path, &c) >= 0) {
                        gd_client_free(c);
                        return;
                }
                int status;
                ck_assert_msg(waitpid(daemon_pid, &status, WNOHANG) == 0, "groupd died at start-up");
                usleep(10000);
        }
        ck_abort_msg("groupd did not come up");
}

static void setup(void) {
        snprintf(runtime_dir, sizeof runtime_dir, "/tmp/groupd-devtruth.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(runtime_dir));
        chmod(runtime_dir, 0755);
        snprintf(socket_path, sizeof socket_path, "%s/socket", runtime_dir);
        daemon_start_with("revoke uid=65533\n");
}

static void teardown(void) {
        int status = test_daemon_stop(&daemon_pid, SIGTERM, NULL);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                char log[400];
                snprintf(log, sizeof log, "%s/groupd.log", runtime_dir);
                test_cat_to_stderr(log);
        }
        test_rm_rf(runtime_dir);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "groupd did not exit cleanly on SIGTERM");
}

static void restart_with(const char *policy_text) {
        int status = test_daemon_stop(&daemon_pid, SIGTERM, NULL);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        daemon_start_with(policy_text);
}

/* ---------------------------------------------------------------- the simulated kernel's own word */

/* What the simulated sysfs says of a device, read past groupd: "driver|override" ("-" for none). */
static void sim_state(const char *address, char *buf, size_t size) {
        char path[600], link[PATH_MAX] = "", ovr[128] = "";
        ssize_t n;
        FILE *f;

        snprintf(path, sizeof path, "%s/sim/sys/bus/pci/devices/%s/driver", runtime_dir, address);
        n = readlink(path, link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        snprintf(path, sizeof path, "%s/sim/sys/bus/pci/devices/%s/driver_override", runtime_dir, address);
        f = fopen(path, "re");
        if (f) {
                if (!fgets(ovr, sizeof ovr, f))
                        ovr[0] = 0;
                fclose(f);
        }
        ovr[strcspn(ovr, "\n")] = 0;
        snprintf(buf, size, "%s|%s", n > 0 ? strrchr(link, '/') + 1 : "-",
                 ovr[0] == 0 || strcmp(ovr, "(null)") == 0 ? "-" : ovr);
}

#define assert_sim_state(addr, want)                                                                \
        do {                                                                                        \
                char _s[256];                                                                       \
                sim_state(addr, _s, sizeof _s);                                                     \
                ck_assert_msg(strcmp(_s, want) == 0, "%s: \"%s\", want \"%s\"", addr, _s, want);    \
        } while (0)

static void sim_control(const char *line) {
        char path[400];
        int fd;

        snprintf(path, sizeof path, "%s/sim/sim/control", runtime_dir); /* the sim's state_dir is RUNTIME/sim */
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t) strlen(line));
        ck_assert_int_eq(write(fd, "\n", 1), 1);
        close(fd);
}

/* Waits (10 s) for an event of kind whose detail holds text (NULL: any); returns its errno. */
static int wait_event(GdClient *c, unsigned kind, const char *text, unsigned *ret_group, char *detail, size_t size) {
        for (;;) {
                GdEvent e = {};
                int r = gd_client_next_event(c, 10000, &e);
                ck_assert_msg(r > 0, "no %u event with \"%s\"", kind, strempty(text));
                if (e.kind == kind && (!text || (e.detail && strstr(e.detail, text)))) {
                        int err = e.errno_value;
                        if (ret_group)
                                *ret_group = e.lease.n_groups > 0 ? e.lease.groups[0] : UINT_MAX;
                        if (detail)
                                snprintf(detail, size, "%s", strempty(e.detail));
                        gd_event_done(&e);
                        return err;
                }
                gd_event_done(&e);
        }
}

/* Acquires spec, checks the device is on a VFIO driver meanwhile, releases, waits for the end. */
static void round_trip(GdClient *c, GdClient *mon, const char *spec, const char *address, const char *during) {
        GdClientLease *l = test_acquire(c, spec, NULL);
        char id[GD_LEASE_ID_MAX + 1], token[GD_TOKEN_LEN + 1];

        assert_sim_state(address, during);
        snprintf(id, sizeof id, "%s", l->lease.id);
        memcpy(token, l->token, sizeof token);
        gd_client_lease_free(l);
        ck_assert_int_ge(gd_client_release(c, token), 0);
        ck_assert_int_eq(test_wait_ended(mon, id, NULL, 0), GD_REASON_RELEASED);
}

/* ---------------------------------------------------------------- restore */

START_TEST(test_restore_exact) {
        GdClient *c = test_connect(socket_path), *mon = test_connect(socket_path);

        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);

        /* Already on vfio-pci, by override: used as it is, left as it was. */
        assert_sim_state("0000:01:00.0", "vfio-pci|vfio-pci");
        round_trip(c, mon, "1", "0000:01:00.0", "vfio-pci|vfio-pci");
        assert_sim_state("0000:01:00.0", "vfio-pci|vfio-pci");

        /* On vfio-pci without an override. */
        round_trip(c, mon, "2", "0000:02:00.0", "vfio-pci|-");
        assert_sim_state("0000:02:00.0", "vfio-pci|-");

        /* A variant driver: viable as it stands, used as it is. */
        GdGroup *g = NULL;
        ck_assert_int_ge(gd_client_show_group(c, "3", &g), 0);
        ck_assert_msg(g->flags & GD_GROUP_VIABLE, "a group on a VFIO variant driver is viable: %s", strempty(g->viability));
        gd_groups_free(g, 1);
        round_trip(c, mon, "3", "0000:03:00.0", "mlx5_vfio_pci|mlx5_vfio_pci");
        assert_sim_state("0000:03:00.0", "mlx5_vfio_pci|mlx5_vfio_pci");

        /* pci-stub: moved to vfio-pci, and back to pci-stub (which binds only by override). */
        round_trip(c, mon, "4", "0000:04:00.0", "vfio-pci|vfio-pci");
        assert_sim_state("0000:04:00.0", "pci-stub|-");

        /* No driver, an override of its own. */
        round_trip(c, mon, "5", "0000:05:00.0", "vfio-pci|vfio-pci");
        assert_sim_state("0000:05:00.0", "-|vendor_drv");

        /* A host driver. */
        round_trip(c, mon, "6", "0000:06:00.0", "vfio-pci|vfio-pci");
        assert_sim_state("0000:06:00.0", "e1000e|-");

        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

/* A daemon restart in the middle of a lease still puts back what the state file recorded. */
START_TEST(test_restore_after_restart) {
        GdClient *c = test_connect(socket_path);
        const char *specs[] = { "1", "4" };
        GdClientLease *l = NULL;
        int status;

        ck_assert_int_ge(gd_client_acquire(c, specs, 2, NULL, &l), 0);
        assert_sim_state("0000:04:00.0", "vfio-pci|vfio-pci");
        /* Killed: nothing is put back by the old daemon; the new one finds the connection gone. */
        status = test_daemon_stop(&daemon_pid, SIGKILL, NULL);
        (void) status;
        gd_client_lease_free(l);
        gd_client_free(c);
        daemon_start_with("revoke uid=65533\n");
        for (int i = 0; i < 200; i++) {
                char s[256];
                sim_state("0000:04:00.0", s, sizeof s);
                if (strcmp(s, "pci-stub|-") == 0)
                        break;
                usleep(20000);
        }
        assert_sim_state("0000:04:00.0", "pci-stub|-");
        assert_sim_state("0000:01:00.0", "vfio-pci|vfio-pci");
}
END_TEST

/* A variant rule: the device goes to its VFIO variant driver (from the simulated modules.alias), and back. */
START_TEST(test_variant_driver) {
        GdClient *c, *mon;

        /* Without a rule: plain vfio-pci. */
        c = test_connect(socket_path);
        mon = test_connect(socket_path);
        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        round_trip(c, mon, "18", "0000:13:00.0", "vfio-pci|vfio-pci");
        assert_sim_state("0000:13:00.0", "mlx5_core|-");
        gd_client_free(c);
        gd_client_free(mon);

        restart_with("variant vendor=0x15b3\n");
        c = test_connect(socket_path);
        mon = test_connect(socket_path);
        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        round_trip(c, mon, "18", "0000:13:00.0", "mlx5_vfio_pci|mlx5_vfio_pci");
        assert_sim_state("0000:13:00.0", "mlx5_core|-");
        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

/* ---------------------------------------------------------------- refusals before anything is touched */

static void assert_refused(GdClient *c, const char *spec, int code, const char *text) {
        const char *specs[] = { spec };
        GdClientLease *l = NULL;
        GdGroup *g = NULL;

        ck_assert_int_lt(gd_client_acquire(c, specs, 1, NULL, &l), 0);
        ck_assert_int_eq(gd_client_error_code(c), code);
        ck_assert_msg(strstr(gd_client_error_message(c), text), "group %s refused with \"%s\", want \"%s\"", spec,
                      gd_client_error_message(c), text);
        /* show says the same before anyone tries. */
        ck_assert_int_ge(gd_client_show_group(c, spec, &g), 0);
        ck_assert_msg((g->flags & GD_GROUP_NEVER) && g->policy_note && strstr(g->policy_note, text),
                      "show %s: never=%d note \"%s\", want \"%s\"", spec, (int) (g->flags & GD_GROUP_NEVER), strempty(g->policy_note), text);
        gd_groups_free(g, 1);
}

START_TEST(test_bridges_and_deny_list) {
        GdClient *c = test_connect(socket_path), *mon = test_connect(socket_path);

        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        assert_refused(c, "7", GD_ERR_NOT_VIABLE, "group 7 has no device to assign: 0000:00:1c.0 is a PCIe port (pcieport)");
        assert_sim_state("0000:00:1c.0", "pcieport|-");
        assert_refused(c, "8", GD_ERR_NOT_VIABLE, "0000:08:00.0 is on vfio-pci's deny list");
        assert_sim_state("0000:08:00.0", "qat_c62x|-");

        /* The bridge stays driverless; the endpoint behind it is assigned. */
        GdClientLease *l = test_acquire(c, "9", NULL);
        char id[GD_LEASE_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", l->lease.id);
        assert_sim_state("0000:09:00.0", "-|-");
        assert_sim_state("0000:0a:00.0", "vfio-pci|vfio-pci");
        ck_assert_int_ge(gd_client_release(c, l->token), 0);
        gd_client_lease_free(l);
        ck_assert_int_eq(test_wait_ended(mon, id, NULL, 0), GD_REASON_RELEASED);
        assert_sim_state("0000:09:00.0", "-|-");
        assert_sim_state("0000:0a:00.0", "e1000|-");
        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

START_TEST(test_host_critical) {
        GdClient *c = test_connect(socket_path);

        assert_refused(c, "10", GD_ERR_DENIED, "0000:00:00.0 is the host bridge: the host stands on it");
        assert_refused(c, "11", GD_ERR_DENIED, "0000:00:1f.0 is the ISA/LPC bridge");
        assert_refused(c, "12", GD_ERR_DENIED, "0000:0c:00.0 is the boot VGA device (the console)");
        assert_refused(c, "13", GD_ERR_DENIED, "0000:0d:00.0 is under the mounted filesystem / on");
        assert_refused(c, "14", GD_ERR_DENIED, "0000:0e:00.0 is under active swap");
        assert_refused(c, "15", GD_ERR_DENIED, "0000:0f:00.0 is the NIC of the default route (eth0)");
        assert_refused(c, "10", GD_ERR_DENIED, "allow WHO pci=0000:00:00.0 host-critical");
        assert_sim_state("0000:00:1f.0", "lpc_ich|-");
        assert_sim_state("0000:0f:00.0", "e1000e|-");

        /* What the host stands on now, not at start-up: a route moved to 0000:12:00.0, and away again. */
        sim_control("route 0000:12:00.0 eth1");
        usleep(100000);
        assert_refused(c, "17", GD_ERR_DENIED, "0000:12:00.0 is the NIC of the default route (eth1)");
        sim_control("noroute 0000:12:00.0");
        usleep(100000);
        GdClientLease *l = test_acquire(c, "17", NULL);
        gd_client_lease_free(l);
        gd_client_free(c);

        /* Lifted only by naming the device. */
        restart_with("allow uid=0 pci=0000:0f:00.0 host-critical\nallow uid=0 pci=0000:00:00.0 host-critical\n");
        c = test_connect(socket_path);
        l = test_acquire(c, "15", NULL);
        gd_client_lease_free(l);
        l = test_acquire(c, "10", NULL);
        gd_client_lease_free(l);
        assert_refused(c, "11", GD_ERR_DENIED, "the ISA/LPC bridge");
        gd_client_free(c);
}
END_TEST

/* A caller named by its cgroup. */
START_TEST(test_caller_cgroup) {
        char cg[700] = "/", line[600], policy[1800], res[64] = "";
        FILE *f = fopen("/proc/self/cgroup", "re");
        int p[2];
        pid_t pid;

        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof line, f))
                if (strncmp(line, "0::", 3) == 0) {
                        snprintf(cg, sizeof cg, "%s", line + 3);
                        cg[strcspn(cg, "\n")] = 0;
                }
        fclose(f);
        /* Group 6 for our own cgroup, group 17 for a cgroup we are not in. */
        snprintf(policy, sizeof policy, "allow cgroup=%s iommu-group=6\nallow cgroup=/elsewhere.slice/x.service iommu-group=17\n", cg);
        restart_with(policy);

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                GdClient *c = NULL;
                GdClientLease *l = NULL;
                const char *six[] = { "6" }, *seventeen[] = { "17" };
                char out[64];
                int r1, r2;

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                if (gd_client_connect(socket_path, &c) < 0)
                        _exit(3);
                r1 = gd_client_acquire(c, six, 1, NULL, &l);
                r2 = gd_client_acquire(c, seventeen, 1, NULL, &l);
                snprintf(out, sizeof out, "%d|%d %d", r1, r2, gd_client_error_code(c));
                (void) !write(p[1], out, strlen(out));
                _exit(0);
        }
        close(p[1]);
        ck_assert_int_gt(read(p[0], res, sizeof res - 1), 0);
        close(p[0]);
        waitpid(pid, NULL, 0);
        ck_assert_str_eq(res, "0|-1 6");
}
END_TEST

/* ---------------------------------------------------------------- watching the host */

START_TEST(test_watch_vanish_add) {
        GdClient *c = test_connect(socket_path), *mon = test_connect(socket_path);
        GdClientLease *l;
        char id[GD_LEASE_ID_MAX + 1], detail[GD_TEXT_MAX];
        unsigned group = 0;

        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        l = test_acquire(c, "16", NULL);
        snprintf(id, sizeof id, "%s", l->lease.id);
        assert_sim_state("0000:11:00.0", "vfio-pci|vfio-pci");

        /* One function goes: the lease ends, and its holder is told; once it lets go (as a VMM does on
         * LEASE_RELEASING), its mate comes back. */
        sim_control("remove 0000:11:00.1");
        for (;;) {
                GdEvent e = {};
                ck_assert_int_gt(gd_client_next_event(mon, 10000, &e), 0);
                if (e.kind == GD_EVENT_LEASE_RELEASING && strcmp(e.lease.id, id) == 0) {
                        ck_assert_uint_eq(e.reason, GD_REASON_DEVICE_VANISHED);
                        gd_event_done(&e);
                        break;
                }
                gd_event_done(&e);
        }
        l = gd_client_lease_free(l);
        for (;;) {
                GdEvent e = {};
                ck_assert_int_gt(gd_client_next_event(mon, 10000, &e), 0);
                if (e.kind == GD_EVENT_LEASE_ENDED && strcmp(e.lease.id, id) == 0) {
                        ck_assert_uint_eq(e.reason, GD_REASON_DEVICE_VANISHED);
                        ck_assert_ptr_nonnull(strstr(e.detail, "0000:11:00.1 vanished"));
                        /* The removal's own unbind is no tampering. */
                        ck_assert_ptr_null(strstr(e.detail, "while leased"));
                        ck_assert_int_eq(e.errno_value, 0);
                        gd_event_done(&e);
                        break;
                }
                gd_event_done(&e);
        }
        assert_sim_state("0000:11:00.0", "e1000e|-");
        ck_assert_uint_eq(test_count_leases(c), 0);

        /* A rescan brings it back: GROUP_CHANGED for its group. */
        sim_control("add 0000:11:00.1");
        ck_assert_int_eq(wait_event(mon, GD_EVENT_GROUP_CHANGED, "0000:11:00.1 appeared", &group, NULL, 0), 0);
        ck_assert_uint_eq(group, 16);
        assert_sim_state("0000:11:00.1", "e1000e|-");

        /* A group that goes entirely, and comes back. */
        sim_control("remove 0000:12:00.0");
        ck_assert_int_eq(wait_event(mon, GD_EVENT_GROUP_CHANGED, "0000:12:00.0 was removed", &group, detail,
                                    sizeof detail), 0);
        ck_assert_uint_eq(group, 17);
        GdGroup *g = NULL;
        ck_assert_int_lt(gd_client_show_group(c, "17", &g), 0);
        sim_control("add 0000:12:00.0");
        ck_assert_int_eq(wait_event(mon, GD_EVENT_GROUP_CHANGED, "0000:12:00.0 appeared", &group, NULL, 0), 0);
        ck_assert_int_ge(gd_client_show_group(c, "17", &g), 0);
        gd_groups_free(g, 1);
        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

START_TEST(test_watch_rebind) {
        GdClient *c = test_connect(socket_path), *mon = test_connect(socket_path);
        GdClientLease *l;
        char id[GD_LEASE_ID_MAX + 1], detail[GD_TEXT_MAX];

        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        l = test_acquire(c, "17", NULL);
        snprintf(id, sizeof id, "%s", l->lease.id);

        sim_control("rebind 0000:12:00.0 e1000e");
        ck_assert_int_eq(wait_event(mon, GD_EVENT_GROUP_CHANGED, "behind groupd's back", NULL, detail, sizeof detail),
                         EBUSY);
        ck_assert_ptr_nonnull(strstr(detail, "0000:12:00.0 was rebound to e1000e"));
        ck_assert_ptr_nonnull(strstr(detail, id));
        /* The lease stays, marked: its end says so. */
        ck_assert_int_eq(test_lease_state(c, id, NULL), GD_LEASE_ACTIVE);
        ck_assert_int_ge(gd_client_release(c, l->token), 0);
        gd_client_lease_free(l);
        ck_assert_int_eq(test_wait_ended(mon, id, detail, sizeof detail), GD_REASON_RELEASED);
        ck_assert_ptr_nonnull(strstr(detail, "while leased, 0000:12:00.0 was rebound to e1000e"));
        assert_sim_state("0000:12:00.0", "e1000e|-");

        /* A device no lease holds changing driver is a GROUP_CHANGED of its own. */
        sim_control("unbind 0000:06:00.0");
        ck_assert_int_eq(wait_event(mon, GD_EVENT_GROUP_CHANGED, "0000:06:00.0 was unbound", NULL, NULL, 0), 0);
        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

/* ---------------------------------------------------------------- revoke */

/* A VMM that owns its lease through its pidfd and keeps the group open (its copy of the group fd, sent
 * over after the acquire): the simulated kernel holds the unbind up while it does. With ignore_term it lets
 * SIGTERM pass. */
static pid_t vmm_holding(GdClient *c, const char *spec, bool ignore_term, char id[GD_LEASE_ID_MAX + 1]) {
        int sp[2], pidfd;
        GdClientLease *l;
        pid_t vmm;
        char b = 'x';

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        vmm = fork();
        ck_assert_int_ge(vmm, 0);
        if (vmm == 0) {
                char cbuf[CMSG_SPACE(sizeof(int))];
                struct iovec iov = { &b, 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                                     .msg_controllen = sizeof cbuf };

                /* Check's runner handles SIGTERM by killing the whole process group: a VMM dies of it. */
                signal(SIGTERM, ignore_term ? SIG_IGN : SIG_DFL);
                close(sp[0]);
                if (recvmsg(sp[1], &mh, MSG_CMSG_CLOEXEC) <= 0)
                        _exit(1);
                /* The group fd stays open in here until the process ends. */
                (void) !write(sp[1], "k", 1);
                for (;;)
                        pause();
        }
        close(sp[1]);
        pidfd = (int) syscall(SYS_pidfd_open, vmm, 0);
        ck_assert_int_ge(pidfd, 0);
        l = test_acquire(c, spec, &(GdAcquireOptions) { .label = "held", .owner_pidfd = pidfd });
        snprintf(id, GD_LEASE_ID_MAX + 1, "%s", l->lease.id);
        close(pidfd);
        {
                char cbuf[CMSG_SPACE(sizeof(int))] = {};
                struct iovec iov = { &b, 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                                     .msg_controllen = sizeof cbuf };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &l->group_fds[0], sizeof(int));
                ck_assert_int_eq(sendmsg(sp[0], &mh, 0), 1);
                ck_assert_int_eq(read(sp[0], &b, 1), 1);
        }
        close(sp[0]);
        gd_client_lease_free(l); /* the VMM keeps its copy */
        return vmm;
}

START_TEST(test_revoke) {
        GdClient *c = test_connect(socket_path), *mon = test_connect(socket_path);
        char id[GD_LEASE_ID_MAX + 1], detail[GD_TEXT_MAX];
        pid_t vmm;
        int status;

        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);

        /* A bad id, an unknown one, force on a lease no process owns. */
        ck_assert_int_lt(gd_client_revoke(c, "nope", 0, 0), 0);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_INVALID);
        ck_assert_int_lt(gd_client_revoke(c, "0123456789ab", 0, 0), 0);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_NOT_FOUND);
        GdClientLease *own = test_acquire(c, "6", NULL);
        ck_assert_int_lt(gd_client_revoke(c, own->lease.id, 1, GD_REVOKE_FORCE), 0);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_INVALID);
        gd_client_lease_free(own);

        /* Held: without force the release waits past the deadline, and says so. */
        vmm = vmm_holding(c, "17", false, id);
        ck_assert_int_ge(gd_client_revoke(c, id, 1, 0), 0);
        ck_assert_int_eq(wait_event(mon, GD_EVENT_LEASE_RELEASING, "past the deadline", NULL, NULL, 0), EBUSY);
        ck_assert_int_eq(waitpid(vmm, &status, WNOHANG), 0);
        ck_assert_int_eq(test_lease_state(c, id, NULL), GD_LEASE_RELEASING);
        /* Then by force: SIGTERM ends it. */
        ck_assert_int_ge(gd_client_revoke(c, id, 1, GD_REVOKE_FORCE), 0);
        ck_assert_int_eq(test_wait_ended(mon, id, detail, sizeof detail), GD_REASON_REVOKED);
        ck_assert_int_eq(waitpid(vmm, &status, 0), vmm);
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        assert_sim_state("0000:12:00.0", "e1000e|-");

        /* A VMM that ignores SIGTERM gets SIGKILL. */
        vmm = vmm_holding(c, "17", true, id);
        ck_assert_int_ge(gd_client_revoke(c, id, 1, GD_REVOKE_FORCE), 0);
        ck_assert_int_eq(wait_event(mon, GD_EVENT_LEASE_RELEASING, "SIGTERM sent", NULL, NULL, 0), EBUSY);
        ck_assert_int_eq(test_wait_ended(mon, id, NULL, 0), GD_REASON_REVOKED);
        ck_assert_int_eq(waitpid(vmm, &status, 0), vmm);
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

/* Runs gd_client_revoke() as uid, for each flags in turn; returns the error codes, "6 0". */
static void revoke_as(uid_t uid, const char *id, const uint32_t *flags, size_t n, char *res, size_t size) {
        int p[2];
        pid_t pid;
        ssize_t k;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                GdClient *x = NULL;
                char out[64] = "";

                if (setgid(uid) < 0 || setuid(uid) < 0 || gd_client_connect(socket_path, &x) < 0)
                        _exit(2);
                for (size_t i = 0; i < n; i++)
                        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%d", i > 0 ? " " : "",
                                 gd_client_revoke(x, id, 0, flags[i]) < 0 ? gd_client_error_code(x) : 0);
                (void) !write(p[1], out, strlen(out));
                _exit(0);
        }
        close(p[1]);
        k = read(p[0], res, size - 1);
        res[k > 0 ? k : 0] = 0;
        close(p[0]);
        waitpid(pid, NULL, 0);
}

/* Who may revoke: root; uid 65533 by its rule, but not by force; uid 65534 not at all. */
START_TEST(test_revoke_policy) {
        GdClient *c = test_connect(socket_path), *mon = test_connect(socket_path);
        char id[GD_LEASE_ID_MAX + 1], res[64];
        const uint32_t plain[] = { 0 }, force_then_plain[] = { GD_REVOKE_FORCE, 0 };
        pid_t vmm;

        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        vmm = vmm_holding(c, "17", false, id);
        revoke_as(65534, id, plain, 1, res, sizeof res);
        ck_assert_str_eq(res, "6");   /* denied */
        ck_assert_int_eq(test_lease_state(c, id, NULL), GD_LEASE_ACTIVE);
        revoke_as(65533, id, force_then_plain, 2, res, sizeof res);
        ck_assert_str_eq(res, "6 0"); /* not by force; revoked */
        ck_assert_int_eq(test_lease_state(c, id, NULL), GD_LEASE_RELEASING);
        kill(vmm, SIGKILL);
        waitpid(vmm, NULL, 0);
        ck_assert_int_eq(test_wait_ended(mon, id, NULL, 0), GD_REASON_REVOKED);
        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

static Suite *devtruth_suite(void) {
        Suite *s = suite_create("devtruth");
        TCase *tc = tcase_create("sim");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_restore_exact);
        tcase_add_test(tc, test_restore_after_restart);
        tcase_add_test(tc, test_variant_driver);
        tcase_add_test(tc, test_bridges_and_deny_list);
        tcase_add_test(tc, test_host_critical);
        tcase_add_test(tc, test_caller_cgroup);
        tcase_add_test(tc, test_watch_vanish_add);
        tcase_add_test(tc, test_watch_rebind);
        tcase_add_test(tc, test_revoke);
        tcase_add_test(tc, test_revoke_policy);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return test_run_suite(devtruth_suite(), argc > 1 ? argv[1] : NULL);
}
