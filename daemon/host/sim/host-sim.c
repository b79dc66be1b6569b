/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The simulated host.
 *
 * The "kernel state" is a sysfs-shaped tree in state_dir/sys, made from the topology the first time and
 * reused as it is afterwards (the kernel's state outlives the daemon):
 *
 *   sys/devices/pciDDDD:BB/ADDR/{vendor,device,class,driver_override}
 *   sys/devices/pciDDDD:BB/ADDR/iommu_group -> ../../../kernel/iommu_groups/N
 *   sys/devices/pciDDDD:BB/ADDR/driver      -> ../../../bus/pci/drivers/NAME   (when bound)
 *   sys/kernel/iommu_groups/N/{type,reserved_regions}
 *   sys/kernel/iommu_groups/N/devices/ADDR  -> ../../../../devices/pciDDDD:BB/ADDR
 *   sys/bus/pci/devices/ADDR                -> ../../../devices/pciDDDD:BB/ADDR
 *   sys/bus/pci/drivers/NAME/{bind,unbind}, sys/bus/pci/drivers/NAME/ADDR -> the device
 *   sys/bus/pci/drivers_probe
 *
 * so host-sysfs.c reads it as it reads /sys. What the kernel would know but sysfs does not show (the
 * driver a device matches when probed: its "native" driver) comes from the topology. Sim-only
 * bookkeeping lives in state_dir/sim/: usage-N counts the requests served on group N's fds.
 *
 * Writes follow the kernel's rules (see the functions). /dev/vfio is modelled with real fds: each open
 * group or container is one end of a SOCK_SEQPACKET socket pair; the sim keeps the other end. A responder
 * thread polls those ends: when every copy of a client end is closed it sees POLLHUP and closes the
 * group (detaching it from its container, waking an unbind that waits for it). It also answers text
 * requests, so that a stand-in VMM can show it really holds the group:
 *
 *   on a group fd      "STATUS"       -> "group=3 viable=1 container=yes devices=0000:03:00.0,0000:03:00.1"
 *                      "DEVICE ADDR"  -> "device=0000:03:00.1 vendor=0x8086 device=0x100e driver=vfio-pci"
 *                                        ("driver=none" when unbound), or "error=ENODEV" when ADDR is
 *                                        not in the group
 *   on a container fd  "STATUS"       -> "container iommu=type1v2 groups=1,3" ("iommu=none" until set)
 *   anything else                     -> "error=EINVAL"
 *
 * With the topology's "cdev" line (a kernel with IOMMUFD and VFIO_DEVICE_CDEV) there are also:
 *
 *   on an iommufd      "STATUS"       -> "iommufd rlimit-mode=process devices=0000:03:00.0" ("user" until
 *                                        IOMMU_OPTION_RLIMIT_MODE is set; the devices bound to it)
 *   on a device cdev   "BIND" with the iommufd attached (SCM_RIGHTS): VFIO_DEVICE_BIND_IOMMUFD ->
 *                                        "bound device=0000:03:00.0", or "error=EBUSY" while the group is
 *                                        open, "error=EINVAL" bound already or no iommufd of ours attached
 *                      "STATUS"       -> "device=0000:03:00.0 vendor=0x1234 device=0x11e8 driver=vfio-pci
 *                                        bound=yes"; before the bind every request but BIND gets
 *                                        "error=EINVAL", as the kernel answers an unbound cdev
 *
 * and the dev tree state_dir/dev holds stand-ins of the device nodes (regular files, made and removed as
 * the kernel makes and removes the nodes): vfio/N while a device of group N is on vfio-pci, and with
 * "cdev" iommu and vfio/devices/vfioN. Their owner, mode and ACL are what node grants change; the fds
 * handed out are the socket ends above, not opens of these files.
 *
 * One message per request and per reply, no trailing newline (a trailing newline in a request is
 * ignored). Every request on a group fd counts in usage-N.
 *
 * Errors of the VFIO calls, as the kernel gives them: open of a group none of whose devices is on
 * vfio-pci -ENOENT (no /dev/vfio/N), of an open group -EBUSY; SET_CONTAINER of a group that is not viable
 * -EPERM, of a group already in a container -EINVAL, with a container fd that is no container of ours
 * -EINVAL; SET_IOMMU with no group attached or the type set already -EINVAL. A group fd that is no
 * group of ours gets -ENOTTY (an ioctl the file does not know).
 *
 * Locking: one mutex guards the sim's state and the tree's writes; nothing blocks while holding it but
 * pthread_cond_wait(), which drops it. Peer ends are closed by the responder thread only (or by
 * host_free() after it stopped), so the poll() it runs unlocked never sees an fd change under it. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "host-internal.h"
#include "host-sim.h"
#include "log.h"
#include "sim-topology.h"

#define SIM_REQUEST_MAX 256
#define SIM_REPLY_MAX 4096

typedef enum SimFileKind {
        SIM_FILE_GROUP,
        SIM_FILE_CONTAINER,
        SIM_FILE_DEVICE,        /* a device cdev */
        SIM_FILE_IOMMUFD,
} SimFileKind;

typedef struct SimFile SimFile;
struct SimFile {
        SimFileKind kind;
        int peer_fd;            /* our end; -EBADF once closed */
        dev_t client_dev;       /* identity of the client end, to recognize the fds we handed out */
        ino_t client_ino;
        bool closed;            /* every copy of the client end is gone */
        unsigned group;         /* SIM_FILE_GROUP */
        SimFile *container;     /* SIM_FILE_GROUP: the container it is attached to */
        uint32_t iommu_type;    /* SIM_FILE_CONTAINER: 0 until set */
        char address[HOST_ADDR_MAX]; /* SIM_FILE_DEVICE */
        SimFile *iommufd;       /* SIM_FILE_DEVICE: the iommufd it is bound to, or NULL */
        bool rlimit_process;    /* SIM_FILE_IOMMUFD: IOMMU_OPTION_RLIMIT_MODE set to per-process */
        SimFile *next;
};

typedef struct SimGroupState {
        SimFile *file;          /* the open group, or NULL */
        uint64_t usage;
} SimGroupState;

typedef struct Sim {
        SimTopology *topology;
        SimGroupState *groups;  /* parallel to topology->groups */
        int state_fd;           /* state_dir */
        int dev_fd;             /* state_dir/dev (also h->dev_fd, as O_PATH) */
        int book_fd;            /* state_dir/sim */

        pthread_mutex_t mutex;
        pthread_cond_t cond;    /* broadcast when a file closes, and when stopping */
        SimFile *files;
        unsigned n_waiters;     /* unbinds waiting for a group to close */
        bool stopping;

        int wake_fd;            /* eventfd: rebuild the poll set, or stop */
        pthread_t thread;
        bool thread_started;

        /* Behind the daemon's back: the control fifo (state_dir/sim/control), what it removed, what the
         * host stands on, and the changes the watcher has not drained yet. */
        int control_fd;
        char control_buf[1024];
        size_t control_len;
        bool *removed;          /* parallel to topology->devices */
        HostUse *uses;
        size_t n_uses, allocated_uses;
        HostChange *changes;
        size_t n_changes, allocated_changes;
        int change_fd;          /* eventfd: changes to drain */
} Sim;

static Sim *sim_of(Host *h) {
        return h->data;
}

static SimGroupState *sim_group_state(Sim *s, unsigned id) {
        const SimTopoGroup *g = sim_topology_find_group(s->topology, id);
        if (!g)
                return NULL;
        return &s->groups[g - s->topology->groups];
}

static void sim_wake(Sim *s) {
        uint64_t one = 1;
        (void) !write(s->wake_fd, &one, sizeof one);
}

/* The topology's device at address, unless a control removed it. */
static const SimTopoDevice *sim_device(Sim *s, const char *address) {
        const SimTopoDevice *td = sim_topology_find_device(s->topology, address);
        if (!td || (s->removed && s->removed[td - s->topology->devices]))
                return NULL;
        return td;
}

/* ---------------------------------------------------------------- small file helpers */

static int mkdir_at(int dir_fd, const char *path) {
        if (mkdirat(dir_fd, path, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int write_new_file_at(int dir_fd, const char *path, const char *text) {
        _cleanup_close_ int fd = -EBADF;
        size_t l = strlen(text);

        fd = openat(dir_fd, path, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC|O_NOCTTY, 0644);
        if (fd < 0)
                return -errno;
        if (l > 0) {
                ssize_t n = write(fd, text, l);
                if (n < 0)
                        return -errno;
                if ((size_t) n != l)
                        return -EIO;
        }
        return 0;
}

/* Replaces dir/name with a file holding text, atomically (readers see the old or the new text). */
static int replace_file_at(int dir_fd, const char *dir, const char *name, const char *text) {
        char tmp[PATH_MAX], path[PATH_MAX];
        int r;

        (void) snprintf(tmp, sizeof tmp, "%s%s.#%s", dir, *dir ? "/" : "", name);
        (void) snprintf(path, sizeof path, "%s%s%s", dir, *dir ? "/" : "", name);
        r = write_new_file_at(dir_fd, tmp, text);
        if (r < 0)
                return r;
        if (renameat(dir_fd, tmp, dir_fd, path) < 0) {
                r = -errno;
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        return 0;
}

static int rm_rf_children(int fd);

/* Removes dir_fd/name and everything below it; no symlink is followed. */
static int rm_rf_at(int dir_fd, const char *name) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (unlinkat(dir_fd, name, 0) >= 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;

        fd = openat(dir_fd, name, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = rm_rf_children(fd);
        if (r < 0)
                return r;
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0)
                return -errno;
        return 0;
}

static int rm_rf_entry(const struct dirent64 *de, void *userdata) {
        int fd = *(const int *) userdata;

        if (de->d_type == DT_DIR)
                return rm_rf_at(fd, de->d_name);
        if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
                return errno == EISDIR ? rm_rf_at(fd, de->d_name) : -errno;
        return 0;
}

static int rm_rf_children(int fd) {
        return dir_for_each(fd, rm_rf_entry, &fd);
}

/* ---------------------------------------------------------------- the tree */

/* "devices/pci0000:01/0000:01:00.0": where a device's directory lives, relative to sys/. */
static void device_dir(const char *address, char *buf, size_t size) {
        (void) snprintf(buf, size, "devices/pci%.7s/%s", address, address);
}

static int tree_add_driver(int sys_fd, const char *driver) {
        char path[128];
        int r;

        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s", driver);
        r = mkdir_at(sys_fd, path);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s/bind", driver);
        r = write_new_file_at(sys_fd, path, "");
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s/unbind", driver);
        return write_new_file_at(sys_fd, path, "");
}

static bool tree_has_driver(int sys_fd, const char *driver) {
        char path[128];

        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s", driver);
        return faccessat(sys_fd, path, F_OK, 0) >= 0;
}

/* Binds in the tree. A VFIO driver (vfio-pci, a variant) gives the device a vfio-dev/ directory, as the
 * kernel's vfio_register_group_dev() does. */
static int tree_bind(int sys_fd, const SimTopology *t, const char *address, const char *driver) {
        char dir[128], path[PATH_MAX], target[PATH_MAX];
        int r;

        device_dir(address, dir, sizeof dir);
        (void) snprintf(path, sizeof path, "%s/driver", dir);
        (void) snprintf(target, sizeof target, "../../../bus/pci/drivers/%s", driver);
        if (symlinkat(target, sys_fd, path) < 0)
                return -errno;

        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s/%s", driver, address);
        (void) snprintf(target, sizeof target, "../../../../%s", dir);
        if (symlinkat(target, sys_fd, path) < 0 && errno != EEXIST)
                return -errno;
        if (sim_topology_is_vfio_driver(t, driver)) {
                (void) snprintf(path, sizeof path, "%s/vfio-dev", dir);
                r = mkdir_at(sys_fd, path);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int tree_unbind(int sys_fd, const char *address, const char *driver) {
        char dir[128], path[PATH_MAX];

        device_dir(address, dir, sizeof dir);
        (void) snprintf(path, sizeof path, "%s/driver", dir);
        if (unlinkat(sys_fd, path, 0) < 0 && errno != ENOENT)
                return -errno;
        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s/%s", driver, address);
        if (unlinkat(sys_fd, path, 0) < 0 && errno != ENOENT)
                return -errno;
        (void) snprintf(path, sizeof path, "%s/vfio-dev", dir);
        return rm_rf_at(sys_fd, path);
}

static int tree_add_group(int sys_fd, const SimTopoGroup *g) {
        _cleanup_free_ char *regions = NULL;
        char path[PATH_MAX], text[64];
        size_t size = 0;
        FILE *f;
        int r;

        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u", g->id);
        r = mkdir_at(sys_fd, path);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u/devices", g->id);
        r = mkdir_at(sys_fd, path);
        if (r < 0)
                return r;
        if (!isempty(g->type)) {
                (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u/type", g->id);
                (void) snprintf(text, sizeof text, "%s\n", g->type);
                r = write_new_file_at(sys_fd, path, text);
                if (r < 0)
                        return r;
        }

        f = open_memstream(&regions, &size);
        if (!f)
                return -ENOMEM;
        for (size_t k = 0; k < g->n_regions; k++)
                fprintf(f, "0x%016" PRIx64 " 0x%016" PRIx64 " %s\n", g->regions[k].start,
                        g->regions[k].end, g->regions[k].type);
        if (fclose(f) != 0)
                return -ENOMEM;
        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u/reserved_regions", g->id);
        return write_new_file_at(sys_fd, path, regions ?: "");
}

/* The first 64 bytes of config space (what anyone may read): ids, class, header type. */
static int tree_write_config(int sys_fd, const char *dir, const SimTopoDevice *d) {
        _cleanup_close_ int fd = -EBADF;
        char path[PATH_MAX];
        uint8_t c[64] = {};

        c[0] = (uint8_t) d->vendor;
        c[1] = (uint8_t) (d->vendor >> 8);
        c[2] = (uint8_t) d->device;
        c[3] = (uint8_t) (d->device >> 8);
        c[9] = (uint8_t) d->class_code;
        c[10] = (uint8_t) (d->class_code >> 8);
        c[11] = (uint8_t) (d->class_code >> 16);
        c[14] = d->header_type;
        (void) snprintf(path, sizeof path, "%s/config", dir);
        fd = openat(sys_fd, path, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC|O_NOCTTY, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, c, sizeof c) != (ssize_t) sizeof c)
                return -EIO;
        return 0;
}

/* One device, bound to driver ("" none), with its override. */
static int tree_add_device(int sys_fd, const SimTopology *t, const SimTopoDevice *d, const char *driver,
                           const char *override) {
        char dir[128], path[PATH_MAX], target[PATH_MAX], text[128];
        int r;

        (void) snprintf(path, sizeof path, "devices/pci%.7s", d->address);
        r = mkdir_at(sys_fd, path);
        if (r < 0)
                return r;
        device_dir(d->address, dir, sizeof dir);
        r = mkdir_at(sys_fd, dir);
        if (r < 0)
                return r;

        (void) snprintf(path, sizeof path, "%s/vendor", dir);
        (void) snprintf(text, sizeof text, "0x%04x\n", d->vendor);
        r = write_new_file_at(sys_fd, path, text);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof path, "%s/device", dir);
        (void) snprintf(text, sizeof text, "0x%04x\n", d->device);
        r = write_new_file_at(sys_fd, path, text);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof path, "%s/class", dir);
        (void) snprintf(text, sizeof text, "0x%06x\n", d->class_code);
        r = write_new_file_at(sys_fd, path, text);
        if (r < 0)
                return r;
        r = tree_write_config(sys_fd, dir, d);
        if (r < 0)
                return r;
        /* modalias as the kernel writes it: pci:vVVVVVVVVdDDDDDDDDsvSSSSSSSSsdDDDDDDDDbcBBscSSiII. */
        (void) snprintf(path, sizeof path, "%s/modalias", dir);
        (void) snprintf(text, sizeof text, "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X\n", d->vendor, d->device,
                        d->vendor, 0u, (d->class_code >> 16) & 0xff, (d->class_code >> 8) & 0xff,
                        d->class_code & 0xff);
        r = write_new_file_at(sys_fd, path, text);
        if (r < 0)
                return r;
        if ((d->class_code >> 8) == 0x0300) {
                (void) snprintf(path, sizeof path, "%s/boot_vga", dir);
                r = write_new_file_at(sys_fd, path, d->boot_vga ? "1\n" : "0\n");
                if (r < 0)
                        return r;
        }
        (void) snprintf(path, sizeof path, "%s/driver_override", dir);
        (void) snprintf(text, sizeof text, "%s\n", isempty(override) ? "(null)" : override);
        r = write_new_file_at(sys_fd, path, text);
        if (r < 0)
                return r;

        (void) snprintf(path, sizeof path, "%s/iommu_group", dir);
        (void) snprintf(target, sizeof target, "../../../kernel/iommu_groups/%u", d->group);
        if (symlinkat(target, sys_fd, path) < 0 && errno != EEXIST)
                return -errno;
        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u/devices/%s", d->group, d->address);
        (void) snprintf(target, sizeof target, "../../../../%s", dir);
        if (symlinkat(target, sys_fd, path) < 0 && errno != EEXIST)
                return -errno;
        (void) snprintf(path, sizeof path, "bus/pci/devices/%s", d->address);
        (void) snprintf(target, sizeof target, "../../../%s", dir);
        if (symlinkat(target, sys_fd, path) < 0 && errno != EEXIST)
                return -errno;

        if (!isempty(driver))
                return tree_bind(sys_fd, t, d->address, driver);
        return 0;
}

/* The device leaves the tree, as after a write to its remove attribute; its group goes with its last
 * device. */
static int tree_remove_device(int sys_fd, const SimTopoDevice *d, const char *driver) {
        char dir[128], path[PATH_MAX];
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!isempty(driver)) {
                r = tree_unbind(sys_fd, d->address, driver);
                if (r < 0)
                        return r;
        }
        (void) snprintf(path, sizeof path, "bus/pci/devices/%s", d->address);
        (void) unlinkat(sys_fd, path, 0);
        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u/devices/%s", d->group, d->address);
        (void) unlinkat(sys_fd, path, 0);
        device_dir(d->address, dir, sizeof dir);
        r = rm_rf_at(sys_fd, dir);
        if (r < 0)
                return r;

        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u/devices", d->group);
        fd = openat(sys_fd, path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd >= 0) {
                char buf[1024];
                bool empty = true;
                for (;;) {
                        ssize_t k = getdents64(fd, buf, sizeof buf);
                        if (k <= 0)
                                break;
                        for (ssize_t off = 0; off < k;) {
                                const struct dirent64 *de = (const struct dirent64 *) (buf + off);
                                off += de->d_reclen;
                                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                                        empty = false;
                        }
                }
                if (empty) {
                        (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u", d->group);
                        return rm_rf_at(sys_fd, path);
                }
        }
        return 0;
}

static int tree_build(int sys_fd, const SimTopology *t) {
        static const char *const dirs[] = {
                "kernel", "kernel/iommu_groups", "devices", "bus", "bus/pci", "bus/pci/devices",
                "bus/pci/drivers",
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = mkdir_at(sys_fd, dirs[i]);
                if (r < 0)
                        return r;
        }
        r = write_new_file_at(sys_fd, "bus/pci/drivers_probe", "");
        if (r < 0)
                return r;

        for (size_t i = 0; i < t->n_groups; i++) {
                r = tree_add_group(sys_fd, &t->groups[i]);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < t->n_devices; i++) {
                const SimTopoDevice *d = &t->devices[i];
                const char *drv[] = { d->native, d->driver, d->variant };

                for (size_t k = 0; k < ELEMENTSOF(drv); k++)
                        if (!isempty(drv[k]) && !tree_has_driver(sys_fd, drv[k])) {
                                r = tree_add_driver(sys_fd, drv[k]);
                                if (r < 0)
                                        return r;
                        }
                r = tree_add_device(sys_fd, t, d, d->driver, d->override);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---------------------------------------------------------------- the dev tree */

static void cdev_name(const Sim *s, const SimTopoDevice *td, char buf[HOST_CDEV_MAX]) {
        (void) snprintf(buf, HOST_CDEV_MAX, "vfio%zu", (size_t) (td - s->topology->devices));
}

/* A node stand-in as the kernel makes one: root's (the daemon's), mode 0600, no ACL. Kept if present. */
static int dev_node_make(int dev_fd, const char *path, mode_t mode) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dev_fd, path, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC|O_NOFOLLOW|O_NOCTTY, mode);
        if (fd < 0)
                return errno == EEXIST ? 0 : -errno;
        if (fchmod(fd, mode) < 0) /* past the umask */
                return -errno;
        return 0;
}

static int dev_node_remove(int dev_fd, const char *path) {
        if (unlinkat(dev_fd, path, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* Makes the device's nodes and its vfio-dev/vfioN match its driver, as the kernel does when a VFIO driver
 * (vfio-pci or a variant) binds or unbinds it: the cdev while it is on one (with "cdev"), the group node
 * while any device of the group is. (tree_bind() makes vfio-dev/ itself for a VFIO driver, and
 * tree_unbind() takes it away.) Mutex held (or the sim not yet running). */
static int sim_dev_sync(Host *h, Sim *s, const SimTopoDevice *td) {
        char driver[HOST_DRIVER_MAX], dir[128], path[PATH_MAX], cdev[HOST_CDEV_MAX];
        bool on_vfio, group_on_vfio = false;
        int r;

        r = sysfs_read_device_driver(h->sysfs_fd, td->address, driver);
        if (r < 0)
                return r;
        on_vfio = !isempty(driver) && sim_topology_is_vfio_driver(s->topology, driver);
        cdev_name(s, td, cdev);
        device_dir(td->address, dir, sizeof dir);

        if (on_vfio && s->topology->cdev) {
                (void) snprintf(path, sizeof path, "%s/vfio-dev", dir);
                r = mkdir_at(h->sysfs_fd, path);
                if (r >= 0) {
                        (void) snprintf(path, sizeof path, "%s/vfio-dev/%s", dir, cdev);
                        r = mkdir_at(h->sysfs_fd, path);
                }
                if (r >= 0) {
                        (void) snprintf(path, sizeof path, "vfio/devices/%s", cdev);
                        r = dev_node_make(s->dev_fd, path, 0600);
                }
        } else {
                (void) snprintf(path, sizeof path, "%s/vfio-dev/%s", dir, cdev);
                r = rm_rf_at(h->sysfs_fd, path);
                if (r >= 0) {
                        (void) snprintf(path, sizeof path, "vfio/devices/%s", cdev);
                        r = dev_node_remove(s->dev_fd, path);
                }
        }
        if (r < 0)
                return r;

        for (size_t i = 0; i < s->topology->n_devices && !group_on_vfio; i++) {
                const SimTopoDevice *o = &s->topology->devices[i];
                if (o->group != td->group)
                        continue;
                if (o == td)
                        group_on_vfio = on_vfio;
                else if (sysfs_read_device_driver(h->sysfs_fd, o->address, driver) >= 0)
                        group_on_vfio = !isempty(driver) && sim_topology_is_vfio_driver(s->topology, driver);
        }
        (void) snprintf(path, sizeof path, "vfio/%u", td->group);
        return group_on_vfio ? dev_node_make(s->dev_fd, path, 0600) : dev_node_remove(s->dev_fd, path);
}

typedef struct DevSweep {
        int dir_fd;
        const HostDevice *vfio;         /* the devices on vfio-pci */
        size_t n_vfio;
        const Sim *s;
        bool cdevs;                     /* sweeping vfio/devices/ (else vfio/) */
} DevSweep;

static int dev_sweep_entry(const struct dirent64 *de, void *userdata) {
        DevSweep *w = userdata;
        bool keep = false;

        for (size_t i = 0; i < w->n_vfio && !keep; i++) {
                char name[HOST_CDEV_MAX];
                const SimTopoDevice *td;

                if (w->cdevs) {
                        td = sim_topology_find_device(w->s->topology, w->vfio[i].address);
                        if (!td || !w->s->topology->cdev)
                                continue;
                        cdev_name(w->s, td, name);
                } else
                        (void) snprintf(name, sizeof name, "%u", w->vfio[i].group);
                keep = streq(name, de->d_name);
        }
        if (keep || streq(de->d_name, "devices"))
                return 0;
        return dev_node_remove(w->dir_fd, de->d_name);
}

/* At start: the dev tree as the tree's drivers say (one read of vfio-pci's directory, so that thousands
 * of devices cost nothing). */
static int sim_dev_setup(Host *h, Sim *s, const char *state_dir) {
        _cleanup_free_ HostDevice *vfio = NULL;
        size_t n_vfio = 0;
        int r;

        r = mkdir_at(s->state_fd, "dev");
        if (r >= 0) {
                s->dev_fd = openat(s->state_fd, "dev", O_PATH|O_DIRECTORY|O_CLOEXEC);
                r = s->dev_fd < 0 ? -errno : 0;
        }
        if (r >= 0)
                r = mkdir_at(s->dev_fd, "vfio");
        if (r >= 0)
                r = mkdir_at(s->dev_fd, "vfio/devices");
        if (r >= 0)
                r = s->topology->cdev ? dev_node_make(s->dev_fd, "iommu", 0660) : dev_node_remove(s->dev_fd, "iommu");
        if (r >= 0)
                r = sysfs_list_driver_devices(h->sysfs_fd, NULL, VFIO_PCI_DRIVER, &vfio, &n_vfio);
        for (size_t i = 0; r >= 0 && i < n_vfio; i++) {
                const SimTopoDevice *td = sim_topology_find_device(s->topology, vfio[i].address);
                if (td)
                        r = sim_dev_sync(h, s, td);
        }
        for (int k = 0; r >= 0 && k < 2; k++) {
                _cleanup_close_ int fd = openat(s->dev_fd, k ? "vfio/devices" : "vfio",
                                                O_RDONLY|O_DIRECTORY|O_CLOEXEC);
                DevSweep w = { .dir_fd = fd, .vfio = vfio, .n_vfio = n_vfio, .s = s, .cdevs = k };
                r = fd < 0 ? -errno : dir_for_each(fd, dev_sweep_entry, &w);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to set up the simulated dev tree in %s/dev: %m", state_dir);
        h->dev_fd = fcntl(s->dev_fd, F_DUPFD_CLOEXEC, 3);
        if (h->dev_fd < 0)
                return log_error_errno(-errno, "Failed to duplicate an fd: %m");
        return 0;
}

/* Checks that a tree left by an earlier run holds what the topology describes. */
static int tree_verify(int sys_fd, SysfsCache *cache, const SimTopology *t, const char *where) {
        _cleanup_free_ unsigned *ids = NULL;
        size_t n_ids = 0, n_devices = 0;
        int r;

#define MISMATCH(fmt, ...)                                                                                   \
        log_error_errno(-EEXIST, "The simulated host in %s was made from another topology: " fmt ". "      \
                        "Remove that directory to start afresh, or use the topology it was made from.",    \
                        where, ##__VA_ARGS__)

        r = sysfs_list_groups(sys_fd, &ids, &n_ids);
        if (r < 0)
                return log_error_errno(r, "Failed to list the groups of the simulated host in %s: %m", where);
        if (n_ids != t->n_groups)
                return MISMATCH("it has %zu groups, the topology %zu", n_ids, t->n_groups);

        for (size_t i = 0; i < n_ids; i++) {
                _cleanup_(host_group_done) HostGroup g = {};
                const SimTopoGroup *tg = &t->groups[i];

                if (ids[i] != tg->id)
                        return MISMATCH("it has group %u, the topology group %u", ids[i], tg->id);
                r = sysfs_read_group(sys_fd, cache, NULL, ids[i], &g);
                if (r < 0)
                        return log_error_errno(r, "Failed to read group %u of the simulated host in %s: %m",
                                               ids[i], where);
                if (!streq(g.type, tg->type))
                        return MISMATCH("group %u has type \"%s\", the topology \"%s\"", g.id, g.type,
                                        tg->type);
                if (g.n_regions != tg->n_regions)
                        return MISMATCH("group %u has %zu reserved regions, the topology %zu", g.id,
                                        g.n_regions, tg->n_regions);
                for (size_t k = 0; k < g.n_regions; k++)
                        if (g.regions[k].start != tg->regions[k].start ||
                            g.regions[k].end != tg->regions[k].end ||
                            !streq(g.regions[k].type, tg->regions[k].type))
                                return MISMATCH("group %u has other reserved regions", g.id);

                for (size_t k = 0; k < g.n_devices; k++) {
                        const HostDevice *d = &g.devices[k];
                        const SimTopoDevice *td = sim_topology_find_device(t, d->address);

                        if (!td)
                                return MISMATCH("device %s is not in the topology", d->address);
                        if (td->group != g.id)
                                return MISMATCH("device %s is in group %u, in the topology in group %u",
                                                d->address, g.id, td->group);
                        if (td->vendor != d->vendor || td->device != d->device ||
                            td->class_code != d->class_code)
                                return MISMATCH("device %s is %04x:%04x class 0x%06x, in the topology "
                                                "%04x:%04x class 0x%06x", d->address, d->vendor, d->device,
                                                d->class_code, td->vendor, td->device, td->class_code);
                }
                n_devices += g.n_devices;
        }
        if (n_devices != t->n_devices) {
                for (size_t i = 0; i < t->n_devices; i++) {
                        char path[64];
                        (void) snprintf(path, sizeof path, "bus/pci/devices/%s", t->devices[i].address);
                        if (faccessat(sys_fd, path, F_OK, 0) < 0)
                                return MISMATCH("device %s of the topology is missing",
                                                t->devices[i].address);
                }
                return MISMATCH("it has %zu devices, the topology %zu", n_devices, t->n_devices);
        }
#undef MISMATCH
        return 0;
}

/* ---------------------------------------------------------------- open files */

static SimFile *sim_find_file(Sim *s, int fd, SimFileKind kind) {
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                return NULL;
        for (SimFile *f = s->files; f; f = f->next)
                if (!f->closed && f->kind == kind && f->client_dev == st.st_dev && f->client_ino == st.st_ino)
                        return f;
        return NULL;
}

static bool container_has_groups(Sim *s, SimFile *c) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_GROUP && !f->closed && f->container == c)
                        return true;
        return false;
}

static bool iommufd_has_devices(Sim *s, SimFile *i) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_DEVICE && !f->closed && f->iommufd == i)
                        return true;
        return false;
}

/* Every copy of the client end is closed: the kernel's release(). Mutex held. */
static void sim_file_release(Sim *s, SimFile *f) {
        if (f->closed)
                return;
        f->closed = true;

        if (f->kind == SIM_FILE_GROUP) {
                SimGroupState *gs = sim_group_state(s, f->group);
                SimFile *c = f->container;

                if (gs && gs->file == f)
                        gs->file = NULL;
                f->container = NULL;
                /* A container without groups loses its IOMMU type (the kernel's "deprivileged"). */
                if (c && !container_has_groups(s, c))
                        c->iommu_type = 0;
        }
        if (f->kind == SIM_FILE_DEVICE)
                f->iommufd = NULL; /* the kernel unbinds a cdev when its last fd closes */

        (void) pthread_cond_broadcast(&s->cond);
        sim_wake(s);
}

/* Has the client end of an open file been closed everywhere? Notices it at once, without waiting for the
 * responder (which may not have run yet). Mutex held. */
static bool sim_file_check_closed(Sim *s, SimFile *f) {
        struct pollfd p = { .fd = f->peer_fd, .events = POLLIN };

        if (f->closed)
                return true;
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP|POLLERR|POLLNVAL))) {
                sim_file_release(s, f);
                return true;
        }
        return false;
}

static bool sim_group_is_open(Sim *s, SimGroupState *gs) {
        return gs->file && !sim_file_check_closed(s, gs->file);
}

/* A cdev of the device is open (bound or not): the kernel's unbind waits for it. */
static bool sim_device_is_open(Sim *s, const char *address) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_DEVICE && streq(f->address, address) && !sim_file_check_closed(s, f))
                        return true;
        return false;
}

/* A cdev of a device of the group is bound to an iommufd: the group cannot be opened (EBUSY). */
static bool sim_group_has_bound_cdev(Sim *s, unsigned group) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_DEVICE && f->group == group && f->iommufd && !sim_file_check_closed(s, f))
                        return true;
        return false;
}

