/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the host backends share: the operations table each one fills in, the Host object, and the sysfs
 * reading code (host-sysfs.c) that both use on their sysfs root directory fd. Not for use above the host
 * interface. */

#include <pthread.h>

#include "host.h"

typedef struct HostOps {
        /* Frees the backend's private data (h->data); the fds of struct Host are closed by host_free(). */
        void (*stop)(Host *h);   /* optional: operations held up in it return -ECANCELED */
        void (*free)(Host *h);

        int (*set_override)(Host *h, const char *address, const char *driver);
        int (*unbind)(Host *h, const char *address);
        int (*bind)(Host *h, const char *address, const char *driver);
        int (*probe)(Host *h, const char *address);

        int (*open_container)(Host *h, int *ret_fd);
        int (*open_group)(Host *h, unsigned id, int *ret_fd);
        int (*group_is_viable)(Host *h, int group_fd, bool *ret);
        int (*group_set_container)(Host *h, int group_fd, int container_fd);
        int (*container_set_iommu)(Host *h, int container_fd, uint32_t *ret_type);
        /* The GET_INFO ioctl (type1 and sPAPR share its number): fills buf as the kernel does, argsz in
         * its first 4 bytes set by the caller. */
        int (*container_get_info)(Host *h, int container_fd, uint8_t *buf, size_t size);

        /* Mounts, swap and routes (boot VGA is read from the tree by host.c). */
        int (*list_uses)(Host *h, HostUse **ret, size_t *ret_n);
        /* Optional: the host reports its own changes (see host_watch_fd()). */
        int (*watch_fd)(Host *h);
        int (*watch_drain)(Host *h, HostChange **ret, size_t *ret_n);
        /* The text of the host's modules.alias (malloc()ed), or -ENOENT. */
        int (*modules_alias)(Host *h, char **ret);
        /* Optional: vfio-pci's deny list as this host has it; without it, the kernel's table is used. */
        bool (*denylisted)(Host *h, const HostDevice *d);
        /* iommufd and the device cdev: the cdev found in sysfs by host.c, opened here. */
        int (*open_device_cdev)(Host *h, const char *address, const char *cdev, int *ret_fd);
        int (*open_iommufd)(Host *h, int *ret_fd);
        int (*iommufd_rlimit_mode)(Host *h, int iommufd, bool set, bool *per_process);
        int (*iommufd_iova_ranges)(Host *h, int iommufd, HostIommuInfo *ret);

} HostOps;

/* What never changes while a device node exists (vendor, device, class) and a group's reserved regions
 * while its devices stay the same, remembered between reads so that discovery costs fewer opens. Keyed by
 * the inode of each device's link in the group's devices directory, which getdents() returns for free: a
 * device that goes away and comes back is a new node, with a new inode number (kernfs and tmpfs do not
 * hand a number out again soon; the sim's links never change). Thread-safe. */
typedef struct SysfsCache SysfsCache;

/* The devices a driver operation (unbind, bind, probe, a driver_override write) is under way on. The
 * kernel holds the device's lock for the whole operation, and an unbind from vfio-pci lasts until every
 * copy of the device's fd is closed, which may be never; reading the device's driver_override takes that
 * lock too (pci's driver_override_show). So the readers (on the event loop) do not read driver_override of
 * a busy device: they report the value this host last wrote, or none. The lock is held across each
 * unbusy device's driver_override read, and taken to mark a device busy, so a reader never starts a read
 * that an operation could hold up. Also remembers the last driver_override written to each device. */
typedef struct HostBusyEntry {
        char address[HOST_ADDR_MAX];
        unsigned busy;                          /* operations under way */
        bool override_known;
        char override[HOST_DRIVER_MAX];         /* the last value written ("" cleared) */
} HostBusyEntry;

typedef struct HostBusy {
        pthread_mutex_t lock;
        pthread_cond_t idle;                    /* signalled when in_flight drops to 0 */
        unsigned in_flight;                     /* operations under way, all devices */
        HostBusyEntry *entries;
        size_t n_entries;
} HostBusy;

