/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "wire-view.h"

/* The core's words keep the wire's numbers: a mismatch is a build failure, not a silent mistranslation. */
static_assert(MANAGER_ERROR_INVALID == (int) GD_ERR_INVALID, "error codes");
static_assert(MANAGER_ERROR_NOT_FOUND == (int) GD_ERR_NOT_FOUND, "error codes");
static_assert(MANAGER_ERROR_BUSY == (int) GD_ERR_BUSY, "error codes");
static_assert(MANAGER_ERROR_DENIED == (int) GD_ERR_DENIED, "error codes");
static_assert(MANAGER_ERROR_NOT_VIABLE == (int) GD_ERR_NOT_VIABLE, "error codes");
static_assert(MANAGER_ERROR_HOST == (int) GD_ERR_HOST, "error codes");
static_assert(MANAGER_ERROR_LIMIT == (int) GD_ERR_LIMIT, "error codes");
static_assert(MANAGER_ERROR_BAD_TOKEN == (int) GD_ERR_BAD_TOKEN, "error codes");
static_assert(MANAGER_ERROR_INTERNAL == (int) GD_ERR_INTERNAL, "error codes");
static_assert(MANAGER_ERROR_SHUTTING_DOWN == (int) GD_ERR_SHUTTING_DOWN, "error codes");
static_assert(_LEASE_REASON_MAX == (int) _GD_REASON_MAX, "reasons");
static_assert(LEASE_REASON_RELEASED == (int) GD_REASON_RELEASED, "reasons");
static_assert(LEASE_REASON_CONNECTION_CLOSED == (int) GD_REASON_CONNECTION_CLOSED, "reasons");
static_assert(LEASE_REASON_OWNER_EXITED == (int) GD_REASON_OWNER_EXITED, "reasons");
static_assert(LEASE_REASON_LEASE_FD_CLOSED == (int) GD_REASON_LEASE_FD_CLOSED, "reasons");
static_assert(LEASE_REASON_SHUTDOWN == (int) GD_REASON_SHUTDOWN, "reasons");
static_assert(LEASE_REASON_REVOKED == (int) GD_REASON_REVOKED, "reasons");
static_assert(LEASE_REASON_DEVICE_VANISHED == (int) GD_REASON_DEVICE_VANISHED, "reasons");
static_assert(LEASE_REASON_RECOVERED_DEAD == (int) GD_REASON_RECOVERED_DEAD, "reasons");
static_assert(LEASE_REASON_DAEMON_RESTARTED == (int) GD_REASON_DAEMON_RESTARTED, "reasons");
static_assert(_OWNER_KIND_MAX == (int) _GD_OWNER_MAX, "owner kinds");
static_assert(OWNER_CONNECTION == (int) GD_OWNER_CONNECTION, "owner kinds");
static_assert(OWNER_PROCESS == (int) GD_OWNER_PROCESS, "owner kinds");
static_assert(OWNER_LEASE_FD == (int) GD_OWNER_LEASE_FD, "owner kinds");
static_assert(OWNER_BUS_NAME == (int) GD_OWNER_BUS_NAME, "owner kinds");
static_assert(_LEASE_STATE_MAX == (int) _GD_LEASE_STATE_MAX, "lease states");
static_assert(LEASE_ACQUIRING == (int) GD_LEASE_ACQUIRING, "lease states");
static_assert(LEASE_ACTIVE == (int) GD_LEASE_ACTIVE, "lease states");
static_assert(LEASE_RELEASING == (int) GD_LEASE_RELEASING, "lease states");
static_assert(LEASE_RELEASED == (int) GD_LEASE_RELEASED, "lease states");
static_assert(_MANAGER_EVENT_MAX == (int) _GD_EVENT_MAX, "events");
static_assert(MANAGER_EVENT_LEASE_STARTED == (int) GD_EVENT_LEASE_STARTED, "events");
static_assert(MANAGER_EVENT_LEASE_RELEASING == (int) GD_EVENT_LEASE_RELEASING, "events");
static_assert(MANAGER_EVENT_LEASE_ENDED == (int) GD_EVENT_LEASE_ENDED, "events");
static_assert(MANAGER_EVENT_GROUP_CHANGED == (int) GD_EVENT_GROUP_CHANGED, "events");
static_assert(MANAGER_EVENT_EVENTS_DROPPED == (int) GD_EVENT_EVENTS_DROPPED, "events");
static_assert(DMA_SOURCE_SYSFS == (int) GD_DMA_SOURCE_SYSFS, "DMA sources");
static_assert(DMA_SOURCE_CONTAINER == (int) GD_DMA_SOURCE_CONTAINER, "DMA sources");
/* Limits: what the core accepts, the wire can carry. */
static_assert(LEASE_GROUPS_MAX == GD_GROUPS_PER_ACQUIRE_MAX, "groups per acquire");
static_assert(LEASE_LABEL_MAX == GD_LABEL_MAX, "label length");
static_assert(TOKEN_LEN == GD_TOKEN_LEN, "token length");
static_assert(LEASE_ID_LEN <= GD_LEASE_ID_MAX, "lease id length");
static_assert(MANAGER_TEXT_MAX <= GD_TEXT_MAX, "text length");
static_assert(HOST_IOVA_RANGES_MAX <= GD_IOVA_RANGES_MAX, "IOVA ranges");

