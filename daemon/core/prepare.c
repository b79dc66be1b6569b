/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdio.h>
#include <time.h>

#include "fanout.h"
#include "memlock.h"
#include "prepare.h"
#include "text-util.h"

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

bool lease_device_is_assigned(const HostDevice *d) {
        assert(d);
        return !host_device_is_bridge(d);
}

/* "a PCIe port (pcieport)", "a PCI bridge (no driver)". */
static void bridge_words(const HostDevice *d, char *buf, size_t size) {
        const char *what = d->header_type == HOST_HEADER_CARDBUS ? "a CardBus bridge" :
                           streq(d->driver, "pcieport") ? "a PCIe port" : "a PCI bridge";
        (void) snprintf(buf, size, "%s (%s)", what, isempty(d->driver) ? "no driver" : d->driver);
}

bool group_refusal(const HostGroup *g, char *reason, size_t size) {
        size_t n_assigned = 0;

        assert(g);
        if (reason && size > 0)
                reason[0] = 0;
        for (size_t i = 0; i < g->n_devices; i++) {
                const HostDevice *d = &g->devices[i];

                if (!lease_device_is_assigned(d)) {
                        if (!host_device_is_vfio_safe(d)) {
                                char words[96];
                                bridge_words(d, words, sizeof words);
                                (void) snprintf(reason, size, "%s is %s, a driver the kernel does not accept "
                                                "in a group used through VFIO; unbind it first", d->address,
                                                words);
                                return true;
                        }
                        continue;
                }
                if (d->vfio_denylisted && !d->vfio_driver) {
                        (void) snprintf(reason, size, "%s is on vfio-pci's deny list (vfio-pci refuses to bind "
                                        "it; the module's disable_denylist=1 lifts that)", d->address);
                        return true;
                }
                n_assigned++;
        }
        if (n_assigned == 0 && g->n_devices > 0) {
                size_t off = (size_t) snprintf(reason, size, "group %u has no device to assign:", g->id);
                for (size_t i = 0; i < g->n_devices && off < size; i++) {
                        char words[96];
                        bridge_words(&g->devices[i], words, sizeof words);
                        off += (size_t) snprintf(reason + off, size - off, "%s %s is %s", i > 0 ? ";" : "",
                                                 g->devices[i].address, words);
                }
                return true;
        }
        return false;
}

bool group_viability(const HostGroup *g, char *reason, size_t size) {
        size_t off = 0;
        bool viable = true;

        assert(g);
        if (reason && size > 0)
                reason[0] = 0;
        for (size_t i = 0; i < g->n_devices; i++) {
                const HostDevice *d = &g->devices[i];
                if (host_device_is_vfio_safe(d))
                        continue;
                if (reason && off < size)
                        off += (size_t) snprintf(reason + off, size - off, "%s%s is bound to %s",
                                                 viable ? "" : "; ", d->address, d->driver);
                viable = false;
        }
        return viable;
}

Prepare *prepare_free(Prepare *p) {
        if (!p)
                return NULL;
        safe_close(p->container_fd);
        if (p->group_fds)
                close_many(p->group_fds, p->n_groups);
        free(p->group_fds);
        safe_close(p->iommufd);
        if (p->device_fds)
                close_many(p->device_fds, p->n_devices);
        free(p->device_fds);
        free(p->grants);
        free(p->devices);
        free(p->groups);
        free(p);
        return NULL;
}

