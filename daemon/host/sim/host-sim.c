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
 * With the topology's "cdev" line (a kernel with IOMMUFD and VFIO_DEVICE_CDEV) there are also (the
 * iommufd's alone with its "iommufd" line: IOMMUFD without the cdevs):
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

#include <ctype.h>
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
        struct timespec until = {};
        bool timed_out = false;
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
                 * group is closed. No timeout, as in the kernel (the caller is a worker thread), unless
                 * $GROUPD_SIM_UNBIND_WAIT asks for one (host-sim.h). */
                gs = sim_group_state(s, sim_topology_find_device(s->topology, address)->group);
                if (streq(driver, VFIO_PCI_DRIVER) &&
                    ((gs && sim_group_is_open(s, gs)) || sim_device_is_open(s, address))) {
                        if (timed_out) {
                                r = log_error_errno(-ETIMEDOUT,
                                                    "sim: the unbind of %s waited %u s for its %s to be "
                                                    "closed (a kernel would wait for ever): who keeps it open?",
                                                    address, s->unbind_wait_ms / 1000,
                                                    gs && sim_group_is_open(s, gs) ? "group" : "cdev");
                                break;
                        }
                        s->n_waiters++;
                        if (s->unbind_wait_ms == 0)
                                (void) pthread_cond_wait(&s->cond, &s->mutex);
                        else {
                                if (until.tv_sec == 0)
                                        until = monotonic_after_ms(s->unbind_wait_ms);
                                timed_out = pthread_cond_timedwait(&s->cond, &s->mutex, &until) == ETIMEDOUT;
                        }
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

/* ---------------------------------------------------------------- life cycle */

/* Held-up unbinds return -ECANCELED, and every later one at once. */
static void sim_stop(Host *h) {
        Sim *s = sim_of(h);

        if (!s)
                return;
        (void) pthread_mutex_lock(&s->mutex);
        s->stopping = true;
        (void) pthread_cond_broadcast(&s->cond);
        while (s->n_waiters > 0)
                (void) pthread_cond_wait(&s->cond, &s->mutex);
        (void) pthread_mutex_unlock(&s->mutex);
}

static void sim_free(Host *h) {
        Sim *s = sim_of(h);

        if (!s)
                return;

        sim_stop(h);
        if (s->thread_started) {
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
        .stop = sim_stop,
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
        {
                /* Monotonic: the bounded unbind wait's deadline comes from monotonic_after_ms(). */
                pthread_condattr_t a;
                const char *e = getenv("GROUPD_SIM_UNBIND_WAIT");
                char *end = NULL;
                unsigned long secs = 0;

                (void) pthread_condattr_init(&a);
                (void) pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
                (void) pthread_cond_init(&s->cond, &a);
                (void) pthread_condattr_destroy(&a);
                if (e && *e) {
                        errno = 0;
                        secs = strtoul(e, &end, 10);
                        if (errno != 0 || *end || !isdigit((unsigned char) *e) || secs > 3600)
                                return log_error_errno(-EINVAL, "GROUPD_SIM_UNBIND_WAIT=\"%s\" is not a "
                                                       "number of seconds from 0 to 3600.", e);
                }
                s->unbind_wait_ms = (unsigned) secs * 1000;
        }

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
