/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the host interface: PCI addresses, sysfs reading on trees built here, the topology
 * parser, the simulated host's kernel rules end to end through host_*(), and the linux backend's writes
 * on a fake sysfs root. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "host-internal.h"
#include "host-sim.h"
#include "sim-topology.h"
#include "test-util.h"

#ifndef TOP_SRCDIR_DEFAULT
#define TOP_SRCDIR_DEFAULT "."
#endif

/* ---------------------------------------------------------------- helpers */

static const char *top_srcdir(void) {
        const char *e = getenv("TOP_SRCDIR");
        return isempty(e) ? TOP_SRCDIR_DEFAULT : e;
}

/* $TMPDIR if set, else /dev/shm: the trees here have thousands of files, and making them on a disk file
 * system can take a minute. */
static char *make_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *d = NULL;

        if (isempty(base))
                base = access("/dev/shm", W_OK) >= 0 ? "/dev/shm" : "/tmp";
        ck_assert_int_ge(asprintf(&d, "%s/test-host-XXXXXX", base), 0);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(char *dir) {
        if (!dir)
                return;
        (void) nftw(dir, rm_one, 16, FTW_DEPTH|FTW_PHYS);
        free(dir);
}

static void xmkdir(const char *root, const char *path) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", root, path);
        for (char *s = strchr(p + strlen(root) + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                (void) mkdir(p, 0755);
                *s = '/';
        }
        ck_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
}

static void xwrite(const char *root, const char *path, const char *text) {
        char p[PATH_MAX];
        FILE *f;

        snprintf(p, sizeof p, "%s/%s", root, path);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
}

static void xlink(const char *root, const char *target, const char *path) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", root, path);
        ck_assert_int_eq(symlink(target, p), 0);
}

static char *read_file(const char *root, const char *path) {
        char p[PATH_MAX], buf[4096];
        ssize_t n;
        int fd;

        snprintf(p, sizeof p, "%s/%s", root, path);
        fd = open(p, O_RDONLY|O_CLOEXEC);
        if (fd < 0)
                return NULL;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        return strdup(buf);
}

static void assert_file(const char *root, const char *path, const char *expected) {
        char *s = read_file(root, path);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, expected);
        free(s);
}

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- addresses, kinds, drivers */