int prepare_new(Host *h, const LeaseDevice *devices, size_t n_devices, const unsigned *groups, size_t n_groups,
                Prepare **ret) {
        _cleanup_(prepare_freep) Prepare *p = NULL;

        assert(h);
        assert(devices || n_devices == 0);
        assert(groups || n_groups == 0);
        assert(ret);

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->host = h;
        p->container_fd = -EBADF;
        p->n_devices = n_devices;
        p->n_groups = n_groups;
        p->devices = calloc(MAX(n_devices, (size_t) 1), sizeof *p->devices);
        p->groups = calloc(MAX(n_groups, (size_t) 1), sizeof *p->groups);
        p->group_fds = calloc(MAX(n_groups, (size_t) 1), sizeof *p->group_fds);
        p->device_fds = calloc(MAX(n_devices, (size_t) 1), sizeof *p->device_fds);
        if (!p->devices || !p->groups || !p->group_fds || !p->device_fds)
                return -ENOMEM;
        p->iommufd = -EBADF;
        for (size_t i = 0; i < n_devices; i++)
                p->device_fds[i] = -EBADF;
        if (n_devices > 0)
                memcpy(p->devices, devices, n_devices * sizeof *devices);
        if (n_groups > 0)
                memcpy(p->groups, groups, n_groups * sizeof *groups);
        for (size_t i = 0; i < n_groups; i++)
                p->group_fds[i] = -EBADF;
        *ret = TAKE_PTR(p);
        return 0;
}

int prepare_set_grants(Prepare *p, const LeaseGrant *grants, size_t n) {
        assert(p);
        assert(grants || n == 0);
        free(p->grants);
        p->grants = NULL;
        p->n_grants = 0;
        if (n == 0)
                return 0;
        p->grants = calloc(n, sizeof *p->grants);
        if (!p->grants)
                return -ENOMEM;
        memcpy(p->grants, grants, n * sizeof *grants);
        p->n_grants = n;
        return 0;
}

/* Puts each granted node's ACL and mode back as they were. A node that is gone (the kernel removes
 * /dev/vfio/N when its group leaves vfio-pci) has nothing to put back. */
static int revoke_grants(Host *h, const LeaseGrant *grants, size_t n, char *detail, size_t size) {
        int first_error = 0;

        for (size_t i = 0; i < n; i++) {
                int r = host_node_restore(h, grants[i].node, &grants[i].before);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        text_append(detail, size, "/dev/%s: access not put back (%s)", grants[i].node, strerror(-r));
                        if (first_error == 0)
                                first_error = r;
                } else
                        text_append(detail, size, "/dev/%s: access as before", grants[i].node);
        }
        return first_error;
}

/* Each device's share of a restore, in a slot of its own: the devices are put back at once (fanout.h). */
typedef struct RestoreShare {
        Host *host;
        const LeaseDevice *devices;
        int *unbind_errors;            /* step 1's result per device */
        int *rebind_errors;            /* step 2's */
        char (*details)[MANAGER_TEXT_MAX];
} RestoreShare;

/* 1. Off the driver the lease put it on. */
static void restore_unbind_one(size_t i, void *userdata) {
        RestoreShare *s = userdata;
        Host *h = s->host;
        const LeaseDevice *devices = s->devices;
        HostDevice d;
        int r;

        if (devices[i].standby)
                return; /* stays on vfio-pci */
        r = host_read_device(h, devices[i].address, &d);
        if (r < 0)
                return; /* gone: reported below */
        if (!isempty(d.driver) && !streq(d.driver, devices[i].driver)) {
                r = host_device_unbind(h, d.address);
                if (r < 0 && s->unbind_errors[i] == 0)
                        s->unbind_errors[i] = r;
        }
}