static int sim_file_new(Sim *s, SimFileKind kind, unsigned group, SimFile **ret_file, int *ret_fd) {
        _cleanup_close_ int client = -EBADF, peer = -EBADF;
        SimFile *f;
        struct stat st;
        int pair[2], r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        client = pair[0];
        peer = pair[1];
        r = fd_set_nonblock(peer, true);
        if (r < 0)
                return r;
        if (fstat(client, &st) < 0)
                return -errno;

        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *f = (SimFile) {
                .kind = kind,
                .peer_fd = TAKE_FD(peer),
                .client_dev = st.st_dev,
                .client_ino = st.st_ino,
                .group = group,
                .next = s->files,
        };
        s->files = f;
        sim_wake(s);

        if (ret_file)
                *ret_file = f;
        *ret_fd = TAKE_FD(client);
        return 0;
}

/* Closes the peer ends of released files and frees what nothing refers to. Responder thread or
 * host_free() only; mutex held. */
static void sim_reap(Sim *s) {
        for (SimFile **p = &s->files; *p;) {
                SimFile *f = *p;

                if (!f->closed) {
                        p = &f->next;
                        continue;
                }
                f->peer_fd = safe_close(f->peer_fd);
                if ((f->kind == SIM_FILE_CONTAINER && container_has_groups(s, f)) ||
                    (f->kind == SIM_FILE_IOMMUFD && iommufd_has_devices(s, f))) {
                        p = &f->next;
                        continue;
                }
                *p = f->next;
                free(f);
        }
}

