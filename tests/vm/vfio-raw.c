/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfio-raw: the bare VFIO dance on one PCI device, without groupd.
 *
 * It is the real-kernel rig's reference and the "raw floor" of the benchmarks: each step is timed
 * (CLOCK_MONOTONIC, microseconds) so the cost groupd adds on top can be measured.
 *
 *   vfio-raw [-q] [-n COUNT] [--dump-info FILE] [--keep] PCI-ADDRESS
 *
 * Steps, in order (each printed as "step NAME USEC"):
 *   bind       driver_override=vfio-pci on every device of the group that a host driver holds
 *              (and the target), unbind the host driver, drivers_probe so vfio-pci takes it
 *   container  open /dev/vfio/vfio, VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION(TYPE1v2)
 *   group      open /dev/vfio/N, VFIO_GROUP_GET_STATUS (viable?)
 *   attach     VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU(TYPE1v2)
 *   info       VFIO_IOMMU_GET_INFO (IOVA ranges from the capability chain, DMA mappings available)
 *   device     VFIO_GROUP_GET_DEVICE_FD, VFIO_DEVICE_GET_REGION_INFO(config), pread vendor/device
 *   close      close the device, group and container fds
 *   restore    clear driver_override, unbind vfio-pci, drivers_probe: the host driver comes back
 *
 * --dump-info FILE writes GET_INFO's raw buffer as hex (16 bytes a line) for parser tests.
 * --keep leaves the devices on vfio-pci (no restore step).
 * -n COUNT repeats the whole dance (for benchmarks); -q prints only the summary lines.
 *
 * Exit status: 0 when every step worked and the vendor/device read through VFIO matches sysfs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#define SYS_PCI "/sys/bus/pci"
#define MAX_GROUP_DEVICES 32

struct dev {
        char addr[64];
        char driver[64]; /* host driver before we started, "" when none */
        bool moved;      /* we bound it to vfio-pci and must restore it */
};

static bool quiet;
static FILE *dump_file;
static const char *dump_path;

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* snprintf that cuts silently: sysfs names and paths here are short. */
static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t size, const char *f, ...)
{
        va_list ap;

        va_start(ap, f);
        if (vsnprintf(buf, size, f, ap) >= (int)size && size)
                buf[size - 1] = 0;
        va_end(ap);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        va_list ap;

        if (quiet)
                return;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fflush(stdout);
}

static int fail(const char *what, int err)
{
        fprintf(stderr, "vfio-raw: %s: %s\n", what, strerror(err));
        fflush(stderr);
        return -1;
}

static int write_file(const char *path, const char *value)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;
        int err;

        if (fd < 0)
                return -errno;
        n = write(fd, value, strlen(value));
        err = n < 0 ? errno : 0;
        close(fd);
        return n < 0 ? -err : 0;
}

static int read_file(const char *path, char *buf, size_t size)
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

/* Basename of a sysfs symlink's target, "" when the link does not exist. */
static void link_name(const char *path, char *out, size_t size)
{
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        const char *slash;

        out[0] = 0;
        if (n < 0)
                return;
        target[n] = 0;
        slash = strrchr(target, '/');
        fmt(out, size, "%s", slash ? slash + 1 : target);
}

static void current_driver(const char *addr, char *out, size_t size)
{
        char path[PATH_MAX];

        fmt(path, sizeof(path), SYS_PCI "/devices/%s/driver", addr);
        link_name(path, out, size);
}

static int to_vfio(struct dev *d)
{
        char path[PATH_MAX], now[64];
        int r;

        fmt(path, sizeof(path), SYS_PCI "/devices/%s/driver_override", d->addr);
        r = write_file(path, "vfio-pci");
        if (r < 0)
                return fail("write driver_override", -r);
        d->moved = true;
        if (d->driver[0]) {
                fmt(path, sizeof(path), SYS_PCI "/devices/%s/driver/unbind", d->addr);
                r = write_file(path, d->addr);
                if (r < 0)
                        return fail("unbind host driver", -r);
        }
        r = write_file(SYS_PCI "/drivers_probe", d->addr);
        if (r < 0)
                return fail("drivers_probe", -r);
        current_driver(d->addr, now, sizeof(now));
        if (strcmp(now, "vfio-pci") != 0) {
                fprintf(stderr, "vfio-raw: %s is on '%s' after the probe, not vfio-pci\n", d->addr, now);
                return -1;
        }
        return 0;
}

