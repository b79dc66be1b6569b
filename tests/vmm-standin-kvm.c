/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vmm-standin kvm: a stand-in VMM that registers its groups with its VM through libgroupd.
 *
 *   vmm-standin kvm [--sim] [--configure-iommu] [--guest-ram SIZE [--viommu]]
 *                   [--end release|kill|release-keep-kvm] GROUP...
 *
 * It forks the VMM: a process that makes a VM (KVM_CREATE_VM on /dev/kvm) and a kvm-vfio device
 * (KVM_CREATE_DEVICE of type KVM_DEV_TYPE_VFIO); with --sim, the simulated host's stand-in device
 * instead (kvm_vfio_sim_new()). Only that process may use its VM's devices (the kernel gives anyone else
 * EIO), so the VMM itself acquires the groups over libgroupd ($GROUPD_SOCKET) with the kvm-vfio fd and
 * owns the lease (by pidfd), and libgroupd adds each group to KVM as the fds arrive. Checks, one line each:
 *
 *   CHECK add-happened     in the VMM: a second KVM_DEV_VFIO_FILE_ADD of each group gets EEXIST (sim: the
 *                          device lists the group)
 *   CHECK foreign-eio      in this process (not the VM's): an ADD gets EIO, as it would for groupd
 *   CHECK memlock          with --guest-ram: the VMM's RLIMIT_MEMLOCK is what groupd says it set, and
 *                          that is libvirt's figure
 *   CHECK del-happened     --end release: the VMM releases with gd_client_release_lease(), which deletes
 *                          the groups from KVM first; its own DEL then gets ENOENT (sim: lists nothing)
 *   CHECK again-while-held --end release-keep-kvm: the VMM releases with the bare token and keeps its VM's
 *                          registration. groupd's release does not depend on the VMM's DEL: the group is
 *                          restored to its host driver and can be acquired again at once (unbinding
 *                          vfio-pci tears the old VFIO group down; the kvm-vfio device keeps only a dead
 *                          one until the VM ends). Measured on 6.1: it can.
 *
 * With --end kill, the DEL is the kernel's own (the VM dies with its last fd, and the device with it);
 * nothing outside the VM's process can look at the device to confirm it (EIO).
 *
 * and ends with "RESULT PASS" (exit 0) or "RESULT FAIL" (exit 1); 77 when it cannot make a VM. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "groupd-client.h"
#include "kvm-vfio.h"
#include "log.h"
#include "macro.h"
#include "memlock.h"

int kvm_main(int argc, char **argv);

static int checks_failed = 0;

_printf_(3, 4)
static void check(const char *name, bool ok, const char *fmt, ...) {
        va_list ap;

        printf("CHECK %s %s: ", name, ok ? "PASS" : "FAIL");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        if (!ok)
                checks_failed++;
}

static int make_kvm_vfio(bool sim, int *ret_vm) {
        *ret_vm = -EBADF;
        return sim ? kvm_vfio_sim_new() : kvm_vfio_create(ret_vm);
}

static const char *errname(int r) {
        return r == 0 ? "success" : strerror(-r);
}

static bool arg_sim, arg_configure, arg_viommu, arg_kill, arg_keep_kvm;
static uint64_t arg_guest_ram;

/* Waits for the lease-ended event of lease id on c. */
static void wait_ended(GdClient *c, const char *id) {
        for (;;) {
                GdEvent e = {};
                int r = gd_client_next_event(c, 30000, &e);
                if (r <= 0) {
                        check("ended", false, "no lease-ended event within 30 s (%s)", r < 0 ? errname(r) : "timeout");
                        return;
                }
                bool mine = e.kind == GD_EVENT_LEASE_ENDED && streq(strempty(e.lease.id), id);
                if (mine)
                        printf("ENDED reason %s errno %i: %s\n", strna(gd_reason_to_string((int) e.reason)),
                               e.errno_value, strempty(e.detail));
                gd_event_done(&e);
                if (mine)
                        return;
        }
}

/* The VMM: makes its VM, acquires with it, checks, and releases or waits to be killed. Reports the
 * lease id and its kvm-vfio fd number (for the foreign check) on report_fd. */
static int vmm(char **specs, size_t n_specs, int report_fd) {
        GdClient *c = NULL;
        GdClientLease *l = NULL;
        int kvm_fd, vm_fd, pidfd, r;
        char text[256];

        kvm_fd = make_kvm_vfio(arg_sim, &vm_fd);
        if (kvm_fd < 0) {
                printf("SKIP cannot make a kvm-vfio device: %s\n", strerror(-kvm_fd));
                return 77;
        }
        printf("VMM pid %i: %s kvm-vfio device, fd %i\n", (int) getpid(), arg_sim ? "simulated" : "real", kvm_fd);
        pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        r = gd_client_connect(NULL, &c);
        if (r < 0) {
                printf("cannot connect to groupd: %s\n", strerror(-r));
                return 1;
        }
        r = gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
        if (r >= 0)
                r = gd_client_acquire(c, (const char *const *) specs, n_specs,
                                      &(GdAcquireOptions) {
                                              .label = "vmm-standin-kvm",
                                              .configure_iommu = arg_configure,
                                              .owner_pidfd = pidfd,
                                              .kvm_fd = kvm_fd,
                                              .memlock_guest_ram = arg_guest_ram,
                                              .viommu = arg_viommu,
                                      }, &l);
        if (r < 0) {
                printf("ACQUIRE failed: %s: %s\n", strna(gd_error_to_string(gd_client_error_code(c))),
                       gd_client_error_message(c));
                return 1;
        }
        printf("ACQUIRED lease %s, %zu group(s), memlock %" PRIu64 ", DMA facts 0x%x\n", l->lease.id,
               l->n_group_fds, l->memlock, l->dma.flags);

        /* 1. The groups are registered. */
        for (size_t i = 0; i < l->n_group_fds; i++) {
                if (arg_sim) {
                        char want[32];
                        ssize_t n = pread(kvm_fd, text, sizeof text - 1, 0);
                        text[MAX(n, (ssize_t) 0)] = 0;
                        snprintf(want, sizeof want, "group %u\n", l->lease.groups[i]);
                        check("add-happened", strstr(text, want) != NULL, "group %u is on the simulated device",
                              l->lease.groups[i]);
                } else {
                        r = kvm_vfio_add(kvm_fd, l->group_fds[i], l->lease.groups[i]);
                        check("add-happened", r == -EEXIST, "group %u: a second ADD gets %s", l->lease.groups[i],
                              errname(r));
                }
        }

        /* 2. The memlock limit groupd set on us. */
        if (arg_guest_ram > 0) {
                struct rlimit rl = {};
                uint64_t want = 0;
                MemlockInput in = { .guest_ram = arg_guest_ram, .viommu = arg_viommu, .rule = memlock_rule_host() };

                for (size_t i = 0; i < l->lease.n_groups; i++) {
                        GdDmaInfo *d = NULL;
                        char spec[16];
                        snprintf(spec, sizeof spec, "%u", l->lease.groups[i]);
                        if (gd_client_dma_info(c, spec, &d) >= 0) {
                                in.n_devices += d->n_devices;
                                gd_dma_info_free(d);
                        }
                }
                (void) memlock_limit(&in, &want);
                (void) getrlimit(RLIMIT_MEMLOCK, &rl);
                check("memlock", l->memlock == want && rl.rlim_cur >= want && rl.rlim_max >= want,
                      "soft %llu hard %llu, groupd set %" PRIu64 ", libvirt's rule says %" PRIu64,
                      (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max, l->memlock, want);
        }

        snprintf(text, sizeof text, "%s %i %i\n", l->lease.id, kvm_fd, checks_failed);
        (void) !write(report_fd, text, strlen(text));

        if (arg_keep_kvm) {
                /* The control: the lease goes back, the VM keeps the groups registered. */
                char id[GD_LEASE_ID_MAX + 1], token[GD_TOKEN_LEN + 1];

                snprintf(id, sizeof id, "%s", l->lease.id);
                memcpy(token, l->token, sizeof token);
                l->kvm_fd = safe_close(l->kvm_fd);   /* the library forgets it; our kvm_fd keeps the VM */
                l = gd_client_lease_free(l);
                r = gd_client_release(c, token);
                if (r < 0)
                        check("release", false, "%s", gd_client_error_message(c));
                wait_ended(c, id);
                (void) !write(report_fd, "released\n", 9);
        }
        if (arg_kill || arg_keep_kvm) {
                printf("VMM waiting to be killed\n");
                fflush(stdout);
                for (;;)
                        pause();
        }

        /* 3. Release: libgroupd deletes from KVM first. */
        {
                char id[GD_LEASE_ID_MAX + 1];
                int fds[GD_GROUPS_PER_ACQUIRE_MAX];
                unsigned groups[GD_GROUPS_PER_ACQUIRE_MAX];
                size_t n = MIN(l->n_group_fds, (size_t) GD_GROUPS_PER_ACQUIRE_MAX);

                snprintf(id, sizeof id, "%s", l->lease.id);
                /* Our own copies of the group fds for the DEL after it (the library's are closed with the
                 * lease; on the simulated host an open group holds the unbind up, so there we keep none). */
                for (size_t i = 0; i < n; i++) {
                        groups[i] = l->lease.groups[i];
                        fds[i] = arg_sim ? -EBADF : fcntl(l->group_fds[i], F_DUPFD_CLOEXEC, 3);
                }
                r = gd_client_release_lease(c, l);
                if (r < 0)
                        check("release", false, "%s", gd_client_error_message(c));
                l = gd_client_lease_free(l);
                wait_ended(c, id);
                for (size_t i = 0; i < n; i++) {
                        if (arg_sim) {
                                ssize_t k = pread(kvm_fd, text, sizeof text - 1, 0);
                                text[MAX(k, (ssize_t) 0)] = 0;
                                check("del-happened", strstr(text, "group ") == NULL,
                                      "group %u is off the simulated device", groups[i]);
                        } else {
                                r = kvm_vfio_del(kvm_fd, fds[i], groups[i]);
                                check("del-happened", r == -ENOENT, "group %u: our DEL gets %s", groups[i], errname(r));
                                safe_close(fds[i]);
                        }
                }
        }
        gd_client_free(c);
        safe_close(pidfd);
        safe_close(kvm_fd);
        safe_close(vm_fd);
        return checks_failed == 0 ? 0 : 1;
}

int kvm_main(int argc, char **argv) {
        static const struct option options[] = {
                { "sim", no_argument, NULL, 's' },
                { "configure-iommu", no_argument, NULL, 'c' },
                { "guest-ram", required_argument, NULL, 'g' },
                { "viommu", no_argument, NULL, 'v' },
                { "end", required_argument, NULL, 'e' },
                {}
        };
        GdClient *c = NULL;
        int opt, r, status, p[2];
        pid_t child;
        char report[128] = "", id[GD_LEASE_ID_MAX + 1] = "";
        int child_kvm_fd = -1, child_failed = 0;
        ssize_t n;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 's': arg_sim = true; break;
                case 'c': arg_configure = true; break;
                case 'v': arg_viommu = true; break;
                case 'g':
                        if (memlock_parse_size(optarg, &arg_guest_ram) < 0 || arg_guest_ram == 0) {
                                log_error("Bad --guest-ram \"%s\".", optarg);
                                return 2;
                        }
                        break;
                case 'e':
                        if (streq(optarg, "kill"))
                                arg_kill = true;
                        else if (streq(optarg, "release-keep-kvm"))
                                arg_keep_kvm = true;
                        else if (!streq(optarg, "release")) {
                                log_error("--end release|kill|release-keep-kvm");
                                return 2;
                        }
                        break;
                default:
                        return 2;
                }
        if (optind >= argc) {
                log_error("Which groups?");
                return 2;
        }

        /* We watch from outside: our own connection, subscribed before the VMM starts. */
        r = gd_client_connect(NULL, &c);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to groupd: %m"), 1;
        r = gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
        if (r < 0)
                return log_error_errno(r, "Cannot subscribe: %m"), 1;

        if (pipe2(p, O_CLOEXEC) < 0)
                return 1;
        fflush(stdout);
        child = fork();
        if (child < 0)
                return 1;
        if (child == 0) {
                close(p[0]);
                _exit(vmm(argv + optind, (size_t) (argc - optind), p[1]));
        }
        close(p[1]);
        n = read(p[0], report, sizeof report - 1);
        if (n > 0) {
                report[n] = 0;
                (void) sscanf(report, "%32s %i %i", id, &child_kvm_fd, &child_failed);
                checks_failed += child_failed;
        }
        if (n > 0 && arg_keep_kvm) {
                char line[32] = "";
                GdClientLease *l = NULL;

                if (!strstr(report, "released"))
                        (void) !read(p[0], line, sizeof line - 1);
                r = gd_client_acquire(c, (const char *const *) argv + optind, (size_t) (argc - optind),
                                      &(GdAcquireOptions) { .label = "vmm-standin-kvm-control", .owner_pidfd = -1 }, &l);
                check("again-while-held", r >= 0, "with the VM still holding its registration, acquiring the "
                      "groups again gets %s%s%s", errname(r), r < 0 ? ": " : "", r < 0 ? gd_client_error_message(c) : "");
                if (r >= 0) {
                        char token[GD_TOKEN_LEN + 1], again[GD_LEASE_ID_MAX + 1];
                        memcpy(token, l->token, sizeof token);
                        snprintf(again, sizeof again, "%s", l->lease.id);
                        gd_client_lease_free(l);
                        if (gd_client_release(c, token) >= 0)
                                wait_ended(c, again);
                }
                printf("END killing the VMM pid %i (SIGKILL)\n", (int) child);
                fflush(stdout);
                (void) kill(child, SIGKILL);
        }
        close(p[0]);

        if (n > 0 && arg_kill) {
                /* Not the VM's process: KVM refuses us, as it refuses groupd. Our fd is the VMM's, fetched with
                 * pidfd_getfd() (we are its parent). */
                int pidfd = (int) syscall(SYS_pidfd_open, child, 0), kfd;
                kfd = pidfd >= 0 ? (int) syscall(SYS_pidfd_getfd, pidfd, child_kvm_fd, 0) : -1;
                if (kfd >= 0) {
                        int e = eventfd(0, EFD_CLOEXEC);
                        r = kvm_vfio_add(kfd, e, 0);
                        check("foreign-eio", r == -EIO, "an ADD from pid %i, not the VM's: %s", (int) getpid(), errname(r));
                        close(e);
                }
                if (kfd >= 0)
                        close(kfd);
                if (pidfd >= 0)
                        close(pidfd);
                printf("END killing the VMM pid %i (SIGKILL)\n", (int) child);
                fflush(stdout);
                (void) kill(child, SIGKILL);
                wait_ended(c, id);
        }
        (void) waitpid(child, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                gd_client_free(c);
                return 77;
        }
        if (!arg_kill && !arg_keep_kvm && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                checks_failed++;
        if (n <= 0)
                checks_failed++;

        gd_client_free(c);
        puts(checks_failed == 0 ? "RESULT PASS" : "RESULT FAIL");
        return checks_failed == 0 ? 0 : 1;
}