START_TEST(test_pci_address) {
        static const struct {
                const char *in, *out;
        } good[] = {
                { "0000:00:03.0", "0000:00:03.0" },
                { "00:03.0", "0000:00:03.0" },
                { "0000:AB:1F.7", "0000:ab:1f.7" },
                { "ffff:ff:1f.7", "ffff:ff:1f.7" },
                { "0001:02:00.1", "0001:02:00.1" },
        };
        static const char *const bad[] = {
                "", "0000:00:20.0", "0000:00:03.8", "000:00:03.0", "00000:00:03.0", "0000:00:03",
                "0000:00:03.0 ", " 0000:00:03.0", "0000:0g:03.0", "0000-00:03.0", "0000:00-03.0",
                "0000:00:03:0", "3.0", "0:03.0", "0000:000:03.0", "+000:00:03.0", "0000:00:3.00",
        };
        char a[HOST_ADDR_MAX];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                memset(a, 'x', sizeof a);
                ck_assert_int_eq(host_parse_pci_address(good[i].in, a), 0);
                ck_assert_str_eq(a, good[i].out);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(host_parse_pci_address(bad[i], a) == -EINVAL, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(host_parse_pci_address(NULL, a), -EINVAL);
}
END_TEST

START_TEST(test_kind_strings) {
        for (int k = 0; k < _HOST_KIND_MAX; k++) {
                const char *s = host_kind_to_string((HostKind) k);
                ck_assert_ptr_nonnull(s);
                ck_assert_int_eq(host_kind_from_string(s), k);
        }
        ck_assert_str_eq(host_kind_to_string(HOST_LINUX), "linux");
        ck_assert_str_eq(host_kind_to_string(HOST_SIM), "sim");
        ck_assert_ptr_null(host_kind_to_string(_HOST_KIND_MAX));
        ck_assert_ptr_null(host_kind_to_string(_HOST_KIND_INVALID));
        ck_assert_int_eq(host_kind_from_string("qemu"), _HOST_KIND_INVALID);
        ck_assert_int_eq(host_kind_from_string(""), _HOST_KIND_INVALID);
        ck_assert_int_eq(host_kind_from_string(NULL), _HOST_KIND_INVALID);
}
END_TEST

START_TEST(test_vfio_safe) {
        ck_assert(host_driver_is_vfio_safe("vfio-pci"));
        ck_assert(host_driver_is_vfio_safe(""));
        ck_assert(host_driver_is_vfio_safe(NULL));
        ck_assert(host_driver_is_vfio_safe("pcieport"));
        ck_assert(host_driver_is_vfio_safe("pci-stub"));
        ck_assert(!host_driver_is_vfio_safe("e1000e"));
        ck_assert(!host_driver_is_vfio_safe("nvme"));
        ck_assert(!host_driver_is_vfio_safe("vfio"));
}
END_TEST

START_TEST(test_reserved_regions) {
        HostRegion *r = NULL;
        size_t n = 0;

        ck_assert_int_eq(sysfs_parse_reserved_regions("0x00000000fee00000 0x00000000feefffff msi\n"
                                                      "0x00000000000a0000 0x00000000000bffff direct-relaxable\n",
                                                      &r, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(r[0].start, 0xfee00000);
        ck_assert_uint_eq(r[0].end, 0xfeefffff);
        ck_assert_str_eq(r[0].type, "msi");
        ck_assert_uint_eq(r[1].start, 0xa0000);
        ck_assert_str_eq(r[1].type, "direct-relaxable");
        free(r);

        ck_assert_int_eq(sysfs_parse_reserved_regions("", &r, &n), 0);
        ck_assert_uint_eq(n, 0);
        free(r);

        ck_assert_int_eq(sysfs_parse_reserved_regions("0xfee00000 msi\n", &r, &n), -EBADMSG);
        ck_assert_int_eq(sysfs_parse_reserved_regions("0x2000 0x1000 msi\n", &r, &n), -EBADMSG);
        ck_assert_int_eq(sysfs_parse_reserved_regions("0xzz 0x1000 msi\n", &r, &n), -EBADMSG);
        ck_assert_int_eq(sysfs_parse_reserved_regions("0x1000 0x2000 msi extra\n", &r, &n), -EBADMSG);
}
END_TEST

/* ---------------------------------------------------------------- sysfs reading (linux backend) */

static void fake_device(const char *root, const char *addr, const char *vendor, const char *device,
                        const char *class, const char *driver, const char *override, unsigned group) {
        char p[PATH_MAX], t[PATH_MAX];

        snprintf(p, sizeof p, "sys/devices/pci0000:00/%s", addr);
        xmkdir(root, p);
        if (vendor) {
                snprintf(p, sizeof p, "sys/devices/pci0000:00/%s/vendor", addr);
                xwrite(root, p, vendor);
                snprintf(p, sizeof p, "sys/devices/pci0000:00/%s/device", addr);
                xwrite(root, p, device);
                snprintf(p, sizeof p, "sys/devices/pci0000:00/%s/class", addr);
                xwrite(root, p, class);
        }
        if (override) {
                snprintf(p, sizeof p, "sys/devices/pci0000:00/%s/driver_override", addr);
                xwrite(root, p, override);
        }
        if (driver) {
                snprintf(p, sizeof p, "sys/bus/pci/drivers/%s", driver);
                xmkdir(root, p);
                snprintf(p, sizeof p, "sys/bus/pci/drivers/%s/unbind", driver);
                xwrite(root, p, "");
                snprintf(p, sizeof p, "sys/devices/pci0000:00/%s/driver", addr);
                snprintf(t, sizeof t, "../../../bus/pci/drivers/%s", driver);
                xlink(root, t, p);
        }
        snprintf(p, sizeof p, "sys/devices/pci0000:00/%s/iommu_group", addr);
        snprintf(t, sizeof t, "../../../kernel/iommu_groups/%u", group);
        xlink(root, t, p);
        snprintf(p, sizeof p, "sys/kernel/iommu_groups/%u/devices/%s", group, addr);
        snprintf(t, sizeof t, "../../../../devices/pci0000:00/%s", addr);
        xlink(root, t, p);
        snprintf(p, sizeof p, "sys/bus/pci/devices/%s", addr);
        snprintf(t, sizeof t, "../../../devices/pci0000:00/%s", addr);
        xlink(root, t, p);
}

/* Groups 3 (a NIC on e1000e, type DMA, two reserved regions), 7 (no type file; a device without a
 * driver, one with an override, a non-PCI device, and one that vanished), 12, and some clutter. */
static char *make_fake_sysfs(void) {
        char *root = make_tmpdir();

        xmkdir(root, "dev");
        xmkdir(root, "sys/kernel/iommu_groups/3/devices");
        xmkdir(root, "sys/kernel/iommu_groups/7/devices");
        xmkdir(root, "sys/kernel/iommu_groups/12/devices");
        xmkdir(root, "sys/kernel/iommu_groups/junk");
        xmkdir(root, "sys/bus/pci/devices");
        xmkdir(root, "sys/bus/pci/drivers/e1000e");
        xwrite(root, "sys/bus/pci/drivers/e1000e/bind", "");
        xwrite(root, "sys/bus/pci/drivers_probe", "");

        xwrite(root, "sys/kernel/iommu_groups/3/type", "DMA\n");
        xwrite(root, "sys/kernel/iommu_groups/3/reserved_regions",
               "0x00000000000a0000 0x00000000000bffff direct\n"
               "0x00000000fee00000 0x00000000feefffff msi\n");
        fake_device(root, "0000:00:03.0", "0x8086\n", "0x10d3\n", "0x020000\n", "e1000e", "(null)\n", 3);

        xwrite(root, "sys/kernel/iommu_groups/7/reserved_regions", "");
        fake_device(root, "0000:00:07.1", "0x8086\n", "0x100e\n", "0x020000\n", "e1000", "vfio-pci\n", 7);
        fake_device(root, "0000:00:07.0", "0x1234\n", "0x11e8\n", "0x00ff00\n", NULL, "(null)\n", 7);
        /* Not a PCI device: no vendor, device, class, driver_override. */
        xmkdir(root, "sys/devices/platform/ACPI0001:00");
        xlink(root, "../../../../devices/platform/ACPI0001:00", "sys/kernel/iommu_groups/7/devices/ACPI0001:00");
        /* Vanished: its links are left, its directory is gone. */
        xlink(root, "../../../../devices/pci0000:00/0000:00:07.2", "sys/kernel/iommu_groups/7/devices/0000:00:07.2");
        xlink(root, "../../../devices/pci0000:00/0000:00:07.2", "sys/bus/pci/devices/0000:00:07.2");

        xwrite(root, "sys/kernel/iommu_groups/12/type", "identity\n");
        fake_device(root, "0000:00:0c.0", "0x1b36\n", "0x000d\n", "0x0c0330\n", NULL, NULL, 12);
        return root;
}

static Host *new_linux_host(const char *root) {
        char sys[PATH_MAX], dev[PATH_MAX];
        HostLinuxConfig cfg = { .sysfs_root = sys, .dev_root = dev };
        Host *h = NULL;

        snprintf(sys, sizeof sys, "%s/sys", root);
        snprintf(dev, sizeof dev, "%s/dev", root);
        ck_assert_int_eq(host_new_linux(&cfg, &h), 0);
        ck_assert_int_eq(host_get_kind(h), HOST_LINUX);
        return h;
}

START_TEST(test_sysfs_read) {
        char *root = make_fake_sysfs();
        Host *h = new_linux_host(root);
        HostGroup g = {};
        HostDevice d;
        unsigned *ids = NULL;
        size_t n = 0;

        ck_assert_int_eq(host_list_groups(h, &ids, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(ids[0], 3);
        ck_assert_uint_eq(ids[1], 7);
        ck_assert_uint_eq(ids[2], 12);
        free(ids);

        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_uint_eq(g.id, 3);
        ck_assert_str_eq(g.type, "DMA");
        ck_assert_uint_eq(g.n_regions, 2);
        ck_assert_uint_eq(g.regions[0].start, 0xa0000);
        ck_assert_uint_eq(g.regions[0].end, 0xbffff);
        ck_assert_str_eq(g.regions[0].type, "direct");
        ck_assert_uint_eq(g.regions[1].start, 0xfee00000);
        ck_assert_uint_eq(g.regions[1].end, 0xfeefffff);
        ck_assert_str_eq(g.regions[1].type, "msi");
        ck_assert_uint_eq(g.n_devices, 1);
        ck_assert_str_eq(g.devices[0].address, "0000:00:03.0");
        ck_assert_uint_eq(g.devices[0].vendor, 0x8086);
        ck_assert_uint_eq(g.devices[0].device, 0x10d3);
        ck_assert_uint_eq(g.devices[0].class_code, 0x020000);
        ck_assert_str_eq(g.devices[0].driver, "e1000e");
        ck_assert_str_eq(g.devices[0].driver_override, "");
        ck_assert_uint_eq(g.devices[0].group, 3);
        host_group_done(&g);
        ck_assert_ptr_null(g.devices);
        ck_assert_uint_eq(g.n_devices, 0);

        /* No type file; sorted by address; the vanished device is skipped, the non-PCI one kept. */
        ck_assert_int_eq(host_read_group(h, 7, &g), 0);
        ck_assert_str_eq(g.type, "");
        ck_assert_uint_eq(g.n_regions, 0);
        ck_assert_uint_eq(g.n_devices, 3);
        ck_assert_str_eq(g.devices[0].address, "0000:00:07.0");
        ck_assert_str_eq(g.devices[0].driver, "");
        ck_assert_str_eq(g.devices[0].driver_override, "");
        ck_assert_uint_eq(g.devices[0].vendor, 0x1234);
        ck_assert_str_eq(g.devices[1].address, "0000:00:07.1");
        ck_assert_str_eq(g.devices[1].driver, "e1000");
        ck_assert_str_eq(g.devices[1].driver_override, "vfio-pci");
        ck_assert_str_eq(g.devices[2].address, "ACPI0001:00");
        ck_assert_uint_eq(g.devices[2].vendor, 0);
        ck_assert_uint_eq(g.devices[2].device, 0);
        ck_assert_uint_eq(g.devices[2].group, 7);
        host_group_done(&g);

        /* No reserved_regions, no driver_override file. */
        ck_assert_int_eq(host_read_group(h, 12, &g), 0);
        ck_assert_str_eq(g.type, "identity");
        ck_assert_uint_eq(g.n_regions, 0);
        ck_assert_uint_eq(g.n_devices, 1);
        ck_assert_str_eq(g.devices[0].driver_override, "");
        host_group_done(&g);

        ck_assert_int_eq(host_read_group(h, 99, &g), -ENOENT);

        ck_assert_int_eq(host_read_device(h, "0000:00:07.1", &d), 0);
        ck_assert_str_eq(d.address, "0000:00:07.1");
        ck_assert_uint_eq(d.group, 7);
        ck_assert_uint_eq(d.vendor, 0x8086);
        ck_assert_uint_eq(d.device, 0x100e);
        ck_assert_str_eq(d.driver, "e1000");
        ck_assert_str_eq(d.driver_override, "vfio-pci");
        ck_assert_int_eq(host_read_device(h, "0000:00:0c.0", &d), 0);
        ck_assert_uint_eq(d.group, 12);
        ck_assert_uint_eq(d.class_code, 0x0c0330);
        /* A device in no group. */
        xmkdir(root, "sys/devices/pci0000:00/0000:00:1f.0");
        xwrite(root, "sys/devices/pci0000:00/0000:00:1f.0/vendor", "0x8086\n");
        xlink(root, "../../../devices/pci0000:00/0000:00:1f.0", "sys/bus/pci/devices/0000:00:1f.0");
        ck_assert_int_eq(host_read_device(h, "0000:00:1f.0", &d), 0);
        ck_assert_uint_eq(d.group, UINT_MAX);
        ck_assert_uint_eq(d.vendor, 0x8086);
        ck_assert_uint_eq(d.device, 0);
        ck_assert_int_eq(host_read_device(h, "0000:00:07.2", &d), -ENOENT); /* vanished */
        ck_assert_int_eq(host_read_device(h, "0000:00:09.0", &d), -ENOENT); /* never was */
        ck_assert_int_eq(host_read_device(h, "../../etc", &d), -EINVAL);

        host_free(h);
        rm_tree(root);
}
END_TEST

/* What the linux backend reads of a device beyond ids and drivers: its header type (config space, or its
 * class without one), a VFIO variant driver (vfio-dev/), boot_vga, vfio-pci's deny list; and what the
 * host stands on through block devices and interfaces. */
START_TEST(test_sysfs_device_truth) {
        char *root = make_fake_sysfs();
        unsigned char config[64] = { 0 };
        char path[PATH_MAX];
        HostUse *uses = NULL;
        size_t n_uses = 0, n_added = 0, allocated = 0;
        HostDevice d;
        Host *h;
        FILE *f;

        /* A bridge with a config file saying so, one without (its class says), a variant-bound NIC, the
         * boot VGA device, a deny-listed QAT function. */
        for (unsigned g = 20; g <= 24; g++) {
                snprintf(path, sizeof path, "sys/kernel/iommu_groups/%u/devices", g);
                xmkdir(root, path);
        }
        fake_device(root, "0000:00:1c.0", "0x8086\n", "0xa110\n", "0x060400\n", "pcieport", "(null)\n", 20);
        config[0x0e] = 0x81; /* multi-function bit and type 1 */
        snprintf(path, sizeof path, "%s/sys/devices/pci0000:00/0000:00:1c.0/config", root);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(config, 1, sizeof config, f), sizeof config);
        fclose(f);
        fake_device(root, "0000:00:1e.0", "0x8086\n", "0x244e\n", "0x060401\n", NULL, "(null)\n", 21);
        fake_device(root, "0000:00:05.0", "0x15b3\n", "0x101e\n", "0x020000\n", "mlx5_vfio_pci", "mlx5_vfio_pci\n", 22);
        xmkdir(root, "sys/devices/pci0000:00/0000:00:05.0/vfio-dev/vfio0");
        fake_device(root, "0000:00:02.0", "0x1234\n", "0x1111\n", "0x030000\n", NULL, "(null)\n", 23);
        xwrite(root, "sys/devices/pci0000:00/0000:00:02.0/boot_vga", "1\n");
        fake_device(root, "0000:00:08.0", "0x8086\n", "0x37c8\n", "0x0b4000\n", "qat_c62x", "(null)\n", 24);

        h = new_linux_host(root);
        ck_assert_int_eq(host_read_device(h, "0000:00:1c.0", &d), 0);
        ck_assert_uint_eq(d.header_type, HOST_HEADER_BRIDGE);
        ck_assert(host_device_is_bridge(&d));
        ck_assert_int_eq(host_read_device(h, "0000:00:1e.0", &d), 0);
        ck_assert(host_device_is_bridge(&d));   /* from its class */
        ck_assert_int_eq(host_read_device(h, "0000:00:03.0", &d), 0);
        ck_assert(!host_device_is_bridge(&d));
        ck_assert(!d.vfio_driver);
        ck_assert(!host_device_is_vfio_safe(&d));
        ck_assert_int_eq(host_read_device(h, "0000:00:05.0", &d), 0);
        ck_assert(d.vfio_driver);
        ck_assert(host_device_is_vfio_safe(&d));
        ck_assert(!d.boot_vga);
        ck_assert_int_eq(host_read_device(h, "0000:00:02.0", &d), 0);
        ck_assert(d.boot_vga);
        ck_assert_int_eq(host_read_device(h, "0000:00:08.0", &d), 0);
        ck_assert(d.vfio_denylisted);
        /* The same through a group read (and its cache). */
        for (int pass = 0; pass < 2; pass++) {
                HostGroup g = {};
                ck_assert_int_eq(host_read_group(h, 22, &g), 0);
                ck_assert(g.devices[0].vfio_driver);
                host_group_done(&g);
                ck_assert_int_eq(host_read_group(h, 20, &g), 0);
                ck_assert(host_device_is_bridge(&g.devices[0]));
                host_group_done(&g);
        }
        /* The module's disable_denylist lifts it. */
        xmkdir(root, "sys/module/vfio_pci/parameters");
        xwrite(root, "sys/module/vfio_pci/parameters/disable_denylist", "Y\n");
        ck_assert_int_eq(host_read_device(h, "0000:00:08.0", &d), 0);
        ck_assert(!d.vfio_denylisted);

        /* The linux backend's uses come from /proc: whatever they are here, every one names a PCI function. */
        ck_assert_int_eq(host_list_uses(h, &uses, &n_uses), 0);
        for (size_t i = 0; i < n_uses; i++)
                ck_assert_uint_eq(strlen(uses[i].address), 12);
        free(uses);
        uses = NULL;

        /* A partition under a SATA function; a dm device on it; a bridge on a bond on a NIC. */
        xmkdir(root, "sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2");
        xmkdir(root, "sys/devices/virtual/block/dm-0/slaves");
        xmkdir(root, "sys/class/block");
        xlink(root, "../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2",
              "sys/class/block/sda2");
        xlink(root, "../../devices/virtual/block/dm-0", "sys/class/block/dm-0");
        xlink(root, "../../sda2", "sys/devices/virtual/block/dm-0/slaves/sda2");
        xmkdir(root, "sys/devices/pci0000:00/0000:00:03.0/net/eth0");
        xmkdir(root, "sys/devices/virtual/net/bond0");
        xmkdir(root, "sys/devices/virtual/net/br0");
        xmkdir(root, "sys/class/net");
        xlink(root, "../../devices/pci0000:00/0000:00:03.0/net/eth0", "sys/class/net/eth0");
        xlink(root, "../../devices/virtual/net/bond0", "sys/class/net/bond0");
        xlink(root, "../../devices/virtual/net/br0", "sys/class/net/br0");
        xlink(root, "../eth0", "sys/devices/virtual/net/bond0/lower_eth0");
        xlink(root, "../bond0", "sys/devices/virtual/net/br0/lower_bond0");

        snprintf(path, sizeof path, "%s/sys", root);
        int sysfs_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(sysfs_fd, 0);
        ck_assert_int_eq(sysfs_block_uses(sysfs_fd, "dm-0", HOST_USE_MOUNT, "/ on dm-0", &uses, &n_added,
                                          &allocated), 0);
        ck_assert_uint_eq(n_added, 1);
        ck_assert_str_eq(uses[0].address, "0000:00:1f.2");
        ck_assert_str_eq(uses[0].what, "/ on dm-0");
        ck_assert_int_eq(sysfs_net_uses(sysfs_fd, "br0", "br0", &uses, &n_added, &allocated), 0);
        ck_assert_uint_eq(n_added, 2);
        ck_assert_str_eq(uses[1].address, "0000:00:03.0");
        ck_assert_int_eq(uses[1].kind, HOST_USE_ROUTE);
        /* Nothing under a virtual device with no lower ones; unknown names are nothing. */
        ck_assert_int_eq(sysfs_net_uses(sysfs_fd, "lo", "lo", &uses, &n_added, &allocated), 0);
        ck_assert_int_eq(sysfs_block_uses(sysfs_fd, "../etc", HOST_USE_SWAP, "x", &uses, &n_added, &allocated), 0);
        ck_assert_uint_eq(n_added, 2);
        close(sysfs_fd);
        free(uses);

        host_free(h);
        rm_tree(root);
}
END_TEST

/* libvirt's choice of a VFIO variant driver: the matching vfio_pci alias with the fewest wildcards. */
START_TEST(test_pick_vfio_variant) {
        static const char aliases[] =
                "alias pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_core\n"
                "alias vfio_pci:v000015B3d*sv*sd*bc*sc*i* generic_vfio_pci\n"
                "alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci\n"
                "alias vfio_pci:v000010DEd00002342sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci\n"
                "garbage line\n";
        char d[HOST_DRIVER_MAX];

        ck_assert_int_eq(host_pick_vfio_variant("pci:v000015B3d0000101Esv000015B3sd00000047bc02sc00i00", aliases, d), 0);
        ck_assert_str_eq(d, "mlx5_vfio_pci");
        ck_assert_int_eq(host_pick_vfio_variant("pci:v000015B3d00001017sv000015B3sd00000047bc02sc00i00", aliases, d), 0);
        ck_assert_str_eq(d, "generic_vfio_pci");
        ck_assert_int_eq(host_pick_vfio_variant("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", aliases, d), 0);
        ck_assert_str_eq(d, "");
        ck_assert_int_eq(host_pick_vfio_variant("usb:v1234", aliases, d), 0);
        ck_assert_str_eq(d, "");
}
END_TEST

/* A uevent as the host's change: only what groupd cares about, only well-formed. */
START_TEST(test_uevent_change) {
        HostChange c;

        ck_assert_int_eq(host_change_from_uevent("remove", "0000:07:00.1", NULL, &c), 0);
        ck_assert_int_eq(c.kind, HOST_CHANGE_REMOVE);
        ck_assert_str_eq(c.address, "0000:07:00.1");
        ck_assert_uint_eq(c.group, UINT_MAX);
        ck_assert_int_eq(host_change_from_uevent("bind", "0000:00:03.0", "e1000e", &c), 0);
        ck_assert_int_eq(c.kind, HOST_CHANGE_BIND);
        ck_assert_str_eq(c.driver, "e1000e");
        ck_assert_int_eq(host_change_from_uevent("unbind", "0000:00:03.0", NULL, &c), 0);
        ck_assert_int_eq(c.kind, HOST_CHANGE_UNBIND);
        ck_assert_int_eq(host_change_from_uevent("add", "00:03.0", NULL, &c), 0);
        ck_assert_str_eq(c.address, "0000:00:03.0");
        /* Not groupd's business, or not well-formed. */
        ck_assert_int_eq(host_change_from_uevent("change", "0000:00:03.0", NULL, &c), -EINVAL);
        ck_assert_int_eq(host_change_from_uevent("online", "0000:00:03.0", NULL, &c), -EINVAL);
        ck_assert_int_eq(host_change_from_uevent("bind", "0000:00:03.0", NULL, &c), -EINVAL);
        ck_assert_int_eq(host_change_from_uevent("bind", "0000:00:03.0", "../x", &c), -EINVAL);
        ck_assert_int_eq(host_change_from_uevent("remove", "not-an-address", NULL, &c), -EINVAL);
        ck_assert_int_eq(host_change_from_uevent(NULL, "0000:00:03.0", NULL, &c), -EINVAL);
}
END_TEST

START_TEST(test_sysfs_bad_files) {
        char *root = make_fake_sysfs();
        Host *h = new_linux_host(root);
        HostGroup g = {};
        HostDevice d;

        xwrite(root, "sys/kernel/iommu_groups/3/reserved_regions", "garbage\n");
        ck_assert_int_eq(host_read_group(h, 3, &g), -EBADMSG);
        xwrite(root, "sys/devices/pci0000:00/0000:00:0c.0/vendor", "0x12345\n");
        ck_assert_int_eq(host_read_device(h, "0000:00:0c.0", &d), -EBADMSG);

        host_free(h);
        rm_tree(root);
}
END_TEST

/* Reads are cached where the kernel never changes a thing; whatever can change is seen at once. */
START_TEST(test_sysfs_cache) {
        char *root = make_fake_sysfs();
        Host *h = new_linux_host(root);
        HostGroup g = {};

        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_str_eq(g.devices[0].driver, "e1000e");
        host_group_done(&g);

        /* Driver, override and type change under us. */
        ck_assert_int_eq(unlinkat(AT_FDCWD, strcat(strcpy((char[PATH_MAX]) {}, root),
                                                   "/sys/devices/pci0000:00/0000:00:03.0/driver"), 0), 0);
        xwrite(root, "sys/devices/pci0000:00/0000:00:03.0/driver_override", "vfio-pci\n");
        xwrite(root, "sys/kernel/iommu_groups/3/type", "identity\n");
        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_str_eq(g.devices[0].driver, "");
        ck_assert_str_eq(g.devices[0].driver_override, "vfio-pci");
        ck_assert_str_eq(g.type, "identity");
        ck_assert_uint_eq(g.n_regions, 2);
        host_group_done(&g);

        /* The device goes and another comes at the same address (a new node): read afresh. A device more
         * in the group: its regions are read again. */
        xmkdir(root, "sys/devices/pci0000:01/0000:00:03.0");
        xwrite(root, "sys/devices/pci0000:01/0000:00:03.0/vendor", "0x10de\n");
        xwrite(root, "sys/devices/pci0000:01/0000:00:03.0/device", "0x1eb8\n");
        xwrite(root, "sys/devices/pci0000:01/0000:00:03.0/class", "0x030200\n");
        /* (Made aside and renamed over the old link: an ext4 inode number freed by an unlink is handed out
         * again at once, which kernfs never does.) */
        xlink(root, "../../../../devices/pci0000:01/0000:00:03.0", "sys/kernel/iommu_groups/3/new");
        ck_assert_int_eq(rename(strcat(strcpy((char[PATH_MAX]) {}, root), "/sys/kernel/iommu_groups/3/new"),
                                strcat(strcpy((char[PATH_MAX]) {}, root),
                                       "/sys/kernel/iommu_groups/3/devices/0000:00:03.0")), 0);
        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_uint_eq(g.n_devices, 1);
        ck_assert_uint_eq(g.devices[0].vendor, 0x10de);
        ck_assert_uint_eq(g.devices[0].class_code, 0x030200);
        ck_assert_str_eq(g.devices[0].driver_override, "");
        host_group_done(&g);

        xwrite(root, "sys/kernel/iommu_groups/3/reserved_regions", "0x00000000fee00000 0x00000000feefffff msi\n");
        fake_device(root, "0000:00:03.1", "0x8086\n", "0x10d3\n", "0x020000\n", NULL, "(null)\n", 3);
        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_uint_eq(g.n_devices, 2);
        ck_assert_uint_eq(g.n_regions, 1);
        ck_assert_str_eq(g.devices[1].address, "0000:00:03.1");
        host_group_done(&g);

        /* A device vanishes after it was cached. */
        ck_assert_int_eq(rename(strcat(strcpy((char[PATH_MAX]) {}, root), "/sys/devices/pci0000:00/0000:00:03.1"),
                                strcat(strcpy((char[PATH_MAX]) {}, root), "/sys/devices/gone")), 0);
        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_uint_eq(g.n_devices, 1);
        ck_assert_str_eq(g.devices[0].address, "0000:00:03.0");
        host_group_done(&g);

        host_free(h);
        rm_tree(root);
}
END_TEST

START_TEST(test_linux_no_iommu) {
        char *root = make_tmpdir();
        char sys[PATH_MAX], dev[PATH_MAX];
        HostLinuxConfig cfg = { .sysfs_root = sys, .dev_root = dev };
        Host *h = NULL;

        snprintf(sys, sizeof sys, "%s/sys", root);
        snprintf(dev, sizeof dev, "%s/dev", root);
        xmkdir(root, "sys/kernel");
        xmkdir(root, "dev");
        ck_assert_int_eq(host_new_linux(&cfg, &h), -ENOENT);
        ck_assert_ptr_null(h);

        /* An empty group directory is not an error (the kernel makes it even without an IOMMU). */
        xmkdir(root, "sys/kernel/iommu_groups");
        ck_assert_int_eq(host_new_linux(&cfg, &h), 0);
        h = host_free(h);

        snprintf(dev, sizeof dev, "%s/nonexistent", root);
        ck_assert_int_eq(host_new_linux(&cfg, &h), -ENOENT);
        rm_tree(root);
}
END_TEST

START_TEST(test_linux_writes) {
        char *root = make_fake_sysfs();
        Host *h = new_linux_host(root);
        int fd = -EBADF;

        ck_assert_int_eq(host_device_set_override(h, "0000:00:03.0", "vfio-pci"), 0);
        assert_file(root, "sys/devices/pci0000:00/0000:00:03.0/driver_override", "vfio-pci");
        /* sysfs replaces the value on each write; a regular file needs emptying first to show it. */
        xwrite(root, "sys/devices/pci0000:00/0000:00:07.1/driver_override", "");
        ck_assert_int_eq(host_device_set_override(h, "0000:00:07.1", NULL), 0);
        assert_file(root, "sys/devices/pci0000:00/0000:00:07.1/driver_override", "\n");
        ck_assert_int_eq(host_device_set_override(h, "0000:00:09.0", "vfio-pci"), -ENOENT);
        ck_assert_int_eq(host_device_set_override(h, "0000:00:03.0", "../x"), -EINVAL);

        ck_assert_int_eq(host_device_unbind(h, "0000:00:07.1"), 0);
        assert_file(root, "sys/bus/pci/drivers/e1000/unbind", "0000:00:07.1");
        ck_assert_int_eq(host_device_unbind(h, "0000:00:07.0"), 0); /* no driver */
        ck_assert_int_eq(host_device_unbind(h, "0000:00:09.0"), -ENOENT);

        ck_assert_int_eq(host_device_bind(h, "0000:00:07.0", "e1000e"), 0);
        assert_file(root, "sys/bus/pci/drivers/e1000e/bind", "0000:00:07.0");
        ck_assert_int_eq(host_device_bind(h, "0000:00:07.0", "vfio-pci"), -ENOENT); /* not loaded */

        ck_assert_int_eq(host_device_probe(h, "0000:00:0c.0"), 0);
        assert_file(root, "sys/bus/pci/drivers_probe", "0000:00:0c.0");

        /* No /dev/vfio here. */
        ck_assert_int_eq(host_open_container(h, &fd), -ENOENT);
        ck_assert_int_eq(host_open_group(h, 3, &fd), -ENOENT);
        ck_assert_int_eq(fd, -EBADF);

        host_free(h);
        rm_tree(root);
}
END_TEST

/* While a driver operation is under way on a device, the kernel holds the device's lock, and reading its
 * driver_override waits for it (an unbind from vfio-pci lasts as long as a VMM keeps the device open). The
 * readers must not touch driver_override of a busy device. A FIFO stands in for the locked attribute: an
 * open for reading blocks until a writer comes, which never does. */
START_TEST(test_linux_busy_reads) {
        char *root = make_fake_sysfs();
        Host *h = new_linux_host(root);
        char p[PATH_MAX];
        HostGroup g = {};
        HostDevice d;

        ck_assert_int_eq(host_device_set_override(h, "0000:00:03.0", "vfio-pci"), 0);
        snprintf(p, sizeof p, "%s/sys/devices/pci0000:00/0000:00:03.0/driver_override", root);
        ck_assert_int_eq(unlink(p), 0);
        ck_assert_int_eq(mkfifo(p, 0600), 0);

        ck_assert_int_eq(host_busy_begin(&h->busy, "0000:00:03.0"), 0);
        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_uint_eq(g.n_devices, 1);
        ck_assert_str_eq(g.devices[0].driver_override, "vfio-pci");   /* what this host wrote */
        ck_assert_str_eq(g.devices[0].driver, "e1000e");              /* the link needs no lock */
        host_group_done(&g);
        ck_assert_int_eq(host_read_device(h, "0000:00:03.0", &d), 0);
        ck_assert_str_eq(d.driver_override, "vfio-pci");
        ck_assert_uint_eq(d.group, 3);
        host_busy_end(&h->busy, "0000:00:03.0");

        /* Not busy any more: read from the file again. */
        ck_assert_int_eq(unlink(p), 0);
        xwrite(root, "sys/devices/pci0000:00/0000:00:03.0/driver_override", "(null)\n");
        ck_assert_int_eq(host_read_device(h, "0000:00:03.0", &d), 0);
        ck_assert_str_eq(d.driver_override, "");

        /* A cleared override is reported as none while busy, and a device never written as none. */
        ck_assert_int_eq(host_device_set_override(h, "0000:00:03.0", NULL), 0);
        ck_assert_int_eq(unlink(p), 0);
        ck_assert_int_eq(mkfifo(p, 0600), 0);
        ck_assert_int_eq(host_busy_begin(&h->busy, "0000:00:03.0"), 0);
        ck_assert_int_eq(host_read_device(h, "0000:00:03.0", &d), 0);
        ck_assert_str_eq(d.driver_override, "");
        host_busy_end(&h->busy, "0000:00:03.0");

        host_free(h);
        rm_tree(root);
}
END_TEST

/* Discovery must be fast: 4096 groups of two devices each. The bound here is loose (sanitizers,
 * valgrind); the benchmark holds the real one. */
START_TEST(test_sysfs_many_groups) {
        char *root = make_tmpdir();
        char p[PATH_MAX], a[HOST_ADDR_MAX];
        Host *h;
        unsigned *ids = NULL;
        size_t n = 0, n_devices = 0;
        double t0, t1;

        xmkdir(root, "dev");
        xmkdir(root, "sys/bus/pci/devices");
        for (unsigned i = 0; i < 4096; i++) {
                snprintf(p, sizeof p, "sys/kernel/iommu_groups/%u/devices", i);
                xmkdir(root, p);
                snprintf(p, sizeof p, "sys/kernel/iommu_groups/%u/type", i);
                xwrite(root, p, "DMA-FQ\n");
                snprintf(p, sizeof p, "sys/kernel/iommu_groups/%u/reserved_regions", i);
                xwrite(root, p, "0x00000000fee00000 0x00000000feefffff msi\n");
                for (unsigned f = 0; f < 2; f++) {
                        snprintf(a, sizeof a, "%04x:%02x:00.%u", i >> 8, i & 0xff, f);
                        fake_device(root, a, "0x8086\n", "0x10d3\n", "0x020000\n", f ? "e1000e" : NULL,
                                    "(null)\n", i);
                }
        }

        h = new_linux_host(root);
        for (int pass = 0; pass < 2; pass++) {
                n_devices = 0;
                t0 = now_ms();
                ck_assert_int_eq(host_list_groups(h, &ids, &n), 0);
                for (size_t i = 0; i < n; i++) {
                        HostGroup g = {};
                        ck_assert_int_eq(host_read_group(h, ids[i], &g), 0);
                        ck_assert_uint_eq(g.n_devices, 2);
                        ck_assert_uint_eq(g.n_regions, 1);
                        ck_assert_str_eq(g.devices[1].driver, "e1000e");
                        n_devices += g.n_devices;
                        host_group_done(&g);
                }
                t1 = now_ms();
                free(ids);
                ck_assert_uint_eq(n, 4096);
                ck_assert_uint_eq(n_devices, 8192);
                fprintf(stderr, "discovery of 4096 groups x 2 devices, %s: %.1f ms\n",
                        pass == 0 ? "first" : "again", t1 - t0);
                ck_assert_double_lt(t1 - t0, 5000.0);
        }

        host_free(h);
        rm_tree(root);
}
END_TEST

/* Trees captured from real kernels in qemu by the real-kernel tier (tests/vm/run.sh --capture tests/data):
 * Debian's 6.1 and 6.12 with qemu's VT-d and AMD-Vi, the rig's device set. The same reading code the
 * daemon runs parses them, and must see what the kernel made. */
static bool region_is(const HostGroup *g, size_t i, uint64_t start, uint64_t end, const char *type) {
        return i < g->n_regions && g->regions[i].start == start && g->regions[i].end == end &&
                streq(g->regions[i].type, type);
}

START_TEST(test_sysfs_captured) {
        static const char *const captures[] = { "6.1-intel", "6.1-amd", "6.12-intel", "6.12-amd" };

        for (size_t i = 0; i < ELEMENTSOF(captures); i++) {
                char sys[PATH_MAX], dev[PATH_MAX];
                HostLinuxConfig cfg = { .sysfs_root = sys, .dev_root = dev };
                bool amd = strstr(captures[i], "amd");
                HostGroup g = {};
                HostDevice d;
                Host *h = NULL;
                unsigned *ids = NULL;
                size_t n = 0;

                char *root = make_tmpdir(), cmd[PATH_MAX * 2 + 64];

                /* Kept as tarballs: sysfs links go round in circles, which make dist would follow. */
                snprintf(cmd, sizeof cmd, "tar -xzf '%s/tests/data/sysfs-%s.tar.gz' -C '%s'", top_srcdir(),
                         captures[i], root);
                ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
                snprintf(sys, sizeof sys, "%s", root);
                snprintf(dev, sizeof dev, "%s", sys);
                ck_assert_msg(host_new_linux(&cfg, &h) == 0, "cannot read %s", sys);
                ck_assert_int_eq(host_list_groups(h, &ids, &n), 0);
                ck_assert_msg(n == 10, "%s: %zu groups, expected 10", sys, n);
                for (size_t k = 0; k < n; k++)
                        ck_assert_uint_eq(ids[k], k);

                /* Group 3: the e1000e at 00:03.0, alone. */
                ck_assert_int_eq(host_read_group(h, 3, &g), 0);
                ck_assert_uint_eq(g.n_devices, 1);
                ck_assert_str_eq(g.devices[0].address, "0000:00:03.0");
                ck_assert_str_eq(g.devices[0].driver, "e1000e");
                ck_assert_str_eq(g.devices[0].driver_override, "");
                ck_assert_uint_eq(g.devices[0].vendor, 0x8086);
                ck_assert_uint_eq(g.devices[0].device, 0x10d3);
                ck_assert_uint_eq(g.devices[0].class_code, 0x020000);
                ck_assert_uint_eq(g.devices[0].group, 3);
                /* Intel's default domain is lazy (DMA-FQ), AMD's strict here; the MSI window is reserved on
                 * both, and AMD-Vi also reserves the HyperTransport range. */
                ck_assert_str_eq(g.type, amd ? "DMA" : "DMA-FQ");
                ck_assert_uint_eq(g.n_regions, amd ? 2 : 1);
                ck_assert(region_is(&g, 0, 0xfee00000, 0xfeefffff, "msi"));
                if (amd)
                        ck_assert(region_is(&g, 1, 0xfd00000000, 0xffffffffff, "reserved"));
                host_group_done(&g);

                /* Group 6: the multifunction slot, edu without a driver and e1000 on 06.1: not viable. */
                ck_assert_int_eq(host_read_group(h, 6, &g), 0);
                ck_assert_uint_eq(g.n_devices, 2);
                ck_assert_str_eq(g.devices[0].address, "0000:00:06.0");
                ck_assert_str_eq(g.devices[0].driver, "");
                ck_assert_uint_eq(g.devices[0].vendor, 0x1234);
                ck_assert_uint_eq(g.devices[0].device, 0x11e8);
                ck_assert_str_eq(g.devices[1].address, "0000:00:06.1");
                ck_assert_str_eq(g.devices[1].driver, "e1000");
                ck_assert_uint_eq(g.devices[1].vendor, 0x8086);
                ck_assert_uint_eq(g.devices[1].device, 0x100e);
                ck_assert(host_driver_is_vfio_safe(g.devices[0].driver));
                ck_assert(!host_driver_is_vfio_safe(g.devices[1].driver));
                host_group_done(&g);

                /* Group 7: the q35 chipset functions at 1f, three devices. */
                ck_assert_int_eq(host_read_group(h, 7, &g), 0);
                ck_assert_uint_eq(g.n_devices, 3);
                ck_assert_str_eq(g.devices[0].address, "0000:00:1f.0");
                ck_assert_str_eq(g.devices[1].address, "0000:00:1f.2");
                ck_assert_str_eq(g.devices[2].address, "0000:00:1f.3");
                /* VT-d maps the first 16 MiB one to one for the LPC bridge (ISA DMA), relaxable. */
                if (!amd) {
                        ck_assert_uint_eq(g.n_regions, 2);
                        ck_assert(region_is(&g, 0, 0, 0xffffff, "direct-relaxable"));
                        ck_assert(region_is(&g, 1, 0xfee00000, 0xfeefffff, "msi"));
                }
                host_group_done(&g);

                /* Root ports on pcieport (safe for VFIO), and the devices behind them in their own groups. */
                ck_assert_int_eq(host_read_device(h, "0000:00:04.0", &d), 0);
                ck_assert_str_eq(d.driver, "pcieport");
                ck_assert_uint_eq(d.group, 4);
                ck_assert(host_driver_is_vfio_safe(d.driver));
                ck_assert_int_eq(host_read_device(h, "0000:01:00.0", &d), 0);
                ck_assert_str_eq(d.driver, "e1000e");
                ck_assert_uint_eq(d.group, 8);
                ck_assert_int_eq(host_read_device(h, "0000:02:00.0", &d), 0);
                ck_assert_str_eq(d.driver, "");
                ck_assert_uint_eq(d.group, 9);
                ck_assert_uint_eq(d.vendor, 0x1234);
                ck_assert_int_eq(host_read_device(h, "0000:00:07.0", &d), -ENOENT);

                for (size_t k = 0; k < n; k++) {
                        ck_assert_int_eq(host_read_group(h, ids[k], &g), 0);
                        ck_assert_uint_gt(g.n_devices, 0);
                        bool msi = false;
                        for (size_t r = 0; r < g.n_regions; r++)
                                msi = msi || region_is(&g, r, 0xfee00000, 0xfeefffff, "msi");
                        ck_assert_msg(msi, "%s: group %u has no MSI window", sys, ids[k]);
                        for (size_t m = 0; m < g.n_devices; m++)
                                ck_assert_uint_eq(g.devices[m].group, ids[k]);
                        host_group_done(&g);
                }
                free(ids);
                host_free(h);
                rm_tree(root);
        }
}
END_TEST

/* ---------------------------------------------------------------- topology */

START_TEST(test_topology_default) {
        SimTopology *t = NULL;
        const SimTopoDevice *d;
        const SimTopoGroup *g;
        char *error = NULL;

        ck_assert_int_eq(sim_topology_parse(sim_topology_default_text(), &t, &error), 0);
        ck_assert_ptr_null(error);
        ck_assert(!t->cdev);      /* Debian's kernels: no iommufd, no device cdevs */
        ck_assert_uint_eq(t->n_groups, 8);
        ck_assert_uint_eq(t->n_devices, 10);
        for (unsigned i = 0; i < 8; i++) {
                g = sim_topology_find_group(t, i);
                ck_assert_ptr_nonnull(g);
                ck_assert_str_eq(g->type, "DMA-FQ");
                ck_assert_uint_eq(g->n_regions, 1);
                ck_assert_uint_eq(g->regions[0].start, 0xfee00000);
                ck_assert_uint_eq(g->regions[0].end, 0xfeefffff);
                ck_assert_str_eq(g->regions[0].type, "msi");
        }
        ck_assert_ptr_null(sim_topology_find_group(t, 8));
        ck_assert_uint_eq(sim_topology_find_group(t, 1)->n_devices, 2);
        ck_assert_uint_eq(sim_topology_find_group(t, 3)->n_devices, 2);

        d = sim_topology_find_device(t, "0000:01:00.1");
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(d->vendor, 0x10de);
        ck_assert_uint_eq(d->device, 0x10fa);
        ck_assert_uint_eq(d->class_code, 0x040300);
        ck_assert_str_eq(d->native, "snd_hda_intel");
        ck_assert_str_eq(d->driver, "snd_hda_intel");
        ck_assert_uint_eq(d->group, 1);
        d = sim_topology_find_device(t, "0000:03:00.0");
        ck_assert_str_eq(d->native, "");
        ck_assert_str_eq(d->driver, "");
        ck_assert_uint_eq(d->class_code, 0x00ff00);
        d = sim_topology_find_device(t, "0000:00:1c.0");
        ck_assert_str_eq(d->native, "pcieport");
        ck_assert_uint_eq(d->group, 4);
        d = sim_topology_find_device(t, "0000:05:00.0");
        ck_assert_str_eq(d->native, "nvme");
        ck_assert_uint_eq(d->class_code, 0x010802);
        ck_assert_ptr_null(sim_topology_find_device(t, "0000:09:00.0"));
        sim_topology_free(t);
}
END_TEST

/* The sample file and the built-in default are the same text. */
START_TEST(test_topology_sample_file) {
        char path[PATH_MAX];
        SimTopology *t = NULL;
        char *error = NULL, *text;

        snprintf(path, sizeof path, "%s/tests/data", top_srcdir());
        text = read_file(path, "sim-default.topo");
        ck_assert_msg(text != NULL, "cannot read %s/sim-default.topo", path);
        ck_assert_str_eq(text, sim_topology_default_text());
        free(text);

        snprintf(path, sizeof path, "%s/tests/data/sim-default.topo", top_srcdir());
        ck_assert_int_eq(sim_topology_load(path, &t, &error), 0);
        ck_assert_uint_eq(t->n_devices, 10);
        sim_topology_free(t);

        ck_assert_int_eq(sim_topology_load("/nonexistent.topo", &t, &error), -ENOENT);
        ck_assert_ptr_nonnull(strstr(error, "/nonexistent.topo"));
        free(error);
}
END_TEST

START_TEST(test_topology_options) {
        SimTopology *t = NULL;
        const SimTopoDevice *d;
        char *error = NULL;

        ck_assert_int_eq(sim_topology_parse("# comment\n"
                                            "cdev   # iommufd and device cdevs\n"
                                            "\n"
                                            "group 10 type=   # old kernel: no type file\n"
                                            "  region 0xa0000 0xbffff direct\t\n"
                                            "  region 0xfee00000 0xfeefffff msi\n"
                                            "device 0a:00.0 vendor=0x8086 device=0x10D3 native=e1000e driver=\n"
                                            "device 0000:0a:00.1 vendor=8086 device=100e driver=vfio-pci\n"
                                            "group 2 type=identity\n"
                                            "device 0000:0b:00.0 vendor=0x1 device=0x2 class=0x0c0330 native=xhci_hcd",
                                            &t, &error), 0);
        ck_assert_uint_eq(t->n_groups, 2);
        ck_assert(t->cdev);
        ck_assert_uint_eq(t->groups[0].id, 2); /* sorted */
        ck_assert_str_eq(t->groups[0].type, "identity");
        ck_assert_str_eq(t->groups[1].type, "");
        ck_assert_uint_eq(t->groups[1].n_regions, 2);
        ck_assert_uint_eq(t->groups[1].regions[0].end, 0xbffff);
        d = sim_topology_find_device(t, "0000:0a:00.0");
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(d->device, 0x10d3);
        ck_assert_str_eq(d->native, "e1000e");
        ck_assert_str_eq(d->driver, "");
        ck_assert_uint_eq(d->group, 10);
        d = sim_topology_find_device(t, "0000:0a:00.1");
        ck_assert_str_eq(d->native, "");
        ck_assert_str_eq(d->driver, "vfio-pci");
        d = sim_topology_find_device(t, "0000:0b:00.0");
        ck_assert_str_eq(d->driver, "xhci_hcd");
        ck_assert_uint_eq(d->group, 2);
        sim_topology_free(t);
}
END_TEST

START_TEST(test_topology_errors) {
        static const struct {
                const char *text, *error;
        } cases[] = {
                { "group 1\nfrobnicate 3\n", "line 2: unknown keyword \"frobnicate\"" },
                { "group 1\ndevice 0000:00:20.0 vendor=0x1 device=0x2\n", "line 2: bad PCI address \"0000:00:20.0\"" },
                { "group 1\ndevice 01:00.0 vendor=0x1 device=0x2\ndevice 0000:01:00.0 vendor=0x1 device=0x2\n",
                  "line 3: duplicate device 0000:01:00.0 (first on line 2)" },
                { "group 1\ndevice 01:00.0 vendor=0x1 device=0x2\n# x\ngroup 1\ndevice 01:00.1 vendor=0x1 device=0x2\n",
                  "line 4: duplicate group 1 (first on line 1)" },
                { "# first\ndevice 01:00.0 vendor=0x1 device=0x2\n", "line 2: device 0000:01:00.0 outside a group" },
                { "region 0x1 0x2 msi\n", "line 1: region outside a group" },
                { "group 1\ngroup 2\ndevice 01:00.0 vendor=0x1 device=0x2\n", "line 1: group 1 has no devices" },
                { "group x\n", "line 1: bad group number \"x\"" },
                { "group 1 kind=DMA\n", "line 1: unknown field \"kind=DMA\"" },
                { "group 1\ndevice 01:00.0 vendor=0x1\n", "line 2: device 0000:01:00.0 needs vendor= and device=" },
                { "group 1\ndevice 01:00.0 vendor=0x10000 device=0x2\n", "line 2: bad vendor id" },
                { "group 1\ndevice 01:00.0 vendor=0x1 device=0x2 native=a/b\n", "line 2: bad driver name" },
                { "group 1\ndevice 01:00.0 vendor=0x1 device=0x2 colour=red\n", "line 2: unknown field \"colour=red\"" },
                { "group 1\nregion 0x2000 0x1000 msi\ndevice 01:00.0 vendor=0x1 device=0x2\n",
                  "line 2: region ends before it starts" },
                { "group 1\nregion 0x2000 msi\n", "line 2: \"region\" wants START END TYPE" },
                { "# nothing\n", "no groups" },
                { "group 1\ncdev\ndevice 01:00.0 vendor=0x1 device=0x2\n",
                  "line 2: \"cdev\" stands alone, before the first group" },
                { "cdev yes\ngroup 1\ndevice 01:00.0 vendor=0x1 device=0x2\n",
                  "line 1: \"cdev\" stands alone, before the first group" },
                { "group 1\niommufd\ndevice 01:00.0 vendor=0x1 device=0x2\n",
                  "line 2: \"iommufd\" stands alone, before the first group" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SimTopology *t = NULL;
                char *error = NULL;

                ck_assert_int_eq(sim_topology_parse(cases[i].text, &t, &error), -EINVAL);
                ck_assert_ptr_null(t);
                ck_assert_ptr_nonnull(error);
                ck_assert_msg(strstr(error, cases[i].error), "case %zu: got \"%s\", wanted \"%s\"", i, error,
                              cases[i].error);
                free(error);
                /* Without a message pointer the error still comes back. */
                ck_assert_int_eq(sim_topology_parse(cases[i].text, &t, NULL), -EINVAL);
        }
}
END_TEST

/* ---------------------------------------------------------------- the simulated host */

static Host *new_sim(const char *state_dir, const char *topology_path) {
        HostSimConfig cfg = { .state_dir = state_dir, .topology_path = topology_path };
        Host *h = NULL;

        ck_assert_int_eq(host_new_sim(&cfg, &h), 0);
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(host_get_kind(h), HOST_SIM);
        return h;
}

static void assert_driver(Host *h, const char *address, const char *driver) {
        HostDevice d;
        ck_assert_int_eq(host_read_device(h, address, &d), 0);
        ck_assert_msg(streq(d.driver, driver), "%s is on \"%s\", expected \"%s\"", address, d.driver, driver);
}

/* As the daemon claims a device: override, unbind, bind. */
static void claim(Host *h, const char *address) {
        HostDevice d;

        ck_assert_int_eq(host_device_set_override(h, address, VFIO_PCI_DRIVER), 0);
        ck_assert_int_eq(host_device_unbind(h, address), 0);
        ck_assert_int_eq(host_device_bind(h, address, VFIO_PCI_DRIVER), 0);
        ck_assert_int_eq(host_read_device(h, address, &d), 0);
        ck_assert_str_eq(d.driver, VFIO_PCI_DRIVER);
        ck_assert_str_eq(d.driver_override, VFIO_PCI_DRIVER);
}

static void assert_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFD);
        ck_assert_int_ge(flags, 0);
        ck_assert(flags & FD_CLOEXEC);
}

/* Sends a request on a sim fd and returns the reply. */
static void request(int fd, const char *req, char *reply, size_t size) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t) strlen(req));
        ck_assert_int_eq(poll(&p, 1, 5000), 1);
        n = recv(fd, reply, size - 1, 0);
        ck_assert_int_gt(n, 0);
        reply[n] = 0;
}