/* ---------------------------------------------------------------- behind the daemon's back */

/* Mutex held. A change for the watcher; dropped when out of memory (the watcher rereads anyway). */
static void sim_queue_change(Sim *s, HostChangeKind kind, const char *address, const char *driver) {
        const SimTopoDevice *td = sim_topology_find_device(s->topology, address);

        if (ARRAY_GROW(s->changes, s->allocated_changes, s->n_changes, 8) < 0)
                return;
        s->changes[s->n_changes] = (HostChange) { .kind = kind, .group = td ? td->group : UINT_MAX };
        (void) snprintf(s->changes[s->n_changes].address, HOST_ADDR_MAX, "%s", address);
        (void) snprintf(s->changes[s->n_changes].driver, HOST_DRIVER_MAX, "%s", strempty(driver));
        s->n_changes++;
        {
                uint64_t one = 1;
                (void) !write(s->change_fd, &one, sizeof one);
        }
}

static void sim_set_use(Sim *s, const char *address, HostUseKind kind, const char *what, bool on) {
        for (size_t i = 0; i < s->n_uses; i++)
                if (s->uses[i].kind == kind && streq(s->uses[i].address, address)) {
                        if (on)
                                (void) snprintf(s->uses[i].what, sizeof s->uses[i].what, "%s", strempty(what));
                        else
                                s->uses[i] = s->uses[--s->n_uses];
                        return;
                }
        if (on)
                (void) host_use_add(&s->uses, &s->n_uses, &s->allocated_uses, address, kind, what);
}

