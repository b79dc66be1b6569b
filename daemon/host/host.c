/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <limits.h>
#include <assert.h>
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/xattr.h>

#include "host-internal.h"

static const char *const host_kind_table[_HOST_KIND_MAX] = {
        [HOST_LINUX] = "linux",
        [HOST_SIM] = "sim",
};

const char *host_kind_to_string(HostKind k) {
        if (k < 0 || k >= _HOST_KIND_MAX)
                return NULL;
        return host_kind_table[k];
}

HostKind host_kind_from_string(const char *s) {
        if (!s)
                return _HOST_KIND_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(host_kind_table); i++)
                if (streq(host_kind_table[i], s))
                        return (HostKind) i;
        return _HOST_KIND_INVALID;
}

void host_group_done(HostGroup *g) {
        if (!g)
                return;
        free(g->devices);
        free(g->regions);
        *g = (HostGroup) {};
}

Host *host_alloc(HostKind kind, const HostOps *ops) {
        Host *h = calloc(1, sizeof *h);
        if (!h)
                return NULL;
        h->kind = kind;
        h->ops = ops;
        h->sysfs_fd = -EBADF;
        h->dev_fd = -EBADF;
        host_busy_init(&h->busy);
        h->cache = sysfs_cache_new();
        if (!h->cache) {
                host_busy_done(&h->busy);
                free(h);
                return NULL;
        }
        return h;
}

void host_stop(Host *h) {
        if (h && h->ops && h->ops->stop)
                h->ops->stop(h);
}

Host *host_free(Host *h) {
        if (!h)
                return NULL;
        if (h->ops && h->ops->free)
                h->ops->free(h);   /* the sim wakes its held-up operations with -ECANCELED */
        /* A driver operation still under way on a worker thread uses h until it returns. The sim's end at
         * once; a real unbind the kernel holds up may not: then h is left to it (the daemon is exiting). */
        if (!host_busy_wait_idle(&h->busy, 2000))
                return NULL;
        h->sysfs_fd = safe_close(h->sysfs_fd);
        h->dev_fd = safe_close(h->dev_fd);
        sysfs_cache_free(h->cache);
        host_busy_done(&h->busy);
        free(h);
        return NULL;
}

HostKind host_get_kind(Host *h) {
        if (!h)
                return _HOST_KIND_INVALID;
        return h->kind;
}

/* ---------------------------------------------------------------- discovery */

/* vfio-pci's deny list as this host has it: the backend's own say, or the kernel's table unless the
 * module was loaded with disable_denylist=1. */
