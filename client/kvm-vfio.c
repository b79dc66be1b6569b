/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm-vfio.h"
#include "macro.h"

#define SIM_TEXT_MAX 4096

int kvm_vfio_kind(int fd) {
        char path[64], target[128];
        const char *sim = "/memfd:" SIM_KVM_VFIO_MEMFD_NAME;
        ssize_t n;

        if (fd < 0)
                return -EBADF;
        (void) snprintf(path, sizeof path, "/proc/self/fd/%i", fd);
        n = readlink(path, target, sizeof target - 1);
        if (n < 0)
                return errno == ENOENT ? -EBADF : -errno;
        target[n] = 0;
        if (streq(target, KVM_VFIO_ANON_INODE))
                return KVM_VFIO_REAL;
        /* "/memfd:groupd-sim-kvm-vfio (deleted)" */
        if (strncmp(target, sim, strlen(sim)) == 0 && (target[strlen(sim)] == 0 || target[strlen(sim)] == ' '))
                return KVM_VFIO_SIM;
        return -ENOTTY;
}

int kvm_vfio_create(int *ret_vm) {
        struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
        int kvm, vm;

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

int kvm_vfio_sim_new(void) {
        char text[32];
        int fd, l;

        fd = memfd_create(SIM_KVM_VFIO_MEMFD_NAME, MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        l = snprintf(text, sizeof text, "vm %i\n", (int) getpid());
        if (pwrite(fd, text, (size_t) l, 0) != l) {
                close(fd);
                return -EIO;
        }
        return fd;
}

static int real_attr(int kvm_fd, uint64_t attr, void *addr) {
        struct kvm_device_attr a = { .group = KVM_DEV_VFIO_FILE, .attr = attr, .addr = (uint64_t) (uintptr_t) addr };
        return ioctl(kvm_fd, KVM_SET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

/* The sim's device: its text, after checking the caller is the VM's process. */
static int sim_read(int kvm_fd, char *text, size_t size) {
        ssize_t n = pread(kvm_fd, text, size - 1, 0);
        int pid;

        if (n < 0)
                return -errno;
        text[n] = 0;
        if (sscanf(text, "vm %i", &pid) != 1)
                return -EIO;
        if (pid != (int) getpid())
                return -EIO;  /* as the kernel: not the VM's process */
        return 0;
}

static bool sim_has(const char *text, const char *line) {
        size_t l = strlen(line);
        for (const char *p = text; p && *p;) {
                if (strncmp(p, line, l) == 0 && (p[l] == '\n' || p[l] == 0))
                        return true;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return false;
}

static void sim_remove(char *text, const char *line) {
        size_t l = strlen(line);
        for (char *p = text; p && *p;) {
                char *eol = strchr(p, '\n');
                if (strncmp(p, line, l) == 0 && (p[l] == '\n' || p[l] == 0)) {
                        if (eol)
                                memmove(p, eol + 1, strlen(eol + 1) + 1);
                        else
                                *p = 0;
                        continue;
                }
                p = eol ? eol + 1 : NULL;
        }
}

static int sim_write(int kvm_fd, const char *text) {
        size_t l = strlen(text);
        if (ftruncate(kvm_fd, 0) < 0)
                return -errno;
        if (l > 0 && pwrite(kvm_fd, text, l, 0) != (ssize_t) l)
                return -EIO;
        return 0;
}

/* The sim's group fds are sockets (see daemon/host/sim/host-sim.c): anything else is no VFIO file. */
static bool sim_group_fd_ok(int fd) {
        struct stat st;
        return fstat(fd, &st) >= 0 && S_ISSOCK(st.st_mode);
}

static int file_attr(int kvm_fd, uint64_t attr, int group_fd, unsigned group) {
        char text[SIM_TEXT_MAX], line[32];
        int k, r;

        k = kvm_vfio_kind(kvm_fd);
        if (k < 0)
                return k;
        if (group_fd < 0)
                return -EBADF;
        if (k == KVM_VFIO_REAL) {
                int32_t fd = group_fd;
                return real_attr(kvm_fd, attr, &fd);
        }

        r = sim_read(kvm_fd, text, sizeof text);
        if (r < 0)
                return r;
        if (!sim_group_fd_ok(group_fd))
                return attr == KVM_DEV_VFIO_FILE_ADD ? -EINVAL : -ENOENT;
        (void) snprintf(line, sizeof line, "group %u", group);
        if (attr == KVM_DEV_VFIO_FILE_ADD) {
                if (sim_has(text, line))
                        return -EEXIST;
                if (strlen(text) + strlen(line) + 2 > sizeof text)
                        return -ENOSPC;
                strcat(text, line);
                strcat(text, "\n");
        } else {
                if (!sim_has(text, line))
                        return -ENOENT;
                sim_remove(text, line);
        }
        return sim_write(kvm_fd, text);
}

int kvm_vfio_add(int kvm_fd, int group_fd, unsigned group) {
        return file_attr(kvm_fd, KVM_DEV_VFIO_FILE_ADD, group_fd, group);
}

int kvm_vfio_del(int kvm_fd, int group_fd, unsigned group) {
        return file_attr(kvm_fd, KVM_DEV_VFIO_FILE_DEL, group_fd, group);
}

int kvm_vfio_set_spapr_tce(int kvm_fd, int group_fd, int table_fd) {
        char text[SIM_TEXT_MAX];
        int k, r;

        k = kvm_vfio_kind(kvm_fd);
        if (k < 0)
                return k;
        if (group_fd < 0 || table_fd < 0)
                return -EBADF;
        if (k == KVM_VFIO_REAL) {
                struct kvm_vfio_spapr_tce param = { .groupfd = group_fd, .tablefd = table_fd };
                return real_attr(kvm_fd, KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE, &param);
        }
        r = sim_read(kvm_fd, text, sizeof text);
        if (r < 0)
                return r;
        return -ENXIO;  /* the simulated host is x86 */
}

const char *kvm_vfio_error_hint(int r) {
        switch (r) {
        case -EEXIST:
                return " (it is registered with this VM already)";
        case -EINVAL:
                return " (the kernel says it is not a VFIO group)";
        case -ENOTTY:
                return " (the fd is not a kvm-vfio device: make one with KVM_CREATE_DEVICE, KVM_DEV_TYPE_VFIO)";
        case -ENXIO:
                return " (no such kvm-vfio attribute here: sPAPR TCE exists on ppc64 only)";
        case -EIO:
                return " (only the VM's own process may use its kvm-vfio device)";
        default:
                return "";
        }
}