/* One control line. Mutex held. Returns 0, or negative errno (logged by the caller). */
static int sim_control(Host *h, Sim *s, char *line) {
        char *words[4], *save = NULL, address[HOST_ADDR_MAX], driver[HOST_DRIVER_MAX];
        const SimTopoDevice *td;
        size_t n = 0;
        int r;

        for (char *w = strtok_r(line, " \t\r", &save); w && n < ELEMENTSOF(words); w = strtok_r(NULL, " \t\r", &save))
                words[n++] = w;
        if (n < 2 || host_parse_pci_address(words[1], address) < 0)
                return -EINVAL;
        td = sim_topology_find_device(s->topology, address);
        if (!td)
                return -ENODEV;
        size_t idx = (size_t) (td - s->topology->devices);

        if (streq(words[0], "add")) {
                const SimTopoGroup *g = sim_topology_find_group(s->topology, td->group);
                char path[64];

                if (!s->removed[idx])
                        return -EEXIST;
                (void) snprintf(path, sizeof path, "kernel/iommu_groups/%u", td->group);
                if (faccessat(h->sysfs_fd, path, F_OK, 0) < 0) {
                        r = tree_add_group(h->sysfs_fd, g);
                        if (r < 0)
                                return r;
                }
                /* A new device: no override; the kernel probes its host driver. */
                r = tree_add_device(h->sysfs_fd, s->topology, td,
                                    !isempty(td->native) && tree_has_driver(h->sysfs_fd, td->native) ? td->native : "",
                                    "");
                if (r < 0)
                        return r;
                s->removed[idx] = false;
                sim_queue_change(s, HOST_CHANGE_ADD, address, NULL);
                if (!isempty(td->native))
                        sim_queue_change(s, HOST_CHANGE_BIND, address, td->native);
                return 0;
        }
        if (s->removed[idx])
                return -ENODEV;

        r = sysfs_read_device_driver(h->sysfs_fd, address, driver);
        if (r < 0)
                return r;
        if (streq(words[0], "remove")) {
                /* As the kernel does it: the driver lets go first (an unbind uevent, with the device still
                 * there), then the device goes (a remove uevent) a moment later. */
                if (!isempty(driver)) {
                        r = tree_unbind(h->sysfs_fd, address, driver);
                        if (r >= 0)
                                r = sim_dev_sync(h, s, td);   /* its nodes go with vfio-pci */
                        if (r < 0)
                                return r;
                        sim_queue_change(s, HOST_CHANGE_UNBIND, address, NULL);
                        (void) pthread_mutex_unlock(&s->mutex);
                        (void) poll(NULL, 0, 50);
                        (void) pthread_mutex_lock(&s->mutex);
                }
                r = tree_remove_device(h->sysfs_fd, td, "");
                if (r < 0)
                        return r;
                s->removed[idx] = true;
                sim_queue_change(s, HOST_CHANGE_REMOVE, address, NULL);
                return 0;
        }
        if (streq(words[0], "unbind") || streq(words[0], "rebind")) {
                const char *to = n >= 3 ? words[2] : td->native;

                if (streq(words[0], "rebind") && (isempty(to) || !sysfs_name_is_valid(to, HOST_DRIVER_MAX)))
                        return -EINVAL;
                if (!isempty(driver)) {
                        r = tree_unbind(h->sysfs_fd, address, driver);
                        if (r >= 0)
                                r = sim_dev_sync(h, s, td);
                        if (r < 0)
                                return r;
                        sim_queue_change(s, HOST_CHANGE_UNBIND, address, NULL);
                }
                if (streq(words[0], "unbind"))
                        return 0;
                if (!tree_has_driver(h->sysfs_fd, to)) {
                        r = tree_add_driver(h->sysfs_fd, to);
                        if (r < 0)
                                return r;
                }
                r = tree_bind(h->sysfs_fd, s->topology, address, to);
                if (r >= 0)
                        r = sim_dev_sync(h, s, td);
                if (r < 0)
                        return r;
                sim_queue_change(s, HOST_CHANGE_BIND, address, to);
                return 0;
        }
        if (streq(words[0], "mount") || streq(words[0], "unmount")) {
                char what[128];
                (void) snprintf(what, sizeof what, "%s on %s", n >= 3 ? words[2] : "/", "sim-disk");
                sim_set_use(s, address, HOST_USE_MOUNT, what, streq(words[0], "mount"));
                return 0;
        }
        if (streq(words[0], "swapon") || streq(words[0], "swapoff")) {
                sim_set_use(s, address, HOST_USE_SWAP, "/dev/sim-swap", streq(words[0], "swapon"));
                return 0;
        }
        if (streq(words[0], "route") || streq(words[0], "noroute")) {
                sim_set_use(s, address, HOST_USE_ROUTE, n >= 3 ? words[2] : "eth0", streq(words[0], "route"));
                return 0;
        }
        return -EINVAL;
}