/* 2. The override and the driver it had back. */
static void restore_rebind_one(size_t i, void *userdata) {
        RestoreShare *s = userdata;
        Host *h = s->host;
        const LeaseDevice *ld = &s->devices[i];
        char *detail = s->details[i];
        size_t size = sizeof s->details[i];
        HostDevice d;
        int r;

        if (ld->standby) {
                text_append(detail, size, "%s stays on vfio-pci (standby)", ld->address);
                return;
        }
        r = host_read_device(h, ld->address, &d);
        if (r == -ENOENT) {
                /* Gone from the host (removed, or hot-unplugged): nothing to put back, and nothing
                 * that failed. */
                text_append(detail, size, "%s vanished", ld->address);
                return;
        }
        if (r < 0) {
                text_append(detail, size, "%s: cannot read it (%s)", ld->address, strerror(-r));
                s->rebind_errors[i] = r;
                return;
        }
        /* The override first: with it back, a probe finds what it found before the lease. */
        if (!streq(d.driver_override, ld->override)) {
                r = host_device_set_override(h, ld->address, ld->override);
                if (r < 0) {
                        text_append(detail, size, "%s: driver_override \"%s\" did not come back (%s)",
                                    ld->address, ld->override, strerror(-r));
                        if (s->rebind_errors[i] == 0)
                                s->rebind_errors[i] = r;
                }
        }
        if (isempty(ld->driver)) {
                if (isempty(d.driver))
                        text_append(detail, size, "%s → (no driver)", ld->address);
                else
                        text_append(detail, size, "%s → %s (had no driver)", ld->address, d.driver);
                return;
        }
        if (streq(d.driver, ld->driver)) {
                text_append(detail, size, "%s → %s", ld->address, d.driver);
                return;
        }
        r = 0;
        if (isempty(d.driver)) {
                /* By name: what matches its id table (a host driver) binds so. */
                r = host_device_bind(h, ld->address, ld->driver);
                if (r < 0 && !streq(ld->override, ld->driver)) {
                        /* A driver that binds only when the override names it (pci-stub without
                         * ids=, a VFIO variant driver): name it for a moment. */
                        r = host_device_set_override(h, ld->address, ld->driver);
                        if (r >= 0)
                                r = host_device_bind(h, ld->address, ld->driver);
                        (void) host_device_set_override(h, ld->address, ld->override);
                }
                if (r < 0)
                        (void) host_device_probe(h, ld->address);
                r = host_read_device(h, ld->address, &d);
        }
        if (r >= 0 && streq(d.driver, ld->driver))
                text_append(detail, size, "%s → %s", ld->address, d.driver);
        else {
                if (r >= 0)
                        r = -ENXIO;
                text_append(detail, size, "%s: %s did not come back (%s%s%s)", ld->address, ld->driver,
                            strerror(-r), isempty(d.driver) ? "" : ", now on ", d.driver);
                if (s->rebind_errors[i] == 0)
                        s->rebind_errors[i] = r;
        }
}

/* Puts devices back exactly as found: driver and driver_override both. First every device leaves the
 * driver the lease put it on (the kernel holds an unbind from a VFIO driver up while a VMM still has the
 * device open), then the drivers come back, since a host driver cannot bind while another device of the
 * group is still in use through VFIO. A device already on its old driver (one that was on a VFIO driver
 * before the lease, used as it was) is left alone but for its override. Within each of the two steps the
 * devices go at once (fanout.h); the second starts when the first is done for all. The first error
 * (step 1's first, in device order) is returned; detail lists the devices in order. */
static int restore_devices(Host *h, const LeaseDevice *devices, size_t n, char *detail, size_t size,
                           uint64_t *us_unbind, uint64_t *us_rebind) {
        RestoreShare s = { .host = h, .devices = devices };
        uint64_t t0 = now_us(), t1;
        int first_error = 0;

        s.unbind_errors = calloc(MAX(n, (size_t) 1), sizeof *s.unbind_errors);
        s.rebind_errors = calloc(MAX(n, (size_t) 1), sizeof *s.rebind_errors);
        s.details = calloc(MAX(n, (size_t) 1), sizeof *s.details);
        if (!s.unbind_errors || !s.rebind_errors || !s.details) {
                free(s.unbind_errors);
                free(s.rebind_errors);
                free(s.details);
                text_append(detail, size, "out of memory: nothing was put back");
                return -ENOMEM;
        }

        fanout_run(n, restore_unbind_one, &s);
        t1 = now_us();
        if (us_unbind)
                *us_unbind = t1 - t0;

        fanout_run(n, restore_rebind_one, &s);
        if (us_rebind)
                *us_rebind = now_us() - t1;

        for (size_t i = 0; i < n; i++)
                if (first_error == 0)
                        first_error = s.unbind_errors[i];
        for (size_t i = 0; i < n; i++) {
                if (first_error == 0)
                        first_error = s.rebind_errors[i];
                if (!isempty(s.details[i]))
                        text_append(detail, size, "%s", s.details[i]);
        }
        free(s.unbind_errors);
        free(s.rebind_errors);
        free(s.details);
        return first_error;
}

