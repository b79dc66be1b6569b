/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* lease-vmm: the systemd tier's stand-in VMM, one that can be asked to use its fds again later (after
 * groupd restarted, was killed, or stopped) and that can own its lease by a lease fd.
 *
 *   lease-vmm acquire [--label L] [--lease-fd] SPEC...   acquires over libgroupd ($GROUPD_SOCKET); the owner
 *                                                        is a lease fd (kept open here), else this process
 *                                                        (its pidfd); the connection is closed at once
 *   lease-vmm env                                        takes the fds groupctl acquire --exec hands over
 *
 * It prints "CHECK ok ..." and "holding the groups" once it has checked its fds, then holds them until killed.
 * SIGUSR2 checks them again: the container answers VFIO_GET_API_VERSION and has Type1v2, each group is
 * viable and in the container, and the first device of each group gives a device fd whose config space
 * reads its vendor ID; it prints "RECHECK ok ..." or "RECHECK FAIL ...". */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "groupd-client.h"

#define GROUPS_MAX 16

static int container_fd = -1, lease_fd = -1, n_groups = 0;
static int group_fds[GROUPS_MAX];
static unsigned groups[GROUPS_MAX];
static volatile sig_atomic_t recheck_wanted = 0;

static void on_usr2(int sig) {
        (void) sig;
        recheck_wanted = 1;
}

static int first_device(unsigned group, char *buf, size_t size) {
        char path[64];
        DIR *d;
        struct dirent *de;
        int r = -ENOENT;

        snprintf(path, sizeof path, "/sys/kernel/iommu_groups/%u/devices", group);
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        snprintf(buf, size, "%s", de->d_name);
                        r = 0;
                        break;
                }
        closedir(d);
        return r;
}

