/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgroupd's KVM registration: a lease's groups added to (and deleted from) the VM's kvm-vfio device,
 * in the VMM's own process, the only one the kernel lets use it; on POWER the group's TCE table too. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

#include "kvm-vfio.h"
#include "libgroupd-internal.h"

/* ---------------------------------------------------------------- KVM registration (in this process) */

static int kvm_error_code(int r) {
        switch (r) {
        case -EEXIST:
                return GD_ERR_BUSY;
        case -EINVAL:
        case -ENOTTY:
        case -EBADF:
        case -ENXIO:
                return GD_ERR_INVALID;
        default:
                return GD_ERR_HOST;
        }
}

int gd_client_lease_kvm_add(GdClient *c, GdClientLease *l, int kvm_fd) {
        int fd, r;
        size_t i;

        if (!c || !l)
                return -EINVAL;
        client_clear_error(c);
        if (l->kvm_fd >= 0)
                return client_fail(c, -EALREADY, GD_ERR_BUSY, "lease %s is registered with a kvm-vfio device already",
                                   l->lease.id);
        r = kvm_vfio_kind(kvm_fd);
        if (r < 0)
                return client_fail(c, r, GD_ERR_INVALID, "fd %i is not a kvm-vfio device%s", kvm_fd,
                                   kvm_vfio_error_hint(r));
        fd = fcntl(kvm_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return client_fail(c, -errno, GD_ERR_INTERNAL, "cannot keep the kvm-vfio fd: %m");
        for (i = 0; i < l->n_group_fds; i++) {
                r = kvm_vfio_add(fd, l->group_fds[i], l->lease.groups[i]);
                if (r < 0)
                        break;
        }
        if (i < l->n_group_fds) {
                unsigned failed = l->lease.groups[i];
                while (i > 0) {
                        i--;
                        (void) kvm_vfio_del(fd, l->group_fds[i], l->lease.groups[i]);
                }
                safe_close(fd);
                return client_fail(c, r, kvm_error_code(r), "cannot add group %u to the kvm-vfio device: %s%s",
                                   failed, strerror(-r), kvm_vfio_error_hint(r));
        }
        l->kvm_fd = fd;
        return 0;
}

int gd_client_lease_kvm_del(GdClient *c, GdClientLease *l) {
        int first = 0;
        unsigned failed = 0;

        if (!c || !l)
                return -EINVAL;
        client_clear_error(c);
        if (l->kvm_fd < 0)
                return 0;
        for (size_t i = 0; i < l->n_group_fds; i++) {
                int r = kvm_vfio_del(l->kvm_fd, l->group_fds[i], l->lease.groups[i]);
                if (r < 0 && r != -ENOENT && first == 0) {
                        first = r;
                        failed = l->lease.groups[i];
                }
        }
        l->kvm_fd = safe_close(l->kvm_fd);
        if (first < 0)
                return client_fail(c, first, kvm_error_code(first), "cannot delete group %u from the kvm-vfio device: %s%s",
                                   failed, strerror(-first), kvm_vfio_error_hint(first));
        return 0;
}

/* The kernel attaches a VM's TCE table only to a hardware DMA window of the group that exists and matches
 * it (same bus offset, IOMMU pages no larger than the table's, at least as big: kvm_spapr_tce_attach_
 * iommu_group()); before that KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE gets EINVAL. With the sPAPR v2 IOMMU the
 * container's default DMA32 window is created lazily, by the container's first MAP_DMA, UNMAP_DMA,
 * SPAPR_TCE_CREATE or SPAPR_TCE_REMOVE (seen on 6.12: EINVAL right after SET_IOMMU, success after the
 * first map). MAP and UNMAP need registered memory first (EPERM before); SPAPR_TCE_CREATE does not, and
 * makes the default window before it looks at its own arguments: asked for a window of 1-byte pages, which
 * no PHB has, it creates the default window and refuses the new one (EINVAL), leaving nothing else
 * behind. That is what the VMM's first map would have done anyway. */
static int spapr_make_default_window(int container_fd) {
        struct vfio_iommu_spapr_tce_info info = { .argsz = sizeof info };
        struct vfio_iommu_spapr_tce_create create = { .argsz = sizeof create, .page_shift = 0 };

        if (ioctl(container_fd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info) < 0)
                return -errno;          /* not an sPAPR container (or no IOMMU type set yet) */
        if (!(info.flags & VFIO_IOMMU_SPAPR_INFO_DDW))
                return -EOPNOTSUPP;     /* v1: the window is there from ENABLE on */
        if (ioctl(container_fd, VFIO_IOMMU_SPAPR_TCE_CREATE, &create) == 0) {
                /* Not expected; take the stray window away again. */
                struct vfio_iommu_spapr_tce_remove rm = { .argsz = sizeof rm, .start_addr = create.start_addr };
                (void) ioctl(container_fd, VFIO_IOMMU_SPAPR_TCE_REMOVE, &rm);
        }
        return 0;
}

int gd_client_lease_set_spapr_tce(GdClient *c, GdClientLease *l, unsigned group, int table_fd) {
        if (!c || !l)
                return -EINVAL;
        client_clear_error(c);
        if (l->kvm_fd < 0)
                return client_fail(c, -ENOENT, GD_ERR_INVALID, "lease %s is not registered with a kvm-vfio device",
                                   l->lease.id);
        for (size_t i = 0; i < l->n_group_fds; i++) {
                int r, w = 0;

                if (l->lease.groups[i] != group)
                        continue;
                r = kvm_vfio_set_spapr_tce(l->kvm_fd, l->group_fds[i], table_fd);
                if (r == -EINVAL && l->container_fd >= 0) {
                        /* No hardware window yet: make the default one exist, then ask again. */
                        w = spapr_make_default_window(l->container_fd);
                        if (w >= 0)
                                r = kvm_vfio_set_spapr_tce(l->kvm_fd, l->group_fds[i], table_fd);
                }
                if (r == -EINVAL)
                        return client_fail(c, r, GD_ERR_INVALID,
                                           "KVM refused SET_SPAPR_TCE for group %u: no DMA window of the group "
                                           "matches the TCE table%s%s%s. Set the sPAPR IOMMU type on the container "
                                           "(acquire with configure_iommu, or VFIO_SET_IOMMU) and create the "
                                           "window the table describes first (VFIO_IOMMU_SPAPR_TCE_CREATE for a "
                                           "64-bit window): the table's bus offset must be the window's, its page "
                                           "size at least the window's, its size at most the window's",
                                           group, w < 0 ? " (and the default window could not be made: " : "",
                                           w < 0 ? strerror(-w) : "", w < 0 ? ")" : "");
                if (r < 0)
                        return client_fail(c, r, kvm_error_code(r), "KVM refused SET_SPAPR_TCE for group %u: %s%s",
                                           group, strerror(-r), kvm_vfio_error_hint(r));
                return 0;
        }
        return client_fail(c, -ENOENT, GD_ERR_NOT_FOUND, "lease %s does not hold group %u", l->lease.id, group);
}

int gd_client_release_lease(GdClient *c, GdClientLease *l) {
        int r;

        if (!c || !l)
                return -EINVAL;
        /* Out of KVM first: the kvm-vfio device holds the groups (their nodes cannot be opened again) until
         * they are deleted. A failure here does not stop the release. */
        r = gd_client_lease_kvm_del(c, l);
        r = gd_client_release(c, l->token);
        return r;
}