START_TEST(test_sim_discovery) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        unsigned *ids = NULL;
        size_t n = 0;
        HostGroup g = {};
        HostDevice d;

        ck_assert_int_eq(host_list_groups(h, &ids, &n), 0);
        ck_assert_uint_eq(n, 8);
        for (unsigned i = 0; i < 8; i++)
                ck_assert_uint_eq(ids[i], i);
        free(ids);

        ck_assert_int_eq(host_read_group(h, 1, &g), 0);
        ck_assert_str_eq(g.type, "DMA-FQ");
        ck_assert_uint_eq(g.n_regions, 1);
        ck_assert_uint_eq(g.regions[0].start, 0xfee00000);
        ck_assert_uint_eq(g.regions[0].end, 0xfeefffff);
        ck_assert_str_eq(g.regions[0].type, "msi");
        ck_assert_uint_eq(g.n_devices, 2);
        ck_assert_str_eq(g.devices[0].address, "0000:01:00.0");
        ck_assert_uint_eq(g.devices[0].vendor, 0x10de);
        ck_assert_uint_eq(g.devices[0].device, 0x1eb8);
        ck_assert_uint_eq(g.devices[0].class_code, 0x030200);
        ck_assert_str_eq(g.devices[0].driver, "nouveau");
        ck_assert_str_eq(g.devices[0].driver_override, "");
        ck_assert_str_eq(g.devices[1].address, "0000:01:00.1");
        ck_assert_str_eq(g.devices[1].driver, "snd_hda_intel");
        host_group_done(&g);

        ck_assert_int_eq(host_read_group(h, 3, &g), 0);
        ck_assert_uint_eq(g.n_devices, 2);
        ck_assert_str_eq(g.devices[0].driver, "");
        ck_assert_str_eq(g.devices[1].driver, "e1000");
        host_group_done(&g);

        ck_assert_int_eq(host_read_device(h, "0000:00:1c.0", &d), 0);
        ck_assert_uint_eq(d.group, 4);
        ck_assert_str_eq(d.driver, "pcieport");
        ck_assert_uint_eq(d.class_code, 0x060400);
        assert_driver(h, "0000:05:00.0", "nvme");
        assert_driver(h, "0000:06:00.0", "xhci_hcd");
        assert_driver(h, "0000:02:00.0", "e1000e");
        assert_driver(h, "0000:00:00.0", "");
        ck_assert_int_eq(host_read_group(h, 8, &g), -ENOENT);
        ck_assert_int_eq(host_read_device(h, "0000:09:00.0", &d), -ENOENT);

        /* The tree has the kernel's shape, for anyone who looks. */
        assert_file(dir, "sys/bus/pci/devices/0000:02:00.0/vendor", "0x8086\n");
        assert_file(dir, "sys/kernel/iommu_groups/2/devices/0000:02:00.0/class", "0x020000\n");
        assert_file(dir, "sys/kernel/iommu_groups/2/reserved_regions",
                    "0x00000000fee00000 0x00000000feefffff msi\n");
        ck_assert_int_eq(access(strcat(strcpy((char[PATH_MAX]) {}, dir),
                                       "/sys/bus/pci/drivers/vfio-pci"), F_OK), 0);

        host_free(h);
        rm_tree(dir);
}
END_TEST

