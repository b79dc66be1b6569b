/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The host interface: everything kernel-facing (sysfs reads and writes, /dev/vfio, the VFIO ioctls) goes
 * through here. Two backends:
 *
 *   linux  the real kernel. Its sysfs root (default "/sys") and dev root (default "/dev") can be pointed
 *          elsewhere, so that captured sysfs trees are parsed by the same code in tests.
 *   sim    a simulated host. It materializes a sysfs-shaped tree (the same layout the linux backend
 *          reads, so the reading code is shared) in a directory, from a topology file or the built-in
 *          default, and applies the kernel's rules to writes: a group opens once at a time (EBUSY), a
 *          non-viable group cannot join a container (EPERM), binding a host driver to a device of a group
 *          that is attached to a container fails (EINVAL), an unbind is held up while the group is open.
 *          Its tree survives the daemon, as the kernel's state does, so a restarted daemon sees what the
 *          old one left.
 *
 * KVM registration is not here: the kernel lets only the VM's own process use its kvm-vfio device (EIO
 * for anyone else), so libgroupd does it in the VMM (client/kvm-vfio.h).
 *
 * Nothing above this interface knows which backend it has.
 *
 * Threading: the reading calls and the VFIO calls run on the event loop. host_device_unbind(),
 * host_device_bind() and host_device_probe() may block (the kernel holds an unbind up until every copy of
 * the device's fds is closed; rebinding a host driver takes 100+ ms) and are called from worker threads,
 * never on the loop; they may run concurrently for devices of different groups. Backends are
 * thread-safe for that. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "iommu-info.h"
#include "macro.h"

#define HOST_ADDR_MAX 32      /* "0000:00:03.0" and NUL */
#define HOST_DRIVER_MAX 64
#define HOST_TYPE_MAX 32

#define VFIO_PCI_DRIVER "vfio-pci"

typedef struct Host Host;

/* PCI header types (config space byte 0x0e, low 7 bits). vfio-pci binds only HOST_HEADER_NORMAL. */
#define HOST_HEADER_NORMAL 0
#define HOST_HEADER_BRIDGE 1
#define HOST_HEADER_CARDBUS 2

typedef struct HostDevice {
        char address[HOST_ADDR_MAX];
        uint16_t vendor;
        uint16_t device;
        uint32_t class_code;
        uint8_t header_type;                     /* HOST_HEADER_*: from config space; from the class when
                                                  * config cannot be read */
        bool vfio_driver;                        /* its driver is a VFIO one: vfio-pci, or a variant driver
                                                  * (mlx5_vfio_pci...), which shows as ADDR/vfio-dev/ */
        bool vfio_denylisted;                    /* vfio-pci's probe refuses it (vfio_pci_is_denylisted()) */
        bool boot_vga;                           /* ADDR/boot_vga reads 1: the console's display */
        char driver[HOST_DRIVER_MAX];            /* "" when unbound */
        char driver_override[HOST_DRIVER_MAX];   /* "" when "(null)" */
        unsigned group;                          /* UINT_MAX when the device is in no IOMMU group */
} HostDevice;

/* Is d a bridge (PCI-to-PCI, PCIe port, CardBus)? vfio-pci refuses them; the kernel accepts a group with a
 * bridge left driverless or on pcieport. */
bool host_device_is_bridge(const HostDevice *d);

typedef struct HostRegion {
        uint64_t start;
        uint64_t end;
        char type[HOST_TYPE_MAX];
} HostRegion;

typedef struct HostGroup {
        unsigned id;
        char type[HOST_TYPE_MAX];   /* "DMA", "DMA-FQ", "identity", "blocked", or "" when absent */
        HostDevice *devices;        /* sorted by address */
        size_t n_devices;
        HostRegion *regions;
        size_t n_regions;
} HostGroup;

void host_group_done(HostGroup *g);

typedef enum HostKind {
        HOST_LINUX,
        HOST_SIM,
        _HOST_KIND_MAX,
        _HOST_KIND_INVALID = -EINVAL,
} HostKind;

const char *host_kind_to_string(HostKind k);
HostKind host_kind_from_string(const char *s);

typedef struct HostLinuxConfig {
        const char *sysfs_root;     /* NULL: "/sys" */
        const char *dev_root;       /* NULL: "/dev" */
} HostLinuxConfig;

int host_new_linux(const HostLinuxConfig *cfg, Host **ret);
/* The simulated host is made with host_new_sim() (sim/host-sim.h), by main.c and the tests only. */
/* The daemon is exiting: a driver operation held up (the sim's unbind of a device in use) returns at once
 * with -ECANCELED; later ones still work. Call before waiting for the threads that use h, then host_free(). */
void host_stop(Host *h);
Host *host_free(Host *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Host *, host_free);

HostKind host_get_kind(Host *h);

/* Discovery (sysfs; the same code for both backends). */
int host_list_groups(Host *h, unsigned **ret_ids, size_t *ret_n);          /* sorted ascending */
int host_read_group(Host *h, unsigned id, HostGroup *ret);                  /* -ENOENT: no such group */
int host_read_device(Host *h, const char *address, HostDevice *ret);        /* -ENOENT: no such device */
/* The devices bound to driver (none when it is not loaded); free the array with free(). One directory
 * read: cheaper than reading every group when only a driver's devices matter. */
int host_list_driver_devices(Host *h, const char *driver, HostDevice **ret, size_t *ret_n);
/* Accepts "0000:00:03.0" or "00:03.0" (domain 0 assumed); writes the canonical form. -EINVAL when the
 * text is no PCI address. */
int host_parse_pci_address(const char *s, char ret[HOST_ADDR_MAX]);

/* Is a device on this driver compatible with the group being used through VFIO: vfio-pci, no driver,
 * or a driver the kernel allows (pcieport, for bridges)? */
bool host_driver_is_vfio_safe(const char *driver);
/* The same for a device as read: also true on a VFIO variant driver (d->vfio_driver). */
bool host_device_is_vfio_safe(const HostDevice *d);

/* The VFIO variant driver for d, chosen as libvirt does: of the "alias vfio_pci:PATTERN DRIVER" lines of
 * modules.alias (/lib/modules/$(uname -r)/modules.alias on linux; the simulated host's own), those whose
 * PATTERN matches the device's modalias (its "pci:" read as "vfio_pci:"), the one with the fewest
 * wildcards. Only a driver that is loaded counts (groupd does not load modules). 0 with ret "" when there
 * is none. */
int host_vfio_variant_for(Host *h, const HostDevice *d, char ret[HOST_DRIVER_MAX]);
/* The choice itself, on a device's modalias and the text of a modules.alias file. */
int host_pick_vfio_variant(const char *modalias, const char *aliases, char ret[HOST_DRIVER_MAX]);

/* What the host stands on, beyond what a device's class says: the PCI functions under a mounted
 * filesystem's or active swap's block device, the NIC of a default route (the boot VGA device is said by
 * each HostDevice: boot_vga). Read fresh on each call (mounts and routes change); cheap (a few /proc
 * files), but a caller looking at many groups reads it once. */
typedef enum HostUseKind {
        HOST_USE_MOUNT,           /* what: the mount point and block device, "/ on nvme0n1p2" */
        HOST_USE_SWAP,            /* what: the swap device or file */
        HOST_USE_BOOT_VGA,        /* what: "" */
        HOST_USE_ROUTE,           /* what: the interface, "eth0" */
        _HOST_USE_KIND_MAX,
} HostUseKind;

typedef struct HostUse {
        char address[HOST_ADDR_MAX];
        HostUseKind kind;
        char what[128];
} HostUse;

/* Every use found; free the array with free(). A backend that cannot tell one kind leaves it out. */
int host_list_uses(Host *h, HostUse **ret, size_t *ret_n);

/* What changed on the host (a uevent of the pci subsystem, or the simulated host's controls). */
typedef enum HostChangeKind {
        HOST_CHANGE_ADD,          /* a device appeared */
        HOST_CHANGE_REMOVE,       /* a device went away */
        HOST_CHANGE_BIND,         /* a device was bound to driver */
        HOST_CHANGE_UNBIND,       /* a device lost its driver */
        _HOST_CHANGE_KIND_MAX,
        _HOST_CHANGE_KIND_INVALID = -EINVAL,
} HostChangeKind;

typedef struct HostChange {
        HostChangeKind kind;
        char address[HOST_ADDR_MAX];
        char driver[HOST_DRIVER_MAX];   /* HOST_CHANGE_BIND: the new driver */
        unsigned group;                 /* its IOMMU group when the reporter knows it, else UINT_MAX */
} HostChange;

const char *host_change_kind_to_string(HostChangeKind k);
/* A uevent's ACTION ("add", "remove", "bind", "unbind") and PCI_SLOT_NAME/DRIVER as a change; -EINVAL for
 * actions that change nothing groupd cares about ("change", "move", "online"). */
int host_change_from_uevent(const char *action, const char *slot, const char *driver, HostChange *ret);

/* Changes the host reports itself: the simulated host's controls. Returns an fd (owned by the host) that
 * turns readable when host_watch_drain() has something, or -EOPNOTSUPP when the host's changes come as
 * uevents (linux: the caller listens with sd-device). */
int host_watch_fd(Host *h);
/* The changes since the last call; free the array with free(). Never blocks. */
int host_watch_drain(Host *h, HostChange **ret, size_t *ret_n);

/* Driver binding. driver_override NULL or "" clears it. unbind of a device without a driver is 0.
 * bind() writes the address to the named driver's "bind"; probe() writes it to drivers_probe, so that the
 * kernel picks the driver (the override, or a matching host driver). May block: worker threads only. */
int host_device_set_override(Host *h, const char *address, const char *driver);
int host_device_unbind(Host *h, const char *address);
int host_device_bind(Host *h, const char *address, const char *driver);
int host_device_probe(Host *h, const char *address);

/* VFIO. Every fd returned is O_CLOEXEC and belongs to the caller. */
int host_open_container(Host *h, int *ret_fd);                     /* checks VFIO_GET_API_VERSION */
int host_open_group(Host *h, unsigned id, int *ret_fd);            /* -EBUSY when open already */
int host_group_is_viable(Host *h, int group_fd, bool *ret);        /* VFIO_GROUP_GET_STATUS */
int host_group_set_container(Host *h, int group_fd, int container_fd);
/* Picks the best IOMMU type the container supports (Type1v2, Type1, sPAPR v2, sPAPR) with
 * VFIO_CHECK_EXTENSION and sets it. Returns the type in *ret_type. */
int host_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type);

