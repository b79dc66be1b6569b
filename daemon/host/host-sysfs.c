/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Reading the kernel's view of IOMMU groups and PCI devices from a sysfs root, for both backends:
 *
 *   kernel/iommu_groups/N/devices/ADDR   -> ../../../../devices/pci0000:00/ADDR
 *   kernel/iommu_groups/N/type           "DMA-FQ" (absent on old kernels)
 *   kernel/iommu_groups/N/reserved_regions
 *                                        "0x00000000fee00000 0x00000000feefffff msi" lines
 *   bus/pci/devices/ADDR                 -> ../../../devices/pci0000:00/ADDR
 *   ADDR/{vendor,device,class}           "0x8086", "0x10d3", "0x020000"
 *   ADDR/driver                          -> ../../../bus/pci/drivers/NAME (absent when unbound)
 *   ADDR/driver_override                 "(null)" when unset
 *   ADDR/iommu_group                     -> ../../../kernel/iommu_groups/N
 *
 * Discovery of thousands of groups is on the daemon's start-up path and is benchmarked. An open() costs
 * microseconds (most of it the path walk), so: each file is read with a single read() (sysfs hands an
 * attribute over in one piece, and a short read of a regular file - the sim's tree, captured trees - is
 * its end); what cannot change while a device exists (vendor, device, class, where its directory is) and
 * a group's reserved regions while its devices stay the same are cached in a SysfsCache; and later reads
 * go to the device's directory directly rather than through its symlink. A group of two devices then
 * costs four opens (its devices directory, type, each device's driver_override) and two readlinks (each
 * device's driver); read the first time, eleven opens.
 */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host-internal.h"
#include "parse-util.h"

#define SYSFS_LINE_MAX 128
#define SYSFS_REGIONS_MAX 4096

bool sysfs_name_is_valid(const char *s, size_t max) {
        size_t l;

        if (isempty(s))
                return false;
        l = strnlen(s, max);
        if (l >= max)
                return false;
        if (streq(s, ".") || streq(s, ".."))
                return false;
        return !strchr(s, '/');
}

/* Reads a small file with one read(). Returns its length, or negative errno. The text is NUL-terminated
 * and cut at the first newline when one_line is set. */
static ssize_t read_small_at(int dir_fd, const char *path, char *buf, size_t size, bool one_line) {
        ssize_t n;
        int fd;

        fd = openat(dir_fd, path, O_RDONLY|O_CLOEXEC|O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                n = -errno;
        safe_close(fd);
        if (n < 0)
                return n;
        buf[n] = 0;
        if (one_line) {
                char *nl = strchr(buf, '\n');
                if (nl) {
                        *nl = 0;
                        n = nl - buf;
                }
        }
        return n;
}

/* Reads a device's driver_override (dir_fd/path) as read_small_at() does, unless an operation on the device
 * is under way (see HostBusy): then the text is what this host last wrote ("(null)" when cleared or
 * unknown), without touching the file. busy may be NULL. */
static ssize_t read_override_at(HostBusy *busy, const char *address, int dir_fd, const char *path, char *buf,
                                size_t size) {
        HostBusyEntry *e;
        ssize_t n;

        if (!busy)
                return read_small_at(dir_fd, path, buf, size, true);

        (void) pthread_mutex_lock(&busy->lock);
        e = host_busy_entry(busy, address, false);
        if (e && e->busy > 0) {
                (void) snprintf(buf, size, "%s", e->override_known && !isempty(e->override) ? e->override : "(null)");
                n = (ssize_t) strlen(buf);
        } else
                n = read_small_at(dir_fd, path, buf, size, true);
        (void) pthread_mutex_unlock(&busy->lock);
        return n;
}

/* A hex attribute (vendor, device, class). A missing file reads as 0: devices that are no PCI devices
 * have none. The caller tells a vanished device from that. */
static int read_hex_attr(int dev_fd, const char *name, uint64_t max, uint64_t *ret) {
        char buf[SYSFS_LINE_MAX];
        ssize_t n;

        n = read_small_at(dev_fd, name, buf, sizeof buf, true);
        if (n == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (n < 0)
                return (int) n;
        return parse_hex_u64(buf, max, ret) < 0 ? -EBADMSG : 0;
}

static uint8_t header_from_class(uint32_t class_code) {
        switch (class_code >> 8) {
        case 0x0604: /* PCI-to-PCI bridge (and PCIe ports) */
        case 0x0609: /* semi-transparent PCI-to-PCI bridge */
                return HOST_HEADER_BRIDGE;
        case 0x0607: /* CardBus bridge */
                return HOST_HEADER_CARDBUS;
        default:
                return HOST_HEADER_NORMAL;
        }
}

/* The header type from config space (byte 0x0e; readable by anyone, as the first 64 bytes are), or from
 * the class when there is no config file to read (captured trees). */
static uint8_t read_header_type(int dir_fd, const char *dir, uint32_t class_code) {
        char path[SYSFS_LINE_MAX + 16];
        uint8_t b;
        ssize_t n;
        int fd;

        (void) snprintf(path, sizeof path, "%s%sconfig", dir, *dir ? "/" : "");
        fd = openat(dir_fd, path, O_RDONLY|O_CLOEXEC|O_NOCTTY);
        if (fd < 0)
                return header_from_class(class_code);
        n = pread(fd, &b, 1, 0x0e);
        safe_close(fd);
        if (n != 1)
                return header_from_class(class_code);
        return b & 0x7f;
}

/* ADDR/boot_vga: only display controllers have one. */
static bool read_boot_vga(int dir_fd, const char *dir, uint32_t class_code) {
        char path[SYSFS_LINE_MAX + 16], buf[8];

        if ((class_code >> 8) != 0x0300)
                return false;
        (void) snprintf(path, sizeof path, "%s%sboot_vga", dir, *dir ? "/" : "");
        return read_small_at(dir_fd, path, buf, sizeof buf, true) > 0 && streq(buf, "1");
}

/* Is the device's driver a VFIO one: vfio-pci, or a variant driver, whose devices show ADDR/vfio-dev/. */
static bool read_vfio_driver(int dir_fd, const char *dir, const char *driver) {
        char path[SYSFS_LINE_MAX + 16];

        if (isempty(driver))
                return false;
        if (streq(driver, VFIO_PCI_DRIVER))
                return true;
        (void) snprintf(path, sizeof path, "%s%svfio-dev", dir, *dir ? "/" : "");
        return faccessat(dir_fd, path, F_OK, 0) >= 0;
}

bool sysfs_vfio_denylisted_id(uint16_t vendor, uint16_t device) {
        /* drivers/vfio/pci/vfio_pci.c, vfio_pci_dev_in_denylist(). */
        static const uint16_t intel_qat[] = { 0x0435, 0x0443, 0x37c8, 0x37c9, 0x19e2, 0x19e3 };

        if (vendor != 0x8086)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(intel_qat); i++)
                if (device == intel_qat[i])
                        return true;
        return false;
}

/* The last component of a symlink's target: a driver's or a group's name. -ENOENT when there is no
 * link. */
static int read_link_name_at(int dir_fd, const char *path, char *ret, size_t size) {
        char buf[PATH_MAX];
        const char *name;
        ssize_t n;

        n = readlinkat(dir_fd, path, buf, sizeof buf - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        name = strrchr(buf, '/');
        name = name ? name + 1 : buf;
        if (!sysfs_name_is_valid(name, size))
                return -EBADMSG;
        strcpy(ret, name);
        return 0;
}

static int parse_group_id(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!(*s >= '0' && *s <= '9'))
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != 0 || v >= UINT_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* Fills d from the device directory dev_fd (O_PATH), all but address and group. */
static int read_device_attrs(int dev_fd, HostBusy *busy, HostDevice *d) {
        char buf[SYSFS_LINE_MAX];
        uint64_t v;
        ssize_t n;
        int r;

        r = read_hex_attr(dev_fd, "vendor", UINT16_MAX, &v);
        if (r < 0)
                return r;
        d->vendor = (uint16_t) v;
        r = read_hex_attr(dev_fd, "device", UINT16_MAX, &v);
        if (r < 0)
                return r;
        d->device = (uint16_t) v;
        r = read_hex_attr(dev_fd, "class", UINT32_MAX, &v);
        if (r < 0)
                return r;
        d->class_code = (uint32_t) v;

        n = read_override_at(busy, d->address, dev_fd, "driver_override", buf, sizeof buf);
        if (n >= 0 && !streq(buf, "(null)")) {
                if (strlen(buf) >= sizeof d->driver_override)
                        return -EBADMSG;
                strcpy(d->driver_override, buf);
        } else if (n < 0 && n != -ENOENT)
                return (int) n;

        r = read_link_name_at(dev_fd, "driver", d->driver, sizeof d->driver);
        if (r < 0 && r != -ENOENT)
                return r;
        d->header_type = read_header_type(dev_fd, "", d->class_code);
        d->boot_vga = read_boot_vga(dev_fd, "", d->class_code);
        d->vfio_driver = read_vfio_driver(dev_fd, "", d->driver);
        return 0;
}

static int cmp_unsigned(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;
        return x < y ? -1 : x > y;
}

int dir_for_each(int fd, int (*fn)(const struct dirent64 *de, void *userdata), void *userdata) {
        char buf[8192];

        for (;;) {
                ssize_t k = getdents64(fd, buf, sizeof buf);
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                for (ssize_t off = 0; off < k;) {
                        const struct dirent64 *de = (const struct dirent64 *) (buf + off);
                        int r;

                        off += de->d_reclen;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        r = fn(de, userdata);
                        if (r < 0)
                                return r;
                }
        }
}

void *array_grow(void *array, size_t *allocated, size_t n, size_t size, size_t min) {
        size_t a;
        void *q;

        if (n < *allocated)
                return array;
        a = MAX(*allocated * 2, MAX(min, n + 1));
        q = reallocarray(array, a, size);
        if (!q)
                return NULL;
        *allocated = a;
        return q;
}

typedef struct IdList {
        unsigned *ids;
        size_t n, allocated;
} IdList;

static int add_group_id(const struct dirent64 *de, void *userdata) {
        IdList *l = userdata;
        unsigned id;

        if (parse_group_id(de->d_name, &id) < 0)
                return 0;
        if (ARRAY_GROW(l->ids, l->allocated, l->n, 64) < 0)
                return -ENOMEM;
        l->ids[l->n++] = id;
        return 0;
}

int sysfs_list_groups(int sysfs_fd, unsigned **ret_ids, size_t *ret_n) {
        _cleanup_close_ int fd = -EBADF;
        IdList l = {};
        int r;

        fd = openat(sysfs_fd, "kernel/iommu_groups", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = dir_for_each(fd, add_group_id, &l);
        if (r < 0) {
                free(l.ids);
                return r;
        }
        if (l.n > 0)
                qsort(l.ids, l.n, sizeof *l.ids, cmp_unsigned);
        *ret_ids = l.ids;
        *ret_n = l.n;
        return 0;
}

typedef struct DriverDevices {
        int sysfs_fd;
        HostBusy *busy;
        HostDevice *devices;
        size_t n, allocated;
} DriverDevices;

static int add_driver_device(const struct dirent64 *de, void *userdata) {
        DriverDevices *d = userdata;
        char address[HOST_ADDR_MAX];

        /* The driver directory also holds bind, unbind, new_id, module...: only the links named by a PCI
         * address are devices. */
        if (host_parse_pci_address(de->d_name, address) < 0 || !streq(address, de->d_name))
                return 0;
        if (ARRAY_GROW(d->devices, d->allocated, d->n, 16) < 0)
                return -ENOMEM;
        if (sysfs_read_device(d->sysfs_fd, d->busy, address, &d->devices[d->n]) >= 0)
                d->n++; /* else gone meanwhile */
        return 0;
}

int sysfs_list_driver_devices(int sysfs_fd, HostBusy *busy, const char *driver, HostDevice **ret, size_t *ret_n) {
        DriverDevices d = { .sysfs_fd = sysfs_fd, .busy = busy };
        _cleanup_close_ int fd = -EBADF;
        char path[128];
        int r;

        if (!sysfs_name_is_valid(driver, HOST_DRIVER_MAX))
                return -EINVAL;
        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s", driver);
        fd = openat(sysfs_fd, path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0 && errno != ENOENT)
                return -errno;
        /* Without the directory the driver is not loaded: nothing is bound to it. */
        r = fd < 0 ? 0 : dir_for_each(fd, add_driver_device, &d);
        if (r < 0) {
                free(d.devices);
                return r;
        }
        *ret = d.devices;
        *ret_n = d.n;
        return 0;
}

int sysfs_parse_reserved_regions(const char *text, HostRegion **ret, size_t *ret_n) {
        _cleanup_free_ HostRegion *regions = NULL;
        size_t n = 0;

        for (const char *p = text; *p;) {
                const char *eol = strchrnul(p, '\n');
                char line[SYSFS_LINE_MAX], start[24], end[24], type[HOST_TYPE_MAX];
                size_t l = (size_t) (eol - p);
                HostRegion *a;
                uint64_t s, e;
                char extra;

                if (l >= sizeof line)
                        return -EBADMSG;
                memcpy(line, p, l);
                line[l] = 0;
                p = *eol ? eol + 1 : eol;
                if (strspn(line, " \t") == l)
                        continue;

                if (sscanf(line, "%23s %23s %31s %c", start, end, type, &extra) != 3)
                        return -EBADMSG;
                if (parse_hex_u64(start, UINT64_MAX, &s) < 0 || parse_hex_u64(end, UINT64_MAX, &e) < 0 || e < s)
                        return -EBADMSG;

                a = reallocarray(regions, n + 1, sizeof *regions);
                if (!a)
                        return -ENOMEM;
                regions = a;
                regions[n].start = s;
                regions[n].end = e;
                strcpy(regions[n].type, type);
                n++;
        }

        *ret = TAKE_PTR(regions);
        *ret_n = n;
        return 0;
}

/* ---------------------------------------------------------------- the cache */

#define SYSFS_DEVPATH_MAX 160

typedef struct CachedDevice {
        char address[HOST_ADDR_MAX];
        uint64_t ino;
        char path[SYSFS_DEVPATH_MAX];   /* the device's directory relative to the root, or "" */
        uint16_t vendor;
        uint16_t device;
        uint32_t class_code;
        uint8_t header_type;
        bool boot_vga;
} CachedDevice;

typedef struct CachedGroup {
        unsigned id;
        bool used;
        CachedDevice *devices;          /* sorted by address */
        size_t n_devices;
        HostRegion *regions;
        size_t n_regions;
        bool have_regions;
} CachedGroup;

#define CACHED_DRIVERS_MAX 256

struct SysfsCache {
        pthread_mutex_t mutex;
        CachedGroup *slots;             /* open addressing on the group id */
        size_t n_slots;                 /* a power of two, or 0 */
        size_t n_used;
        /* Whether each driver seen is a VFIO one: a property of the driver, not of the device (its
         * devices have vfio-dev/ from their probe on, before the driver link appears). Saves a lookup
         * per device and read. */
        struct {
                char name[HOST_DRIVER_MAX];
                bool vfio;
        } drivers[CACHED_DRIVERS_MAX];
        size_t n_drivers;
};

SysfsCache *sysfs_cache_new(void) {
        SysfsCache *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        (void) pthread_mutex_init(&c->mutex, NULL);
        return c;
}

SysfsCache *sysfs_cache_free(SysfsCache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_slots; i++) {
                free(c->slots[i].devices);
                free(c->slots[i].regions);
        }
        free(c->slots);
        (void) pthread_mutex_destroy(&c->mutex);
        free(c);
        return NULL;
}

static size_t cache_hash(unsigned id, size_t n_slots) {
        return (size_t) (id * 2654435761U) & (n_slots - 1);
}

/* The entry of group id, made if need be. NULL only when out of memory. Mutex held. */
static CachedGroup *cache_group(SysfsCache *c, unsigned id) {
        size_t i;

        if (c->n_slots > 0)
                for (i = cache_hash(id, c->n_slots); c->slots[i].used; i = (i + 1) & (c->n_slots - 1))
                        if (c->slots[i].id == id)
                                return &c->slots[i];

        if ((c->n_used + 1) * 2 > c->n_slots) {
                size_t n = MAX(c->n_slots * 2, (size_t) 64);
                CachedGroup *slots = calloc(n, sizeof *slots);
                if (!slots)
                        return NULL;
                for (size_t k = 0; k < c->n_slots; k++) {
                        if (!c->slots[k].used)
                                continue;
                        for (i = cache_hash(c->slots[k].id, n); slots[i].used; i = (i + 1) & (n - 1))
                                ;
                        slots[i] = c->slots[k];
                }
                free(c->slots);
                c->slots = slots;
                c->n_slots = n;
        }

        for (i = cache_hash(id, c->n_slots); c->slots[i].used; i = (i + 1) & (c->n_slots - 1))
                ;
        c->slots[i] = (CachedGroup) { .id = id, .used = true };
        c->n_used++;
        return &c->slots[i];
}

/* read_vfio_driver(), remembered per driver name. Mutex held (or cache NULL). */
static bool cached_vfio_driver(SysfsCache *c, int dir_fd, const char *dir, const char *driver) {
        bool v;

        if (!c || isempty(driver))
                return read_vfio_driver(dir_fd, dir, driver);
        for (size_t i = 0; i < c->n_drivers; i++)
                if (streq(c->drivers[i].name, driver))
                        return c->drivers[i].vfio;
        v = read_vfio_driver(dir_fd, dir, driver);
        if (c->n_drivers < CACHED_DRIVERS_MAX) {
                strcpy(c->drivers[c->n_drivers].name, driver);
                c->drivers[c->n_drivers++].vfio = v;
        }
        return v;
}

static int cmp_cached_key(const void *key, const void *elem) {
        return strcmp(key, ((const CachedDevice *) elem)->address);
}

/* ---------------------------------------------------------------- groups */

typedef struct Entry {
        char name[HOST_ADDR_MAX];
        uint64_t ino;
} Entry;

static int cmp_entry(const void *a, const void *b) {
        return strcmp(((const Entry *) a)->name, ((const Entry *) b)->name);
}

typedef struct EntryList {
        Entry *entries;
        size_t n, allocated;
} EntryList;

static int add_entry(const struct dirent64 *de, void *userdata) {
        EntryList *l = userdata;

        if (de->d_name[0] == '.' || strlen(de->d_name) >= HOST_ADDR_MAX)
                return 0;
        if (ARRAY_GROW(l->entries, l->allocated, l->n, 4) < 0)
                return -ENOMEM;
        strcpy(l->entries[l->n].name, de->d_name);
        l->entries[l->n].ino = de->d_ino;
        l->n++;
        return 0;
}

/* The names (and link inodes) in a group's devices directory, sorted. */
static int read_entries(int devs_fd, Entry **ret, size_t *ret_n) {
        EntryList l = {};
        int r;

        r = dir_for_each(devs_fd, add_entry, &l);
        if (r < 0) {
                free(l.entries);
                return r;
        }
        if (l.n > 0)
                qsort(l.entries, l.n, sizeof *l.entries, cmp_entry);
        *ret = l.entries;
        *ret_n = l.n;
        return 0;
}

/* Where the link devs_fd/name points, relative to the sysfs root: "../../../../devices/pci0000:00/ADDR"
 * becomes "devices/pci0000:00/ADDR". Reading through that path instead of the link saves the kernel a
 * symlink walk per file: the walk is most of what an open costs. "" when the link has another shape. */
static void resolve_device_path(int devs_fd, const char *name, char ret[SYSFS_DEVPATH_MAX]) {
        char buf[PATH_MAX];
        const char *p;
        ssize_t n;

        ret[0] = 0;
        n = readlinkat(devs_fd, name, buf, sizeof buf - 1);
        if (n < 0)
                return;
        buf[n] = 0;
        p = startswith_word(buf, "../../../../devices/");
        if (!p || strstr(p, "/../") || strlen(buf) - strlen("../../../../") >= SYSFS_DEVPATH_MAX)
                return;
        strcpy(ret, buf + strlen("../../../../"));
}

/* Reads one device of a group. cached: its unchanging part, or NULL, then it is read and stored in
 * *store. Returns 1 when the device is there, 0 when it vanished, or negative errno. */
static int read_group_device(int sysfs_fd, int devs_fd, SysfsCache *cache, HostBusy *busy, const char *name,
                             const CachedDevice *cached, HostDevice *d, CachedDevice *store) {
        char path[SYSFS_DEVPATH_MAX + 32], buf[SYSFS_LINE_MAX];
        const char *dir = name;
        bool missing = false;
        int dir_fd = devs_fd;
        ssize_t n;
        int r;

        if (cached) {
                d->vendor = cached->vendor;
                d->device = cached->device;
                d->class_code = cached->class_code;
                d->header_type = cached->header_type;
                d->boot_vga = cached->boot_vga;
                strcpy(store->path, cached->path);
        } else {
                static const char *const attrs[] = { "vendor", "device", "class" };
                uint64_t v[ELEMENTSOF(attrs)];

                for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
                        (void) snprintf(path, sizeof path, "%s/%s", name, attrs[i]);
                        r = read_hex_attr(devs_fd, path, i == 2 ? UINT32_MAX : UINT16_MAX, &v[i]);
                        if (r < 0)
                                return r;
                }
                d->vendor = (uint16_t) v[0];
                d->device = (uint16_t) v[1];
                d->class_code = (uint32_t) v[2];
                resolve_device_path(devs_fd, name, store->path);
        }
        if (!isempty(store->path)) {
                dir = store->path;
                dir_fd = sysfs_fd;
        }
        if (!cached) {
                d->header_type = read_header_type(dir_fd, dir, d->class_code);
                d->boot_vga = read_boot_vga(dir_fd, dir, d->class_code);
        }

        (void) snprintf(path, sizeof path, "%s/driver_override", dir);
        n = read_override_at(busy, name, dir_fd, path, buf, sizeof buf);
        if (n >= 0 && !streq(buf, "(null)")) {
                if (strlen(buf) >= sizeof d->driver_override)
                        return -EBADMSG;
                strcpy(d->driver_override, buf);
        } else if (n == -ENOENT)
                missing = true;
        else if (n < 0)
                return (int) n;

        (void) snprintf(path, sizeof path, "%s/driver", dir);
        r = read_link_name_at(dir_fd, path, d->driver, sizeof d->driver);
        if (r < 0 && r != -ENOENT)
                return r;
        d->vfio_driver = cached_vfio_driver(cache, dir_fd, dir, d->driver);

        /* Every PCI device has a vendor and a driver_override: without them, either this is no PCI
         * device (keep it), or it went away while we looked (skip it). */
        if ((d->vendor == 0 || missing) && faccessat(devs_fd, name, F_OK, 0) < 0 && errno == ENOENT)
                return 0;
        return 1;
}

int sysfs_read_group(int sysfs_fd, SysfsCache *cache, HostBusy *busy, unsigned id, HostGroup *ret) {
        _cleanup_(host_group_done) HostGroup g = { .id = id };
        _cleanup_free_ CachedDevice *seen = NULL;
        _cleanup_free_ Entry *entries = NULL;
        _cleanup_close_ int devs_fd = -EBADF;
        char path[64], buf[SYSFS_REGIONS_MAX];
        CachedGroup *cg = NULL;
        size_t n_entries = 0, n_hits = 0;
        ssize_t n;
        int r;

        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u/devices", id);
        devs_fd = openat(sysfs_fd, path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (devs_fd < 0)
                return -errno;
        r = read_entries(devs_fd, &entries, &n_entries);
        if (r < 0)
                return r;

        g.devices = calloc(MAX(n_entries, (size_t) 1), sizeof *g.devices);
        seen = calloc(MAX(n_entries, (size_t) 1), sizeof *seen);
        if (!g.devices || !seen)
                return -ENOMEM;

        if (cache) {
                (void) pthread_mutex_lock(&cache->mutex);
                cg = cache_group(cache, id);
        }

        for (size_t i = 0; i < n_entries; i++) {
                const CachedDevice *c = NULL;
                HostDevice *d = &g.devices[g.n_devices];

                if (cg && cg->n_devices > 0) {
                        c = bsearch(entries[i].name, cg->devices, cg->n_devices, sizeof *cg->devices,
                                    cmp_cached_key);
                        if (c && c->ino != entries[i].ino)
                                c = NULL;
                }

                *d = (HostDevice) { .group = id };
                strcpy(d->address, entries[i].name);
                seen[g.n_devices] = (CachedDevice) {};
                r = read_group_device(sysfs_fd, devs_fd, cache, busy, entries[i].name, c, d, &seen[g.n_devices]);
                if (r < 0)
                        goto finish;
                if (r == 0)
                        continue;

                n_hits += !!c;
                seen[g.n_devices].ino = entries[i].ino;
                seen[g.n_devices].vendor = d->vendor;
                seen[g.n_devices].device = d->device;
                seen[g.n_devices].class_code = d->class_code;
                seen[g.n_devices].header_type = d->header_type;
                seen[g.n_devices].boot_vga = d->boot_vga;
                strcpy(seen[g.n_devices].address, d->address);
                g.n_devices++;
        }

        /* The reserved regions follow from the devices: the same devices, the same regions. */
        if (cg && cg->have_regions && n_hits == g.n_devices && n_hits == cg->n_devices) {
                if (cg->n_regions > 0) {
                        g.regions = reallocarray(NULL, cg->n_regions, sizeof *g.regions);
                        if (!g.regions) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        memcpy(g.regions, cg->regions, cg->n_regions * sizeof *g.regions);
                }
                g.n_regions = cg->n_regions;
        } else {
                n = read_small_at(devs_fd, "../reserved_regions", buf, sizeof buf, false);
                if (n >= 0) {
                        if ((size_t) n >= sizeof buf - 1) {
                                r = -EFBIG;
                                goto finish;
                        }
                        r = sysfs_parse_reserved_regions(buf, &g.regions, &g.n_regions);
                        if (r < 0)
                                goto finish;
                } else if (n != -ENOENT) {
                        r = (int) n;
                        goto finish;
                }

                if (cg) {
                        HostRegion *copy = NULL;
                        if (g.n_regions > 0) {
                                copy = reallocarray(NULL, g.n_regions, sizeof *copy);
                                if (copy)
                                        memcpy(copy, g.regions, g.n_regions * sizeof *copy);
                        }
                        free(cg->regions);
                        cg->regions = copy;
                        cg->n_regions = copy ? g.n_regions : 0;
                        cg->have_regions = copy || g.n_regions == 0;
                }
        }

        if (cg) {
                free(cg->devices);
                cg->devices = TAKE_PTR(seen);
                cg->n_devices = g.n_devices;
        }
        r = 0;

finish:
        if (cache)
                (void) pthread_mutex_unlock(&cache->mutex);
        if (r < 0)
                return r;

        /* The type can be changed (by writing it, while no driver is bound): read it every time. */
        n = read_small_at(devs_fd, "../type", buf, sizeof buf, true);
        if (n >= 0) {
                if ((size_t) n >= sizeof g.type)
                        return -EBADMSG;
                strcpy(g.type, buf);
        } else if (n != -ENOENT)
                return (int) n;

        *ret = g;
        g = (HostGroup) {};
        return 0;
}

int sysfs_read_device_driver(int sysfs_fd, const char *address, char ret[HOST_DRIVER_MAX]) {
        char path[64 + HOST_ADDR_MAX];
        int r;

        if (!sysfs_name_is_valid(address, HOST_ADDR_MAX))
                return -EINVAL;
        (void) snprintf(path, sizeof path, "bus/pci/devices/%s/driver", address);
        r = read_link_name_at(sysfs_fd, path, ret, HOST_DRIVER_MAX);
        if (r == -ENOENT) {
                (void) snprintf(path, sizeof path, "bus/pci/devices/%s", address);
                if (faccessat(sysfs_fd, path, F_OK, 0) < 0)
                        return -errno;
                ret[0] = 0;
                return 0;
        }
        return r;
}

int sysfs_read_device(int sysfs_fd, HostBusy *busy, const char *address, HostDevice *ret) {
        _cleanup_close_ int dev_fd = -EBADF;
        char path[64 + HOST_ADDR_MAX], name[32];
        HostDevice d = { .group = UINT_MAX };
        int r;

        if (!sysfs_name_is_valid(address, HOST_ADDR_MAX))
                return -EINVAL;
        strcpy(d.address, address);

        (void) snprintf(path, sizeof path, "bus/pci/devices/%s", address);
        dev_fd = openat(sysfs_fd, path, O_PATH|O_DIRECTORY|O_CLOEXEC);
        if (dev_fd < 0)
                return -errno;

        r = read_device_attrs(dev_fd, busy, &d);
        if (r < 0)
                return r;

        r = read_link_name_at(dev_fd, "iommu_group", name, sizeof name);
        if (r >= 0) {
                if (parse_group_id(name, &d.group) < 0)
                        return -EBADMSG;
        } else if (r != -ENOENT)
                return r;

        /* Every PCI device has a vendor: none means the device went away under us. */
        if (d.vendor == 0 && faccessat(sysfs_fd, path, F_OK, 0) < 0 && errno == ENOENT)
                return -ENOENT;

        *ret = d;
        return 0;
}

/* ---------------------------------------------------------------- what the host stands on */

int host_use_add(HostUse **uses, size_t *n, size_t *allocated, const char *address, HostUseKind kind,
                 const char *what) {
        for (size_t i = 0; i < *n; i++)
                if ((*uses)[i].kind == kind && streq((*uses)[i].address, address) &&
                    streq((*uses)[i].what, strempty(what)))
                        return 0;
        if (ARRAY_GROW(*uses, *allocated, *n, 8) < 0)
                return -ENOMEM;
        (*uses)[*n] = (HostUse) { .kind = kind };
        (void) snprintf((*uses)[*n].address, sizeof (*uses)[*n].address, "%s", address);
        (void) snprintf((*uses)[*n].what, sizeof (*uses)[*n].what, "%s", strempty(what));
        (*n)++;
        return 0;
}

/* The last component of a link's target that is a PCI address: the PCI function a block device or an
 * interface sits on. "" when none (virtual devices). */
static void link_pci_function(int sysfs_fd, const char *path, char ret[HOST_ADDR_MAX]) {
        char buf[PATH_MAX], *save = NULL;
        ssize_t n;

        ret[0] = 0;
        n = readlinkat(sysfs_fd, path, buf, sizeof buf - 1);
        if (n < 0)
                return;
        buf[n] = 0;
        for (char *w = strtok_r(buf, "/", &save); w; w = strtok_r(NULL, "/", &save)) {
                char a[HOST_ADDR_MAX];
                if (strlen(w) == 12 && host_parse_pci_address(w, a) >= 0 && streq(a, w))
                        strcpy(ret, a);
        }
}

typedef struct LowerWalk {
        int sysfs_fd;
        const char *prefix;      /* "slaves/" entries are names; "lower_" entries of net carry a prefix */
        char names[16][64];
        size_t n;
} LowerWalk;

static int collect_lower(const struct dirent64 *de, void *userdata) {
        LowerWalk *w = userdata;
        const char *name = de->d_name;

        if (!isempty(w->prefix)) {
                name = startswith_word(name, w->prefix);
                if (!name)
                        return 0;
        }
        if (w->n < ELEMENTSOF(w->names) && strlen(name) < sizeof w->names[0])
                strcpy(w->names[w->n++], name);
        return 0;
}

static int block_uses(int sysfs_fd, const char *name, unsigned depth, HostUseKind kind, const char *what,
                      HostUse **uses, size_t *n, size_t *allocated) {
        char path[PATH_MAX], addr[HOST_ADDR_MAX];
        _cleanup_close_ int fd = -EBADF;
        LowerWalk w = { .sysfs_fd = sysfs_fd, .prefix = "" };
        int r;

        if (depth > 8 || !sysfs_name_is_valid(name, 64))
                return 0;
        (void) snprintf(path, sizeof path, "class/block/%s", name);
        link_pci_function(sysfs_fd, path, addr);
        if (!isempty(addr)) {
                r = host_use_add(uses, n, allocated, addr, kind, what);
                if (r < 0)
                        return r;
        }
        /* Stacked devices (device mapper, md): what they are made of. */
        (void) snprintf(path, sizeof path, "class/block/%s/slaves", name);
        fd = openat(sysfs_fd, path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return 0;
        (void) dir_for_each(fd, collect_lower, &w);
        for (size_t i = 0; i < w.n; i++) {
                r = block_uses(sysfs_fd, w.names[i], depth + 1, kind, what, uses, n, allocated);
                if (r < 0)
                        return r;
        }
        return 0;
}

int sysfs_block_uses(int sysfs_fd, const char *name, HostUseKind kind, const char *what, HostUse **uses,
                     size_t *n, size_t *allocated) {
        return block_uses(sysfs_fd, name, 0, kind, what, uses, n, allocated);
}

static int net_uses(int sysfs_fd, const char *ifname, unsigned depth, const char *what, HostUse **uses,
                    size_t *n, size_t *allocated) {
        char path[PATH_MAX], addr[HOST_ADDR_MAX];
        _cleanup_close_ int fd = -EBADF;
        LowerWalk w = { .sysfs_fd = sysfs_fd, .prefix = "lower_" };
        int r;

        if (depth > 8 || !sysfs_name_is_valid(ifname, 64))
                return 0;
        (void) snprintf(path, sizeof path, "class/net/%s", ifname);
        link_pci_function(sysfs_fd, path, addr);
        if (!isempty(addr)) {
                r = host_use_add(uses, n, allocated, addr, HOST_USE_ROUTE, what);
                if (r < 0)
                        return r;
        }
        /* Bridges, bonds, vlans: the interfaces below. */
        fd = openat(sysfs_fd, path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return 0;
        (void) dir_for_each(fd, collect_lower, &w);
        for (size_t i = 0; i < w.n; i++) {
                r = net_uses(sysfs_fd, w.names[i], depth + 1, what, uses, n, allocated);
                if (r < 0)
                        return r;
        }
        return 0;
}

int sysfs_net_uses(int sysfs_fd, const char *ifname, const char *what, HostUse **uses, size_t *n,
                   size_t *allocated) {
        return net_uses(sysfs_fd, ifname, 0, what, uses, n, allocated);
}