START_TEST(test_sim_bind_rules) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        HostDevice d;

        /* vfio-pci matches a device only through its override, a host driver only its own devices. */
        ck_assert_int_eq(host_device_unbind(h, "0000:02:00.0"), 0);
        assert_driver(h, "0000:02:00.0", "");
        ck_assert_int_eq(host_device_bind(h, "0000:02:00.0", VFIO_PCI_DRIVER), -ENODEV);
        ck_assert_int_eq(host_device_bind(h, "0000:02:00.0", "nvme"), -ENODEV);
        ck_assert_int_eq(host_device_bind(h, "0000:02:00.0", "pci-stub"), -ENOENT); /* not loaded */
        ck_assert_int_eq(host_device_bind(h, "0000:09:00.0", "e1000e"), -ENODEV);   /* no such device */
        ck_assert_int_eq(host_device_unbind(h, "0000:09:00.0"), -ENOENT);
        ck_assert_int_eq(host_device_probe(h, "0000:09:00.0"), -ENODEV);
        ck_assert_int_eq(host_device_set_override(h, "0000:09:00.0", "vfio-pci"), -ENOENT);

        /* A driver's devices, from its directory. */
        {
                HostDevice *list = NULL;
                size_t n_list = 0;
                ck_assert_int_eq(host_list_driver_devices(h, "e1000", &list, &n_list), 0);
                ck_assert_uint_eq(n_list, 1);
                ck_assert_str_eq(list[0].address, "0000:03:00.1");
                ck_assert_uint_eq(list[0].group, 3);
                free(list);
                ck_assert_int_eq(host_list_driver_devices(h, "no-such-driver", &list, &n_list), 0);
                ck_assert_uint_eq(n_list, 0);
                free(list);
                ck_assert_int_eq(host_list_driver_devices(h, "../x", &list, &n_list), -EINVAL);
        }

        /* vfio-pci refuses a device on its denylist, as the kernel's probe does; a probe leaves it
         * without a driver, and it goes back to its own. */
        ck_assert_int_eq(host_device_set_override(h, "0000:07:00.0", VFIO_PCI_DRIVER), 0);
        ck_assert_int_eq(host_device_unbind(h, "0000:07:00.0"), 0);
        ck_assert_int_eq(host_device_bind(h, "0000:07:00.0", VFIO_PCI_DRIVER), -EBUSY);
        ck_assert_int_eq(host_device_probe(h, "0000:07:00.0"), 0);
        assert_driver(h, "0000:07:00.0", "");
        ck_assert_int_eq(host_device_set_override(h, "0000:07:00.0", ""), 0);
        ck_assert_int_eq(host_device_probe(h, "0000:07:00.0"), 0);
        assert_driver(h, "0000:07:00.0", "qat_c62x");

        /* With the override set, the host driver no longer matches; probing picks vfio-pci. */
        ck_assert_int_eq(host_device_set_override(h, "0000:02:00.0", VFIO_PCI_DRIVER), 0);
        ck_assert_int_eq(host_device_bind(h, "0000:02:00.0", "e1000e"), -ENODEV);
        ck_assert_int_eq(host_device_probe(h, "0000:02:00.0"), 0);
        assert_driver(h, "0000:02:00.0", VFIO_PCI_DRIVER);
        assert_file(dir, "sys/bus/pci/devices/0000:02:00.0/driver_override", "vfio-pci\n");
        ck_assert_int_eq(host_device_bind(h, "0000:02:00.0", VFIO_PCI_DRIVER), -EBUSY);

        /* Back: unbind, clear the override, probe: the host driver returns. */
        ck_assert_int_eq(host_device_unbind(h, "0000:02:00.0"), 0);
        ck_assert_int_eq(host_device_set_override(h, "0000:02:00.0", NULL), 0);
        ck_assert_int_eq(host_read_device(h, "0000:02:00.0", &d), 0);
        ck_assert_str_eq(d.driver_override, "");
        assert_file(dir, "sys/bus/pci/devices/0000:02:00.0/driver_override", "(null)\n");
        ck_assert_int_eq(host_device_probe(h, "0000:02:00.0"), 0);
        assert_driver(h, "0000:02:00.0", "e1000e");
        ck_assert_int_eq(host_device_probe(h, "0000:02:00.0"), 0); /* bound: nothing happens */
        assert_driver(h, "0000:02:00.0", "e1000e");

        /* The same through bind. */
        claim(h, "0000:01:00.1");
        ck_assert_int_eq(host_device_unbind(h, "0000:01:00.1"), 0);
        ck_assert_int_eq(host_device_set_override(h, "0000:01:00.1", ""), 0);
        ck_assert_int_eq(host_device_bind(h, "0000:01:00.1", "snd_hda_intel"), 0);
        assert_driver(h, "0000:01:00.1", "snd_hda_intel");

        /* A device without a host driver stays unbound on probe. */
        ck_assert_int_eq(host_device_probe(h, "0000:03:00.0"), 0);
        assert_driver(h, "0000:03:00.0", "");

        host_free(h);
        rm_tree(dir);
}
END_TEST