static void annotate_device(Host *h, HostDevice *d) {
        char buf[8];
        int fd;
        ssize_t n;

        if (h->ops->denylisted) {
                d->vfio_denylisted = h->ops->denylisted(h, d);
                return;
        }
        d->vfio_denylisted = false;
        if (!sysfs_vfio_denylisted_id(d->vendor, d->device))
                return;
        fd = openat(h->sysfs_fd, "module/vfio_pci/parameters/disable_denylist", O_RDONLY|O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        safe_close(fd);
        d->vfio_denylisted = !(n > 0 && (buf[0] == 'Y' || buf[0] == '1'));
}

bool host_device_is_bridge(const HostDevice *d) {
        return d && d->header_type != HOST_HEADER_NORMAL;
}

bool host_device_is_vfio_safe(const HostDevice *d) {
        return d && (d->vfio_driver || host_driver_is_vfio_safe(d->driver));
}

int host_list_groups(Host *h, unsigned **ret_ids, size_t *ret_n) {
        if (!h || !ret_ids || !ret_n)
                return -EINVAL;
        return sysfs_list_groups(h->sysfs_fd, ret_ids, ret_n);
}

int host_read_group(Host *h, unsigned id, HostGroup *ret) {
        if (!h || !ret)
                return -EINVAL;
        int r = sysfs_read_group(h->sysfs_fd, h->cache, &h->busy, id, ret);
        if (r >= 0)
                for (size_t i = 0; i < ret->n_devices; i++)
                        annotate_device(h, &ret->devices[i]);
        return r;
}

int host_list_driver_devices(Host *h, const char *driver, HostDevice **ret, size_t *ret_n) {
        if (!h || !driver || !ret || !ret_n)
                return -EINVAL;
        int r = sysfs_list_driver_devices(h->sysfs_fd, &h->busy, driver, ret, ret_n);
        if (r >= 0)
                for (size_t i = 0; i < *ret_n; i++)
                        annotate_device(h, &(*ret)[i]);
        return r;
}

int host_read_device(Host *h, const char *address, HostDevice *ret) {
        if (!h || !address || !ret)
                return -EINVAL;
        int r = sysfs_read_device(h->sysfs_fd, &h->busy, address, ret);
        if (r >= 0)
                annotate_device(h, ret);
        return r;
}

int host_list_uses(Host *h, HostUse **ret, size_t *ret_n) {
        _cleanup_free_ HostUse *uses = NULL, *more = NULL;
        size_t n = 0, allocated = 0, n_more = 0;
        int r;

        if (!h || !ret || !ret_n)
                return -EINVAL;

        /* The boot VGA device is not listed: every HostDevice says it (boot_vga), read with the device. */
        if (h->ops->list_uses) {
                r = h->ops->list_uses(h, &more, &n_more);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_more; i++) {
                        r = host_use_add(&uses, &n, &allocated, more[i].address, more[i].kind, more[i].what);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(uses);
        *ret_n = n;
        return 0;
}

static const char *const host_change_kind_table[_HOST_CHANGE_KIND_MAX] = {
        [HOST_CHANGE_ADD] = "add",
        [HOST_CHANGE_REMOVE] = "remove",
        [HOST_CHANGE_BIND] = "bind",
        [HOST_CHANGE_UNBIND] = "unbind",
};

const char *host_change_kind_to_string(HostChangeKind k) {
        if (k < 0 || k >= _HOST_CHANGE_KIND_MAX)
                return NULL;
        return host_change_kind_table[k];
}

int host_change_from_uevent(const char *action, const char *slot, const char *driver, HostChange *ret) {
        HostChange c = { .group = UINT_MAX };

        if (!action || !slot || !ret)
                return -EINVAL;
        c.kind = _HOST_CHANGE_KIND_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(host_change_kind_table); i++)
                if (streq(action, host_change_kind_table[i]))
                        c.kind = (HostChangeKind) i;
        if (c.kind < 0)
                return -EINVAL;
        if (host_parse_pci_address(slot, c.address) < 0)
                return -EINVAL;
        if (c.kind == HOST_CHANGE_BIND) {
                if (!sysfs_name_is_valid(driver, HOST_DRIVER_MAX))
                        return -EINVAL;
                strcpy(c.driver, driver);
        }
        *ret = c;
        return 0;
}

int host_pick_vfio_variant(const char *modalias, const char *aliases, char ret[HOST_DRIVER_MAX]) {
        char want[256];
        size_t best = SIZE_MAX;

        if (!modalias || !aliases || !ret)
                return -EINVAL;
        ret[0] = 0;
        if (strncmp(modalias, "pci:", 4) != 0 || strlen(modalias) + 5 >= sizeof want)
                return 0;
        (void) snprintf(want, sizeof want, "vfio_pci:%s", modalias + 4);

        for (const char *p = aliases; *p;) {
                const char *eol = strchrnul(p, '\n');
                char line[512], pattern[384], driver[HOST_DRIVER_MAX];
                size_t l = (size_t) (eol - p), stars = 0;

                if (l < sizeof line) {
                        memcpy(line, p, l);
                        line[l] = 0;
                        if (sscanf(line, "alias %383s %63s", pattern, driver) == 2 &&
                            startswith_word(pattern, "vfio_pci:") && fnmatch(pattern, want, 0) == 0 &&
                            sysfs_name_is_valid(driver, HOST_DRIVER_MAX)) {
                                for (const char *c = pattern; *c; c++)
                                        stars += *c == '*';
                                if (stars < best) {
                                        best = stars;
                                        strcpy(ret, driver);
                                }
                        }
                }
                p = *eol ? eol + 1 : eol;
        }
        return 0;
}

int host_vfio_variant_for(Host *h, const HostDevice *d, char ret[HOST_DRIVER_MAX]) {
        _cleanup_free_ char *aliases = NULL;
        char path[128], modalias[256], pick[HOST_DRIVER_MAX];
        ssize_t n;
        int fd, r;

        if (!h || !d || !ret)
                return -EINVAL;
        ret[0] = 0;
        if (!h->ops->modules_alias)
                return 0;
        (void) snprintf(path, sizeof path, "bus/pci/devices/%s/modalias", d->address);
        fd = openat(h->sysfs_fd, path, O_RDONLY|O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, modalias, sizeof modalias - 1);
        safe_close(fd);
        if (n <= 0)
                return n < 0 ? -errno : 0;
        modalias[n] = 0;
        modalias[strcspn(modalias, "\n")] = 0;

        r = h->ops->modules_alias(h, &aliases);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = host_pick_vfio_variant(modalias, aliases, pick);
        if (r < 0 || isempty(pick))
                return r;
        /* Module names use '_' where a driver's name may use '-' and the reverse: look for both. */
        for (int pass = 0; pass < 2; pass++) {
                (void) snprintf(path, sizeof path, "bus/pci/drivers/%s", pick);
                if (faccessat(h->sysfs_fd, path, F_OK, 0) >= 0) {
                        strcpy(ret, pick);
                        return 0;
                }
                for (char *c = pick; *c; c++)
                        *c = *c == '_' ? '-' : *c == '-' ? '_' : *c;
        }
        return 0;
}

int host_watch_fd(Host *h) {
        if (!h)
                return -EINVAL;
        if (!h->ops->watch_fd)
                return -EOPNOTSUPP;
        return h->ops->watch_fd(h);
}

int host_watch_drain(Host *h, HostChange **ret, size_t *ret_n) {
        if (!h || !ret || !ret_n)
                return -EINVAL;
        if (!h->ops->watch_drain) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        return h->ops->watch_drain(h, ret, ret_n);
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

/* Exactly n hex digits at *p, advancing it. */
static int parse_hex_field(const char **p, size_t n, unsigned *ret) {
        unsigned v = 0;

        for (size_t i = 0; i < n; i++) {
                int d = unhex((*p)[i]);
                if (d < 0)
                        return -EINVAL;
                v = v << 4 | (unsigned) d;
        }
        *p += n;
        *ret = v;
        return 0;
}

int host_parse_pci_address(const char *s, char ret[HOST_ADDR_MAX]) {
        unsigned domain = 0, bus, slot, function;
        const char *p = s;
        size_t l;

        if (!s || !ret)
                return -EINVAL;

        /* "DDDD:BB:SS.F" is 12 characters, "BB:SS.F" is 7: nothing else is an address. */
        l = strlen(s);
        if (l == 12) {
                if (parse_hex_field(&p, 4, &domain) < 0 || *p++ != ':')
                        return -EINVAL;
        } else if (l != 7)
                return -EINVAL;

        if (parse_hex_field(&p, 2, &bus) < 0 || *p++ != ':' ||
            parse_hex_field(&p, 2, &slot) < 0 || *p++ != '.' ||
            parse_hex_field(&p, 1, &function) < 0 || *p != 0)
                return -EINVAL;
        if (slot >= 0x20 || function >= 8)
                return -EINVAL;

        (void) snprintf(ret, HOST_ADDR_MAX, "%04x:%02x:%02x.%x", domain, bus, slot, function);
        return 0;
}

/* The drivers the kernel lets a device stay on while its group is used through VFIO: vfio-pci itself,
 * none at all, and the drivers that manage DMA ownership themselves (driver_managed_dma in the kernel):
 * pcieport for bridges, and pci-stub, which exists to hold a device away from its host driver. */
bool host_driver_is_vfio_safe(const char *driver) {
        return isempty(driver) ||
                streq(driver, VFIO_PCI_DRIVER) ||
                streq(driver, "pcieport") ||
                streq(driver, "pci-stub");
}

/* ---------------------------------------------------------------- driver binding and VFIO */

static bool address_ok(const char *address) {
        return sysfs_name_is_valid(address, HOST_ADDR_MAX);
}

typedef enum DriverOp {
        DRIVER_OP_SET_OVERRIDE,
        DRIVER_OP_UNBIND,
        DRIVER_OP_BIND,
        DRIVER_OP_PROBE,
} DriverOp;

/* Each driver operation marks its device busy while it runs: the kernel holds the device's lock meanwhile
 * (an unbind from vfio-pci for as long as a VMM keeps the device open), and readers on the event loop must
 * not wait for that lock (see HostBusy). */
static int device_op(Host *h, DriverOp op, const char *address, const char *driver) {
        int r;

        r = host_busy_begin(&h->busy, address);
        if (r < 0)
                return r;
        switch (op) {
        case DRIVER_OP_SET_OVERRIDE:
                r = h->ops->set_override(h, address, isempty(driver) ? NULL : driver);
                if (r >= 0)
                        host_busy_set_override(&h->busy, address, driver);
                break;
        case DRIVER_OP_UNBIND:
                r = h->ops->unbind(h, address);
                break;
        case DRIVER_OP_BIND:
                r = h->ops->bind(h, address, driver);
                break;
        case DRIVER_OP_PROBE:
                r = h->ops->probe(h, address);
                break;
        }
        host_busy_end(&h->busy, address);
        return r;
}

int host_device_set_override(Host *h, const char *address, const char *driver) {
        if (!h || !address_ok(address))
                return -EINVAL;
        if (!isempty(driver) && !sysfs_name_is_valid(driver, HOST_DRIVER_MAX))
                return -EINVAL;
        return device_op(h, DRIVER_OP_SET_OVERRIDE, address, driver);
}

int host_device_unbind(Host *h, const char *address) {
        if (!h || !address_ok(address))
                return -EINVAL;
        return device_op(h, DRIVER_OP_UNBIND, address, NULL);
}

int host_device_bind(Host *h, const char *address, const char *driver) {
        if (!h || !address_ok(address) || !sysfs_name_is_valid(driver, HOST_DRIVER_MAX))
                return -EINVAL;
        return device_op(h, DRIVER_OP_BIND, address, driver);
}

int host_device_probe(Host *h, const char *address) {
        if (!h || !address_ok(address))
                return -EINVAL;
        return device_op(h, DRIVER_OP_PROBE, address, NULL);
}

int host_open_container(Host *h, int *ret_fd) {
        if (!h || !ret_fd)
                return -EINVAL;
        return h->ops->open_container(h, ret_fd);
}

int host_open_group(Host *h, unsigned id, int *ret_fd) {
        if (!h || !ret_fd)
                return -EINVAL;
        return h->ops->open_group(h, id, ret_fd);
}

int host_group_is_viable(Host *h, int group_fd, bool *ret) {
        if (!h || !ret)
                return -EINVAL;
        if (group_fd < 0)
                return -EBADF;
        return h->ops->group_is_viable(h, group_fd, ret);
}

int host_group_set_container(Host *h, int group_fd, int container_fd) {
        if (!h)
                return -EINVAL;
        if (group_fd < 0 || container_fd < 0)
                return -EBADF;
        return h->ops->group_set_container(h, group_fd, container_fd);
}

int host_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type) {
        uint32_t type = 0;
        int r;

        if (!h)
                return -EINVAL;
        if (container_fd < 0)
                return -EBADF;
        r = h->ops->container_set_iommu(h, container_fd, &type);
        if (r < 0)
                return r;
        if (ret_type)
                *ret_type = type;
        return 0;
}

/* ---------------------------------------------------------------- DMA facts, KVM, memlock */

static bool iommu_type_is_spapr(uint32_t type) {
        return type == 2 /* VFIO_SPAPR_TCE_IOMMU */ || type == 7 /* VFIO_SPAPR_TCE_v2_IOMMU */;
}

int host_container_get_info(Host *h, int container_fd, uint32_t iommu_type, HostIommuInfo *ret) {
        uint8_t fixed[MAX(IOMMU_TYPE1_INFO_SIZE, IOMMU_SPAPR_INFO_SIZE)] = {};
        _cleanup_free_ uint8_t *buf = NULL;
        size_t needed = 0;
        uint32_t argsz;
        int r;

        if (!h || !ret)
                return -EINVAL;
        if (container_fd < 0)
                return -EBADF;
        if (iommu_type == 0)
                return -EINVAL;

        if (iommu_type_is_spapr(iommu_type)) {
                argsz = IOMMU_SPAPR_INFO_SIZE;
                memcpy(fixed, &argsz, sizeof argsz);
                r = h->ops->container_get_info(h, container_fd, fixed, IOMMU_SPAPR_INFO_SIZE);
                if (r < 0)
                        return r;
                *ret = (HostIommuInfo) {};
                r = iommu_info_parse_spapr(fixed, IOMMU_SPAPR_INFO_SIZE, ret);
                if (r < 0)
                        return r;
                ret->iommu_type = iommu_type;
                return 0;
        }

        /* Twice, as the kernel wants it: the fixed part tells how large the whole answer is. */
        argsz = IOMMU_TYPE1_INFO_SIZE;
        memcpy(fixed, &argsz, sizeof argsz);
        r = h->ops->container_get_info(h, container_fd, fixed, IOMMU_TYPE1_INFO_SIZE);
        if (r < 0)
                return r;
        r = iommu_info_parse_type1(fixed, IOMMU_TYPE1_INFO_SIZE, ret, &needed);
        if (r == -ENOBUFS) {
                if (needed > 65536)
                        return -EBADMSG;
                buf = calloc(1, needed);
                if (!buf)
                        return -ENOMEM;
                argsz = (uint32_t) needed;
                memcpy(buf, &argsz, sizeof argsz);
                r = h->ops->container_get_info(h, container_fd, buf, needed);
                if (r < 0)
                        return r;
                r = iommu_info_parse_type1(buf, needed, ret, NULL);
        }
        if (r < 0)
                return r;
        ret->iommu_type = iommu_type;
        return 0;
}

int host_raise_memlock(Host *h, pid_t pid, uint64_t bytes, uint64_t *ret_old_soft, uint64_t *ret_old_hard) {
        struct rlimit old, new;

        if (!h || pid <= 0 || bytes == 0)
                return -EINVAL;
        if (prlimit(pid, RLIMIT_MEMLOCK, NULL, &old) < 0)
                return -errno;
        if (ret_old_soft)
                *ret_old_soft = old.rlim_cur;
        if (ret_old_hard)
                *ret_old_hard = old.rlim_max;

        new = old;
        if (new.rlim_cur != RLIM_INFINITY && new.rlim_cur < bytes)
                new.rlim_cur = bytes;
        if (new.rlim_max != RLIM_INFINITY && new.rlim_max < new.rlim_cur)
                new.rlim_max = new.rlim_cur;
        if (new.rlim_cur == old.rlim_cur && new.rlim_max == old.rlim_max)
                return 0;
        if (prlimit(pid, RLIMIT_MEMLOCK, &new, NULL) < 0)
                return -errno;
        return 0;
}

/* ---------------------------------------------------------------- iommufd and the device cdev */

bool host_has_iommufd(Host *h) {
        if (!h || h->dev_fd < 0)
                return false;
        return faccessat(h->dev_fd, "iommu", F_OK, AT_EACCESS) >= 0;
}

static int find_cdev_entry(const struct dirent64 *de, void *userdata) {
        char *ret = userdata;

        if (strncmp(de->d_name, "vfio", 4) != 0 || !sysfs_name_is_valid(de->d_name, HOST_CDEV_MAX))
                return 0;
        strcpy(ret, de->d_name);
        return 1;
}

int host_device_cdev(Host *h, const char *address, char ret[HOST_CDEV_MAX]) {
        char path[64 + HOST_ADDR_MAX], name[HOST_CDEV_MAX] = "";
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!h || !address_ok(address) || !ret)
                return -EINVAL;
        (void) snprintf(path, sizeof path, "bus/pci/devices/%s/vfio-dev", address);
        fd = openat(h->sysfs_fd, path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return errno == ENOTDIR ? -ENOENT : -errno;
        r = dir_for_each(fd, find_cdev_entry, name);
        if (r < 0)
                return r;
        if (isempty(name))
                return -ENOENT;
        strcpy(ret, name);
        return 0;
}

int host_open_device_cdev(Host *h, const char *address, int *ret_fd) {
        char cdev[HOST_CDEV_MAX];
        int r;

        if (!h || !ret_fd)
                return -EINVAL;
        r = host_device_cdev(h, address, cdev);
        if (r < 0)
                return r;
        return h->ops->open_device_cdev(h, address, cdev, ret_fd);
}

int host_open_iommufd(Host *h, int *ret_fd) {
        if (!h || !ret_fd)
                return -EINVAL;
        return h->ops->open_iommufd(h, ret_fd);
}

int host_iommufd_set_rlimit_mode(Host *h, int iommufd, bool per_process) {
        if (!h)
                return -EINVAL;
        if (iommufd < 0)
                return -EBADF;
        return h->ops->iommufd_rlimit_mode(h, iommufd, true, &per_process);
}

int host_iommufd_get_rlimit_mode(Host *h, int iommufd, bool *ret_per_process) {
        if (!h || !ret_per_process)
                return -EINVAL;
        if (iommufd < 0)
                return -EBADF;
        return h->ops->iommufd_rlimit_mode(h, iommufd, false, ret_per_process);
}

int host_iommufd_iova_ranges(Host *h, int iommufd, HostIommuInfo *ret) {
        if (!h || !ret)
                return -EINVAL;
        if (iommufd < 0)
                return -EBADF;
        *ret = (HostIommuInfo) {};
        return h->ops->iommufd_iova_ranges(h, iommufd, ret);
}

/* ---------------------------------------------------------------- node access: POSIX ACLs by hand
 *
 * system.posix_acl_access is a u32 version (2) and entries of { u16 tag, u16 perm, u32 id }, sorted by
 * tag and then id; ids are meaningful for named users and groups only. */

#define ACL_XATTR "system.posix_acl_access"
#define ACL_VERSION 2u
#define ACL_TAG_USER_OBJ 0x01u
#define ACL_TAG_USER 0x02u
#define ACL_TAG_GROUP_OBJ 0x04u
#define ACL_TAG_GROUP 0x08u
#define ACL_TAG_MASK 0x10u
#define ACL_TAG_OTHER 0x20u
#define ACL_UNDEFINED_ID 0xffffffffu
#define ACL_ENTRIES_MAX ((HOST_ACL_MAX - 4) / 8)

typedef struct AclEntry {
        uint16_t tag;
        uint16_t perm;
        uint32_t id;
} AclEntry;

static bool node_name_ok(const char *node) {
        return !isempty(node) && strlen(node) < HOST_NODE_MAX && node[0] != '/' && !strstr(node, "..");
}

/* An O_PATH fd of the node (no open of the device itself: opening /dev/vfio/N would take the group), and
 * its /proc/self/fd path for the *xattr() and chmod() calls, which O_PATH fds do not take. */
static int node_open(Host *h, const char *node, int *ret_fd, char proc[64]) {
        int fd;

        if (h->dev_fd < 0)
                return -ENOENT;
        fd = openat(h->dev_fd, node, O_PATH|O_NOFOLLOW|O_CLOEXEC);
        if (fd < 0)
                return -errno;
        (void) snprintf(proc, 64, "/proc/self/fd/%i", fd);
        *ret_fd = fd;
        return 0;
}

static int node_read(int fd, const char *proc, HostNodeAccess *ret) {
        struct stat st;
        ssize_t n;

        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (HostNodeAccess) { .uid = st.st_uid, .gid = st.st_gid, .mode = st.st_mode & 07777 };
        n = getxattr(proc, ACL_XATTR, ret->acl, sizeof ret->acl);
        if (n < 0) {
                if (errno == ENODATA || errno == EOPNOTSUPP)
                        return 0;
                return -errno;
        }
        ret->has_acl = true;
        ret->acl_size = (size_t) n;
        return 0;
}

int host_node_read_access(Host *h, const char *node, HostNodeAccess *ret) {
        _cleanup_close_ int fd = -EBADF;
        char proc[64];
        int r;

        if (!h || !node_name_ok(node) || !ret)
                return -EINVAL;
        r = node_open(h, node, &fd, proc);
        if (r < 0)
                return r;
        return node_read(fd, proc, ret);
}

static int acl_parse(const uint8_t *buf, size_t size, AclEntry *e, size_t *ret_n) {
        uint32_t version;
        size_t n;

        if (size < 4 || (size - 4) % 8 != 0 || (size - 4) / 8 > ACL_ENTRIES_MAX)
                return -EBADMSG;
        memcpy(&version, buf, 4);
        if (le32toh(version) != ACL_VERSION)
                return -EBADMSG;
        n = (size - 4) / 8;
        for (size_t i = 0; i < n; i++) {
                uint16_t tag, perm;
                uint32_t id;

                memcpy(&tag, buf + 4 + 8 * i, 2);
                memcpy(&perm, buf + 6 + 8 * i, 2);
                memcpy(&id, buf + 8 + 8 * i, 4);
                e[i] = (AclEntry) { .tag = le16toh(tag), .perm = le16toh(perm), .id = le32toh(id) };
        }
        *ret_n = n;
        return 0;
}

static size_t acl_build(const AclEntry *e, size_t n, uint8_t *buf) {
        uint32_t version = htole32(ACL_VERSION);

        memcpy(buf, &version, 4);
        for (size_t i = 0; i < n; i++) {
                uint16_t tag = htole16(e[i].tag), perm = htole16(e[i].perm);
                uint32_t id = htole32(e[i].id);
                memcpy(buf + 4 + 8 * i, &tag, 2);
                memcpy(buf + 6 + 8 * i, &perm, 2);
                memcpy(buf + 8 + 8 * i, &id, 4);
        }
        return 4 + 8 * n;
}

static int acl_entry_cmp(const void *a, const void *b) {
        const AclEntry *x = a, *y = b;
        if (x->tag != y->tag)
                return x->tag < y->tag ? -1 : 1;
        if (x->id != y->id)
                return x->id < y->id ? -1 : 1;
        return 0;
}

int host_node_grant(Host *h, const char *node, uid_t uid, HostNodeAccess *ret_before) {
        _cleanup_close_ int fd = -EBADF;
        AclEntry e[ACL_ENTRIES_MAX];
        HostNodeAccess before;
        uint8_t buf[HOST_ACL_MAX];
        uint16_t mask = 0;
        size_t n = 0, size;
        bool found = false, has_mask = false;
        char proc[64];
        int r;

        if (!h || !node_name_ok(node) || uid == (uid_t) -1)
                return -EINVAL;
        r = node_open(h, node, &fd, proc);
        if (r < 0)
                return r;
        r = node_read(fd, proc, &before);
        if (r < 0)
                return r;

        if (before.has_acl) {
                r = acl_parse(before.acl, before.acl_size, e, &n);
                if (r < 0)
                        return r;
        } else {
                /* The minimal ACL the mode stands for. */
                e[n++] = (AclEntry) { ACL_TAG_USER_OBJ, (before.mode >> 6) & 7, ACL_UNDEFINED_ID };
                e[n++] = (AclEntry) { ACL_TAG_GROUP_OBJ, (before.mode >> 3) & 7, ACL_UNDEFINED_ID };
                e[n++] = (AclEntry) { ACL_TAG_OTHER, before.mode & 7, ACL_UNDEFINED_ID };
        }
        for (size_t i = 0; i < n; i++)
                if (e[i].tag == ACL_TAG_USER && e[i].id == (uint32_t) uid) {
                        e[i].perm |= 6;
                        found = true;
                }
        if (!found) {
                if (n + 2 > ACL_ENTRIES_MAX)
                        return -E2BIG;
                e[n++] = (AclEntry) { ACL_TAG_USER, 6, (uint32_t) uid };
        }
        /* The mask: the union of the group class (named users, the owning group, named groups), as setfacl
         * recomputes it. */
        for (size_t i = 0; i < n; i++)
                if (e[i].tag == ACL_TAG_USER || e[i].tag == ACL_TAG_GROUP_OBJ || e[i].tag == ACL_TAG_GROUP)
                        mask |= e[i].perm;
        for (size_t i = 0; i < n; i++)
                if (e[i].tag == ACL_TAG_MASK) {
                        e[i].perm = mask;
                        has_mask = true;
                }
        if (!has_mask)
                e[n++] = (AclEntry) { ACL_TAG_MASK, mask, ACL_UNDEFINED_ID };
        qsort(e, n, sizeof *e, acl_entry_cmp);

        size = acl_build(e, n, buf);
        if (setxattr(proc, ACL_XATTR, buf, size, 0) < 0)
                return -errno;
        if (ret_before)
                *ret_before = before;
        return 0;
}

int host_node_restore(Host *h, const char *node, const HostNodeAccess *before) {
        _cleanup_close_ int fd = -EBADF;
        char proc[64];
        int r;

        if (!h || !node_name_ok(node) || !before)
                return -EINVAL;
        r = node_open(h, node, &fd, proc);
        if (r < 0)
                return r;
        if (before->has_acl) {
                if (setxattr(proc, ACL_XATTR, before->acl, before->acl_size, 0) < 0)
                        return -errno;
        } else if (removexattr(proc, ACL_XATTR) < 0 && errno != ENODATA)
                return -errno;
        /* Setting or removing the ACL rewrote the group bits of the mode: the mode as it was. */
        if (chmod(proc, before->mode) < 0)
                return -errno;
        return 0;
}

void host_acl_to_text(const uint8_t *acl, size_t size, char *buf, size_t buf_size) {
        AclEntry e[ACL_ENTRIES_MAX];
        size_t n = 0, off = 0;

        assert(buf && buf_size > 0);
        buf[0] = 0;
        if (size == 0 || acl_parse(acl, size, e, &n) < 0)
                return;
        for (size_t i = 0; i < n && off < buf_size; i++) {
                const char *t = e[i].tag == ACL_TAG_USER_OBJ || e[i].tag == ACL_TAG_USER ? "u" :
                        e[i].tag == ACL_TAG_GROUP_OBJ || e[i].tag == ACL_TAG_GROUP ? "g" :
                        e[i].tag == ACL_TAG_MASK ? "m" : "o";
                char id[16] = "";
                if (e[i].tag == ACL_TAG_USER || e[i].tag == ACL_TAG_GROUP)
                        (void) snprintf(id, sizeof id, "%u", e[i].id);
                off += (size_t) snprintf(buf + off, buf_size - off, "%s%s:%s:%c%c%c", i > 0 ? "," : "", t, id,
                                         e[i].perm & 4 ? 'r' : '-', e[i].perm & 2 ? 'w' : '-',
                                         e[i].perm & 1 ? 'x' : '-');
        }
}