static int restore(struct dev *d)
{
        char path[PATH_MAX], now[64];
        int r, ret = 0;

        if (!d->moved)
                return 0;
        fmt(path, sizeof(path), SYS_PCI "/devices/%s/driver_override", d->addr);
        r = write_file(path, "\n");
        if (r < 0)
                ret = fail("clear driver_override", -r);
        current_driver(d->addr, now, sizeof(now));
        if (strcmp(now, "vfio-pci") == 0) {
                r = write_file(SYS_PCI "/drivers/vfio-pci/unbind", d->addr);
                if (r < 0)
                        ret = fail("unbind vfio-pci", -r);
        }
        if (d->driver[0]) {
                r = write_file(SYS_PCI "/drivers_probe", d->addr);
                if (r < 0)
                        ret = fail("drivers_probe", -r);
                current_driver(d->addr, now, sizeof(now));
                if (strcmp(now, d->driver) != 0) {
                        fprintf(stderr, "vfio-raw: %s is on '%s' after restore, expected %s\n", d->addr,
                                now[0] ? now : "(none)", d->driver);
                        ret = -1;
                }
        }
        d->moved = false;
        return ret;
}

static void dump_hex(const void *buf, size_t len)
{
        const unsigned char *p = buf;

        for (size_t i = 0; i < len; i++)
                fprintf(dump_file, "%02x%s", p[i], (i % 16 == 15 || i + 1 == len) ? "\n" : " ");
}

static int iommu_info(int container)
{
        struct vfio_iommu_type1_info *info;
        size_t size = sizeof(*info);

        info = calloc(1, size);
        if (!info)
                return fail("calloc", ENOMEM);
        info->argsz = size;
        if (ioctl(container, VFIO_IOMMU_GET_INFO, info) < 0) {
                free(info);
                return fail("VFIO_IOMMU_GET_INFO", errno);
        }
        if (info->argsz > size) {
                /* The capability chain did not fit: ask again with the size the kernel wants. */
                struct vfio_iommu_type1_info *bigger;

                size = info->argsz;
                bigger = realloc(info, size);
                if (!bigger) {
                        free(info);
                        return fail("realloc", ENOMEM);
                }
                info = bigger;
                memset(info, 0, size);
                info->argsz = size;
                if (ioctl(container, VFIO_IOMMU_GET_INFO, info) < 0) {
                        free(info);
                        return fail("VFIO_IOMMU_GET_INFO (caps)", errno);
                }
        }
        say("info: argsz %u flags 0x%x iova_pgsizes 0x%llx\n", info->argsz, info->flags,
            (unsigned long long)info->iova_pgsizes);
        if (dump_file)
                dump_hex(info, size);

        if ((info->flags & VFIO_IOMMU_INFO_CAPS) && info->cap_offset) {
                uint32_t off = info->cap_offset;
                int guard = 0;

                while (off && off + sizeof(struct vfio_info_cap_header) <= size && guard++ < 64) {
                        struct vfio_info_cap_header *h = (void *)((char *)info + off);

                        if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
                                struct vfio_iommu_type1_info_cap_iova_range *c = (void *)h;

                                for (uint32_t i = 0; i < c->nr_iovas; i++)
                                        say("info: iova range %u: 0x%" PRIx64 "-0x%" PRIx64 "\n", i,
                                            (uint64_t)c->iova_ranges[i].start, (uint64_t)c->iova_ranges[i].end);
                        } else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
                                struct vfio_iommu_type1_info_dma_avail *c = (void *)h;

                                say("info: dma_avail %u\n", c->avail);
                        } else {
                                say("info: capability id %u version %u\n", h->id, h->version);
                        }
                        off = h->next;
                }
        }
        free(info);
        return 0;
}