START_TEST(test_sim_viability) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        int group = -EBADF, container = -EBADF;
        uint32_t type = 0;
        bool viable = true;

        /* No /dev/vfio/3 while nothing of group 3 is on vfio-pci. */
        ck_assert_int_eq(host_open_group(h, 3, &group), -ENOENT);
        ck_assert_int_eq(host_open_group(h, 42, &group), -ENOENT);

        claim(h, "0000:03:00.0");
        ck_assert_int_eq(host_open_group(h, 3, &group), 0);
        assert_cloexec(group);
        ck_assert_int_eq(host_open_container(h, &container), 0);
        assert_cloexec(container);

        ck_assert_int_eq(host_group_is_viable(h, group, &viable), 0);
        ck_assert(!viable); /* 0000:03:00.1 is still on e1000 */
        ck_assert_int_eq(host_group_set_container(h, group, container), -EPERM);
        ck_assert_int_eq(host_container_set_iommu(h, container, &type), -EINVAL); /* no group in it */

        claim(h, "0000:03:00.1"); /* unbinding e1000 is not held up */
        ck_assert_int_eq(host_group_is_viable(h, group, &viable), 0);
        ck_assert(viable);
        ck_assert_int_eq(host_group_set_container(h, group, container), 0);
        ck_assert_int_eq(host_group_set_container(h, group, container), -EINVAL); /* once */
        ck_assert_int_eq(host_container_set_iommu(h, container, &type), 0);
        ck_assert_uint_eq(type, VFIO_TYPE1v2_IOMMU);
        ck_assert_int_eq(host_container_set_iommu(h, container, &type), -EINVAL); /* set already */
        ck_assert_int_eq(host_group_is_viable(h, group, &viable), 0);
        ck_assert(viable);

        safe_close(group);
        safe_close(container);
        host_free(h);
        rm_tree(dir);
}
END_TEST

