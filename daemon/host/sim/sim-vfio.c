/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The simulated host's VFIO calls: containers, groups and their IOMMU facts, and iommufd with the device cdev. (host-sim.c has the whole picture.) */
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

/* ---------------------------------------------------------------- VFIO */

int sim_open_container(Host *h, int *ret_fd) {
        Sim *s = sim_of(h);
        int r;

        (void) pthread_mutex_lock(&s->mutex);
        r = sim_file_new(s, SIM_FILE_CONTAINER, 0, NULL, ret_fd);
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

int sim_open_group(Host *h, unsigned id, int *ret_fd) {
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

int sim_group_is_viable(Host *h, int group_fd, bool *ret) {
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

int sim_group_set_container(Host *h, int group_fd, int container_fd) {
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


int sim_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type) {
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
int sim_container_facts(Sim *s, SimFile *c, HostIommuInfo *ret, bool *ret_align8) {
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

int sim_container_get_info(Host *h, int container_fd, uint8_t *buf, size_t size) {
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

int sim_open_device_cdev(Host *h, const char *address, const char *cdev, int *ret_fd) {
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

int sim_open_iommufd(Host *h, int *ret_fd) {
        Sim *s = sim_of(h);
        int r;

        if (!s->topology->iommufd)
                return -ENOENT; /* no /dev/iommu */
        (void) pthread_mutex_lock(&s->mutex);
        r = sim_file_new(s, SIM_FILE_IOMMUFD, 0, NULL, ret_fd);
        (void) pthread_mutex_unlock(&s->mutex);
        return r;
}

int sim_iommufd_rlimit_mode(Host *h, int iommufd, bool set, bool *per_process) {
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
int sim_iommufd_iova_ranges(Host *h, int iommufd, HostIommuInfo *ret) {
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
