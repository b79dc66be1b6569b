/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The real kernel: sysfs writes for driver binding, /dev/vfio and the VFIO ioctls. */

#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

#include "fd-util.h"
#include "host-internal.h"
#include "iommufd-uapi.h"
#include "log.h"

static int linux_set_override(Host *h, const char *address, const char *driver) {
        char path[64 + HOST_ADDR_MAX];

        (void) snprintf(path, sizeof path, "bus/pci/devices/%s/driver_override", address);
        /* A lone newline clears the override (the kernel stores no empty string). */
        return write_string_at(h->sysfs_fd, path, driver ?: "\n");
}

static int linux_unbind(Host *h, const char *address) {
        char path[64 + HOST_ADDR_MAX], driver[HOST_DRIVER_MAX];
        int r;

        r = sysfs_read_device_driver(h->sysfs_fd, address, driver);
        if (r < 0)
                return r;
        if (isempty(driver))
                return 0;

        /* This write is what the kernel holds up while the device is open through VFIO. */
        (void) snprintf(path, sizeof path, "bus/pci/devices/%s/driver/unbind", address);
        r = write_string_at(h->sysfs_fd, path, address);
        if (r == -ENOENT || r == -ENODEV) {
                /* The driver went away between our look and the write (someone else unbound it). */
                int k = sysfs_read_device_driver(h->sysfs_fd, address, driver);
                if (k < 0)
                        return k;
                if (isempty(driver))
                        return 0;
        }
        return r;
}

static int linux_bind(Host *h, const char *address, const char *driver) {
        char path[64 + HOST_DRIVER_MAX];
        int r;

        /* -ENOENT when the driver is not loaded (no such directory). */
        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s/bind", driver);
        r = write_string_at(h->sysfs_fd, path, address);
        return r;
}

static int linux_probe(Host *h, const char *address) {
        return write_string_at(h->sysfs_fd, "bus/pci/drivers_probe", address);
}

static int linux_open_container(Host *h, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        int v;

        fd = openat(h->dev_fd, "vfio/vfio", O_RDWR|O_CLOEXEC|O_NOCTTY);
        if (fd < 0)
                return -errno;

        v = ioctl(fd, VFIO_GET_API_VERSION);
        if (v < 0)
                return -errno;
        if (v != VFIO_API_VERSION)
                return -EPROTONOSUPPORT;

        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int linux_open_group(Host *h, unsigned id, int *ret_fd) {
        char path[32];
        int fd;

        (void) snprintf(path, sizeof path, "vfio/%u", id);
        fd = openat(h->dev_fd, path, O_RDWR|O_CLOEXEC|O_NOCTTY);
        if (fd < 0)
                return -errno; /* -EBUSY: open elsewhere; -ENOENT: no device of the group on vfio-pci */

        *ret_fd = fd;
        return 0;
}

static int linux_group_is_viable(Host *h, int group_fd, bool *ret) {
        struct vfio_group_status status = { .argsz = sizeof status };

        if (ioctl(group_fd, VFIO_GROUP_GET_STATUS, &status) < 0)
                return -errno;

        *ret = status.flags & VFIO_GROUP_FLAGS_VIABLE;
        return 0;
}

static int linux_group_set_container(Host *h, int group_fd, int container_fd) {
        if (ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container_fd) < 0)
                return -errno;
        return 0;
}

static int linux_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type) {
        static const unsigned long types[] = {
                VFIO_TYPE1v2_IOMMU,
                VFIO_TYPE1_IOMMU,
                VFIO_SPAPR_TCE_v2_IOMMU,
                VFIO_SPAPR_TCE_IOMMU,
        };

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                int r = ioctl(container_fd, VFIO_CHECK_EXTENSION, types[i]);
                if (r < 0)
                        return -errno;
                if (r == 0)
                        continue;

                if (ioctl(container_fd, VFIO_SET_IOMMU, types[i]) < 0)
                        return -errno;
                *ret_type = (uint32_t) types[i];
                return 0;
        }
        return -EOPNOTSUPP;
}

static int linux_container_get_info(Host *h, int container_fd, uint8_t *buf, size_t size) {
        /* VFIO_IOMMU_GET_INFO and VFIO_IOMMU_SPAPR_TCE_GET_INFO are the same ioctl number. */
        if (ioctl(container_fd, VFIO_IOMMU_GET_INFO, buf) < 0)
                return -errno;
        return 0;
}