int prepare_restore(Prepare *p) {
        int r, k;

        assert(p);
        /* Grants first: the nodes go with the unbind, and a device that stays on vfio-pci keeps its node. */
        k = revoke_grants(p->host, p->grants, p->n_grants, p->detail, sizeof p->detail);
        r = restore_devices(p->host, p->devices, p->n_devices, p->detail, sizeof p->detail, &p->us_unbind,
                            &p->us_rebind);
        return r < 0 ? r : k;
}

/* Each device's share of step 1, in a slot of its own: the devices go at once (fanout.h). */
typedef struct BindShare {
        Prepare *p;
        bool *moved;                   /* the share changed the device (so a rollback puts it back) */
        int *results;
        ManagerError *errors;
} BindShare;

static void bind_one(size_t i, void *userdata) {
        BindShare *s = userdata;
        Host *h = s->p->host;
        const LeaseDevice *ld = &s->p->devices[i];
        ManagerError *err = &s->errors[i];
        const char *target;
        HostDevice d;
        int r;

        r = host_read_device(h, ld->address, &d);
        if (r < 0) {
                manager_error(err, MANAGER_ERROR_HOST, r, "cannot read device %s: %s", ld->address,
                              strerror(-r));
                goto finish;
        }
        if (d.vfio_driver)
                goto finish;
        target = isempty(ld->vfio_driver) ? VFIO_PCI_DRIVER : ld->vfio_driver;
        s->moved[i] = true;
        r = host_device_set_override(h, ld->address, target);
        if (r < 0) {
                manager_error(err, MANAGER_ERROR_HOST, r, "cannot set driver_override of %s: %s",
                              ld->address, strerror(-r));
                goto finish;
        }
        if (!isempty(d.driver)) {
                r = host_device_unbind(h, ld->address);
                if (r < 0) {
                        manager_error(err, MANAGER_ERROR_HOST, r, "cannot unbind %s from %s: %s",
                                      ld->address, d.driver, strerror(-r));
                        goto finish;
                }
        }
        r = host_device_bind(h, ld->address, target);
        if (r < 0)
                manager_error(err, MANAGER_ERROR_HOST, r, "cannot bind %s to %s: %s%s",
                              ld->address, target, strerror(-r),
                              r == -ENOENT ? " (is the module loaded?)" : "");
finish:
        s->results[i] = r < 0 ? r : 0;
}

/* 1. Every device onto its VFIO driver (vfio-pci, or the variant driver chosen), all at once. What it moved
 * goes to touched, so that a rollback undoes only that: a device of the request already on a VFIO driver
 * (bound by hand, by driverctl, by libvirt's unmanaged mode) is used as it is and stays. Every device's
 * share runs to its end even when another's failed (the rollback then puts back all that moved); the
 * error reported is the first device's, in the request's order. */
static int prepare_bind(Prepare *p, LeaseDevice *touched, size_t *n_touched) {
        size_t n = MAX(p->n_devices, (size_t) 1);
        BindShare s = { .p = p };
        int r = 0;

        s.moved = calloc(n, sizeof *s.moved);
        s.results = calloc(n, sizeof *s.results);
        s.errors = calloc(n, sizeof *s.errors);
        if (!s.moved || !s.results || !s.errors) {
                manager_error(&p->error, MANAGER_ERROR_INTERNAL, ENOMEM, "out of memory");
                r = -ENOMEM;
                goto finish;
        }

        fanout_run(p->n_devices, bind_one, &s);

        for (size_t i = 0; i < p->n_devices; i++) {
                if (s.moved[i])
                        touched[(*n_touched)++] = p->devices[i];
                if (s.results[i] < 0 && r == 0) {
                        r = s.results[i];
                        p->error = s.errors[i];
                }
        }
finish:
        free(s.moved);
        free(s.results);
        free(s.errors);
        return r;
}

