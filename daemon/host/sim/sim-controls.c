/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The simulated host's controls: what happens behind the daemon's back (a device removed, added, rebound; a mount, swap or route), and what the host stands on. (host-sim.c has the whole picture.) */
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

/* ---------------------------------------------------------------- behind the daemon's back */

/* Mutex held. A change for the watcher; dropped when out of memory (the watcher rereads anyway). */
void sim_queue_change(Sim *s, HostChangeKind kind, const char *address, const char *driver) {
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

void sim_set_use(Sim *s, const char *address, HostUseKind kind, const char *what, bool on) {
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
int sim_control(Host *h, Sim *s, char *line) {
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
void sim_read_control(Host *h, Sim *s) {
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

int sim_watch_fd(Host *h) {
        return sim_of(h)->change_fd;
}

int sim_watch_drain(Host *h, HostChange **ret, size_t *ret_n) {
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

int sim_list_uses(Host *h, HostUse **ret, size_t *ret_n) {
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
int sim_modules_alias(Host *h, char **ret) {
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

bool sim_denylisted(Host *h, const HostDevice *d) {
        const SimTopoDevice *td = sim_topology_find_device(sim_of(h)->topology, d->address);
        return td && td->vfio_denylisted;
}