/* The block device M:m as its name ("nvme0n1p2"), through dev/block/M:m. */
static int block_name(Host *h, unsigned major, unsigned minor, char *ret, size_t size) {
        char path[64], buf[PATH_MAX];
        const char *slash;
        ssize_t n;

        (void) snprintf(path, sizeof path, "dev/block/%u:%u", major, minor);
        n = readlinkat(h->sysfs_fd, path, buf, sizeof buf - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        slash = strrchr(buf, '/');
        if (strlen(slash ? slash + 1 : buf) >= size)
                return -ENAMETOOLONG;
        strcpy(ret, slash ? slash + 1 : buf);
        return 0;
}

/* Mounted filesystems on block devices: the host's mount table (PID 1's when we may read it, else ours,
 * which a sandboxed service shares for the real filesystems). */
static int linux_mount_uses(Host *h, HostUse **uses, size_t *n, size_t *allocated) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        f = fopen("/proc/1/mountinfo", "re");
        if (!f)
                f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return 0;
        while (getline(&line, &size, f) > 0) {
                char mountpoint[256], name[64], what[128];
                unsigned major, minor;

                if (sscanf(line, "%*u %*u %u:%u %*s %255s", &major, &minor, mountpoint) != 3 || major == 0)
                        continue;
                if (block_name(h, major, minor, name, sizeof name) < 0)
                        continue;
                (void) snprintf(what, sizeof what, "%.60s on %.60s", mountpoint, name);
                r = sysfs_block_uses(h->sysfs_fd, name, HOST_USE_MOUNT, what, uses, n, allocated);
                if (r < 0)
                        break;
        }
        fclose(f);
        return r;
}

static int linux_swap_uses(Host *h, HostUse **uses, size_t *n, size_t *allocated) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        f = fopen("/proc/swaps", "re");
        if (!f)
                return 0;
        while (getline(&line, &size, f) > 0) {
                char path[256], name[64];
                struct stat st;

                if (sscanf(line, "%255s", path) != 1 || path[0] != '/')
                        continue; /* the header */
                if (stat(path, &st) >= 0) {
                        dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
                        if (block_name(h, major(d), minor(d), name, sizeof name) < 0)
                                continue;
                } else if (startswith_word(path, "/dev/"))
                        (void) snprintf(name, sizeof name, "%s", strrchr(path, '/') + 1);
                else
                        continue;
                r = sysfs_block_uses(h->sysfs_fd, name, HOST_USE_SWAP, path, uses, n, allocated);
                if (r < 0)
                        break;
        }
        fclose(f);
        return r;
}

/* Interfaces with a default route, IPv4 and IPv6: the host's (PID 1's network namespace: groupd.service
 * runs with PrivateNetwork=yes, where its own table has nothing), else groupd's own. */
static int linux_route_uses(Host *h, HostUse **uses, size_t *n, size_t *allocated) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        f = fopen("/proc/1/net/route", "re") ?: fopen("/proc/net/route", "re");
        if (f) {
                while (r >= 0 && getline(&line, &size, f) > 0) {
                        char ifname[64], dest[16], mask[16];
                        /* Iface Destination Gateway Flags RefCnt Use Metric Mask ... */
                        if (sscanf(line, "%63s %15s %*s %*s %*s %*s %*s %15s", ifname, dest, mask) != 3)
                                continue;
                        if (streq(dest, "00000000") && streq(mask, "00000000") && !streq(ifname, "lo"))
                                r = sysfs_net_uses(h->sysfs_fd, ifname, ifname, uses, n, allocated);
                }
                fclose(f);
        }
        f = fopen("/proc/1/net/ipv6_route", "re") ?: fopen("/proc/net/ipv6_route", "re");
        if (f) {
                while (r >= 0 && getline(&line, &size, f) > 0) {
                        char dest[40], plen[4], ifname[64];
                        /* dest plen src splen next-hop metric refcnt use flags iface */
                        if (sscanf(line, "%39s %3s %*s %*s %*s %*s %*s %*s %*s %63s", dest, plen, ifname) != 3)
                                continue;
                        if (strspn(dest, "0") == 32 && streq(plen, "00") && !streq(ifname, "lo"))
                                r = sysfs_net_uses(h->sysfs_fd, ifname, ifname, uses, n, allocated);
                }
                fclose(f);
        }
        return r;
}

static int linux_list_uses(Host *h, HostUse **ret, size_t *ret_n) {
        _cleanup_free_ HostUse *uses = NULL;
        size_t n = 0, allocated = 0;
        int r;

        r = linux_mount_uses(h, &uses, &n, &allocated);
        if (r >= 0)
                r = linux_swap_uses(h, &uses, &n, &allocated);
        if (r >= 0)
                r = linux_route_uses(h, &uses, &n, &allocated);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(uses);
        *ret_n = n;
        return 0;
}