/* 2. The container and the groups, opened by us, as root, and attached; the IOMMU type if asked. */
static int prepare_open(Prepare *p) {
        Host *h = p->host;
        uint64_t t = now_us();
        int r;

        r = host_open_container(h, &p->container_fd);
        if (r < 0) {
                manager_error(&p->error, MANAGER_ERROR_HOST, r, "cannot open the VFIO container: %s", strerror(-r));
                return r;
        }
        for (size_t i = 0; i < p->n_groups; i++) {
                bool viable = false;

                r = host_open_group(h, p->groups[i], &p->group_fds[i]);
                if (r == -EBUSY) {
                        manager_error(&p->error, MANAGER_ERROR_BUSY, r,
                                      "group %u is open already, by a process outside groupd", p->groups[i]);
                        return r;
                }
                if (r < 0) {
                        manager_error(&p->error, MANAGER_ERROR_HOST, r, "cannot open group %u: %s", p->groups[i],
                                      strerror(-r));
                        return r;
                }
                r = host_group_is_viable(h, p->group_fds[i], &viable);
                if (r >= 0 && !viable)
                        r = -EPERM;
                if (r < 0) {
                        HostGroup hg = {};
                        char reason[MANAGER_TEXT_MAX] = "";
                        if (host_read_group(h, p->groups[i], &hg) >= 0) {
                                group_viability(&hg, reason, sizeof reason);
                                host_group_done(&hg);
                        }
                        manager_error(&p->error, MANAGER_ERROR_NOT_VIABLE, r, "group %u is not viable%s%s",
                                      p->groups[i], isempty(reason) ? "" : ": ", reason);
                        return r;
                }
                p->us_open += now_us() - t;
                t = now_us();
                r = host_group_set_container(h, p->group_fds[i], p->container_fd);
                if (r < 0) {
                        manager_error(&p->error, r == -EPERM ? MANAGER_ERROR_NOT_VIABLE : MANAGER_ERROR_HOST, r,
                                      "cannot attach group %u to the container: %s", p->groups[i], strerror(-r));
                        return r;
                }
                p->us_attach += now_us() - t;
                t = now_us();
        }
        if (!p->configure_iommu)
                return 0;

        r = host_container_set_iommu(h, p->container_fd, &p->iommu_type);
        if (r < 0) {
                manager_error(&p->error, MANAGER_ERROR_HOST, r, "cannot set the container's IOMMU type: %s",
                              strerror(-r));
                return r;
        }
        p->us_attach += now_us() - t;
        /* 3. The DMA facts; not having them fails nothing. */
        r = host_container_get_info(h, p->container_fd, p->iommu_type, &p->dma);
        if (r < 0) {
                p->dma = (HostIommuInfo) {};
                p->dma_errno = -r;
        }
        return 0;
}

/* 2, iommufd: AUTO decided (now that the devices are on vfio-pci, their cdevs exist or not). */
static int prepare_resolve_delivery(Prepare *p) {
        Host *h = p->host;
        char cdev[HOST_CDEV_MAX];
        bool cdevs = true;

        if (p->delivery != LEASE_DELIVERY_AUTO && p->delivery != LEASE_DELIVERY_IOMMUFD)
                return 0;
        for (size_t i = 0; i < p->n_devices && cdevs; i++)
                if (host_device_cdev(h, p->devices[i].address, cdev) < 0) {
                        if (p->delivery == LEASE_DELIVERY_IOMMUFD) {
                                manager_error(&p->error, MANAGER_ERROR_HOST, EOPNOTSUPP,
                                              "delivery iommufd: device %s has no VFIO cdev (no "
                                              "/sys/bus/pci/devices/%s/vfio-dev/: a kernel without "
                                              "VFIO_DEVICE_CDEV)", p->devices[i].address, p->devices[i].address);
                                return -EOPNOTSUPP;
                        }
                        cdevs = false;
                }
        if (p->delivery == LEASE_DELIVERY_AUTO)
                p->delivery = cdevs && host_has_iommufd(h) ? LEASE_DELIVERY_IOMMUFD : LEASE_DELIVERY_LEGACY;
        return 0;
}

