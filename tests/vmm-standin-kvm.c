/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vmm-standin kvm: a stand-in VMM that registers its groups with KVM through groupd.
 *
 *   vmm-standin kvm [--sim] [--configure-iommu] [--guest-ram SIZE [--viommu]] [--end release|kill] GROUP...
 *
 * It makes a VM (KVM_CREATE_VM on /dev/kvm) and a kvm-vfio device (KVM_CREATE_DEVICE of type
 * KVM_DEV_TYPE_VFIO); with --sim, the simulated host's kvm-vfio device instead (a memfd named
 * "groupd-sim-kvm-vfio", see daemon/host.h). It forks a child that plays the VMM process: the lease's
 * owner is that child (by pidfd). Then, over libgroupd ($GROUPD_SOCKET), it acquires the groups with the
 * kvm-vfio fd (and a memlock request with --guest-ram), and checks, printing one line per check:
 *
 *   CHECK add-happened   the daemon added each group: a second KVM_DEV_VFIO_FILE_ADD gets EEXIST (sim:
 *                        the device lists the group)
 *   CHECK memlock        with --guest-ram: the owner's RLIMIT_MEMLOCK (prlimit of the child) is at least
 *                        what the reply says groupd set, and that is libvirt's figure
 *   CHECK del-happened   after the lease ended (--end release: RELEASE with the token; --end kill: the
 *                        child SIGKILLed), KVM_DEV_VFIO_FILE_DEL of each group gets ENOENT (sim: the
 *                        device lists nothing)
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
#include <sys/ioctl.h>
#include <sys/mman.h>
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

