/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* spapr-standin: a stand-in VMM for the ppc64le tier. It does to the sPAPR IOMMU and to KVM what QEMU does
 * on POWER, and prints the kernel's answers, one line each, for the scenarios to assert on:
 *
 *   spapr-standin probe [--hold S]
 *           under `groupctl acquire ... --exec`: the container's CHECK_EXTENSION answers, which sPAPR
 *           IOMMU type is set on it (v2 and v1 answer VFIO_IOMMU_SPAPR_REGISTER_MEMORY differently:
 *           EINVAL for a bad flag in v2, ENOTTY in v1), and VFIO_IOMMU_SPAPR_TCE_GET_INFO as the kernel
 *           fills it. Then holds the fds for S seconds (until SIGTERM).
 *
 *   spapr-standin v1 --limit BYTES [--map BYTES]
 *           under `groupctl acquire ... --exec` (groupd did not set the IOMMU type): sets its own
 *           RLIMIT_MEMLOCK to BYTES, drops CAP_IPC_LOCK (which would bypass the limit), sets the sPAPR v1
 *           IOMMU, VFIO_IOMMU_ENABLE (the kernel charges the whole DMA32 window to locked_vm here), maps
 *           --map bytes of its memory at the window's start (VFIO_IOMMU_MAP_DMA), unmaps, disables.
 *           Prints each step's result and VmLck. Exit 0 when every step worked, 1 when one failed.
 *
 *   spapr-standin kvm GROUP
 *           a VMM with a real KVM-HV VM: KVM_CREATE_VM, the kvm-vfio device, then acquires GROUP through
 *           libgroupd ($GROUPD_SOCKET) with the IOMMU type set by groupd and the kvm-vfio fd, so that
 *           libgroupd registers the group. Creates the VM's TCE table for the DMA32 window
 *           (KVM_CREATE_SPAPR_TCE_64), shows that the kernel refuses KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE
 *           before the group's hardware window exists, then calls gd_client_lease_set_spapr_tce() (which
 *           makes the window exist first), that a table for a 64-bit window nobody created is refused
 *           with an error that says what to do, maps a buffer through the window, releases with
 *           gd_client_release_lease() and checks that the group is no longer in KVM (DEL: ENOENT).
 *           Exit 0 all passed, 1 a check failed, 77 no KVM-HV here.
 *
 * Output lines: "STEP name ok detail" / "STEP name ERRNO-NAME detail", and for checks
 * "CHECK name PASS|FAIL detail". */

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <linux/vfio.h>

#include "groupd-client.h"

static int checks_failed;

static void check(const char *name, bool ok, const char *fmt, ...) {
        va_list ap;

        printf("CHECK %s %s ", name, ok ? "PASS" : "FAIL");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        if (!ok)
                checks_failed++;
}

/* STEP name: the result of an ioctl (r < 0: -errno). */
static int step(const char *name, int r, const char *fmt, ...) {
        va_list ap;

        printf("STEP %s %s ", name, r >= 0 ? "ok" : strerrorname_np(-r) ?: "?");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        return r;
}

static int xioctl(int fd, unsigned long req, void *arg) {
        int r = ioctl(fd, req, arg);
        return r < 0 ? -errno : r;
}

static unsigned long long vmlck_kib(void) {
        char line[256];
        unsigned long long v = 0;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmLck: %llu kB", &v) == 1)
                        break;
        fclose(f);
        return v;
}

static int env_fd(const char *name) {
        const char *v = getenv(name);
        char *end;
        long n;

        if (!v)
                return -ENOENT;
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || n < 0 || n > 65535)
                return -EINVAL;
        return (int) n;
}

/* GROUPD_GROUP_FDS="N=FD,...": the first group's fd. */
static int first_group_fd(unsigned *ret_group) {
        const char *v = getenv("GROUPD_GROUP_FDS");
        unsigned g;
        int fd;

        if (!v || sscanf(v, "%u=%d", &g, &fd) != 2 || fd < 0)
                return -EINVAL;
        *ret_group = g;
        return fd;
}

static int tce_info(int container, struct vfio_iommu_spapr_tce_info *info) {
        *info = (struct vfio_iommu_spapr_tce_info) { .argsz = sizeof *info };
        return xioctl(container, VFIO_IOMMU_SPAPR_TCE_GET_INFO, info);
}