START_TEST(test_sim_foreign_fds) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        int group = -EBADF, container = -EBADF, other[2], pipefd[2];
        uint32_t type;
        bool viable;

        claim(h, "0000:02:00.0");
        ck_assert_int_eq(host_open_group(h, 2, &group), 0);
        ck_assert_int_eq(host_open_container(h, &container), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, other), 0);
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);

        /* fds that are no groups or containers of ours. */
        ck_assert_int_eq(host_group_is_viable(h, pipefd[0], &viable), -ENOTTY);
        ck_assert_int_eq(host_group_is_viable(h, other[0], &viable), -ENOTTY);
        ck_assert_int_eq(host_group_is_viable(h, container, &viable), -ENOTTY);
        ck_assert_int_eq(host_group_is_viable(h, -1, &viable), -EBADF);
        ck_assert_int_eq(host_group_set_container(h, group, other[0]), -EINVAL);
        ck_assert_int_eq(host_group_set_container(h, group, pipefd[1]), -EINVAL);
        ck_assert_int_eq(host_group_set_container(h, group, group), -EINVAL);
        ck_assert_int_eq(host_group_set_container(h, other[1], container), -ENOTTY);
        ck_assert_int_eq(host_container_set_iommu(h, group, &type), -EINVAL);
        ck_assert_int_eq(host_container_set_iommu(h, other[0], &type), -EINVAL);

        /* A copy of our fd is our fd. */
        {
                int copy = fcntl(group, F_DUPFD_CLOEXEC, 3);
                ck_assert_int_ge(copy, 0);
                ck_assert_int_eq(host_group_set_container(h, copy, container), 0);
                safe_close(copy);
        }

        close_many(other, 2);
        close_many(pipefd, 2);
        safe_close(group);
        safe_close(container);
        host_free(h);
        rm_tree(dir);
}
END_TEST