static int linux_modules_alias(Host *h, char **ret) {
        _cleanup_free_ char *text = NULL;
        struct utsname u;
        char path[128 + sizeof u.release];
        size_t size = 0;
        FILE *f, *mem;
        char buf[16384];
        size_t k;

        if (uname(&u) < 0)
                return -errno;
        (void) snprintf(path, sizeof path, "/lib/modules/%s/modules.alias", u.release);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        mem = open_memstream(&text, &size);
        if (!mem) {
                fclose(f);
                return -ENOMEM;
        }
        while ((k = fread(buf, 1, sizeof buf, f)) > 0)
                if (fwrite(buf, 1, k, mem) != k)
                        break;
        fclose(f);
        if (fclose(mem) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}

static int linux_open_device_cdev(Host *h, const char *address, const char *cdev, int *ret_fd) {
        char path[32 + HOST_CDEV_MAX];
        int fd;

        (void) snprintf(path, sizeof path, "vfio/devices/%s", cdev);
        fd = openat(h->dev_fd, path, O_RDWR|O_CLOEXEC|O_NOCTTY);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static int linux_open_iommufd(Host *h, int *ret_fd) {
        int fd = openat(h->dev_fd, "iommu", O_RDWR|O_CLOEXEC|O_NOCTTY);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static int linux_iommufd_rlimit_mode(Host *h, int iommufd, bool set, bool *per_process) {
        struct iommu_option opt = {
                .size = sizeof opt,
                .option_id = IOMMU_OPTION_RLIMIT_MODE,
                .op = set ? IOMMU_OPTION_OP_SET : IOMMU_OPTION_OP_GET,
                .val64 = set && *per_process ? 1 : 0,
        };

        if (ioctl(iommufd, IOMMU_OPTION, &opt) < 0)
                return -errno;
        if (!set)
                *per_process = opt.val64 == 1;
        return 0;
}

static int linux_iommufd_iova_ranges(Host *h, int iommufd, HostIommuInfo *ret) {
        struct iommu_iova_range ranges[HOST_IOVA_RANGES_MAX] = {};
        struct iommu_ioas_alloc alloc = { .size = sizeof alloc };
        struct iommu_ioas_iova_ranges q;
        int r = 0;

        if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0)
                return -errno;
        q = (struct iommu_ioas_iova_ranges) {
                .size = sizeof q,
                .ioas_id = alloc.out_ioas_id,
                .num_iovas = HOST_IOVA_RANGES_MAX,
                .allowed_iovas = (uintptr_t) ranges,
        };
        if (ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, &q) < 0)
                r = -errno; /* EMSGSIZE: more than we can hold */
        else {
                ret->flags |= HOST_IOMMU_IOVA;
                ret->n_iova = MIN(q.num_iovas, HOST_IOVA_RANGES_MAX);
                for (uint32_t i = 0; i < ret->n_iova; i++)
                        ret->iova[i] = (HostIovaRange) { ranges[i].start, ranges[i].last };
        }
        {
                struct iommu_destroy d = { .size = sizeof d, .id = alloc.out_ioas_id };
                (void) ioctl(iommufd, IOMMU_DESTROY, &d);
        }
        return r;
}

static const HostOps linux_ops = {
        .open_device_cdev = linux_open_device_cdev,
        .open_iommufd = linux_open_iommufd,
        .iommufd_rlimit_mode = linux_iommufd_rlimit_mode,
        .iommufd_iova_ranges = linux_iommufd_iova_ranges,
        .set_override = linux_set_override,
        .unbind = linux_unbind,
        .bind = linux_bind,
        .probe = linux_probe,
        .open_container = linux_open_container,
        .open_group = linux_open_group,
        .group_is_viable = linux_group_is_viable,
        .group_set_container = linux_group_set_container,
        .container_set_iommu = linux_container_set_iommu,
        .container_get_info = linux_container_get_info,
        .list_uses = linux_list_uses,
        .modules_alias = linux_modules_alias,
};

int host_new_linux(const HostLinuxConfig *cfg, Host **ret) {
        const char *sysfs_root = cfg && cfg->sysfs_root ? cfg->sysfs_root : "/sys";
        const char *dev_root = cfg && cfg->dev_root ? cfg->dev_root : "/dev";
        _cleanup_(host_freep) Host *h = NULL;
        _cleanup_free_ unsigned *ids = NULL;
        size_t n_ids = 0;
        int r;

        if (!ret)
                return -EINVAL;

        h = host_alloc(HOST_LINUX, &linux_ops);
        if (!h)
                return log_oom();

        h->sysfs_fd = open(sysfs_root, O_PATH|O_DIRECTORY|O_CLOEXEC);
        if (h->sysfs_fd < 0)
                return log_error_errno(-errno, "Failed to open sysfs root \"%s\": %m", sysfs_root);
        h->dev_fd = open(dev_root, O_PATH|O_DIRECTORY|O_CLOEXEC);
        if (h->dev_fd < 0)
                return log_error_errno(-errno, "Failed to open dev root \"%s\": %m", dev_root);

        r = sysfs_list_groups(h->sysfs_fd, &ids, &n_ids);
        if (r == -ENOENT)
                return log_error_errno(r, "No IOMMU groups: %s/kernel/iommu_groups does not exist. "
                                       "Is the IOMMU enabled (intel_iommu=on / amd_iommu=on on the kernel "
                                       "command line, VT-d / AMD-Vi in the firmware)?", sysfs_root);
        if (r < 0)
                return log_error_errno(r, "Failed to list %s/kernel/iommu_groups: %m", sysfs_root);
        if (n_ids == 0)
                log_warning("%s/kernel/iommu_groups is empty: there is nothing to hand out. "
                            "Is the IOMMU enabled (intel_iommu=on / amd_iommu=on)?", sysfs_root);

        *ret = TAKE_PTR(h);
        return 0;
}