GdError wire_error(ManagerErrorCode code) {
        return code >= MANAGER_ERROR_INVALID && code <= MANAGER_ERROR_SHUTTING_DOWN ? (GdError) code :
                                                                                      GD_ERR_INTERNAL;
}

GdReason wire_reason(LeaseReason r) {
        return (GdReason) r;
}

GdOwnerKind wire_owner_kind(OwnerKind k) {
        return (GdOwnerKind) k;
}

GdLeaseState wire_lease_state(LeaseState s) {
        return (GdLeaseState) s;
}

GdEventKind wire_event_kind(ManagerEvent e) {
        return (GdEventKind) e;
}

ManagerEvent wire_event_from_kind(GdEventKind k) {
        return (int) k >= 0 && (int) k < _MANAGER_EVENT_MAX ? (ManagerEvent) k : _MANAGER_EVENT_INVALID;
}

void wire_lease(const Lease *l, GdLease *ret) {
        assert(l);
        assert(ret);
        *ret = (GdLease) {
                .id = (char *) l->id,
                .label = l->label ?: (char *) "",
                .uid = (uint32_t) l->uid,
                .pid = (uint32_t) l->pid,
                .owner_kind = wire_owner_kind(l->owner_kind),
                .owner_pid = l->owner_kind == OWNER_PROCESS ? (uint32_t) l->owner_pid : 0,
                .state = wire_lease_state(l->state),
                .since_usec = l->since_usec,
                .groups = l->groups,
                .n_groups = (uint16_t) l->n_groups,
        };
}

static char *xstrdup(const char *s) {
        return strdup(s ?: "");
}

int wire_group(const GroupView *v, GdGroup *ret) {
        const HostGroup *hg = &v->group;
        GdGroup g = { .id = hg->id };

        assert(v);
        assert(ret);

        if (v->viable)
                g.flags |= GD_GROUP_VIABLE;
        if (v->never)
                g.flags |= GD_GROUP_NEVER;
        if (v->holder) {
                g.flags |= GD_GROUP_LEASED;
                g.holder_uid = (uint32_t) v->holder->uid;
                g.holder_pid = (uint32_t) lease_holder_pid(v->holder);
        }
        g.type = xstrdup(hg->type);
        g.viability = xstrdup(v->viability);
        g.policy_note = xstrdup(v->policy_note);
        g.lease_id = xstrdup(v->holder ? v->holder->id : "");
        g.holder_label = xstrdup(v->holder ? v->holder->label : "");
        if (hg->n_devices > 0)
                g.devices = calloc(MIN(hg->n_devices, (size_t) GD_DEVICES_PER_GROUP_MAX), sizeof *g.devices);
        if (hg->n_regions > 0)
                g.regions = calloc(MIN(hg->n_regions, (size_t) GD_REGIONS_PER_GROUP_MAX), sizeof *g.regions);
        if (!g.type || !g.viability || !g.policy_note || !g.lease_id || !g.holder_label ||
            (hg->n_devices > 0 && !g.devices) || (hg->n_regions > 0 && !g.regions))
                goto oom;

        for (size_t i = 0; i < hg->n_devices && i < GD_DEVICES_PER_GROUP_MAX; i++) {
                const HostDevice *d = &hg->devices[i];
                g.devices[i] = (GdDevice) {
                        .vendor = d->vendor,
                        .device = d->device,
                        .class_code = d->class_code,
                        .address = xstrdup(d->address),
                        .driver = xstrdup(d->driver),
                        .driver_override = xstrdup(d->driver_override),
                };
                g.n_devices++;
                if (!g.devices[i].address || !g.devices[i].driver || !g.devices[i].driver_override)
                        goto oom;
        }
        for (size_t i = 0; i < hg->n_regions && i < GD_REGIONS_PER_GROUP_MAX; i++) {
                g.regions[i] = (GdRegion) {
                        .start = hg->regions[i].start,
                        .end = hg->regions[i].end,
                        .type = xstrdup(hg->regions[i].type),
                };
                g.n_regions++;
                if (!g.regions[i].type)
                        goto oom;
        }
        *ret = g;
        return 0;

oom:
        gd_group_done(&g);
        return -ENOMEM;
}

