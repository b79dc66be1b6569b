/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The simulated host's trees: the sysfs-shaped tree it keeps the kernel's state in, and the dev tree of device-node stand-ins. (host-sim.c has the whole picture.) */
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
#include "log.h"
#include "sim-internal.h"

/* ---------------------------------------------------------------- small file helpers */

int mkdir_at(int dir_fd, const char *path) {
        if (mkdirat(dir_fd, path, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int write_new_file_at(int dir_fd, const char *path, const char *text) {
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
int replace_file_at(int dir_fd, const char *dir, const char *name, const char *text) {
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


/* Removes dir_fd/name and everything below it; no symlink is followed. */
int rm_rf_at(int dir_fd, const char *name) {
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

int rm_rf_entry(const struct dirent64 *de, void *userdata) {
        int fd = *(const int *) userdata;

        if (de->d_type == DT_DIR)
                return rm_rf_at(fd, de->d_name);
        if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
                return errno == EISDIR ? rm_rf_at(fd, de->d_name) : -errno;
        return 0;
}

int rm_rf_children(int fd) {
        return dir_for_each(fd, rm_rf_entry, &fd);
}

/* ---------------------------------------------------------------- the tree */

/* "devices/pci0000:01/0000:01:00.0": where a device's directory lives, relative to sys/. */
void device_dir(const char *address, char *buf, size_t size) {
        (void) snprintf(buf, size, "devices/pci%.7s/%s", address, address);
}

int tree_add_driver(int sys_fd, const char *driver) {
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

bool tree_has_driver(int sys_fd, const char *driver) {
        char path[128];

        (void) snprintf(path, sizeof path, "bus/pci/drivers/%s", driver);
        return faccessat(sys_fd, path, F_OK, 0) >= 0;
}

/* Binds in the tree. A VFIO driver (vfio-pci, a variant) gives the device a vfio-dev/ directory, as the
 * kernel's vfio_register_group_dev() does. */
int tree_bind(int sys_fd, const SimTopology *t, const char *address, const char *driver) {
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

int tree_unbind(int sys_fd, const char *address, const char *driver) {
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

int tree_add_group(int sys_fd, const SimTopoGroup *g) {
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
int tree_write_config(int sys_fd, const char *dir, const SimTopoDevice *d) {
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
int tree_add_device(int sys_fd, const SimTopology *t, const SimTopoDevice *d, const char *driver,
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
int tree_remove_device(int sys_fd, const SimTopoDevice *d, const char *driver) {
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

int tree_build(int sys_fd, const SimTopology *t) {
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

void cdev_name(const Sim *s, const SimTopoDevice *td, char buf[HOST_CDEV_MAX]) {
        (void) snprintf(buf, HOST_CDEV_MAX, "vfio%zu", (size_t) (td - s->topology->devices));
}

/* A node stand-in as the kernel makes one: root's (the daemon's), mode 0600, no ACL. Kept if present. */
int dev_node_make(int dev_fd, const char *path, mode_t mode) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dev_fd, path, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC|O_NOFOLLOW|O_NOCTTY, mode);
        if (fd < 0)
                return errno == EEXIST ? 0 : -errno;
        if (fchmod(fd, mode) < 0) /* past the umask */
                return -errno;
        return 0;
}

int dev_node_remove(int dev_fd, const char *path) {
        if (unlinkat(dev_fd, path, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* Makes the device's nodes and its vfio-dev/vfioN match its driver, as the kernel does when a VFIO driver
 * (vfio-pci or a variant) binds or unbinds it: the cdev while it is on one (with "cdev"), the group node
 * while any device of the group is. (tree_bind() makes vfio-dev/ itself for a VFIO driver, and
 * tree_unbind() takes it away.) Mutex held (or the sim not yet running). */
int sim_dev_sync(Host *h, Sim *s, const SimTopoDevice *td) {
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

int dev_sweep_entry(const struct dirent64 *de, void *userdata) {
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
int sim_dev_setup(Host *h, Sim *s, const char *state_dir) {
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
                r = s->topology->iommufd ? dev_node_make(s->dev_fd, "iommu", 0660) : dev_node_remove(s->dev_fd, "iommu");
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
int tree_verify(int sys_fd, SysfsCache *cache, const SimTopology *t, const char *where) {
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