static void print_tce_info(const struct vfio_iommu_spapr_tce_info *i) {
        printf("TCE-INFO flags=0x%" PRIx32 " dma32_start=0x%" PRIx32 " dma32_size=%" PRIu32
               " ddw_pgsizes=0x%" PRIx64 " ddw_max_windows=%" PRIu32 " ddw_levels=%" PRIu32 "\n",
               i->flags, i->dma32_window_start, i->dma32_window_size,
               (uint64_t) i->ddw.pgsizes, i->ddw.max_dynamic_windows_supported, i->ddw.levels);
        fflush(stdout);
}

/* Which sPAPR type is set: v2 checks REGISTER_MEMORY's flags (EINVAL for a bad one), v1 does not know the
 * ioctl (ENOTTY). */
static const char *spapr_type_set(int container) {
        struct vfio_iommu_spapr_register_memory reg = { .argsz = sizeof reg, .flags = 0x80000000u };
        int r = xioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &reg);
        struct vfio_iommu_spapr_tce_info info;

        if (tce_info(container, &info) < 0)
                return "none";
        return r == -EINVAL ? "v2" : r == -ENOTTY ? "v1" : "unknown";
}

static int drop_ipc_lock(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
        d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
        d[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        return 0;
}

static volatile sig_atomic_t stop;
static void on_term(int sig __attribute__((unused))) {
        stop = 1;
}

static int cmd_probe(double hold) {
        struct vfio_iommu_spapr_tce_info info;
        int container = env_fd("GROUPD_CONTAINER_FD");

        if (container < 0) {
                fprintf(stderr, "spapr-standin: no GROUPD_CONTAINER_FD: run me under groupctl acquire --exec\n");
                return 2;
        }
        printf("EXTENSIONS type1=%d type1v2=%d spapr=%d spapr_v2=%d\n",
               ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU),
               ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU),
               ioctl(container, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU),
               ioctl(container, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU));
        printf("IOMMU-TYPE %s\n", spapr_type_set(container));
        if (step("tce-get-info", tce_info(container, &info), "VFIO_IOMMU_SPAPR_TCE_GET_INFO") >= 0)
                print_tce_info(&info);
        printf("holding the groups\n");
        fflush(stdout);
        signal(SIGTERM, on_term);
        for (double t = 0; t < hold && !stop; t += 0.1)
                usleep(100000);
        return 0;
}

static int cmd_v1(uint64_t limit, uint64_t map) {
        struct vfio_iommu_spapr_tce_info info;
        struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };
        unsigned group;
        int container = env_fd("GROUPD_CONTAINER_FD"), r, failed = 0;
        void *buf = MAP_FAILED;

        if (container < 0 || first_group_fd(&group) < 0) {
                fprintf(stderr, "spapr-standin: no GROUPD_CONTAINER_FD/GROUPD_GROUP_FDS: run me under groupctl acquire --exec\n");
                return 2;
        }
        printf("holding the groups\n");
        if (step("rlimit", setrlimit(RLIMIT_MEMLOCK, &rl) < 0 ? -errno : 0, "RLIMIT_MEMLOCK %" PRIu64, limit) < 0 ||
            step("drop-cap-ipc-lock", drop_ipc_lock(), "so that the limit applies to root too") < 0)
                return 1;
        if (step("set-iommu", xioctl(container, VFIO_SET_IOMMU, (void *) (uintptr_t) VFIO_SPAPR_TCE_IOMMU),
                 "sPAPR v1") < 0)
                return 1;
        if (step("tce-get-info", tce_info(container, &info), "VFIO_IOMMU_SPAPR_TCE_GET_INFO") < 0)
                return 1;
        print_tce_info(&info);
        printf("VMLCK-BEFORE %llu kB\n", vmlck_kib());
        r = step("enable", xioctl(container, VFIO_IOMMU_ENABLE, NULL), "VFIO_IOMMU_ENABLE");
        printf("VMLCK-ENABLED %llu kB\n", vmlck_kib());
        fflush(stdout);
        if (r < 0)
                return 1;
        if (map > 0) {
                buf = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
                if (buf == MAP_FAILED) {
                        step("map-dma", -errno, "mmap of %" PRIu64 " bytes", map);
                        failed = 1;
                } else {
                        struct vfio_iommu_type1_dma_map m = {
                                .argsz = sizeof m,
                                .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                                .vaddr = (uintptr_t) buf, .iova = info.dma32_window_start, .size = map,
                        };
                        struct vfio_iommu_type1_dma_unmap u = {
                                .argsz = sizeof u, .iova = info.dma32_window_start, .size = map,
                        };
                        /* 6.12 returns 1 (not -1) for some refusals: only 0 is success. */
                        r = ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
                        r = r == 0 ? 0 : r < 0 ? -errno : -EPROTO;
                        if (step("map-dma", r, "%" PRIu64 " bytes at 0x%" PRIx32 ", VmLck %llu kB", map,
                                 info.dma32_window_start, vmlck_kib()) < 0)
                                failed = 1;
                        else if (step("unmap-dma", xioctl(container, VFIO_IOMMU_UNMAP_DMA, &u), "") < 0)
                                failed = 1;
                }
        }
        step("disable", xioctl(container, VFIO_IOMMU_DISABLE, NULL), "VmLck %llu kB", vmlck_kib());
        if (buf != MAP_FAILED)
                munmap(buf, map);
        return failed;
}