static int kvm_vfio_attr(int kvm_fd, uint64_t attr, int group_fd) {
        int32_t fd = group_fd;
        struct kvm_device_attr a = { .group = KVM_DEV_VFIO_FILE, .attr = attr, .addr = (uint64_t) (uintptr_t) &fd };
        return ioctl(kvm_fd, KVM_SET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

static int make_kvm_vfio(bool sim, int *ret_vm) {
        struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
        int kvm, vm;

        if (sim) {
                int fd = memfd_create(SIM_KVM_VFIO_MEMFD_NAME, MFD_CLOEXEC);
                *ret_vm = -EBADF;
                return fd < 0 ? -errno : fd;
        }
        kvm = open("/dev/kvm", O_RDWR|O_CLOEXEC);
        if (kvm < 0)
                return -errno;
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        close(kvm);
        if (vm < 0)
                return -errno;
        if (ioctl(vm, KVM_CREATE_DEVICE, &cd) < 0) {
                int r = -errno;
                close(vm);
                return r;
        }
        *ret_vm = vm;
        return (int) cd.fd;
}

static void sim_registered(int kvm_fd, char *buf, size_t size) {
        ssize_t n = pread(kvm_fd, buf, size - 1, 0);
        buf[n < 0 ? 0 : n] = 0;
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
        bool sim = false, configure = false, viommu = false, kill_owner = false;
        uint64_t guest_ram = 0;
        GdClient *c = NULL;
        GdClientLease *l = NULL;
        int kvm_fd, vm_fd = -EBADF, pidfd, opt, r, status;
        pid_t child;
        char text[256];

        optind = 1;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 's': sim = true; break;
                case 'c': configure = true; break;
                case 'v': viommu = true; break;
                case 'g':
                        if (memlock_parse_size(optarg, &guest_ram) < 0 || guest_ram == 0) {
                                log_error("Bad --guest-ram \"%s\".", optarg);
                                return 2;
                        }
                        break;
                case 'e':
                        if (streq(optarg, "kill"))
                                kill_owner = true;
                        else if (!streq(optarg, "release")) {
                                log_error("--end release|kill");
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

        kvm_fd = make_kvm_vfio(sim, &vm_fd);
        if (kvm_fd < 0) {
                printf("SKIP cannot make a kvm-vfio device: %s\n", strerror(-kvm_fd));
                return 77;
        }
        printf("KVM %s kvm-vfio device, fd %i\n", sim ? "simulated" : "real", kvm_fd);

        /* The VMM process: the lease's owner. It only waits to be killed (or told to go). */
        child = fork();
        if (child < 0)
                return log_error_errno(-errno, "fork: %m"), 1;
        if (child == 0) {
                for (;;)
                        pause();
        }
        pidfd = (int) syscall(SYS_pidfd_open, child, 0);
        if (pidfd < 0) {
                kill(child, SIGKILL);
                return log_error_errno(-errno, "pidfd_open: %m"), 1;
        }

        r = gd_client_connect(NULL, &c);
        if (r < 0) {
                kill(child, SIGKILL);
                return log_error_errno(r, "Cannot connect to groupd: %m"), 1;
        }
        r = gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
        if (r >= 0)
                r = gd_client_acquire(c, (const char *const *) argv + optind, (size_t) (argc - optind),
                                      &(GdAcquireOptions) {
                                              .label = "vmm-standin-kvm",
                                              .configure_iommu = configure,
                                              .owner_pidfd = pidfd,
                                              .kvm_fd = kvm_fd,
                                              .memlock_guest_ram = guest_ram,
                                              .viommu = viommu,
                                      }, &l);
        if (r < 0) {
                printf("ACQUIRE failed: %s: %s\n", strna(gd_error_to_string(gd_client_error_code(c))),
                       gd_client_error_message(c));
                kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                puts("RESULT FAIL");
                return 1;
        }
        printf("ACQUIRED lease %s, %zu group(s), owner pid %i, memlock %" PRIu64 ", DMA facts 0x%x\n", l->lease.id,
               l->n_group_fds, (int) child, l->memlock, l->dma.flags);

        /* 1. The daemon's ADD happened. */
        for (size_t i = 0; i < l->n_group_fds; i++) {
                if (sim) {
                        char want[32];
                        sim_registered(kvm_fd, text, sizeof text);
                        snprintf(want, sizeof want, "group %u\n", l->lease.groups[i]);
                        check("add-happened", strstr(text, want) != NULL, "group %u, the device lists \"%.*s\"",
                              l->lease.groups[i], (int) strcspn(text, "\n"), text);
                } else {
                        r = kvm_vfio_attr(kvm_fd, KVM_DEV_VFIO_FILE_ADD, l->group_fds[i]);
                        check("add-happened", r == -EEXIST, "group %u: a second ADD gets %s", l->lease.groups[i],
                              r == 0 ? "success" : strerror(-r));
                }
        }

        /* 2. The owner's memlock limit. */
        if (guest_ram > 0) {
                struct rlimit rl = {};
                uint64_t want = 0;
                MemlockInput in = { .guest_ram = guest_ram, .viommu = viommu, .n_devices = 0 };
                GdDmaInfo *d = NULL;

                for (size_t i = 0; i < l->lease.n_groups; i++) {
                        char spec[16];
                        snprintf(spec, sizeof spec, "%u", l->lease.groups[i]);
                        if (gd_client_dma_info(c, spec, &d) >= 0) {
                                in.n_devices += d->n_devices;
                                if (d->dma.flags & GD_DMA_SPAPR)
                                        in.spapr_dma32_window = MAX(in.spapr_dma32_window, d->dma.spapr_dma32_size);
                                gd_dma_info_free(d);
                        }
                }
                (void) memlock_limit(&in, &want);
                r = prlimit(child, RLIMIT_MEMLOCK, NULL, &rl) < 0 ? -errno : 0;
                check("memlock", r == 0 && l->memlock == want && rl.rlim_cur >= want && rl.rlim_max >= want,
                      "owner pid %i: soft %llu hard %llu, groupd set %" PRIu64 ", libvirt's rule says %" PRIu64,
                      (int) child, (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max, l->memlock,
                      want);
        }

        /* 3. The lease ends; the daemon's DEL happened. The simulated host holds an unbind up while a group
         * is open anywhere (the real kernel waits only for device fds), so there our copies go first; on the
         * real kernel we keep the group fds, which our DEL needs. */
        if (sim) {
                l->container_fd = safe_close(l->container_fd);
                close_many(l->group_fds, l->n_group_fds);
        }
        if (kill_owner) {
                printf("END killing the owner pid %i (SIGKILL)\n", (int) child);
                (void) kill(child, SIGKILL);
        } else {
                printf("END releasing the lease\n");
                r = gd_client_release(c, l->token);
                if (r < 0)
                        check("release", false, "%s", gd_client_error_message(c));
        }
        for (;;) {
                GdEvent e = {};
                r = gd_client_next_event(c, 20000, &e);
                if (r <= 0) {
                        check("ended", false, "no lease-ended event within 20 s (%s)", r < 0 ? strerror(-r) : "timeout");
                        break;
                }
                bool mine = streq(strempty(e.lease.id), l->lease.id);
                if (mine)
                        printf("ENDED reason %s errno %i: %s\n", strna(gd_reason_to_string((int) e.reason)),
                               e.errno_value, strempty(e.detail));
                gd_event_done(&e);
                if (mine)
                        break;
        }
        for (size_t i = 0; i < l->n_group_fds; i++) {
                if (sim) {
                        sim_registered(kvm_fd, text, sizeof text);
                        check("del-happened", isempty(text), "group %u, the device lists \"%.*s\"", l->lease.groups[i],
                              (int) strcspn(text, "\n"), text);
                } else {
                        r = kvm_vfio_attr(kvm_fd, KVM_DEV_VFIO_FILE_DEL, l->group_fds[i]);
                        check("del-happened", r == -ENOENT, "group %u: our DEL gets %s", l->lease.groups[i],
                              r == 0 ? "success" : strerror(-r));
                }
        }

        (void) kill(child, SIGKILL);
        (void) waitpid(child, &status, 0);
        gd_client_lease_free(l);
        gd_client_free(c);
        safe_close(pidfd);
        safe_close(kvm_fd);
        safe_close(vm_fd);
        puts(checks_failed == 0 ? "RESULT PASS" : "RESULT FAIL");
        return checks_failed == 0 ? 0 : 1;
}