START_TEST(test_sim_attached_bind) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        int group = -EBADF, container = -EBADF;

        /* Group 3 with 03:00.1 on vfio-pci and 03:00.0 unbound: viable, attached. */
        claim(h, "0000:03:00.1");
        ck_assert_int_eq(host_open_group(h, 3, &group), 0);
        ck_assert_int_eq(host_open_container(h, &container), 0);
        ck_assert_int_eq(host_group_set_container(h, group, container), 0);

        /* A host driver cannot join a group in a container. */
        ck_assert_int_eq(host_device_set_override(h, "0000:03:00.0", "e1000"), 0);
        ck_assert_int_eq(host_device_bind(h, "0000:03:00.0", "e1000"), -EINVAL);
        ck_assert_int_eq(host_device_probe(h, "0000:03:00.0"), 0); /* as drivers_probe: no error, no driver */
        assert_driver(h, "0000:03:00.0", "");
        /* vfio-pci can. */
        ck_assert_int_eq(host_device_set_override(h, "0000:03:00.0", VFIO_PCI_DRIVER), 0);
        ck_assert_int_eq(host_device_bind(h, "0000:03:00.0", VFIO_PCI_DRIVER), 0);
        ck_assert_int_eq(host_device_unbind(h, "0000:02:00.0"), 0); /* another group: free */

        /* Once the group is closed, the host driver may bind again. */
        safe_close(group);
        ck_assert_int_eq(host_device_set_override(h, "0000:03:00.0", NULL), 0);
        ck_assert_int_eq(host_device_unbind(h, "0000:03:00.0"), 0);
        ck_assert_int_eq(host_device_set_override(h, "0000:03:00.0", "e1000"), 0);
        ck_assert_int_eq(host_device_bind(h, "0000:03:00.0", "e1000"), 0);
        assert_driver(h, "0000:03:00.0", "e1000");

        safe_close(container);
        host_free(h);
        rm_tree(dir);
}
END_TEST

START_TEST(test_sim_open_once) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        int a = -EBADF, b = -EBADF, copy;

        claim(h, "0000:02:00.0");
        ck_assert_int_eq(host_open_group(h, 2, &a), 0);
        ck_assert_int_eq(host_open_group(h, 2, &b), -EBUSY);

        /* Every copy counts: the group stays open while one is left. */
        copy = fcntl(a, F_DUPFD_CLOEXEC, 3);
        ck_assert_int_ge(copy, 0);
        a = safe_close(a);
        ck_assert_int_eq(host_open_group(h, 2, &b), -EBUSY);
        safe_close(copy);

        /* All gone: it opens again, at once. */
        ck_assert_int_eq(host_open_group(h, 2, &b), 0);
        ck_assert_int_eq(host_open_group(h, 2, &a), -EBUSY);
        safe_close(b);

        /* Containers open as often as asked. */
        ck_assert_int_eq(host_open_container(h, &a), 0);
        ck_assert_int_eq(host_open_container(h, &b), 0);
        ck_assert_int_ne(a, b);
        safe_close(a);
        safe_close(b);

        host_free(h);
        rm_tree(dir);
}
END_TEST

typedef struct UnbindJob {
        Host *host;
        const char *address;
        atomic_int done;
        int result;
} UnbindJob;

static void *unbind_thread(void *userdata) {
        UnbindJob *j = userdata;
        j->result = host_device_unbind(j->host, j->address);
        atomic_store(&j->done, 1);
        return NULL;
}

static bool wait_done(atomic_int *done, double ms) {
        double end = now_ms() + ms;
        while (!atomic_load(done)) {
                if (now_ms() > end)
                        return false;
                (void) poll(NULL, 0, 5);
        }
        return true;
}

START_TEST(test_sim_unbind_held_up) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        UnbindJob j = { .host = h, .address = "0000:02:00.0" };
        int group = -EBADF, container = -EBADF;
        pthread_t t;

        claim(h, "0000:02:00.0");
        ck_assert_int_eq(host_open_group(h, 2, &group), 0);
        ck_assert_int_eq(host_open_container(h, &container), 0);
        ck_assert_int_eq(host_group_set_container(h, group, container), 0);

        ck_assert_int_eq(pthread_create(&t, NULL, unbind_thread, &j), 0);
        (void) poll(NULL, 0, 100);
        ck_assert_msg(!atomic_load(&j.done), "unbind went through while the group was open");
        assert_driver(h, "0000:02:00.0", VFIO_PCI_DRIVER);

        /* Other calls go on meanwhile. */
        assert_driver(h, "0000:05:00.0", "nvme");
        ck_assert_int_eq(host_device_unbind(h, "0000:06:00.0"), 0);

        safe_close(group);
        ck_assert_msg(wait_done(&j.done, 5000), "unbind did not finish after the group was closed");
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(j.result, 0);
        assert_driver(h, "0000:02:00.0", "");

        safe_close(container);
        host_free(h);
        rm_tree(dir);
}
END_TEST

/* Freeing the host releases an unbind that waits for ever, instead of hanging. */
START_TEST(test_sim_free_releases_waiters) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        UnbindJob j = { .host = h, .address = "0000:02:00.0" };
        struct pollfd p;
        int group = -EBADF;
        pthread_t t;

        claim(h, "0000:02:00.0");
        ck_assert_int_eq(host_open_group(h, 2, &group), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, unbind_thread, &j), 0);
        (void) poll(NULL, 0, 50);
        ck_assert(!atomic_load(&j.done));

        host_free(h);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(j.result, -ECANCELED);

        /* Our end sees the sim's end go away. */
        p = (struct pollfd) { .fd = group, .events = POLLIN };
        ck_assert_int_eq(poll(&p, 1, 1000), 1);
        ck_assert(p.revents & POLLHUP);
        safe_close(group);
        rm_tree(dir);
}
END_TEST

/* $GROUPD_SIM_UNBIND_WAIT bounds the wait (make check sets it): a held-up unbind fails with ETIMEDOUT once
 * it has waited that long, and changes nothing; a value that is no number of seconds is refused. */
START_TEST(test_sim_unbind_wait_bounded) {
        char *dir = make_tmpdir();
        const char *was = getenv("GROUPD_SIM_UNBIND_WAIT");
        char *saved = was ? strdup(was) : NULL;
        HostSimConfig cfg = { .state_dir = dir };
        Host *h = NULL;
        int group = -EBADF;
        double t0;

        ck_assert_int_eq(setenv("GROUPD_SIM_UNBIND_WAIT", "1x", 1), 0);
        ck_assert_int_eq(host_new_sim(&cfg, &h), -EINVAL);
        ck_assert_int_eq(setenv("GROUPD_SIM_UNBIND_WAIT", "1", 1), 0);
        h = new_sim(dir, NULL);

        claim(h, "0000:02:00.0");
        ck_assert_int_eq(host_open_group(h, 2, &group), 0);
        t0 = now_ms();
        ck_assert_int_eq(host_device_unbind(h, "0000:02:00.0"), -ETIMEDOUT);
        ck_assert_msg(now_ms() - t0 >= 990, "gave up after %.0f ms, not 1 s", now_ms() - t0);
        assert_driver(h, "0000:02:00.0", VFIO_PCI_DRIVER);

        /* Closed, the same unbind goes through. */
        safe_close(group);
        ck_assert_int_eq(host_device_unbind(h, "0000:02:00.0"), 0);
        assert_driver(h, "0000:02:00.0", "");

        host_free(h);
        if (saved)
                (void) setenv("GROUPD_SIM_UNBIND_WAIT", saved, 1);
        else
                (void) unsetenv("GROUPD_SIM_UNBIND_WAIT");
        free(saved);
        rm_tree(dir);
}
END_TEST