/* The container's DMA facts: VFIO_IOMMU_GET_INFO with its capability chain (type1), or
 * VFIO_IOMMU_SPAPR_TCE_GET_INFO (sPAPR), as iommu_type says (the type set on the container; -EINVAL
 * while none is, as the kernel has no IOMMU driver to ask then). */
int host_container_get_info(Host *h, int container_fd, uint32_t iommu_type, HostIommuInfo *ret);

/* Raises RLIMIT_MEMLOCK of process pid (prlimit()) so that both its soft and hard limit are at least
 * bytes; never lowers either. Needs CAP_SYS_RESOURCE to raise a hard limit. The old limits go to
 * ret_old_soft/ret_old_hard (either may be NULL). Processes are real on either backend, so this is the
 * same for both. */
int host_raise_memlock(Host *h, pid_t pid, uint64_t bytes, uint64_t *ret_old_soft, uint64_t *ret_old_hard);

/* ---------------------------------------------------------------- iommufd and the VFIO device cdev
 *
 * Kernels built with IOMMUFD and VFIO_DEVICE_CDEV have /dev/iommu, and give each device on vfio-pci a
 * character device /dev/vfio/devices/vfioN, named in sysfs by /sys/bus/pci/devices/ADDR/vfio-dev/vfioN.
 * A cdev fd is useless until the VMM binds it to an iommufd (VFIO_DEVICE_BIND_IOMMUFD); binding it while
 * the device's group is open (/dev/vfio/N) fails with EBUSY, and so does opening the group while a cdev
 * of it is bound. So the daemon opens the cdevs and /dev/iommu, never /dev/vfio/N, and binds nothing. */