/* Reads what the fifo has and runs each complete line. Mutex held. */
static void sim_read_control(Host *h, Sim *s) {
        for (;;) {
                ssize_t n = read(s->control_fd, s->control_buf + s->control_len,
                                 sizeof s->control_buf - 1 - s->control_len);
                char *nl;

                if (n <= 0)
                        return;
                s->control_len += (size_t) n;
                s->control_buf[s->control_len] = 0;
                while ((nl = strchr(s->control_buf, '\n'))) {
                        char line[sizeof s->control_buf];
                        size_t l = (size_t) (nl - s->control_buf);
                        int r;

                        memcpy(line, s->control_buf, l);
                        line[l] = 0;
                        memmove(s->control_buf, nl + 1, s->control_len - l - 1);
                        s->control_len -= l + 1;
                        s->control_buf[s->control_len] = 0;
                        if (isempty(line))
                                continue;
                        {
                                char copy[sizeof line];
                                strcpy(copy, line);
                                r = sim_control(h, s, copy);
                        }
                        if (r < 0)
                                log_warning_errno(r, "Simulated host: control \"%s\" failed: %m", line);
                        else
                                log_debug("Simulated host: %s", line);
                }
                if (s->control_len >= sizeof s->control_buf - 1)
                        s->control_len = 0; /* a line too long: dropped */
        }
}

static int sim_watch_fd(Host *h) {
        return sim_of(h)->change_fd;
}

static int sim_watch_drain(Host *h, HostChange **ret, size_t *ret_n) {
        Sim *s = sim_of(h);
        uint64_t v;

        (void) !read(s->change_fd, &v, sizeof v);
        (void) pthread_mutex_lock(&s->mutex);
        *ret = TAKE_PTR(s->changes);
        *ret_n = s->n_changes;
        s->n_changes = s->allocated_changes = 0;
        (void) pthread_mutex_unlock(&s->mutex);
        return 0;
}

static int sim_list_uses(Host *h, HostUse **ret, size_t *ret_n) {
        Sim *s = sim_of(h);
        HostUse *copy;

        (void) pthread_mutex_lock(&s->mutex);
        copy = calloc(MAX(s->n_uses, (size_t) 1), sizeof *copy);
        if (copy && s->n_uses > 0)
                memcpy(copy, s->uses, s->n_uses * sizeof *copy);
        *ret_n = s->n_uses;
        (void) pthread_mutex_unlock(&s->mutex);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* The simulated modules.alias: each variant= as its vendor:device alias, as mlx5_vfio_pci's are. */
static int sim_modules_alias(Host *h, char **ret) {
        const SimTopology *t = sim_of(h)->topology;
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_devices; i++)
                if (!isempty(t->devices[i].variant))
                        fprintf(f, "alias vfio_pci:v%08Xd%08Xsv*sd*bc*sc*i* %s\n", t->devices[i].vendor,
                                t->devices[i].device, t->devices[i].variant);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = text;
        return 0;
}

static bool sim_denylisted(Host *h, const HostDevice *d) {
        const SimTopoDevice *td = sim_topology_find_device(sim_of(h)->topology, d->address);
        return td && td->vfio_denylisted;
}

/* ---------------------------------------------------------------- the responder */

static const char *iommu_type_name(uint32_t type, char *buf, size_t size) {
        switch (type) {
        case 0:
                return "none";
        case VFIO_TYPE1_IOMMU:
                return "type1";
        case VFIO_TYPE1v2_IOMMU:
                return "type1v2";
        case VFIO_SPAPR_TCE_IOMMU:
                return "spapr-tce";
        case VFIO_SPAPR_TCE_v2_IOMMU:
                return "spapr-tce-v2";
        default:
                (void) snprintf(buf, size, "%" PRIu32, type);
                return buf;
        }
}

static bool group_devices_vfio_safe(const HostGroup *g) {
        for (size_t i = 0; i < g->n_devices; i++)
                if (!host_device_is_vfio_safe(&g->devices[i]))
                        return false;
        return true;
}

static void sim_count_usage(Sim *s, unsigned group) {
        SimGroupState *gs = sim_group_state(s, group);
        char name[32], text[32];

        if (!gs)
                return;
        gs->usage++;
        (void) snprintf(name, sizeof name, "usage-%u", group);
        (void) snprintf(text, sizeof text, "%" PRIu64 "\n", gs->usage);
        (void) replace_file_at(s->book_fd, "", name, text);
}

static void sim_answer_group(Host *h, Sim *s, SimFile *f, const char *req, char *reply, size_t size) {
        _cleanup_(host_group_done) HostGroup g = {};
        const char *arg;

        sim_count_usage(s, f->group);

        if (streq(req, "STATUS")) {
                size_t off;

                if (sysfs_read_group(h->sysfs_fd, h->cache, NULL, f->group, &g) < 0) {
                        (void) snprintf(reply, size, "error=EIO");
                        return;
                }
                off = (size_t) snprintf(reply, size, "group=%u viable=%i container=%s devices=", f->group,
                                        f->container || group_devices_vfio_safe(&g),
                                        f->container ? "yes" : "no");
                for (size_t i = 0; i < g.n_devices && off < size; i++)
                        off += (size_t) snprintf(reply + off, size - off, "%s%s", i > 0 ? "," : "",
                                                 g.devices[i].address);
                return;
        }

        if ((arg = startswith_word(req, "DEVICE "))) {
                char address[HOST_ADDR_MAX];
                const SimTopoDevice *td;
                HostDevice d;

                if (host_parse_pci_address(arg, address) < 0 ||
                    !(td = sim_device(s, address)) || td->group != f->group ||
                    sysfs_read_device(h->sysfs_fd, NULL, address, &d) < 0) {
                        (void) snprintf(reply, size, "error=ENODEV");
                        return;
                }
                (void) snprintf(reply, size, "device=%s vendor=0x%04x device=0x%04x driver=%s", d.address,
                                d.vendor, d.device, isempty(d.driver) ? "none" : d.driver);
                return;
        }

        (void) snprintf(reply, size, "error=EINVAL");
}

static void sim_answer_container(Sim *s, SimFile *c, const char *req, char *reply, size_t size) {
        char buf[16];
        size_t off;
        bool first = true;

        if (!streq(req, "STATUS")) {
                (void) snprintf(reply, size, "error=EINVAL");
                return;
        }

        off = (size_t) snprintf(reply, size, "container iommu=%s groups=",
                                iommu_type_name(c->iommu_type, buf, sizeof buf));
        /* In ascending order, as the topology keeps them. */
        for (size_t i = 0; i < s->topology->n_groups && off < size; i++) {
                SimFile *f = s->groups[i].file;
                if (!f || f->closed || f->container != c)
                        continue;
                off += (size_t) snprintf(reply + off, size - off, "%s%u", first ? "" : ",", f->group);
                first = false;
        }
}

static void sim_answer_device(Host *h, Sim *s, SimFile *f, const char *req, int passed_fd, char *reply,
                              size_t size) {
        HostDevice d;

        if (streq(req, "BIND")) {
                SimGroupState *gs = sim_group_state(s, f->group);
                SimFile *i = passed_fd >= 0 ? sim_find_file(s, passed_fd, SIM_FILE_IOMMUFD) : NULL;

                if (!i || f->iommufd)
                        (void) snprintf(reply, size, "error=EINVAL");
                else if (gs && sim_group_is_open(s, gs))
                        (void) snprintf(reply, size, "error=EBUSY"); /* the group is open: a cdev cannot bind */
                else {
                        f->iommufd = i;
                        (void) snprintf(reply, size, "bound device=%s", f->address);
                }
                return;
        }
        if (!f->iommufd) {
                (void) snprintf(reply, size, "error=EINVAL"); /* an unbound cdev is good for nothing else */
                return;
        }
        sim_count_usage(s, f->group);
        if (streq(req, "STATUS") && sysfs_read_device(h->sysfs_fd, NULL, f->address, &d) >= 0)
                (void) snprintf(reply, size, "device=%s vendor=0x%04x device=0x%04x driver=%s bound=yes", d.address,
                                d.vendor, d.device, isempty(d.driver) ? "none" : d.driver);
        else
                (void) snprintf(reply, size, "error=EINVAL");
}

static void sim_answer_iommufd(Sim *s, SimFile *i, const char *req, char *reply, size_t size) {
        size_t off;
        bool first = true;

        if (!streq(req, "STATUS")) {
                (void) snprintf(reply, size, "error=EINVAL");
                return;
        }
        off = (size_t) snprintf(reply, size, "iommufd rlimit-mode=%s devices=", i->rlimit_process ? "process" : "user");
        for (SimFile *f = s->files; f && off < size; f = f->next) {
                if (f->kind != SIM_FILE_DEVICE || f->closed || f->iommufd != i)
                        continue;
                off += (size_t) snprintf(reply + off, size - off, "%s%s", first ? "" : ",", f->address);
                first = false;
        }
}