#ifdef KVM_CREATE_SPAPR_TCE_64
static int kvm_vfio_attr(int dev, uint64_t attr, void *arg) {
        struct kvm_device_attr a = { .group = KVM_DEV_VFIO_GROUP, .attr = attr, .addr = (uintptr_t) arg };
        return xioctl(dev, KVM_SET_DEVICE_ATTR, &a);
}

static int cmd_kvm(const char *group) {
        struct vfio_iommu_spapr_tce_info info;
        struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
        GdClient *c = NULL;
        GdClientLease *l = NULL;
        int kvm, vm, table, r, gfd;
        void *buf;

        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0) {
                printf("SKIP no /dev/kvm: %m\n");
                return 77;
        }
        vm = xioctl(kvm, KVM_CREATE_VM, (void *) (uintptr_t) KVM_VM_PPC_HV);
        if (step("create-vm", vm, "KVM_CREATE_VM(KVM_VM_PPC_HV)") < 0)
                return 77;
        if (step("create-kvm-vfio", xioctl(vm, KVM_CREATE_DEVICE, &cd), "KVM_CREATE_DEVICE(VFIO)") < 0)
                return 1;

        r = gd_client_connect(NULL, &c);
        if (step("connect", r, "%s", r < 0 ? strerror(-r) : "groupd") < 0)
                return 1;
        r = gd_client_acquire(c, (const char *[]) { group }, 1,
                              &(GdAcquireOptions) { .label = "spapr-kvm", .configure_iommu = true,
                                                    .owner_pidfd = -1, .kvm_fd = (int) cd.fd }, &l);
        if (step("acquire", r, "group %s: %s", group, r < 0 ? gd_client_error_message(c) : "registered with KVM") < 0)
                return 1;
        gfd = l->group_fds[0];
        check("kvm-registered", kvm_vfio_attr((int) cd.fd, KVM_DEV_VFIO_GROUP_ADD, &gfd) == -EEXIST,
              "a second KVM_DEV_VFIO_GROUP_ADD of group %s gets EEXIST: libgroupd added it", group);
        check("iommu-type", l->iommu_type == VFIO_SPAPR_TCE_v2_IOMMU, "groupd set IOMMU type %" PRIu32
              " (sPAPR v2 is %d), the container says %s", l->iommu_type, VFIO_SPAPR_TCE_v2_IOMMU,
              spapr_type_set(l->container_fd));
        if (step("tce-get-info", tce_info(l->container_fd, &info), "") < 0)
                return 1;
        print_tce_info(&info);

        /* The VM's table for the DMA32 window, as QEMU makes it: 4 KiB pages over the whole window. */
        struct kvm_create_spapr_tce_64 t = {
                .liobn = 0x80000000u, .page_shift = 12,
                .offset = info.dma32_window_start >> 12, .size = info.dma32_window_size >> 12,
        };
        table = xioctl(vm, KVM_CREATE_SPAPR_TCE_64, &t);
        if (step("create-tce-table", table, "KVM_CREATE_SPAPR_TCE_64 liobn 0x%llx, %llu pages of 4 KiB",
                 (unsigned long long) t.liobn, (unsigned long long) t.size) < 0)
                return 1;

        /* The kernel's order: no hardware window yet (sPAPR v2 creates the default one lazily). */
        struct kvm_vfio_spapr_tce p = { .groupfd = gfd, .tablefd = table };
        r = kvm_vfio_attr((int) cd.fd, KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE, &p);
        step("raw-set-spapr-tce-early", r, "KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE before the window exists");
        check("kernel-refuses-early", r == -EINVAL, "the kernel answers %s before the window exists",
              r < 0 ? strerrorname_np(-r) : "success");

        r = gd_client_lease_set_spapr_tce(c, l, l->lease.groups[0], table);
        step("set-spapr-tce", r, "%s", r < 0 ? gd_client_error_message(c) : "gd_client_lease_set_spapr_tce");
        check("library-orders-tce", r == 0, "gd_client_lease_set_spapr_tce %s",
              r == 0 ? "succeeded right after the acquire" : gd_client_error_message(c));

        /* A table for a 64-bit window the VMM has not created: the library cannot make that one, and says
         * what the caller must do first. */
        struct kvm_create_spapr_tce_64 t64 = {
                .liobn = 0x80000001u, .page_shift = 16,
                .offset = (UINT64_C(1) << 59) >> 16, .size = (UINT64_C(1) << 30) >> 16,
        };
        int table64 = xioctl(vm, KVM_CREATE_SPAPR_TCE_64, &t64);
        if (step("create-tce-table-64", table64, "KVM_CREATE_SPAPR_TCE_64 liobn 0x%llx at bus 0x%llx, 64 KiB pages",
                 (unsigned long long) t64.liobn, (unsigned long long) t64.offset << 16) >= 0) {
                r = gd_client_lease_set_spapr_tce(c, l, l->lease.groups[0], table64);
                step("set-spapr-tce-64", r, "%s", r < 0 ? gd_client_error_message(c) : "accepted");
                check("library-explains-64bit", r == -EINVAL &&
                      strstr(gd_client_error_message(c), "VFIO_IOMMU_SPAPR_TCE_CREATE") != NULL,
                      "a table for a window that does not exist: %s", r < 0 ? gd_client_error_message(c) : "accepted");
                close(table64);
        }

        /* The window is usable: register and map a buffer through it, as the guest's first H_PUT_TCE would. */
        size_t sz = 1u << 20;
        buf = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (buf != MAP_FAILED) {
                struct vfio_iommu_spapr_register_memory reg = { .argsz = sizeof reg, .vaddr = (uintptr_t) buf, .size = sz };
                struct vfio_iommu_type1_dma_map m = {
                        .argsz = sizeof m, .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                        .vaddr = (uintptr_t) buf, .iova = info.dma32_window_start, .size = sz,
                };
                int a = step("register-memory", xioctl(l->container_fd, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &reg),
                             "1 MiB, VmLck %llu kB", vmlck_kib());
                int b = ioctl(l->container_fd, VFIO_IOMMU_MAP_DMA, &m);
                b = b == 0 ? 0 : b < 0 ? -errno : -EPROTO;
                step("map-dma", b, "1 MiB at 0x%" PRIx32, info.dma32_window_start);
                check("window-usable", a == 0 && b == 0, "REGISTER_MEMORY and MAP_DMA through the window");
        }

        r = gd_client_release_lease(c, l);
        step("release", r, "%s", r < 0 ? gd_client_error_message(c) : "gd_client_release_lease");
        r = kvm_vfio_attr((int) cd.fd, KVM_DEV_VFIO_GROUP_DEL, &gfd);
        check("kvm-deleted", r == -ENOENT, "KVM_DEV_VFIO_GROUP_DEL after the release gets %s (ENOENT: libgroupd "
              "deleted it)", r < 0 ? strerrorname_np(-r) : "success");
        gd_client_lease_free(l);
        gd_client_free(c);
        close(table);
        close(vm);
        close(kvm);
        printf("RESULT %s\n", checks_failed ? "FAIL" : "PASS");
        return checks_failed ? 1 : 0;
}
#else
static int cmd_kvm(const char *group) {
        printf("SKIP sPAPR KVM exists on ppc64 only\n");
        return 77;
}
#endif

static uint64_t parse_u64(const char *s) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno || end == s || *end) {
                fprintf(stderr, "spapr-standin: bad number \"%s\"\n", s);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 2 && strcmp(argv[1], "probe") == 0) {
                double hold = argc >= 4 && strcmp(argv[2], "--hold") == 0 ? atof(argv[3]) : 0;
                return cmd_probe(hold);
        }
        if (argc >= 4 && strcmp(argv[1], "v1") == 0 && strcmp(argv[2], "--limit") == 0) {
                uint64_t map = argc >= 6 && strcmp(argv[4], "--map") == 0 ? parse_u64(argv[5]) : 0;
                return cmd_v1(parse_u64(argv[3]), map);
        }
        if (argc == 3 && strcmp(argv[1], "kvm") == 0)
                return cmd_kvm(argv[2]);
        fprintf(stderr, "usage: spapr-standin probe [--hold S] | v1 --limit BYTES [--map BYTES] | kvm GROUP\n");
        return 2;
}