#define HOST_CDEV_MAX 32      /* "vfio12" and NUL */

/* /dev/iommu exists (the kernel has IOMMUFD). */
bool host_has_iommufd(Host *h);
/* The device's cdev name ("vfio3") from sysfs vfio-dev/: -ENOENT while it has none (not on vfio-pci, or a
 * kernel without VFIO_DEVICE_CDEV). */
int host_device_cdev(Host *h, const char *address, char ret[HOST_CDEV_MAX]);
/* Opens the device's cdev (unbound). -ENOENT: no cdev. */
int host_open_device_cdev(Host *h, const char *address, int *ret_fd);
/* Opens /dev/iommu. */
int host_open_iommufd(Host *h, int *ret_fd);
/* IOMMU_OPTION_RLIMIT_MODE (IOMMU_OPTION_OP_SET / _GET): per-process (true) or per-user (false, the
 * kernel's default) memlock accounting on this iommufd. Setting needs CAP_SYS_RESOURCE (-EPERM). */
int host_iommufd_set_rlimit_mode(Host *h, int iommufd, bool per_process);
int host_iommufd_get_rlimit_mode(Host *h, int iommufd, bool *ret_per_process);
/* What an IOAS of this iommufd may map, from a scratch IOAS (IOMMU_IOAS_ALLOC, IOMMU_IOAS_IOVA_RANGES,
 * IOMMU_DESTROY): the IOVA ranges (HOST_IOMMU_IOVA) and nothing else. Before a device is attached (the
 * daemon attaches none) that is the whole space the iommufd allows; the reserved regions of the groups
 * come on top (sysfs). Page sizes and IOMMU_GET_HW_INFO need a bound device: not here. */