/* One request waits on f's peer end (or the client went away). Mutex held. */
static void sim_serve(Host *h, Sim *s, SimFile *f, short revents) {
        char req[SIM_REQUEST_MAX + 1], reply[SIM_REPLY_MAX];
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = req, .iov_len = SIM_REQUEST_MAX };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof control };
        int passed[4], n_passed = 0;
        ssize_t n;

        if (!(revents & POLLIN)) {
                if (revents & (POLLHUP|POLLERR|POLLNVAL))
                        sim_file_release(s, f);
                return;
        }

        n = recvmsg(f->peer_fd, &mh, MSG_DONTWAIT|MSG_CMSG_CLOEXEC);
        if (n >= 0)
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t j = 0; j < k && n_passed < 4; j++)
                                        memcpy(&passed[n_passed++], CMSG_DATA(c) + j * sizeof(int), sizeof(int));
                        }
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return;
                sim_file_release(s, f);
                return;
        }
        if (n == 0 && (revents & POLLHUP)) {
                close_many(passed, (size_t) n_passed);
                sim_file_release(s, f);
                return;
        }
        req[n] = 0;
        while (n > 0 && (req[n - 1] == '\n' || req[n - 1] == '\r' || req[n - 1] == ' '))
                req[--n] = 0;

        if (f->kind == SIM_FILE_GROUP)
                sim_answer_group(h, s, f, req, reply, sizeof reply);
        else if (f->kind == SIM_FILE_CONTAINER)
                sim_answer_container(s, f, req, reply, sizeof reply);
        else if (f->kind == SIM_FILE_DEVICE)
                sim_answer_device(h, s, f, req, n_passed > 0 ? passed[0] : -EBADF, reply, sizeof reply);
        else
                sim_answer_iommufd(s, f, req, reply, sizeof reply);
        close_many(passed, (size_t) n_passed);

        (void) send(f->peer_fd, reply, strnlen(reply, sizeof reply), MSG_DONTWAIT|MSG_NOSIGNAL);
}

static void *sim_responder(void *userdata) {
        Host *h = userdata;
        Sim *s = sim_of(h);
        _cleanup_free_ struct pollfd *pfds = NULL;
        _cleanup_free_ SimFile **polled = NULL;
        size_t allocated = 0;

        (void) pthread_mutex_lock(&s->mutex);
        while (!s->stopping) {
                size_t n = 0;
                int k;

                sim_reap(s);
                for (SimFile *f = s->files; f; f = f->next)
                        n++;
                if (n + 2 > allocated) {
                        size_t a = MAX(2 * allocated, n + 16);
                        struct pollfd *p = reallocarray(pfds, a, sizeof *pfds);
                        SimFile **q;
                        if (p)
                                pfds = p;
                        q = p ? reallocarray(polled, a, sizeof *polled) : NULL;
                        if (!q) {
                                /* Cannot watch them all now: try again in a moment. */
                                (void) pthread_mutex_unlock(&s->mutex);
                                (void) poll(NULL, 0, 10);
                                (void) pthread_mutex_lock(&s->mutex);
                                continue;
                        }
                        polled = q;
                        allocated = a;
                }

                pfds[0] = (struct pollfd) { .fd = s->wake_fd, .events = POLLIN };
                pfds[1] = (struct pollfd) { .fd = s->control_fd, .events = POLLIN };
                n = 0;
                for (SimFile *f = s->files; f; f = f->next) {
                        if (f->closed || f->peer_fd < 0)
                                continue;
                        polled[n] = f;
                        pfds[2 + n++] = (struct pollfd) { .fd = f->peer_fd, .events = POLLIN };
                }
                (void) pthread_mutex_unlock(&s->mutex);

                k = poll(pfds, n + 2, -1);

                (void) pthread_mutex_lock(&s->mutex);
                if (k < 0)
                        continue; /* EINTR; nothing else is expected with valid fds */
                if (pfds[0].revents & POLLIN) {
                        uint64_t v;
                        (void) !read(s->wake_fd, &v, sizeof v);
                }
                if (pfds[1].revents & POLLIN)
                        sim_read_control(h, s);
                for (size_t i = 0; i < n; i++) {
                        /* Files are freed by this thread only, so polled[] is valid; skip what another
                         * thread released meanwhile. */
                        if (pfds[i + 2].revents == 0 || polled[i]->closed)
                                continue;
                        sim_serve(h, s, polled[i], pfds[i + 2].revents);
                }
        }
        (void) pthread_mutex_unlock(&s->mutex);
        return NULL;
}

/* ---------------------------------------------------------------- driver binding */