int wire_groups(const GroupView *v, size_t n, GdGroup **ret) {
        GdGroup *g = NULL;
        int r;

        assert(v || n == 0);
        assert(ret);
        if (n > 0) {
                g = calloc(n, sizeof *g);
                if (!g)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = wire_group(&v[i], &g[i]);
                if (r < 0) {
                        gd_groups_free(g, i);
                        return r;
                }
        }
        *ret = g;
        return 0;
}

void wire_dma(const HostIommuInfo *i, GdDma *ret) {
        assert(i);
        assert(ret);
        *ret = (GdDma) {
                .flags = i->flags & _GD_DMA_ALL,
                .iommu_type = i->iommu_type,
                .pgsizes = i->pgsizes,
                .n_iova = (uint16_t) MIN(i->n_iova, GD_IOVA_RANGES_MAX),
                .dma_avail = i->dma_avail,
                .migration_flags = i->migration_flags,
                .migration_pgsizes = i->migration_pgsizes,
                .migration_max_dirty_bitmap_size = i->migration_max_dirty_bitmap_size,
                .spapr_dma32_start = i->spapr_dma32_start,
                .spapr_dma32_size = i->spapr_dma32_size,
                .spapr_ddw_pgsizes = i->spapr_ddw_pgsizes,
                .spapr_ddw_max_windows = i->spapr_ddw_max_windows,
                .spapr_ddw_levels = i->spapr_ddw_levels,
        };
        for (size_t k = 0; k < ret->n_iova; k++)
                ret->iova[k] = (GdRange) { i->iova[k].start, i->iova[k].end };
}

int wire_dma_info(const DmaView *v, GdDmaInfo **ret) {
        GdDmaInfo *d;

        assert(v);
        assert(ret);

        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->group = v->group;
        d->source = (uint32_t) v->source;
        if (v->source == DMA_SOURCE_CONTAINER)
                wire_dma(&v->dma, &d->dma);
        d->n_devices = v->n_devices;
        d->kvm = v->kvm;
        d->note = strdup(v->note);
        if (!d->note)
                goto oom;
        if (v->host.n_regions > 0) {
                d->regions = calloc(MIN(v->host.n_regions, (size_t) GD_REGIONS_PER_GROUP_MAX), sizeof *d->regions);
                if (!d->regions)
                        goto oom;
                for (size_t k = 0; k < v->host.n_regions && k < GD_REGIONS_PER_GROUP_MAX; k++) {
                        d->regions[k] = (GdRegion) { .start = v->host.regions[k].start,
                                                     .end = v->host.regions[k].end,
                                                     .type = xstrdup(v->host.regions[k].type) };
                        d->n_regions++;
                        if (!d->regions[k].type)
                                goto oom;
                }
        }
        *ret = d;
        return 0;

oom:
        gd_dma_info_free(d);
        return -ENOMEM;
}

static_assert((int) LEASE_DELIVERY_LEGACY == (int) GD_DELIVERY_LEGACY, "delivery numbers");
static_assert((int) LEASE_DELIVERY_IOMMUFD == (int) GD_DELIVERY_IOMMUFD, "delivery numbers");
static_assert((int) LEASE_DELIVERY_NODE_GRANT == (int) GD_DELIVERY_NODE_GRANT, "delivery numbers");
static_assert((int) LEASE_DELIVERY_AUTO == (int) GD_DELIVERY_AUTO, "delivery numbers");
static_assert((int) _LEASE_DELIVERY_MAX == (int) _GD_DELIVERY_MAX, "delivery numbers");
static_assert(LEASE_DEVICE_FDS_MAX == GD_DEVICES_PER_ACQUIRE_MAX, "device fds per ACQUIRED");

