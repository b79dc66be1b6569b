/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The real kernel: sysfs writes for driver binding, /dev/vfio and the VFIO ioctls. */

#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "fd-util.h"
#include "host-internal.h"
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

static const HostOps linux_ops = {
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