static int sim_set_override(Host *h, const char *address, const char *driver) {
        Sim *s = sim_of(h);
        char dir[128], text[HOST_DRIVER_MAX + 2];
        int r;

        if (!sim_device(s, address))
                return -ENOENT;
        device_dir(address, dir, sizeof dir);
        (void) snprintf(text, sizeof text, "%s\n", driver ?: "(null)");

        (void) pthread_mutex_lock(&s->mutex);
        r = replace_file_at(h->sysfs_fd, dir, "driver_override", text);
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_unbind(Host *h, const char *address) {
        Sim *s = sim_of(h);
        int r;

        if (!sim_device(s, address))
                return -ENOENT;

        (void) pthread_mutex_lock(&s->mutex);
        for (;;) {
                char driver[HOST_DRIVER_MAX];
                SimGroupState *gs;

                if (s->stopping) {
                        r = -ECANCELED;
                        break;
                }
                r = sysfs_read_device_driver(h->sysfs_fd, address, driver);
                if (r < 0 || isempty(driver))
                        break;

                /* The kernel holds the unbind of a VFIO device up until nobody uses it: here, until its
                 * group is closed. No timeout, as in the kernel; the caller is a worker thread. */
                gs = sim_group_state(s, sim_topology_find_device(s->topology, address)->group);
                if (streq(driver, VFIO_PCI_DRIVER) &&
                    ((gs && sim_group_is_open(s, gs)) || sim_device_is_open(s, address))) {
                        s->n_waiters++;
                        (void) pthread_cond_wait(&s->cond, &s->mutex);
                        s->n_waiters--;
                        if (s->stopping && s->n_waiters == 0)
                                (void) pthread_cond_broadcast(&s->cond);
                        continue;
                }

                r = tree_unbind(h->sysfs_fd, address, driver);
                if (r >= 0)
                        r = sim_dev_sync(h, s, sim_topology_find_device(s->topology, address));
                break;
        }
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

/* Would the kernel bind driver to the device: driver loaded, matching (the override names it, or without
 * an override the device's own host driver is it), device free, and no host driver into a group that is
 * in a container. Mutex held. */
static int sim_check_bind(Host *h, Sim *s, const SimTopoDevice *td, const HostDevice *d, const char *driver) {
        SimGroupState *gs;

        if (!tree_has_driver(h->sysfs_fd, driver))
                return -ENOENT;
        if (!isempty(d->driver_override) ? !streq(d->driver_override, driver) : !streq(td->native, driver))
                return -ENODEV;
        if (!isempty(d->driver))
                return -EBUSY;
        if (td->vfio_denylisted && streq(driver, "vfio-pci"))
                return -EBUSY; /* vfio_pci_probe() refuses denylisted devices */
        if (td->header_type != HOST_HEADER_NORMAL && sim_topology_is_vfio_driver(s->topology, driver))
                return -EINVAL; /* vfio_pci_core: "only normal header type devices" */
        gs = sim_group_state(s, td->group);
        if (gs && sim_group_is_open(s, gs) && gs->file->container && !host_driver_is_vfio_safe(driver))
                return -EINVAL;
        return 0;
}

static int sim_bind(Host *h, const char *address, const char *driver) {
        Sim *s = sim_of(h);
        const SimTopoDevice *td;
        HostDevice d;
        int r;

        td = sim_device(s, address);
        if (!td) /* the kernel's bind finds no such device */
                return tree_has_driver(h->sysfs_fd, driver) ? -ENODEV : -ENOENT;

        (void) pthread_mutex_lock(&s->mutex);
        r = sysfs_read_device(h->sysfs_fd, NULL, address, &d);
        if (r >= 0)
                r = sim_check_bind(h, s, td, &d, driver);
        if (r >= 0)
                r = tree_bind(h->sysfs_fd, s->topology, address, driver);
        if (r >= 0)
                r = sim_dev_sync(h, s, td);
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_probe(Host *h, const char *address) {
        Sim *s = sim_of(h);
        const SimTopoDevice *td;
        const char *driver;
        HostDevice d;
        int r;

        td = sim_device(s, address);
        if (!td)
                return -ENODEV;

        (void) pthread_mutex_lock(&s->mutex);
        r = sysfs_read_device(h->sysfs_fd, NULL, address, &d);
        if (r < 0)
                goto finish;
        if (!isempty(d.driver))
                goto finish; /* bound: nothing to do */

        driver = !isempty(d.driver_override) ? d.driver_override : td->no_probe ? "" : td->native;
        if (isempty(driver))
                goto finish;
        /* drivers_probe does not report a driver that would not bind (not loaded, refused): the device
         * just stays unbound, and the write succeeds. */
        if (sim_check_bind(h, s, td, &d, driver) >= 0) {
                r = tree_bind(h->sysfs_fd, s->topology, address, driver);
                if (r >= 0)
                        r = sim_dev_sync(h, s, td);
        }
finish:
        (void) pthread_mutex_unlock(&s->mutex);
        return r < 0 ? r : 0;
}

/* ---------------------------------------------------------------- VFIO */

static int sim_open_container(Host *h, int *ret_fd) {
        Sim *s = sim_of(h);
        int r;

        (void) pthread_mutex_lock(&s->mutex);
        r = sim_file_new(s, SIM_FILE_CONTAINER, 0, NULL, ret_fd);
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_open_group(Host *h, unsigned id, int *ret_fd) {
        _cleanup_(host_group_done) HostGroup g = {};
        Sim *s = sim_of(h);
        SimGroupState *gs;
        bool on_vfio = false;
        int r;

        gs = sim_group_state(s, id);
        if (!gs)
                return -ENOENT;

        (void) pthread_mutex_lock(&s->mutex);
        r = sysfs_read_group(h->sysfs_fd, h->cache, NULL, id, &g);
        if (r < 0)
                goto finish;
        for (size_t i = 0; i < g.n_devices; i++)
                if (g.devices[i].vfio_driver)
                        on_vfio = true;
        if (!on_vfio) {
                r = -ENOENT; /* no /dev/vfio/N while no device of the group is on vfio-pci */
                goto finish;
        }
        if (sim_group_is_open(s, gs) || sim_group_has_bound_cdev(s, id)) {
                r = -EBUSY; /* open, or a cdev of it is bound to an iommufd */
                goto finish;
        }
        r = sim_file_new(s, SIM_FILE_GROUP, id, &gs->file, ret_fd);
finish:
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_group_is_viable(Host *h, int group_fd, bool *ret) {
        _cleanup_(host_group_done) HostGroup g = {};
        Sim *s = sim_of(h);
        SimFile *f;
        int r = 0;

        (void) pthread_mutex_lock(&s->mutex);
        f = sim_find_file(s, group_fd, SIM_FILE_GROUP);
        if (!f)
                r = -ENOTTY;
        else if (f->container)
                *ret = true;
        else {
                r = sysfs_read_group(h->sysfs_fd, h->cache, NULL, f->group, &g);
                if (r >= 0)
                        *ret = group_devices_vfio_safe(&g);
        }
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_group_set_container(Host *h, int group_fd, int container_fd) {
        _cleanup_(host_group_done) HostGroup g = {};
        Sim *s = sim_of(h);
        SimFile *f, *c;
        int r;

        (void) pthread_mutex_lock(&s->mutex);
        f = sim_find_file(s, group_fd, SIM_FILE_GROUP);
        c = sim_find_file(s, container_fd, SIM_FILE_CONTAINER);
        if (!f)
                r = -ENOTTY;
        else if (f->container)
                r = -EINVAL;  /* as the kernel: a group joins one container once */
        else if (!c)
                r = -EINVAL;
        else if ((r = sysfs_read_group(h->sysfs_fd, h->cache, NULL, f->group, &g)) < 0)
                ;
        else if (!group_devices_vfio_safe(&g))
                r = -EPERM;
        else {
                f->container = c;
                r = 0;
        }
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_container_facts(Sim *s, SimFile *c, HostIommuInfo *ret, bool *ret_align8);

static int sim_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type) {
        Sim *s = sim_of(h);
        SimFile *c;
        int r = 0;

        (void) pthread_mutex_lock(&s->mutex);
        c = sim_find_file(s, container_fd, SIM_FILE_CONTAINER);
        if (!c || !container_has_groups(s, c) || c->iommu_type != 0)
                r = -EINVAL;
        else {
                HostIommuInfo info;
                bool align8;

                /* An sPAPR host has the sPAPR v2 IOMMU, an x86 one Type1v2: the best each offers. */
                c->iommu_type = sim_container_facts(s, c, &info, &align8) >= 0 && (info.flags & HOST_IOMMU_SPAPR)
                        ? VFIO_SPAPR_TCE_v2_IOMMU : VFIO_TYPE1v2_IOMMU;
                *ret_type = c->iommu_type;
        }
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

/* The container's facts: those of its groups combined (IOVA ranges intersected, the smallest page-size
 * bitmap and budget), laid out as the topology's kernel lays them out. Mutex held. */
static int sim_container_facts(Sim *s, SimFile *c, HostIommuInfo *ret, bool *ret_align8) {
        bool first = true;

        *ret = (HostIommuInfo) {};
        *ret_align8 = true;
        for (size_t i = 0; i < s->topology->n_groups; i++) {
                const SimIommu *io = sim_topology_group_iommu(s->topology, &s->topology->groups[i]);
                SimFile *f = s->groups[i].file;

                if (!f || f->closed || f->container != c)
                        continue;
                if (first) {
                        *ret = io->info;
                        *ret_align8 = io->align8;
                        first = false;
                        continue;
                }
                ret->pgsizes &= io->info.pgsizes;
                ret->dma_avail = MIN(ret->dma_avail, io->info.dma_avail);
                ret->flags &= io->info.flags | HOST_IOMMU_IOVA;
                iommu_info_intersect_iova(ret, &io->info);
        }
        return first ? -EINVAL : 0;
}

static int sim_container_get_info(Host *h, int container_fd, uint8_t *buf, size_t size) {
        Sim *s = sim_of(h);
        HostIommuInfo info;
        SimFile *c;
        bool align8;
        int r;

        (void) pthread_mutex_lock(&s->mutex);
        c = sim_find_file(s, container_fd, SIM_FILE_CONTAINER);
        if (!c)
                r = -ENOTTY;
        else if (c->iommu_type == 0)
                r = -EINVAL;   /* no IOMMU driver to ask yet */
        else
                r = sim_container_facts(s, c, &info, &align8);
        (void) pthread_mutex_unlock(&s->mutex);
        if (r < 0)
                return r;

        if (info.flags & HOST_IOMMU_SPAPR) {
                r = iommu_info_build_spapr(&info, buf, size);
                return r < 0 ? -EINVAL : 0;
        }
        {
                uint32_t argsz;

                memcpy(&argsz, buf, sizeof argsz);
                if (argsz < IOMMU_TYPE1_INFO_SIZE || argsz > size)
                        return -EINVAL;
                r = iommu_info_build_type1(&info, align8, buf, argsz, NULL);
        }
        return r == -ENOBUFS || r >= 0 ? 0 : r;
}

/* ---------------------------------------------------------------- iommufd and the device cdev */

static int sim_open_device_cdev(Host *h, const char *address, const char *cdev, int *ret_fd) {
        const SimTopoDevice *td;
        char want[HOST_CDEV_MAX], path[32 + HOST_CDEV_MAX];
        Sim *s = sim_of(h);
        SimFile *f;
        int r;

        td = sim_topology_find_device(s->topology, address);
        if (!td || !s->topology->cdev)
                return -ENOENT;
        cdev_name(s, td, want);
        if (!streq(want, cdev))
                return -ENODEV;

        (void) pthread_mutex_lock(&s->mutex);
        (void) snprintf(path, sizeof path, "vfio/devices/%s", cdev);
        if (faccessat(s->dev_fd, path, F_OK, 0) < 0)
                r = -errno;     /* no node: the device left vfio-pci */
        else
                r = sim_file_new(s, SIM_FILE_DEVICE, td->group, &f, ret_fd);
        if (r >= 0)
                strcpy(f->address, td->address);
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_open_iommufd(Host *h, int *ret_fd) {
        Sim *s = sim_of(h);
        int r;

        if (!s->topology->cdev)
                return -ENOENT; /* no /dev/iommu */
        (void) pthread_mutex_lock(&s->mutex);
        r = sim_file_new(s, SIM_FILE_IOMMUFD, 0, NULL, ret_fd);
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

static int sim_iommufd_rlimit_mode(Host *h, int iommufd, bool set, bool *per_process) {
        Sim *s = sim_of(h);
        SimFile *i;
        int r = 0;

        (void) pthread_mutex_lock(&s->mutex);
        i = sim_find_file(s, iommufd, SIM_FILE_IOMMUFD);
        if (!i)
                r = -ENOTTY;
        else if (set)
                i->rlimit_process = *per_process;
        else
                *per_process = i->rlimit_process;
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

/* A scratch IOAS with nothing attached allows the whole space, as the kernel's does. */
static int sim_iommufd_iova_ranges(Host *h, int iommufd, HostIommuInfo *ret) {
        Sim *s = sim_of(h);
        SimFile *i;

        (void) pthread_mutex_lock(&s->mutex);
        i = sim_find_file(s, iommufd, SIM_FILE_IOMMUFD);
        (void) pthread_mutex_unlock(&s->mutex);
        if (!i)
                return -ENOTTY;
        ret->flags |= HOST_IOMMU_IOVA;
        ret->n_iova = 1;
        ret->iova[0] = (HostIovaRange) { 0, UINT64_MAX };
        return 0;
}

/* ---------------------------------------------------------------- life cycle */

static void sim_free(Host *h) {
        Sim *s = sim_of(h);

        if (!s)
                return;

        if (s->thread_started) {
                (void) pthread_mutex_lock(&s->mutex);
                s->stopping = true;
                (void) pthread_cond_broadcast(&s->cond);
                while (s->n_waiters > 0)
                        (void) pthread_cond_wait(&s->cond, &s->mutex);
                (void) pthread_mutex_unlock(&s->mutex);
                sim_wake(s);
                (void) pthread_join(s->thread, NULL);
        }

        while (s->files) {
                SimFile *f = s->files;
                s->files = f->next;
                safe_close(f->peer_fd);
                free(f);
        }
        (void) pthread_cond_destroy(&s->cond);
        (void) pthread_mutex_destroy(&s->mutex);
        safe_close(s->wake_fd);
        safe_close(s->control_fd);
        safe_close(s->change_fd);
        free(s->removed);
        free(s->uses);
        free(s->changes);
        safe_close(s->state_fd);
        safe_close(s->dev_fd);
        safe_close(s->book_fd);
        free(s->groups);
        sim_topology_free(s->topology);
        free(s);
        h->data = NULL;
}

static const HostOps sim_ops = {
        .free = sim_free,
        .set_override = sim_set_override,
        .unbind = sim_unbind,
        .bind = sim_bind,
        .probe = sim_probe,
        .open_container = sim_open_container,
        .open_group = sim_open_group,
        .group_is_viable = sim_group_is_viable,
        .group_set_container = sim_group_set_container,
        .container_set_iommu = sim_container_set_iommu,
        .container_get_info = sim_container_get_info,
        .list_uses = sim_list_uses,
        .watch_fd = sim_watch_fd,
        .watch_drain = sim_watch_drain,
        .denylisted = sim_denylisted,
        .modules_alias = sim_modules_alias,
        .open_device_cdev = sim_open_device_cdev,
        .open_iommufd = sim_open_iommufd,
        .iommufd_rlimit_mode = sim_iommufd_rlimit_mode,
        .iommufd_iova_ranges = sim_iommufd_iova_ranges,
};

static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *slash = '/';
        }
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* A fingerprint of what the tree is made from (groups, their types and regions, devices and their ids),
 * kept in state_dir/sim/topology-fingerprint when the tree is built. A later run whose topology has the
 * same fingerprint reuses the tree without walking it: with thousands of devices that walk is most of
 * the start-up. Without the file (or with another fingerprint) the tree is walked and compared. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3ull;
        return h;
}

static void topology_fingerprint(const SimTopology *t, char ret[32]) {
        uint64_t h = 0xcbf29ce484222325ull;

        for (size_t i = 0; i < t->n_groups; i++) {
                const SimTopoGroup *g = &t->groups[i];
                h = fnv1a(h, &g->id, sizeof g->id);
                h = fnv1a(h, g->type, strlen(g->type) + 1);
                for (size_t k = 0; k < g->n_regions; k++) {
                        h = fnv1a(h, &g->regions[k].start, sizeof g->regions[k].start);
                        h = fnv1a(h, &g->regions[k].end, sizeof g->regions[k].end);
                        h = fnv1a(h, g->regions[k].type, strlen(g->regions[k].type) + 1);
                }
        }
        for (size_t i = 0; i < t->n_devices; i++) {
                const SimTopoDevice *d = &t->devices[i];
                h = fnv1a(h, d->address, strlen(d->address) + 1);
                h = fnv1a(h, &d->group, sizeof d->group);
                h = fnv1a(h, &d->vendor, sizeof d->vendor);
                h = fnv1a(h, &d->device, sizeof d->device);
                h = fnv1a(h, &d->class_code, sizeof d->class_code);
        }
        (void) snprintf(ret, 32, "%016" PRIx64, h);
}

/* Makes state_dir/sys from the topology, or checks the one an earlier run left. */
static int sim_setup_tree(Host *h, Sim *s, const char *state_dir) {
        _cleanup_close_ int new_fd = -EBADF;
        const SimTopology *t = s->topology;
        int r;

        if (faccessat(s->state_fd, "sys", F_OK, AT_SYMLINK_NOFOLLOW) >= 0) {
                h->sysfs_fd = openat(s->state_fd, "sys", O_PATH|O_DIRECTORY|O_CLOEXEC);
                if (h->sysfs_fd < 0)
                        return log_error_errno(-errno, "Failed to open %s/sys: %m", state_dir);
                if (faccessat(h->sysfs_fd, "kernel/iommu_groups", F_OK, 0) < 0)
                        return log_error_errno(-EEXIST, "%s/sys exists but is no simulated sysfs tree. "
                                               "Remove it, or point the simulated host elsewhere.",
                                               state_dir);
                char fp[32], had[32];
                topology_fingerprint(t, fp);
                if (read_one_line_at(s->book_fd, "topology-fingerprint", had, sizeof had) < 0 ||
                    !streq(had, fp)) {
                        r = tree_verify(h->sysfs_fd, h->cache, t, state_dir);
                        if (r < 0)
                                return r;
                        (void) replace_file_at(s->book_fd, "", "topology-fingerprint", fp);
                }
                log_debug("Reusing the simulated host in %s.", state_dir);
        } else {
                /* Built aside and renamed into place, so that a crash never leaves half a tree. */
                r = rm_rf_at(s->state_fd, "sys.new");
                if (r < 0)
                        return log_error_errno(r, "Failed to remove %s/sys.new: %m", state_dir);
                if (mkdirat(s->state_fd, "sys.new", 0755) < 0)
                        return log_error_errno(-errno, "Failed to create %s/sys.new: %m", state_dir);
                new_fd = openat(s->state_fd, "sys.new", O_PATH|O_DIRECTORY|O_CLOEXEC);
                if (new_fd < 0)
                        return log_error_errno(-errno, "Failed to open %s/sys.new: %m", state_dir);
                r = tree_build(new_fd, t);
                if (r < 0)
                        return log_error_errno(r, "Failed to build the simulated host in %s: %m", state_dir);
                if (renameat(s->state_fd, "sys.new", s->state_fd, "sys") < 0)
                        return log_error_errno(-errno, "Failed to move %s/sys.new into place: %m", state_dir);
                h->sysfs_fd = TAKE_FD(new_fd);
                {
                        char fp[32];
                        topology_fingerprint(t, fp);
                        (void) replace_file_at(s->book_fd, "", "topology-fingerprint", fp);
                }
                log_debug("Created the simulated host in %s.", state_dir);
        }

        /* The drivers "loaded": vfio-pci, and every driver the topology names (a topology may name
         * more than the one the tree was made from). */
        r = tree_has_driver(h->sysfs_fd, VFIO_PCI_DRIVER) ? 0 : tree_add_driver(h->sysfs_fd, VFIO_PCI_DRIVER);
        for (size_t i = 0; r >= 0 && i < t->n_devices; i++) {
                const char *drv[] = { t->devices[i].native, t->devices[i].driver, t->devices[i].variant };
                for (size_t k = 0; r >= 0 && k < ELEMENTSOF(drv); k++)
                        if (!isempty(drv[k]) && !tree_has_driver(h->sysfs_fd, drv[k]))
                                r = tree_add_driver(h->sysfs_fd, drv[k]);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to add the drivers of the simulated host in %s: %m",
                                       state_dir);
        return 0;
}

/* A usage-N file of the bookkeeping directory: group N's count. */
static int read_usage_entry(const struct dirent64 *de, void *userdata) {
        Sim *s = userdata;
        char text[32], *end;
        unsigned long id;
        SimGroupState *gs;

        if (strncmp(de->d_name, "usage-", 6) != 0)
                return 0;
        errno = 0;
        id = strtoul(de->d_name + 6, &end, 10);
        if (errno != 0 || *end != 0 || id > UINT_MAX)
                return 0;
        gs = sim_group_state(s, (unsigned) id);
        if (gs && read_one_line_at(s->book_fd, de->d_name, text, sizeof text) >= 0)
                gs->usage = strtoull(text, NULL, 10);
        return 0;
}

int host_new_sim(const HostSimConfig *cfg, Host **ret) {
        _cleanup_(host_freep) Host *h = NULL;
        _cleanup_free_ char *error = NULL;
        sigset_t all, saved;
        Sim *s;
        int r;

        if (!cfg || isempty(cfg->state_dir) || !ret)
                return -EINVAL;

        h = host_alloc(HOST_SIM, &sim_ops);
        if (!h)
                return log_oom();
        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        h->data = s;
        s->state_fd = s->book_fd = s->wake_fd = s->control_fd = s->change_fd = s->dev_fd = -EBADF;
        (void) pthread_mutex_init(&s->mutex, NULL);
        (void) pthread_cond_init(&s->cond, NULL);

        r = sim_topology_load(cfg->topology_path, &s->topology, &error);
        if (r < 0) {
                if (error)
                        return log_error_errno(r, "Bad topology: %s", error);
                return log_error_errno(r, "Failed to load the topology %s: %m",
                                       cfg->topology_path ?: "(built-in)");
        }
        s->groups = calloc(s->topology->n_groups, sizeof *s->groups);
        if (!s->groups)
                return log_oom();

        r = mkdir_parents(cfg->state_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", cfg->state_dir);
        s->state_fd = open(cfg->state_dir, O_PATH|O_DIRECTORY|O_CLOEXEC);
        if (s->state_fd < 0)
                return log_error_errno(-errno, "Failed to open %s: %m", cfg->state_dir);
        r = mkdir_at(s->state_fd, "sim");
        if (r < 0)
                return log_error_errno(r, "Failed to create %s/sim: %m", cfg->state_dir);
        s->book_fd = openat(s->state_fd, "sim", O_PATH|O_DIRECTORY|O_CLOEXEC);
        if (s->book_fd < 0)
                return log_error_errno(-errno, "Failed to open %s/sim: %m", cfg->state_dir);

        r = sim_setup_tree(h, s, cfg->state_dir);
        if (r < 0)
                return r;
        r = sim_dev_setup(h, s, cfg->state_dir);
        if (r < 0)
                return r;

        /* Usage counts carry on from an earlier run, as the tree does: read the ones there are. */
        {
                _cleanup_close_ int dfd = openat(s->book_fd, ".", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
                if (dfd >= 0)
                        (void) dir_for_each(dfd, read_usage_entry, s);
        }

        s->wake_fd = eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK);
        s->change_fd = eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK);
        if (s->wake_fd < 0 || s->change_fd < 0)
                return log_error_errno(-errno, "Failed to create an eventfd: %m");

        /* What a control removed earlier stays removed; what the host stands on starts as the topology
         * says. */
        s->removed = calloc(MAX(s->topology->n_devices, (size_t) 1), sizeof *s->removed);
        if (!s->removed)
                return log_oom();
        for (size_t i = 0; i < s->topology->n_devices; i++) {
                const SimTopoDevice *td = &s->topology->devices[i];
                char path[64], what[128];

                (void) snprintf(path, sizeof path, "bus/pci/devices/%s", td->address);
                s->removed[i] = faccessat(h->sysfs_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
                if (!isempty(td->mounted)) {
                        (void) snprintf(what, sizeof what, "%s on sim-disk", td->mounted);
                        sim_set_use(s, td->address, HOST_USE_MOUNT, what, true);
                }
                if (td->swap)
                        sim_set_use(s, td->address, HOST_USE_SWAP, "/dev/sim-swap", true);
                if (!isempty(td->route))
                        sim_set_use(s, td->address, HOST_USE_ROUTE, td->route, true);
        }

        /* The controls: lines written to state_dir/sim/control (see host-sim.h). Opened read-write so
         * that it never reads as closed when the last writer goes. */
        if (mkfifoat(s->book_fd, "control", 0600) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s/sim/control: %m", cfg->state_dir);
        {
                char path[PATH_MAX];
                (void) snprintf(path, sizeof path, "%s/sim/control", cfg->state_dir);
                s->control_fd = open(path, O_RDWR|O_NONBLOCK|O_CLOEXEC);
                if (s->control_fd < 0)
                        return log_error_errno(-errno, "Failed to open %s: %m", path);
        }

        /* The responder takes no signals: they belong to the daemon's event loop. */
        sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = -pthread_create(&s->thread, NULL, sim_responder, h);
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to start the simulated host's responder thread: %m");
        s->thread_started = true;

        *ret = TAKE_PTR(h);
        return 0;
}