/* Returns the number of failures; appends what it saw to line. */
static int check_fds(char *line, size_t size) {
        size_t off = 0;
        int failures = 0, v;

        v = ioctl(container_fd, VFIO_GET_API_VERSION);
        if (v != VFIO_API_VERSION || ioctl(container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
                off += snprintf(line + off, size - off, "container fd %i: API %i, %m; ", container_fd, v);
                failures++;
        } else
                off += snprintf(line + off, size - off, "container API %i; ", v);
        for (int i = 0; i < n_groups && off < size; i++) {
                struct vfio_group_status st = { .argsz = sizeof st };
                struct vfio_region_info reg = { .argsz = sizeof reg, .index = VFIO_PCI_CONFIG_REGION_INDEX };
                char dev[256];
                unsigned short vendor = 0;
                int dfd;

                if (ioctl(group_fds[i], VFIO_GROUP_GET_STATUS, &st) < 0 ||
                    (st.flags & (VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET)) !=
                            (VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET)) {
                        off += snprintf(line + off, size - off, "group %u: status 0x%x %m; ", groups[i], st.flags);
                        failures++;
                        continue;
                }
                if (first_device(groups[i], dev, sizeof dev) < 0) {
                        off += snprintf(line + off, size - off, "group %u: no device; ", groups[i]);
                        failures++;
                        continue;
                }
                dfd = ioctl(group_fds[i], VFIO_GROUP_GET_DEVICE_FD, dev);
                if (dfd < 0 || ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0 ||
                    pread(dfd, &vendor, sizeof vendor, (off_t) reg.offset) != sizeof vendor) {
                        off += snprintf(line + off, size - off, "group %u: device %s: %m; ", groups[i], dev);
                        failures++;
                } else
                        off += snprintf(line + off, size - off, "group %u viable, %s vendor %04x; ", groups[i], dev,
                                        vendor);
                if (dfd >= 0)
                        close(dfd);
        }
        return failures;
}

static int from_env(void) {
        const char *spec = getenv("GROUPD_GROUP_FDS"), *c = getenv("GROUPD_CONTAINER_FD");
        char buf[512], *save = NULL;

        if (!spec || !c)
                return -EINVAL;
        container_fd = atoi(c);
        snprintf(buf, sizeof buf, "%s", spec);
        for (char *tok = strtok_r(buf, ",", &save); tok && n_groups < GROUPS_MAX; tok = strtok_r(NULL, ",", &save)) {
                unsigned g;
                int fd;
                if (sscanf(tok, "%u=%i", &g, &fd) != 2)
                        return -EINVAL;
                groups[n_groups] = g;
                group_fds[n_groups++] = fd;
        }
        printf("lease %s token %s from groupctl\n", getenv("GROUPD_LEASE_ID") ?: "?", getenv("GROUPD_LEASE_TOKEN") ?: "?");
        return 0;
}

static int acquire(int argc, char **argv) {
        /* A legacy VMM (it checks a container and groups): named, since auto is iommufd on a kernel that has
         * it (own-6.12). */
        GdAcquireOptions o = { .owner_pidfd = -1, .delivery = "legacy" };
        GdClient *c = NULL;
        GdClientLease *l = NULL;
        int i = 0, r, pidfd = -1;

        while (i < argc && argv[i][0] == '-') {
                if (strcmp(argv[i], "--lease-fd") == 0)
                        o.lease_fd = true;
                else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
                        o.label = argv[++i];
                else
                        return -EINVAL;
                i++;
        }
        if (i >= argc)
                return -EINVAL;
        if (!o.lease_fd) {
                pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);
                if (pidfd < 0)
                        return -errno;
                o.owner_pidfd = pidfd;
        }
        r = gd_client_connect(NULL, &c);
        if (r < 0) {
                printf("cannot connect: %s\n", strerror(-r));
                return r;
        }
        r = gd_client_acquire(c, (const char *const *) argv + i, (size_t) (argc - i), &o, &l);
        if (r < 0) {
                printf("ACQUIRE failed: %s\n", gd_client_error_message(c));
                return r;
        }
        container_fd = l->container_fd;
        for (size_t k = 0; k < l->n_group_fds && k < GROUPS_MAX; k++) {
                groups[k] = l->lease.groups[k];
                group_fds[k] = l->group_fds[k];
                n_groups++;
        }
        lease_fd = l->lease_fd;
        /* The fds stay ours: take them out of the lease record and drop the connection, so that only the
         * owner (this process, or the lease fd) keeps the lease. */
        l->container_fd = -1;
        l->n_group_fds = 0;
        l->lease_fd = -1;
        printf("holding lease %s token %s owner %s\n", l->lease.id, l->token, o.lease_fd ? "lease-fd" : "process");
        gd_client_lease_free(l);
        gd_client_free(c);
        if (pidfd >= 0)
                close(pidfd);
        return 0;
}

int main(int argc, char **argv) {
        char line[2048];
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 2 && strcmp(argv[1], "acquire") == 0)
                r = acquire(argc - 2, argv + 2);
        else if (argc == 2 && strcmp(argv[1], "env") == 0)
                r = from_env();
        else {
                fprintf(stderr, "usage: lease-vmm acquire [--label L] [--lease-fd] SPEC... | lease-vmm env\n");
                return 2;
        }
        if (r < 0)
                return 1;
        signal(SIGUSR2, on_usr2);
        /* As a VMM does: the IOMMU type, unless the acquire set it (a device fd needs it). */
        if (ioctl(container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 && errno != EBUSY && errno != EINVAL) {
                printf("CHECK FAIL VFIO_SET_IOMMU: %m\n");
                return 1;
        }
        if (check_fds(line, sizeof line) > 0) {
                printf("CHECK FAIL %s\n", line);
                return 1;
        }
        /* "holding the groups": what tests/vm/guest-lib.sh's acquire_exec waits for. */
        printf("CHECK ok %s (lease fd %i)\nholding the groups\n", line, lease_fd);
        for (;;) {
                pause();
                if (recheck_wanted) {
                        recheck_wanted = 0;
                        printf("RECHECK %s %s\n", check_fds(line, sizeof line) > 0 ? "FAIL" : "ok", line);
                }
        }
}
