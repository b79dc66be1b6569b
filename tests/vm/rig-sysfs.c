/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sysfs steps of the rig's raw VFIO programs: see rig-sysfs.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "rig-sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *rig_prog = "rig";

void rig_fmt(char *buf, size_t size, const char *f, ...)
{
        va_list ap;

        va_start(ap, f);
        if (vsnprintf(buf, size, f, ap) >= (int)size && size)
                buf[size - 1] = 0;
        va_end(ap);
}

int rig_err(const char *f, ...)
{
        int saved = errno; /* for %m */
        va_list ap;

        fprintf(stderr, "%s: ", rig_prog);
        errno = saved;
        va_start(ap, f);
        vfprintf(stderr, f, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
        return -1;
}

uint64_t rig_now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int rig_write_file(const char *path, const char *value)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;
        int e;

        if (fd < 0)
                return -errno;
        n = write(fd, value, strlen(value));
        e = n < 0 ? errno : 0;
        close(fd);
        return n < 0 ? -e : 0;
}

int rig_read_file(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

void rig_link_name(const char *path, char *out, size_t size)
{
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        const char *slash;

        out[0] = 0;
        if (n < 0)
                return;
        target[n] = 0;
        slash = strrchr(target, '/');
        rig_fmt(out, size, "%s", slash ? slash + 1 : target);
}

void rig_driver_of(const char *addr, char *out, size_t size)
{
        char path[PATH_MAX];

        rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/driver", addr);
        rig_link_name(path, out, size);
}

static void load_dev(struct rig_dev *d, const char *addr)
{
        char path[PATH_MAX];

        memset(d, 0, sizeof(*d));
        rig_fmt(d->addr, sizeof(d->addr), "%s", addr);
        rig_driver_of(d->addr, d->driver, sizeof(d->driver));
        rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/driver_override", d->addr);
        if (rig_read_file(path, d->override, sizeof(d->override)) < 0 || !strcmp(d->override, "(null)"))
                d->override[0] = 0;
}

int rig_load_group(const char *addr, unsigned *ret_group, struct rig_dev *devs, size_t *ret_n)
{
        char path[PATH_MAX], name[64];
        struct dirent *e;
        size_t n = 1;
        DIR *dir;

        rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/iommu_group", addr);
        rig_link_name(path, name, sizeof(name));
        if (!name[0])
                return rig_err("%s has no IOMMU group (no such device, or no IOMMU)", addr);
        *ret_group = (unsigned)strtoul(name, NULL, 10);
        /* ADDR goes first, so that it is moved first and, put back in reverse, last. */
        load_dev(&devs[0], addr);
        rig_fmt(path, sizeof(path), "/sys/kernel/iommu_groups/%u/devices", *ret_group);
        dir = opendir(path);
        if (!dir)
                return rig_err("cannot list %s: %s", path, strerror(errno));
        while ((e = readdir(dir))) {
                if (e->d_name[0] == '.' || !strcmp(e->d_name, addr))
                        continue;
                if (n == RIG_MAX_DEVICES) {
                        closedir(dir);
                        return rig_err("group %u has more than %d devices", *ret_group, RIG_MAX_DEVICES);
                }
                load_dev(&devs[n++], e->d_name);
        }
        closedir(dir);
        *ret_n = n;
        return 0;
}

bool rig_keeps_driver(const struct rig_dev *d)
{
        return !strcmp(d->driver, "vfio-pci") || !strcmp(d->driver, "pcieport");
}

int rig_to_vfio(struct rig_dev *d)
{
        char path[PATH_MAX], now[64];
        int r;

        if (rig_keeps_driver(d))
                return 0;
        rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/driver_override", d->addr);
        r = rig_write_file(path, "vfio-pci");
        if (r < 0)
                return rig_err("write %s: %s", path, strerror(-r));
        d->moved = true;
        if (d->driver[0]) {
                rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/driver/unbind", d->addr);
                r = rig_write_file(path, d->addr);
                if (r < 0)
                        return rig_err("unbind %s from %s: %s", d->addr, d->driver, strerror(-r));
        }
        r = rig_write_file(RIG_SYS_PCI "/drivers_probe", d->addr);
        if (r < 0)
                return rig_err("drivers_probe %s: %s", d->addr, strerror(-r));
        rig_driver_of(d->addr, now, sizeof(now));
        if (strcmp(now, "vfio-pci"))
                return rig_err("%s is on '%s' after the probe, not vfio-pci", d->addr, now);
        return 0;
}

int rig_restore(struct rig_dev *d)
{
        char path[PATH_MAX], now[64];
        int r, ret = 0;

        if (!d->moved)
                return 0;
        rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/driver_override", d->addr);
        r = rig_write_file(path, d->override[0] ? d->override : "\n");
        if (r < 0)
                ret = rig_err("write %s: %s", path, strerror(-r));
        rig_driver_of(d->addr, now, sizeof(now));
        if (!strcmp(now, "vfio-pci")) {
                r = rig_write_file(RIG_SYS_PCI "/drivers/vfio-pci/unbind", d->addr);
                if (r < 0)
                        ret = rig_err("unbind %s from vfio-pci: %s", d->addr, strerror(-r));
        }
        if (d->driver[0]) {
                r = rig_write_file(RIG_SYS_PCI "/drivers_probe", d->addr);
                if (r < 0)
                        ret = rig_err("drivers_probe %s: %s", d->addr, strerror(-r));
        }
        rig_driver_of(d->addr, now, sizeof(now));
        if (strcmp(now, d->driver))
                ret = rig_err("%s is on '%s' after the restore, not '%s'", d->addr, now[0] ? now : "(none)",
                              d->driver[0] ? d->driver : "(none)");
        else
                d->moved = false;
        return ret;
}