static int read_sysfs_id(const char *addr, const char *attr, unsigned *out)
{
        char path[PATH_MAX], buf[32];
        int r;

        fmt(path, sizeof(path), SYS_PCI "/devices/%s/%s", addr, attr);
        r = read_file(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        *out = (unsigned)strtoul(buf, NULL, 0);
        return 0;
}

static int list_group(const char *group, const char *target, struct dev *devs, int max)
{
        char path[PATH_MAX];
        struct dirent *de;
        DIR *dir;
        int n = 1;

        /* The target goes first, so it is moved first and restored last. */
        fmt(devs[0].addr, sizeof(devs[0].addr), "%s", target);
        fmt(path, sizeof(path), "/sys/kernel/iommu_groups/%s/devices", group);
        dir = opendir(path);
        if (!dir)
                return fail("open the group's devices directory", errno);
        while ((de = readdir(dir)) && n < max) {
                if (de->d_name[0] == '.' || strcmp(de->d_name, target) == 0)
                        continue;
                fmt(devs[n].addr, sizeof(devs[n].addr), "%s", de->d_name);
                n++;
        }
        closedir(dir);
        for (int i = 0; i < n; i++) {
                current_driver(devs[i].addr, devs[i].driver, sizeof(devs[i].driver));
                devs[i].moved = false;
        }
        return n;
}

#define STEP(name, t0) say("step %-9s %8" PRIu64 " us\n", name, now_us() - (t0))

static int dance(const char *addr, bool keep)
{
        struct dev devs[MAX_GROUP_DEVICES];
        char path[PATH_MAX], group[32];
        int container = -1, grp = -1, device = -1, ndev, ret = -1, i;
        uint64_t t0, start = now_us();
        unsigned vendor = 0, devid = 0;

        fmt(path, sizeof(path), SYS_PCI "/devices/%s/iommu_group", addr);
        link_name(path, group, sizeof(group));
        if (!group[0]) {
                fprintf(stderr, "vfio-raw: %s has no IOMMU group (no IOMMU, or no such device)\n", addr);
                return -1;
        }
        ndev = list_group(group, addr, devs, MAX_GROUP_DEVICES);
        if (ndev < 0)
                return -1;
        say("device %s group %s driver %s (%d device%s in the group)\n", addr, group,
            devs[0].driver[0] ? devs[0].driver : "(none)", ndev, ndev == 1 ? "" : "s");

        /* bind: the target always goes to vfio-pci; the others only if a host driver holds them
         * (a driverless device, or a bridge on pcieport, does not stop the group being viable). */
        t0 = now_us();
        for (i = 0; i < ndev; i++) {
                if (i > 0 && (!devs[i].driver[0] || strcmp(devs[i].driver, "pcieport") == 0 ||
                              strcmp(devs[i].driver, "vfio-pci") == 0))
                        continue;
                if (strcmp(devs[i].driver, "vfio-pci") == 0)
                        continue;
                if (to_vfio(&devs[i]) < 0)
                        goto out;
        }
        STEP("bind", t0);

        t0 = now_us();
        container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        if (container < 0) {
                fail("open /dev/vfio/vfio", errno);
                goto out;
        }
        i = ioctl(container, VFIO_GET_API_VERSION);
        if (i != VFIO_API_VERSION) {
                fprintf(stderr, "vfio-raw: VFIO API version %d, expected %d\n", i, VFIO_API_VERSION);
                goto out;
        }
        if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
                fprintf(stderr, "vfio-raw: the container does not support VFIO_TYPE1v2_IOMMU\n");
                goto out;
        }
        STEP("container", t0);

        t0 = now_us();
        fmt(path, sizeof(path), "/dev/vfio/%s", group);
        grp = open(path, O_RDWR | O_CLOEXEC);
        if (grp < 0) {
                fail(path, errno);
                goto out;
        }
        {
                struct vfio_group_status st = { .argsz = sizeof(st) };

                if (ioctl(grp, VFIO_GROUP_GET_STATUS, &st) < 0) {
                        fail("VFIO_GROUP_GET_STATUS", errno);
                        goto out;
                }
                if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
                        fprintf(stderr, "vfio-raw: group %s is not viable\n", group);
                        goto out;
                }
        }
        STEP("group", t0);

        t0 = now_us();
        if (ioctl(grp, VFIO_GROUP_SET_CONTAINER, &container) < 0) {
                fail("VFIO_GROUP_SET_CONTAINER", errno);
                goto out;
        }
        if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
                fail("VFIO_SET_IOMMU", errno);
                goto out;
        }
        STEP("attach", t0);

        t0 = now_us();
        if (iommu_info(container) < 0)
                goto out;
        STEP("info", t0);

        t0 = now_us();
        device = ioctl(grp, VFIO_GROUP_GET_DEVICE_FD, addr);
        if (device < 0) {
                fail("VFIO_GROUP_GET_DEVICE_FD", errno);
                goto out;
        }
        {
                struct vfio_region_info reg = { .argsz = sizeof(reg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
                uint16_t ids[2];

                if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0) {
                        fail("VFIO_DEVICE_GET_REGION_INFO(config)", errno);
                        goto out;
                }
                if (pread(device, ids, sizeof(ids), (off_t)reg.offset) != (ssize_t)sizeof(ids)) {
                        fail("pread config space", errno ? errno : EIO);
                        goto out;
                }
                vendor = ids[0];
                devid = ids[1];
        }
        STEP("device", t0);

        {
                unsigned sv = 0, sd = 0;

                read_sysfs_id(addr, "vendor", &sv);
                read_sysfs_id(addr, "device", &sd);
                say("config: vendor 0x%04x device 0x%04x (sysfs 0x%04x 0x%04x)\n", vendor, devid, sv, sd);
                if (sv != vendor || sd != devid) {
                        fprintf(stderr, "vfio-raw: config space IDs do not match sysfs\n");
                        goto out;
                }
        }

        t0 = now_us();
        close(device);
        close(grp);
        close(container);
        device = grp = container = -1;
        STEP("close", t0);
        ret = 0;

out:
        if (device >= 0)
                close(device);
        if (grp >= 0)
                close(grp);
        if (container >= 0)
                close(container);
        if (!keep) {
                t0 = now_us();
                /* Target last: it was moved first. */
                for (i = ndev - 1; i >= 0; i--)
                        if (restore(&devs[i]) < 0)
                                ret = -1;
                if (ret == 0)
                        STEP("restore", t0);
        }
        if (ret == 0)
                say("step %-9s %8" PRIu64 " us\n", "total", now_us() - start);
        return ret;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: vfio-raw [-q] [-n COUNT] [--dump-info FILE] [--keep] PCI-ADDRESS\n");
}

int main(int argc, char **argv)
{
        const char *addr = NULL;
        bool keep = false;
        long count = 1;
        int i, failures = 0;

        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-q") == 0)
                        quiet = true;
                else if (strcmp(argv[i], "--keep") == 0)
                        keep = true;
                else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
                        count = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--dump-info") == 0 && i + 1 < argc)
                        dump_path = argv[++i];
                else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        usage(stdout);
                        return 0;
                } else if (argv[i][0] == '-' || addr) {
                        usage(stderr);
                        return 2;
                } else
                        addr = argv[i];
        }
        if (!addr || count < 1) {
                usage(stderr);
                return 2;
        }
        if (dump_path) {
                dump_file = fopen(dump_path, "we");
                if (!dump_file) {
                        fail(dump_path, errno);
                        return 1;
                }
        }
        for (long n = 0; n < count; n++) {
                if (dance(addr, keep) < 0)
                        failures++;
                if (dump_file) {
                        /* Only the first round's buffer is dumped. */
                        fclose(dump_file);
                        dump_file = NULL;
                }
        }
        printf("vfio-raw: %s: %ld round%s, %d failed\n", addr, count, count == 1 ? "" : "s", failures);
        return failures ? 1 : 0;
}