START_TEST(test_sim_responder) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        int group = -EBADF, container = -EBADF;
        char reply[512];
        uint32_t type;
        double end;

        claim(h, "0000:03:00.0");
        claim(h, "0000:03:00.1");
        ck_assert_int_eq(host_open_group(h, 3, &group), 0);
        ck_assert_int_eq(host_open_container(h, &container), 0);
        ck_assert_ptr_null(read_file(dir, "sim/usage-3"));

        request(group, "STATUS", reply, sizeof reply);
        ck_assert_str_eq(reply, "group=3 viable=1 container=no devices=0000:03:00.0,0000:03:00.1");
        assert_file(dir, "sim/usage-3", "1\n");

        request(container, "STATUS", reply, sizeof reply);
        ck_assert_str_eq(reply, "container iommu=none groups=");
        ck_assert_int_eq(host_group_set_container(h, group, container), 0);
        ck_assert_int_eq(host_container_set_iommu(h, container, &type), 0);
        request(container, "STATUS\n", reply, sizeof reply);
        ck_assert_str_eq(reply, "container iommu=type1v2 groups=3");

        request(group, "STATUS\n", reply, sizeof reply);
        ck_assert_str_eq(reply, "group=3 viable=1 container=yes devices=0000:03:00.0,0000:03:00.1");
        request(group, "DEVICE 0000:03:00.1", reply, sizeof reply);
        ck_assert_str_eq(reply, "device=0000:03:00.1 vendor=0x8086 device=0x100e driver=vfio-pci");
        request(group, "DEVICE 03:00.0", reply, sizeof reply);
        ck_assert_str_eq(reply, "device=0000:03:00.0 vendor=0x1234 device=0x11e8 driver=vfio-pci");
        request(group, "DEVICE 0000:02:00.0", reply, sizeof reply); /* not in this group */
        ck_assert_str_eq(reply, "error=ENODEV");
        request(group, "HELLO", reply, sizeof reply);
        ck_assert_str_eq(reply, "error=EINVAL");
        request(container, "DEVICE 0000:03:00.0", reply, sizeof reply);
        ck_assert_str_eq(reply, "error=EINVAL");
        assert_file(dir, "sim/usage-3", "6\n");

        /* Closing the group takes it out of the container, which loses its IOMMU type. */
        safe_close(group);
        end = now_ms() + 5000;
        do {
                request(container, "STATUS", reply, sizeof reply);
                if (streq(reply, "container iommu=none groups="))
                        break;
                (void) poll(NULL, 0, 5);
        } while (now_ms() < end);
        ck_assert_str_eq(reply, "container iommu=none groups=");

        safe_close(container);
        host_free(h);

        /* The count survives the daemon. */
        h = new_sim(dir, NULL);
        ck_assert_int_eq(host_open_group(h, 3, &group), 0);
        request(group, "STATUS", reply, sizeof reply);
        assert_file(dir, "sim/usage-3", "7\n");
        safe_close(group);
        host_free(h);
        rm_tree(dir);
}
END_TEST

static char *write_topology(const char *dir, const char *name, const char *text) {
        char *path = NULL;
        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        xwrite(dir, name, text);
        return path;
}

START_TEST(test_sim_persistence) {
        char *dir = make_tmpdir(), *tdir = make_tmpdir(), *other, *bad, *bigger, *changed, *same;
        char state[PATH_MAX];
        HostSimConfig cfg = { .state_dir = state };
        Host *h;
        HostDevice d;

        /* state_dir need not exist yet. */
        snprintf(state, sizeof state, "%s/run/groupd/sim", dir);
        h = new_sim(state, NULL);
        claim(h, "0000:02:00.0");
        ck_assert_int_eq(host_device_unbind(h, "0000:01:00.1"), 0);
        host_free(h);

        /* The "kernel" kept its state. */
        h = new_sim(state, NULL);
        ck_assert_int_eq(host_read_device(h, "0000:02:00.0", &d), 0);
        ck_assert_str_eq(d.driver, VFIO_PCI_DRIVER);
        ck_assert_str_eq(d.driver_override, VFIO_PCI_DRIVER);
        assert_driver(h, "0000:01:00.1", "");
        assert_driver(h, "0000:01:00.0", "nouveau");
        /* ...and still knows the native drivers. */
        ck_assert_int_eq(host_device_probe(h, "0000:01:00.1"), 0);
        assert_driver(h, "0000:01:00.1", "snd_hda_intel");
        host_free(h);

        /* The same devices from a file, one with a host driver now (native drivers are no kernel
         * state): fine, and the new driver is loaded. */
        {
                char *text = NULL;
                const char *line = "device 0000:03:00.0 vendor=0x1234 device=0x11e8 class=0x00ff00\n";
                char *p;

                ck_assert_int_ge(asprintf(&text, "%s", sim_topology_default_text()), 0);
                p = strstr(text, line);
                ck_assert_ptr_nonnull(p);
                *(p + strlen(line) - 1) = 0;
                ck_assert_int_ge(asprintf(&p, "%s native=pci-stub\n%s", text,
                                          strstr(sim_topology_default_text(), line) + strlen(line)), 0);
                same = write_topology(tdir, "same.topo", p);
                free(p);
                free(text);
        }
        h = new_sim(state, same);
        assert_driver(h, "0000:03:00.0", "");
        ck_assert_int_eq(host_device_probe(h, "0000:03:00.0"), 0);
        assert_driver(h, "0000:03:00.0", "pci-stub");
        assert_driver(h, "0000:02:00.0", VFIO_PCI_DRIVER);
        host_free(h);

        /* Other topologies do not fit the tree. */
        other = write_topology(tdir, "other.topo",
                               "group 0\ndevice 0000:00:00.0 vendor=0x8086 device=0x29c0 class=0x060000\n");
        h = NULL;
        cfg.topology_path = other;
        ck_assert_int_eq(host_new_sim(&cfg, &h), -EEXIST);
        ck_assert_ptr_null(h);

        /* One device more. */
        {
                char *text = NULL;
                ck_assert_int_ge(asprintf(&text, "%s%s", sim_topology_default_text(),
                                          "group 9\ndevice 0000:09:00.0 vendor=0x1 device=0x2\n"), 0);
                bigger = write_topology(tdir, "bigger.topo", text);
                free(text);
        }
        cfg.topology_path = bigger;
        ck_assert_int_eq(host_new_sim(&cfg, &h), -EEXIST);

        /* The same devices, one with another device id. */
        {
                char *text = strdup(sim_topology_default_text());
                char *p = strstr(text, "device=0x10d3");
                memcpy(p, "device=0x10d4", strlen("device=0x10d4"));
                changed = write_topology(tdir, "changed.topo", text);
                free(text);
        }
        cfg.topology_path = changed;
        ck_assert_int_eq(host_new_sim(&cfg, &h), -EEXIST);

        /* A broken topology file. */
        bad = write_topology(tdir, "bad.topo", "group 1\nwibble\n");
        cfg.topology_path = bad;
        ck_assert_int_eq(host_new_sim(&cfg, &h), -EINVAL);
        cfg.topology_path = "/nonexistent.topo";
        ck_assert_int_eq(host_new_sim(&cfg, &h), -ENOENT);

        /* A fresh directory takes any topology. */
        snprintf(state, sizeof state, "%s/other", dir);
        cfg.topology_path = other;
        ck_assert_int_eq(host_new_sim(&cfg, &h), 0);
        assert_driver(h, "0000:00:00.0", "");
        host_free(h);

        free(same);
        free(other);
        free(bad);
        free(bigger);
        free(changed);
        rm_tree(tdir);
        rm_tree(dir);
}
END_TEST

/* A topology of the sim's own: a group without type, a device bound at start to something other than
 * its native driver. */
START_TEST(test_sim_custom_topology) {
        char *dir = make_tmpdir(), *path;
        char state[PATH_MAX];
        HostGroup g = {};
        Host *h;

        path = write_topology(dir, "t.topo",
                              "group 5 type=\n"
                              "region 0xa0000 0xbffff direct\n"
                              "region 0xfee00000 0xfeefffff msi\n"
                              "device 0000:05:00.0 vendor=0x8086 device=0x10d3 native=e1000e driver=vfio-pci\n"
                              "device 0000:05:00.1 vendor=0x8086 device=0x10d3 native=e1000e driver=\n");
        snprintf(state, sizeof state, "%s/state", dir);
        h = new_sim(state, path);

        ck_assert_int_eq(host_read_group(h, 5, &g), 0);
        ck_assert_str_eq(g.type, "");
        ck_assert_uint_eq(g.n_regions, 2);
        ck_assert_uint_eq(g.regions[0].start, 0xa0000);
        ck_assert_str_eq(g.regions[0].type, "direct");
        ck_assert_str_eq(g.devices[0].driver, VFIO_PCI_DRIVER);
        ck_assert_str_eq(g.devices[1].driver, "");
        host_group_done(&g);

        ck_assert_int_eq(host_device_probe(h, "0000:05:00.1"), 0);
        assert_driver(h, "0000:05:00.1", "e1000e");

        host_free(h);
        free(path);
        rm_tree(dir);
}
END_TEST

static Suite *host_suite(void) {
        Suite *s = suite_create("host");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_pci_address);
        tcase_add_test(tc, test_kind_strings);
        tcase_add_test(tc, test_vfio_safe);
        tcase_add_test(tc, test_reserved_regions);
        suite_add_tcase(s, tc);

        tc = tcase_create("sysfs");
        tcase_add_test(tc, test_sysfs_read);
        tcase_add_test(tc, test_sysfs_bad_files);
        tcase_add_test(tc, test_sysfs_device_truth);
        tcase_add_test(tc, test_pick_vfio_variant);
        tcase_add_test(tc, test_uevent_change);
        tcase_add_test(tc, test_sysfs_cache);
        tcase_add_test(tc, test_sysfs_many_groups);
        tcase_add_test(tc, test_sysfs_captured);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        tc = tcase_create("linux");
        tcase_add_test(tc, test_linux_no_iommu);
        tcase_add_test(tc, test_linux_writes);
        tcase_add_test(tc, test_linux_busy_reads);
        suite_add_tcase(s, tc);

        tc = tcase_create("topology");
        tcase_add_test(tc, test_topology_default);
        tcase_add_test(tc, test_topology_sample_file);
        tcase_add_test(tc, test_topology_options);
        tcase_add_test(tc, test_topology_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("sim");
        tcase_add_test(tc, test_sim_discovery);
        tcase_add_test(tc, test_sim_bind_rules);
        tcase_add_test(tc, test_sim_viability);
        tcase_add_test(tc, test_sim_foreign_fds);
        tcase_add_test(tc, test_sim_attached_bind);
        tcase_add_test(tc, test_sim_open_once);
        tcase_add_test(tc, test_sim_unbind_held_up);
        tcase_add_test(tc, test_sim_free_releases_waiters);
        tcase_add_test(tc, test_sim_unbind_wait_bounded);
        tcase_add_test(tc, test_sim_responder);
        tcase_add_test(tc, test_sim_persistence);
        tcase_add_test(tc, test_sim_custom_topology);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(host_suite(), NULL);
}
