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

#include "rig-sysfs.h"

static bool quiet;
static FILE *dump_file;
static const char *dump_path;

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
        return rig_err("%s: %s", what, strerror(err));
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

        rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/%s", addr, attr);
        r = rig_read_file(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        *out = (unsigned)strtoul(buf, NULL, 0);
        return 0;
}

#define STEP(name, t0) say("step %-9s %8" PRIu64 " us\n", name, rig_now_us() - (t0))

static int dance(const char *addr, bool keep)
{
        struct rig_dev devs[RIG_MAX_DEVICES];
        char path[PATH_MAX], group[32];
        int container = -1, grp = -1, device = -1, ret = -1, i;
        uint64_t t0, start = rig_now_us();
        unsigned vendor = 0, devid = 0, group_nr;
        size_t ndev;

        if (rig_load_group(addr, &group_nr, devs, &ndev) < 0)
                return -1;
        rig_fmt(group, sizeof(group), "%u", group_nr);
        say("device %s group %s driver %s (%zu device%s in the group)\n", addr, group,
            devs[0].driver[0] ? devs[0].driver : "(none)", ndev, ndev == 1 ? "" : "s");

        /* bind: the target always goes to vfio-pci; the others only if a host driver holds them
         * (a driverless device, or a bridge on pcieport, does not stop the group being viable). */
        t0 = rig_now_us();
        for (i = 0; i < (int)ndev; i++) {
                if (i > 0 && !devs[i].driver[0])
                        continue;
                if (rig_to_vfio(&devs[i]) < 0)
                        goto out;
        }
        STEP("bind", t0);

        t0 = rig_now_us();
        container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        if (container < 0) {
                fail("open /dev/vfio/vfio", errno);
                goto out;
        }
        i = ioctl(container, VFIO_GET_API_VERSION);
        if (i != VFIO_API_VERSION) {
                rig_err("VFIO API version %d, expected %d", i, VFIO_API_VERSION);
                goto out;
        }
        if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
                rig_err("the container does not support VFIO_TYPE1v2_IOMMU");
                goto out;
        }
        STEP("container", t0);

        t0 = rig_now_us();
        rig_fmt(path, sizeof(path), "/dev/vfio/%s", group);
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
                        rig_err("group %s is not viable", group);
                        goto out;
                }
        }
        STEP("group", t0);

        t0 = rig_now_us();
        if (ioctl(grp, VFIO_GROUP_SET_CONTAINER, &container) < 0) {
                fail("VFIO_GROUP_SET_CONTAINER", errno);
                goto out;
        }
        if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
                fail("VFIO_SET_IOMMU", errno);
                goto out;
        }
        STEP("attach", t0);

        t0 = rig_now_us();
        if (iommu_info(container) < 0)
                goto out;
        STEP("info", t0);

        t0 = rig_now_us();
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
                        rig_err("config space IDs do not match sysfs");
                        goto out;
                }
        }

        t0 = rig_now_us();
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
                t0 = rig_now_us();
                /* Target last: it was moved first. */
                for (i = (int)ndev - 1; i >= 0; i--)
                        if (rig_restore(&devs[i]) < 0)
                                ret = -1;
                if (ret == 0)
                        STEP("restore", t0);
        }
        if (ret == 0)
                say("step %-9s %8" PRIu64 " us\n", "total", rig_now_us() - start);
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

        rig_prog = "vfio-raw";

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