/* Cuts [start, end] out of the IOVA ranges. */
static void iova_cut(HostIommuInfo *info, uint64_t start, uint64_t end) {
        HostIommuInfo out = *info;

        out.n_iova = 0;
        for (uint32_t i = 0; i < info->n_iova; i++) {
                HostIovaRange r = info->iova[i];
                if (r.end < start || r.start > end) {
                        if (out.n_iova < HOST_IOVA_RANGES_MAX)
                                out.iova[out.n_iova++] = r;
                        continue;
                }
                if (r.start < start && out.n_iova < HOST_IOVA_RANGES_MAX)
                        out.iova[out.n_iova++] = (HostIovaRange) { r.start, start - 1 };
                if (r.end > end && out.n_iova < HOST_IOVA_RANGES_MAX)
                        out.iova[out.n_iova++] = (HostIovaRange) { end + 1, r.end };
        }
        *info = out;
}

/* 3, iommufd: one /dev/iommu with per-process memlock accounting (read back), one unbound cdev per device.
 * /dev/vfio/N is never opened: a group open and a cdev bind exclude each other. */
static int prepare_open_iommufd(Prepare *p) {
        Host *h = p->host;
        uint64_t t = now_us();
        bool per_process = false;
        int r;

        r = host_open_iommufd(h, &p->iommufd);
        if (r < 0) {
                manager_error(&p->error, MANAGER_ERROR_HOST, r, "cannot open /dev/iommu: %s", strerror(-r));
                return r;
        }
        r = host_iommufd_set_rlimit_mode(h, p->iommufd, true);
        if (r >= 0)
                r = host_iommufd_get_rlimit_mode(h, p->iommufd, &per_process);
        if (r >= 0 && !per_process)
                r = -EIO;
        if (r < 0) {
                manager_error(&p->error, MANAGER_ERROR_HOST, r,
                              "cannot set IOMMU_OPTION_RLIMIT_MODE to per-process on the iommufd: %s%s", strerror(-r),
                              r == -EPERM ? " (groupd needs CAP_SYS_RESOURCE for this)" : "");
                return r;
        }
        for (size_t i = 0; i < p->n_devices; i++) {
                r = host_open_device_cdev(h, p->devices[i].address, &p->device_fds[i]);
                if (r < 0) {
                        manager_error(&p->error, MANAGER_ERROR_HOST, r, "cannot open the VFIO cdev of %s: %s",
                                      p->devices[i].address, strerror(-r));
                        return r;
                }
        }
        p->us_open += now_us() - t;

        /* The DMA facts iommufd gives without a bound device: a scratch IOAS's IOVA ranges, with every
         * group's reserved regions (sysfs) cut out. Not having them fails nothing. */
        r = host_iommufd_iova_ranges(h, p->iommufd, &p->dma);
        for (size_t i = 0; r >= 0 && i < p->n_groups; i++) {
                HostGroup hg = {};
                if (host_read_group(h, p->groups[i], &hg) < 0)
                        continue;
                for (size_t k = 0; k < hg.n_regions; k++)
                        if (!streq(hg.regions[k].type, "direct-relaxable"))
                                iova_cut(&p->dma, hg.regions[k].start, hg.regions[k].end);
                host_group_done(&hg);
        }
        if (r < 0) {
                p->dma = (HostIommuInfo) {};
                p->dma_errno = -r;
        }
        return 0;
}