void wire_acquired_delivery_done(GdAcquired *a) {
        assert(a);
        if (a->devices)
                for (size_t i = 0; i < a->n_devices; i++)
                        free(a->devices[i]);
        free(a->devices);
        if (a->nodes)
                for (size_t i = 0; i < a->n_nodes; i++)
                        free(a->nodes[i]);
        free(a->nodes);
        a->devices = a->nodes = NULL;
        a->n_devices = a->n_nodes = 0;
}

int wire_acquired_delivery(const Lease *l, GdAcquired *ret) {
        assert(l);
        assert(ret);

        ret->delivery = (uint32_t) l->delivery;
        ret->grant_uid = l->delivery == LEASE_DELIVERY_NODE_GRANT ? (uint32_t) l->grant_uid : 0;
        if (l->delivery == LEASE_DELIVERY_IOMMUFD) {
                ret->devices = calloc(MAX(l->n_devices, (size_t) 1), sizeof(char *));
                if (!ret->devices)
                        return -ENOMEM;
                for (size_t i = 0; i < l->n_devices; i++) {
                        ret->devices[i] = strdup(l->devices[i].address);
                        if (!ret->devices[i])
                                goto oom;
                        ret->n_devices++;
                }
        }
        if (l->delivery == LEASE_DELIVERY_NODE_GRANT) {
                ret->nodes = calloc(MAX(l->n_grants, (size_t) 1), sizeof(char *));
                if (!ret->nodes)
                        goto oom;
                for (size_t i = 0; i < l->n_grants; i++) {
                        if (asprintf(&ret->nodes[i], "/dev/%s", l->grants[i].node) < 0)
                                goto oom;
                        ret->n_nodes++;
                }
        }
        return 0;
oom:
        wire_acquired_delivery_done(ret);
        return -ENOMEM;
}

int wire_acquire_request(const GdAcquire *a, int owner_pidfd, AcquireRequest *ret, ManagerError *err) {
        assert(a);
        assert(ret);

        if (a->flags & ~(uint32_t) _GD_ACQUIRE_ALL) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "unknown acquire flags 0x%x",
                              a->flags & ~(uint32_t) _GD_ACQUIRE_ALL);
                return -EINVAL;
        }
        if ((a->flags & GD_ACQUIRE_OWNER_PROCESS) && (a->flags & GD_ACQUIRE_LEASE_FD)) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "a lease has one owner: a process or a lease fd");
                return -EINVAL;
        }
        *ret = (AcquireRequest) {
                .specs = (const char *const *) a->specs,
                .n_specs = a->n_specs,
                .label = a->label,
                .owner = (a->flags & GD_ACQUIRE_OWNER_PROCESS) ? OWNER_PROCESS :
                         (a->flags & GD_ACQUIRE_LEASE_FD) ? OWNER_LEASE_FD : OWNER_CONNECTION,
                .owner_pidfd = owner_pidfd,
                .configure_iommu = a->flags & GD_ACQUIRE_CONFIGURE_IOMMU,
                .kvm = a->flags & GD_ACQUIRE_KVM,
                .memlock = a->flags & GD_ACQUIRE_MEMLOCK,
                .viommu = a->flags & GD_ACQUIRE_VIOMMU,
                .guest_ram = a->guest_ram,
                /* Unknown modes go on to the core, which names them in its refusal. */
                .delivery = (a->flags & GD_ACQUIRE_DELIVERY) ?
                        (a->delivery < _GD_DELIVERY_MAX ? (LeaseDelivery) a->delivery : _LEASE_DELIVERY_MAX) :
                        LEASE_DELIVERY_LEGACY,
                .grant_uid_set = (a->flags & GD_ACQUIRE_DELIVERY) && a->grant_uid != GD_GRANT_UID_CALLER,
                .grant_uid = (a->flags & GD_ACQUIRE_DELIVERY) ? (uid_t) a->grant_uid : 0,
        };
        if (ret->delivery == _LEASE_DELIVERY_MAX) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL,
                              "unknown delivery mode %" PRIu32 " (0 legacy, 1 iommufd, 2 node-grant, 3 auto)",
                              a->delivery);
                return -EINVAL;
        }
        return 0;
}