void host_busy_init(HostBusy *b);
void host_busy_done(HostBusy *b);
/* Marks a device busy (or not busy again); 0, or -ENOMEM. */
/* The device's entry; lock held. NULL when not there and add is false, or out of memory. */
HostBusyEntry *host_busy_entry(HostBusy *b, const char *address, bool add);
int host_busy_begin(HostBusy *b, const char *address);
void host_busy_end(HostBusy *b, const char *address);
void host_busy_set_override(HostBusy *b, const char *address, const char *driver);
/* Waits up to timeout_ms for every operation under way to end; true when none is left. */
bool host_busy_wait_idle(HostBusy *b, unsigned timeout_ms);

struct Host {
        const HostOps *ops;
        HostKind kind;
        int sysfs_fd;           /* O_PATH|O_DIRECTORY: the sysfs root ("/sys", or the sim's state_dir/sys) */
        int dev_fd;             /* O_PATH|O_DIRECTORY: the dev root ("/dev", or the sim's state_dir/dev, where its
                                 * node stand-ins live: vfio/N, vfio/devices/vfioN, iommu) */
        SysfsCache *cache;
        HostBusy busy;
        void *data;             /* the backend's own state */
};

/* Allocates a Host with every fd unset and an empty cache. */
Host *host_alloc(HostKind kind, const HostOps *ops);

/* ---------------------------------------------------------------- sysfs reading (host-sysfs.c) */

struct dirent64;
/* Calls fn for each entry of the directory fd (read from where it stands), "." and ".." left out, until
 * fn returns < 0, which is then returned. */
int dir_for_each(int fd, int (*fn)(const struct dirent64 *de, void *userdata), void *userdata);
/* Makes room in array (of *allocated elements of size bytes) for element n, doubling from at least min:
 * returns the array, moved or not, or NULL (out of memory; the array is left as it was). */
void *array_grow(void *array, size_t *allocated, size_t n, size_t size, size_t min);
/* ARRAY_GROW(p, allocated, n, min): the same on a typed pointer p, which it updates; 0 or -ENOMEM. */
#define ARRAY_GROW(p, allocated, n, min)                                                        \
        ({                                                                                      \
                void *_q = array_grow((p), &(allocated), (n), sizeof *(p), (min));             \
                _q ? ((p) = _q, 0) : -ENOMEM;                                                  \
        })


/* A name that can be used as one path component: non-empty, no '/', not "." or "..", shorter than max. */
bool sysfs_name_is_valid(const char *s, size_t max);

SysfsCache *sysfs_cache_new(void);
SysfsCache *sysfs_cache_free(SysfsCache *c);

int sysfs_list_groups(int sysfs_fd, unsigned **ret_ids, size_t *ret_n);
/* cache and busy may be NULL. */
int sysfs_read_group(int sysfs_fd, SysfsCache *cache, HostBusy *busy, unsigned id, HostGroup *ret);
int sysfs_read_device(int sysfs_fd, HostBusy *busy, const char *address, HostDevice *ret);
/* The devices bound to a driver, from its directory under bus/pci/drivers (none when it is not loaded).
 * busy may be NULL. */
int sysfs_list_driver_devices(int sysfs_fd, HostBusy *busy, const char *driver, HostDevice **ret, size_t *ret_n);
/* The name of the driver a device is bound to ("" when unbound), from its "driver" link. */
int sysfs_read_device_driver(int sysfs_fd, const char *address, char ret[HOST_DRIVER_MAX]);

/* The kernel's vfio_pci_is_denylisted(): some Intel QuickAssist functions. */
bool sysfs_vfio_denylisted_id(uint16_t vendor, uint16_t device);
/* Adds a use to *uses (grown as ARRAY_GROW does); 0 or -ENOMEM. Skips duplicates. */
int host_use_add(HostUse **uses, size_t *n, size_t *allocated, const char *address, HostUseKind kind,
                 const char *what);
/* The PCI functions a block device (by name, "sda1", "dm-0") sits on, through its parents and, for
 * stacked devices (dm, md), its slaves; each added as a use. */
int sysfs_block_uses(int sysfs_fd, const char *name, HostUseKind kind, const char *what, HostUse **uses,
                     size_t *n, size_t *allocated);
/* The same for a network interface, through lower_* links (bridges, bonds, vlans). */
int sysfs_net_uses(int sysfs_fd, const char *ifname, const char *what, HostUse **uses, size_t *n,
                   size_t *allocated);

/* Parses a reserved_regions file's text ("0x00000000fee00000 0x00000000feefffff msi" lines).
 * -EBADMSG on a malformed line. */
int sysfs_parse_reserved_regions(const char *text, HostRegion **ret, size_t *ret_n);