/* 3, node-grant: nothing opened; the uid gets read and write on each group's node. */
static int prepare_grant(Prepare *p) {
        Host *h = p->host;

        free(p->grants);
        p->n_grants = 0;
        p->grants = calloc(MAX(p->n_groups, (size_t) 1), sizeof *p->grants);
        if (!p->grants) {
                manager_error(&p->error, MANAGER_ERROR_INTERNAL, ENOMEM, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < p->n_groups; i++) {
                LeaseGrant *g = &p->grants[p->n_grants];
                int r;

                (void) snprintf(g->node, sizeof g->node, "vfio/%u", p->groups[i]);
                r = host_node_grant(h, g->node, p->grant_uid, &g->before);
                if (r < 0) {
                        manager_error(&p->error, MANAGER_ERROR_HOST, r, "cannot grant uid %u access to /dev/%s: %s%s",
                                      (unsigned) p->grant_uid, g->node, strerror(-r),
                                      r == -EOPNOTSUPP ? " (no POSIX ACLs on this /dev)" : "");
                        return r;
                }
                p->n_grants++;
        }
        return 0;
}

/* 4. The owner's locked-memory limit, when asked, within the policy's ceiling. */
static int prepare_memlock(Prepare *p) {
        uint64_t want = 0;
        _cleanup_free_ MemlockGroup *g = NULL;
        char a[32], b[32];
        int r;

        if (!p->memlock)
                return 0;

        g = calloc(MAX(p->n_groups, (size_t) 1), sizeof *g);
        if (!g) {
                manager_error(&p->error, MANAGER_ERROR_INTERNAL, ENOMEM, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < p->n_groups; i++) {
                g[i] = (MemlockGroup) { .id = p->groups[i] };
                for (size_t k = 0; k < p->n_devices; k++)
                        if (p->devices[k].group == p->groups[i])
                                g[i].n_devices++;
        }
        r = memlock_limit_for_groups(p->guest_ram, p->viommu, g, p->n_groups, &want, NULL);
        if (r < 0) {
                manager_error(&p->error, MANAGER_ERROR_INVALID, r, "cannot compute the memlock limit: %s",
                              strerror(-r));
                return r;
        }
        if (want > p->memlock_max) {
                manager_error(&p->error, MANAGER_ERROR_DENIED, EPERM,
                              "the guest needs RLIMIT_MEMLOCK %s, above the policy's max=%s for this caller",
                              memlock_format_size(want, a, sizeof a),
                              memlock_format_size(p->memlock_max, b, sizeof b));
                return -EPERM;
        }
        r = host_raise_memlock(p->host, p->memlock_pid, want, NULL, NULL);
        if (r < 0) {
                manager_error(&p->error, r == -ESRCH ? MANAGER_ERROR_INVALID : MANAGER_ERROR_HOST, r,
                              "cannot raise RLIMIT_MEMLOCK of pid %i to %s: %s%s", (int) p->memlock_pid,
                              memlock_format_size(want, a, sizeof a), strerror(-r),
                              r == -EPERM ? " (groupd needs CAP_SYS_RESOURCE for this)" : "");
                return r;
        }
        p->memlock_set = want;
        return 0;
}

int prepare_acquire(Prepare *p) {
        _cleanup_free_ LeaseDevice *touched = NULL;
        size_t n_touched = 0;
        uint64_t t;
        int r;

        assert(p);
        assert(p->container_fd < 0);

        touched = calloc(MAX(p->n_devices, (size_t) 1), sizeof *touched);
        if (!touched) {
                manager_error(&p->error, MANAGER_ERROR_INTERNAL, ENOMEM, "out of memory");
                return -ENOMEM;
        }

        t = now_us();
        r = prepare_bind(p, touched, &n_touched);
        p->us_bind = now_us() - t;
        if (r >= 0)
                r = prepare_resolve_delivery(p);
        if (r >= 0)
                switch (p->delivery) {
                case LEASE_DELIVERY_IOMMUFD:
                        r = prepare_open_iommufd(p);
                        break;
                case LEASE_DELIVERY_NODE_GRANT:
                        r = prepare_grant(p);
                        break;
                default:
                        r = prepare_open(p);
                }
        if (r >= 0)
                r = prepare_memlock(p);
        if (r >= 0)
                return 0;

        p->container_fd = safe_close(p->container_fd);
        close_many(p->group_fds, p->n_groups);
        p->iommufd = safe_close(p->iommufd);
        close_many(p->device_fds, p->n_devices);
        (void) revoke_grants(p->host, p->grants, p->n_grants, p->detail, sizeof p->detail);
        p->n_grants = 0;
        (void) restore_devices(p->host, touched, n_touched, p->detail, sizeof p->detail, NULL, NULL);
        return -abs(p->error.errno_value ?: EIO);
}