int host_iommufd_iova_ranges(Host *h, int iommufd, HostIommuInfo *ret);

/* ---------------------------------------------------------------- device-node access (node grants)
 *
 * A node is named relative to the dev root ("vfio/3"). Access is granted with a POSIX ACL entry for the
 * uid (the xattr system.posix_acl_access, written without libacl), which leaves the node's owner and
 * group as udev made them; the node's owner (root) may do that without CAP_FOWNER or CAP_CHOWN. The
 * restore puts back exactly what was read before: the ACL (or its absence) and the mode. */

#define HOST_ACL_MAX 1024     /* bytes of system.posix_acl_access: 4 + 8 per entry */
#define HOST_NODE_MAX 64      /* "vfio/devices/vfio12" */

typedef struct HostNodeAccess {
        uid_t uid;
        gid_t gid;
        mode_t mode;               /* permission bits (07777) */
        bool has_acl;              /* an extended ACL was set */
        size_t acl_size;
        uint8_t acl[HOST_ACL_MAX]; /* the xattr's bytes, as the kernel gave them */
} HostNodeAccess;

int host_node_read_access(Host *h, const char *node, HostNodeAccess *ret);
/* Adds (or widens) an ACL entry giving uid read and write, with the mask recomputed; *ret_before (may be
 * NULL) gets what was there. */
int host_node_grant(Host *h, const char *node, uid_t uid, HostNodeAccess *ret_before);
/* Puts back the ACL (or removes it) and the mode, as before. -ENOENT when the node is gone (the kernel
 * removes /dev/vfio/N once no device of the group is on vfio-pci: nothing is left to restore then). */
int host_node_restore(Host *h, const char *node, const HostNodeAccess *before);
/* ACL bytes as text, "u::rw-,u:1000:rw-,g::---,m::rw-,o::---", for logs and tests; "" when none. */
void host_acl_to_text(const uint8_t *acl, size_t size, char *buf, size_t buf_size);
