/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The native wire protocol: a pure encoder and a strict decoder. No I/O, no logging, no global state, so
 * that it can be fuzzed and linked into both the daemon and the client library.
 *
 * Integers are written byte by byte, little-endian; structures are never copied to the wire. The encoder
 * refuses what the decoder would refuse, so whatever encodes also decodes, to the same structure, and
 * encodes again to the same bytes. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "groupd-proto.h"
#include "macro.h"
#include "parse-util.h"

#define GROUP_FLAGS_ALL ((uint32_t) (GD_GROUP_VIABLE | GD_GROUP_LEASED | GD_GROUP_NEVER))
#define EVENT_MASK_ALL ((uint32_t) ((1u << _GD_EVENT_MAX) - 1))

/* The fewest bytes one element of each array can take on the wire: what bounds a count against the
 * bytes left before anything is allocated. */
#define DEVICE_WIRE_MIN (2u + 2u + 2u + 4u + 2u + 2u)
#define REGION_WIRE_MIN (8u + 8u + 2u)
#define LEASE_WIRE_MIN (2u + 2u + 4u + 4u + 4u + 4u + 4u + 8u + 2u)
#define GROUP_WIRE_MIN (4u + 4u + 2u + 2u + 2u + 2u + 2u + 2u + 4u + 4u + 2u)
#define SPEC_WIRE_MIN 2u

/* ---------------------------------------------------------------- names */

static const char *const msg_type_table[] = {
        [GD_MSG_HELLO] = "hello",
        [GD_MSG_LIST_GROUPS] = "list-groups",
        [GD_MSG_SHOW_GROUP] = "show-group",
        [GD_MSG_ACQUIRE] = "acquire",
        [GD_MSG_RELEASE] = "release",
        [GD_MSG_LIST_LEASES] = "list-leases",
        [GD_MSG_SUBSCRIBE] = "subscribe",
        [GD_MSG_STATUS] = "status",
        [GD_MSG_DMA_INFO] = "dma-info",
        [GD_MSG_REVOKE] = "revoke",
        [GD_MSG_ERROR] = "error",
        [GD_MSG_OK] = "ok",
        [GD_MSG_HELLO_REPLY] = "hello-reply",
        [GD_MSG_GROUPS] = "groups",
        [GD_MSG_ACQUIRED] = "acquired",
        [GD_MSG_LEASES] = "leases",
        [GD_MSG_STATUS_REPLY] = "status-reply",
        [GD_MSG_DMA_INFO_REPLY] = "dma-info-reply",
        [GD_MSG_ACQUIRED_DELIVERY] = "acquired-delivery",
        [GD_MSG_EVENT] = "event",
};

static const char *const error_table[_GD_ERR_MAX] = {
        [GD_ERR_PROTOCOL] = "protocol",
        [GD_ERR_VERSION] = "version",
        [GD_ERR_INVALID] = "invalid",
        [GD_ERR_NOT_FOUND] = "not-found",
        [GD_ERR_BUSY] = "busy",
        [GD_ERR_DENIED] = "denied",
        [GD_ERR_NOT_VIABLE] = "not-viable",
        [GD_ERR_HOST] = "host",
        [GD_ERR_LIMIT] = "limit",
        [GD_ERR_BAD_TOKEN] = "bad-token",
        [GD_ERR_INTERNAL] = "internal",
        [GD_ERR_SHUTTING_DOWN] = "shutting-down",
};

static const char *const owner_kind_table[_GD_OWNER_MAX] = {
        [GD_OWNER_CONNECTION] = "connection",
        [GD_OWNER_PROCESS] = "process",
        [GD_OWNER_LEASE_FD] = "lease-fd",
        [GD_OWNER_BUS_NAME] = "bus-name",
};

static const char *const lease_state_table[_GD_LEASE_STATE_MAX] = {
        [GD_LEASE_ACQUIRING] = "acquiring",
        [GD_LEASE_ACTIVE] = "active",
        [GD_LEASE_RELEASING] = "releasing",
        [GD_LEASE_RELEASED] = "released",
};

static const char *const reason_table[_GD_REASON_MAX] = {
        [GD_REASON_RELEASED] = "released",
        [GD_REASON_CONNECTION_CLOSED] = "connection-closed",
        [GD_REASON_OWNER_EXITED] = "owner-exited",
        [GD_REASON_LEASE_FD_CLOSED] = "lease-fd-closed",
        [GD_REASON_SHUTDOWN] = "shutdown",
        [GD_REASON_REVOKED] = "revoked",
        [GD_REASON_DEVICE_VANISHED] = "device-vanished",
        [GD_REASON_RECOVERED_DEAD] = "recovered-dead",
        [GD_REASON_DAEMON_RESTARTED] = "daemon-restarted",
};

static const char *const event_kind_table[_GD_EVENT_MAX] = {
        [GD_EVENT_LEASE_STARTED] = "lease-started",
        [GD_EVENT_LEASE_RELEASING] = "lease-releasing",
        [GD_EVENT_LEASE_ENDED] = "lease-ended",
        [GD_EVENT_GROUP_CHANGED] = "group-changed",
        [GD_EVENT_EVENTS_DROPPED] = "events-dropped",
};

static const char *const dma_source_table[_GD_DMA_SOURCE_MAX] = {
        [GD_DMA_SOURCE_SYSFS] = "sysfs",
        [GD_DMA_SOURCE_CONTAINER] = "container",
};

static const char *const delivery_table[_GD_DELIVERY_MAX] = {
        [GD_DELIVERY_LEGACY] = "legacy",
        [GD_DELIVERY_IOMMUFD] = "iommufd",
        [GD_DELIVERY_NODE_GRANT] = "node-grant",
        [GD_DELIVERY_AUTO] = "auto",
};

static const char *table_lookup(const char *const *table, size_t n, int i) {
        if (i < 0 || (size_t) i >= n)
                return NULL;
        return table[i];
}

static int table_find(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && strcmp(table[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *gd_msg_type_to_string(int t) {
        return table_lookup(msg_type_table, ELEMENTSOF(msg_type_table), t);
}

const char *gd_dma_source_to_string(int s) {
        return table_lookup(dma_source_table, ELEMENTSOF(dma_source_table), s);
}

const char *gd_delivery_to_string(int d) {
        return table_lookup(delivery_table, ELEMENTSOF(delivery_table), d);
}

int gd_delivery_from_string(const char *s) {
        return table_find(delivery_table, ELEMENTSOF(delivery_table), s);
}

const char *gd_error_to_string(int e) {
        return table_lookup(error_table, ELEMENTSOF(error_table), e);
}

int gd_error_from_string(const char *s) {
        return table_find(error_table, ELEMENTSOF(error_table), s);
}

const char *gd_owner_kind_to_string(int k) {
        return table_lookup(owner_kind_table, ELEMENTSOF(owner_kind_table), k);
}

int gd_owner_kind_from_string(const char *s) {
        return table_find(owner_kind_table, ELEMENTSOF(owner_kind_table), s);
}

const char *gd_lease_state_to_string(int s) {
        return table_lookup(lease_state_table, ELEMENTSOF(lease_state_table), s);
}

int gd_lease_state_from_string(const char *s) {
        return table_find(lease_state_table, ELEMENTSOF(lease_state_table), s);
}

const char *gd_reason_to_string(int r) {
        return table_lookup(reason_table, ELEMENTSOF(reason_table), r);
}

int gd_reason_from_string(const char *s) {
        return table_find(reason_table, ELEMENTSOF(reason_table), s);
}

const char *gd_event_kind_to_string(int k) {
        return table_lookup(event_kind_table, ELEMENTSOF(event_kind_table), k);
}

int gd_event_kind_from_string(const char *s) {
        return table_find(event_kind_table, ELEMENTSOF(event_kind_table), s);
}

/* The one errno → GdError table. Either sign of errno is accepted. What is not listed is a host failure
 * (GD_ERR_HOST, with the errno telling which), except ENOMEM and 0 (a caller that has no errno to give),
 * which are the daemon's own trouble (GD_ERR_INTERNAL). */
GdError gd_error_from_errno(int errno_value) {
        /* Negated in unsigned arithmetic: -INT_MIN would overflow. */
        unsigned e = errno_value < 0 ? 0u - (unsigned) errno_value : (unsigned) errno_value;

        switch (e) {
        case EINVAL:
                return GD_ERR_INVALID;
        case ENOENT:
        case ENODEV:
        case ENXIO:
                return GD_ERR_NOT_FOUND;
        case EBUSY:
        case EALREADY:
        case EINPROGRESS:
                return GD_ERR_BUSY;
        case EPERM:
        case EACCES:
                return GD_ERR_DENIED;
        case E2BIG:
        case EMFILE:
        case ENFILE:
        case ENOSPC:
        case EUSERS:
                return GD_ERR_LIMIT;
        case EBADMSG:
        case EPROTO:
        case EMSGSIZE:
                return GD_ERR_PROTOCOL;
        case EPROTONOSUPPORT:
                return GD_ERR_VERSION;
        case ESHUTDOWN:
                return GD_ERR_SHUTTING_DOWN;
        case 0:
        case ENOMEM:
                return GD_ERR_INTERNAL;
        default:
                return GD_ERR_HOST;
        }
}

bool gd_token_is_valid(const char *s) {
        return is_lower_hex_string(s, GD_TOKEN_LEN);
}

/* ---------------------------------------------------------------- freeing */

static void device_done(GdDevice *d) {
        free(d->address);
        free(d->driver);
        free(d->driver_override);
}

void gd_group_done(GdGroup *g) {
        if (!g)
                return;
        free(g->type);
        free(g->viability);
        if (g->devices)
                for (size_t i = 0; i < g->n_devices; i++)
                        device_done(&g->devices[i]);
        free(g->devices);
        if (g->regions)
                for (size_t i = 0; i < g->n_regions; i++)
                        free(g->regions[i].type);
        free(g->regions);
        free(g->lease_id);
        free(g->holder_label);
        free(g->policy_note);
        *g = (GdGroup) {};
}

void gd_lease_done(GdLease *l) {
        if (!l)
                return;
        free(l->id);
        free(l->label);
        free(l->groups);
        *l = (GdLease) {};
}

void gd_groups_free(GdGroup *g, size_t n) {
        if (!g)
                return;
        for (size_t i = 0; i < n; i++)
                gd_group_done(&g[i]);
        free(g);
}

void gd_leases_free(GdLease *l, size_t n) {
        if (!l)
                return;
        for (size_t i = 0; i < n; i++)
                gd_lease_done(&l[i]);
        free(l);
}

void gd_dma_info_done(GdDmaInfo *d) {
        if (!d)
                return;
        if (d->regions)
                for (size_t i = 0; i < d->n_regions; i++)
                        free(d->regions[i].type);
        free(d->regions);
        free(d->note);
        *d = (GdDmaInfo) {};
}

void gd_dma_info_free(GdDmaInfo *d) {
        gd_dma_info_done(d);
        free(d);
}

void gd_msg_done(GdMsg *m) {
        if (!m)
                return;

        switch (m->type) {
        case GD_MSG_HELLO:
        case GD_MSG_HELLO_REPLY:
                free(m->hello.name);
                free(m->hello.host);
                break;
        case GD_MSG_SHOW_GROUP:
        case GD_MSG_DMA_INFO:
                free(m->spec);
                break;
        case GD_MSG_DMA_INFO_REPLY:
                gd_dma_info_done(&m->dma_info);
                break;
        case GD_MSG_ACQUIRE:
                free(m->acquire.label);
                if (m->acquire.specs)
                        for (size_t i = 0; i < m->acquire.n_specs; i++)
                                free(m->acquire.specs[i]);
                free(m->acquire.specs);
                break;
        case GD_MSG_RELEASE:
                free(m->token);
                break;
        case GD_MSG_REVOKE:
                free(m->revoke.lease_id);
                break;
        case GD_MSG_ERROR:
                free(m->error.message);
                break;
        case GD_MSG_GROUPS:
                if (m->groups.groups)
                        for (size_t i = 0; i < m->groups.n_groups; i++)
                                gd_group_done(&m->groups.groups[i]);
                free(m->groups.groups);
                break;
        case GD_MSG_ACQUIRED:
        case GD_MSG_ACQUIRED_DELIVERY:
                free(m->acquired.token);
                gd_lease_done(&m->acquired.lease);
                if (m->acquired.devices)
                        for (size_t i = 0; i < m->acquired.n_devices; i++)
                                free(m->acquired.devices[i]);
                free(m->acquired.devices);
                if (m->acquired.nodes)
                        for (size_t i = 0; i < m->acquired.n_nodes; i++)
                                free(m->acquired.nodes[i]);
                free(m->acquired.nodes);
                break;
        case GD_MSG_LEASES:
                if (m->leases.leases)
                        for (size_t i = 0; i < m->leases.n_leases; i++)
                                gd_lease_done(&m->leases.leases[i]);
                free(m->leases.leases);
                break;
        case GD_MSG_STATUS_REPLY:
                free(m->status.version);
                free(m->status.host);
                break;
        case GD_MSG_EVENT:
                gd_lease_done(&m->event.lease);
                free(m->event.detail);
                break;
        default: /* no pointers: LIST_GROUPS, LIST_LEASES, SUBSCRIBE, STATUS, OK, or not a type at all */
                break;
        }

        *m = (GdMsg) {};
}

size_t gd_msg_expected_fds(const GdMsg *m) {
        if (!m)
                return 0;

        switch (m->type) {
        case GD_MSG_ACQUIRE:
                return (m->acquire.flags & GD_ACQUIRE_OWNER_PROCESS) ? 1 : 0;
        case GD_MSG_ACQUIRED:
        case GD_MSG_ACQUIRED_DELIVERY: {
                /* The daemon hands a lease fd exactly when the lease's owner is one. */
                size_t lease_fd = m->acquired.lease.owner_kind == GD_OWNER_LEASE_FD ? 1 : 0;
                if (m->type == GD_MSG_ACQUIRED_DELIVERY && m->acquired.delivery == GD_DELIVERY_IOMMUFD)
                        return 1 + (size_t) m->acquired.n_devices + lease_fd;
                if (m->type == GD_MSG_ACQUIRED_DELIVERY && m->acquired.delivery == GD_DELIVERY_NODE_GRANT)
                        return lease_fd;
                return 1 + (size_t) m->acquired.lease.n_groups + lease_fd;
        }
        default:
                return 0;
        }
}

/* ---------------------------------------------------------------- encoding */

typedef struct Writer {
        uint8_t *buf;
        size_t size;
        size_t pos;     /* bytes the packet needs so far; may run past size, never past GD_MSG_SIZE_MAX */
        int error;      /* the first error, sticky */
} Writer;

static void put_bytes(Writer *w, const void *p, size_t n) {
        if (w->error < 0 || n == 0)
                return;
        if (n > GD_MSG_SIZE_MAX - w->pos) {
                w->error = -EMSGSIZE;
                return;
        }
        /* Past the end of a too small buffer we only count, so that the caller learns the size. */
        if (w->pos <= w->size && n <= w->size - w->pos)
                memcpy(w->buf + w->pos, p, n);
        w->pos += n;
}

static void put_u8(Writer *w, uint8_t v) {
        put_bytes(w, &v, 1);
}

static void put_u16(Writer *w, uint16_t v) {
        uint8_t b[2] = { (uint8_t) v, (uint8_t) (v >> 8) };
        put_bytes(w, b, sizeof b);
}

static void put_u32(Writer *w, uint32_t v) {
        uint8_t b[4] = { (uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24) };
        put_bytes(w, b, sizeof b);
}

static void put_u64(Writer *w, uint64_t v) {
        put_u32(w, (uint32_t) v);
        put_u32(w, (uint32_t) (v >> 32));
}

static void put_i32(Writer *w, int32_t v) {
        put_u32(w, (uint32_t) v);
}

static void fail(Writer *w, int error) {
        if (w->error >= 0)
                w->error = error;
}

static void put_str(Writer *w, const char *s, size_t max) {
        size_t n;

        if (!s)
                s = "";
        n = strnlen(s, max + 1);
        if (n > max) {
                fail(w, -EINVAL);
                return;
        }
        put_u16(w, (uint16_t) n);
        put_bytes(w, s, n);
}

static void put_token(Writer *w, const char *s) {
        if (!gd_token_is_valid(s)) {
                fail(w, -EINVAL);
                return;
        }
        put_str(w, s, GD_TOKEN_LEN);
}

/* An array: its count first. A NULL array with a non-zero count is a caller's bug. */
static bool put_count(Writer *w, const void *array, uint16_t n, size_t max) {
        if (n > max || (n > 0 && !array)) {
                fail(w, -EINVAL);
                return false;
        }
        put_u16(w, n);
        return true;
}

static void put_lease(Writer *w, const GdLease *l) {
        if (l->owner_kind >= _GD_OWNER_MAX || l->state >= _GD_LEASE_STATE_MAX) {
                fail(w, -EINVAL);
                return;
        }

        put_str(w, l->id, GD_LEASE_ID_MAX);
        put_str(w, l->label, GD_LABEL_MAX);
        put_u32(w, l->uid);
        put_u32(w, l->pid);
        put_u32(w, l->owner_kind);
        put_u32(w, l->owner_pid);
        put_u32(w, l->state);
        put_u64(w, l->since_usec);
        if (put_count(w, l->groups, l->n_groups, GD_GROUPS_PER_ACQUIRE_MAX))
                for (size_t i = 0; i < l->n_groups; i++)
                        put_u32(w, l->groups[i]);
}

static void put_device(Writer *w, const GdDevice *d) {
        put_str(w, d->address, GD_PCI_ADDR_MAX);
        put_u16(w, d->vendor);
        put_u16(w, d->device);
        put_u32(w, d->class_code);
        put_str(w, d->driver, GD_NAME_MAX);
        put_str(w, d->driver_override, GD_NAME_MAX);
}

static void put_region(Writer *w, const GdRegion *r) {
        put_u64(w, r->start);
        put_u64(w, r->end);
        put_str(w, r->type, GD_NAME_MAX);
}

static void put_group(Writer *w, const GdGroup *g) {
        if (g->flags & ~GROUP_FLAGS_ALL) {
                fail(w, -EINVAL);
                return;
        }

        put_u32(w, g->id);
        put_u32(w, g->flags);
        put_str(w, g->type, GD_NAME_MAX);
        put_str(w, g->viability, GD_TEXT_MAX);
        if (put_count(w, g->devices, g->n_devices, GD_DEVICES_PER_GROUP_MAX))
                for (size_t i = 0; i < g->n_devices && w->error >= 0; i++)
                        put_device(w, &g->devices[i]);
        if (put_count(w, g->regions, g->n_regions, GD_REGIONS_PER_GROUP_MAX))
                for (size_t i = 0; i < g->n_regions && w->error >= 0; i++)
                        put_region(w, &g->regions[i]);
        put_str(w, g->lease_id, GD_LEASE_ID_MAX);
        put_str(w, g->holder_label, GD_LABEL_MAX);
        put_u32(w, g->holder_uid);
        put_u32(w, g->holder_pid);
        put_str(w, g->policy_note, GD_TEXT_MAX);
}

static void put_dma(Writer *w, const GdDma *d) {
        if ((d->flags & ~(uint32_t) _GD_DMA_ALL) || d->n_iova > GD_IOVA_RANGES_MAX) {
                fail(w, -EINVAL);
                return;
        }
        put_u32(w, d->flags);
        put_u32(w, d->iommu_type);
        put_u64(w, d->pgsizes);
        put_u16(w, d->n_iova);
        for (size_t i = 0; i < d->n_iova; i++) {
                put_u64(w, d->iova[i].start);
                put_u64(w, d->iova[i].end);
        }
        put_u32(w, d->dma_avail);
        put_u32(w, d->migration_flags);
        put_u64(w, d->migration_pgsizes);
        put_u64(w, d->migration_max_dirty_bitmap_size);
        put_u32(w, d->spapr_dma32_start);
        put_u32(w, d->spapr_dma32_size);
        put_u64(w, d->spapr_ddw_pgsizes);
        put_u32(w, d->spapr_ddw_max_windows);
        put_u32(w, d->spapr_ddw_levels);
}

static int put_payload(Writer *w, const GdMsg *m) {
        switch (m->type) {
        case GD_MSG_HELLO:
                put_u32(w, m->hello.version_min);
                put_u32(w, m->hello.version_max);
                put_str(w, m->hello.name, GD_NAME_MAX);
                break;
        case GD_MSG_LIST_GROUPS:
        case GD_MSG_LIST_LEASES:
        case GD_MSG_STATUS:
        case GD_MSG_OK:
                break;
        case GD_MSG_SHOW_GROUP:
        case GD_MSG_DMA_INFO:
                put_str(w, m->spec, GD_SPEC_MAX);
                break;
        case GD_MSG_DMA_INFO_REPLY:
                if (m->dma_info.source >= _GD_DMA_SOURCE_MAX || m->dma_info.kvm > 1)
                        return -EINVAL;
                put_u32(w, m->dma_info.group);
                put_u32(w, m->dma_info.source);
                put_dma(w, &m->dma_info.dma);
                if (put_count(w, m->dma_info.regions, m->dma_info.n_regions, GD_REGIONS_PER_GROUP_MAX))
                        for (size_t i = 0; i < m->dma_info.n_regions && w->error >= 0; i++)
                                put_region(w, &m->dma_info.regions[i]);
                put_u32(w, m->dma_info.n_devices);
                put_u8(w, m->dma_info.kvm);
                put_str(w, m->dma_info.note, GD_TEXT_MAX);
                break;
        case GD_MSG_ACQUIRE:
                if ((m->acquire.flags & ~(uint32_t) _GD_ACQUIRE_ALL) || m->acquire.n_specs == 0)
                        return -EINVAL;
                put_u32(w, m->acquire.flags);
                put_str(w, m->acquire.label, GD_LABEL_MAX);
                if (put_count(w, m->acquire.specs, m->acquire.n_specs, GD_GROUPS_PER_ACQUIRE_MAX))
                        for (size_t i = 0; i < m->acquire.n_specs; i++)
                                put_str(w, m->acquire.specs[i], GD_SPEC_MAX);
                put_u64(w, m->acquire.guest_ram);
                if (m->acquire.flags & GD_ACQUIRE_DELIVERY) {
                        /* Any value: a mode the daemon does not know is its to refuse (ERROR invalid). */
                        put_u32(w, m->acquire.delivery);
                        put_u32(w, m->acquire.grant_uid);
                }
                break;
        case GD_MSG_RELEASE:
                put_token(w, m->token);
                break;
        case GD_MSG_REVOKE:
                if ((m->revoke.flags & ~(uint32_t) _GD_REVOKE_ALL) || isempty(m->revoke.lease_id))
                        return -EINVAL;
                put_str(w, m->revoke.lease_id, GD_LEASE_ID_MAX);
                put_u32(w, m->revoke.deadline_sec);
                put_u32(w, m->revoke.flags);
                break;
        case GD_MSG_SUBSCRIBE:
                if (m->event_mask & ~EVENT_MASK_ALL)
                        return -EINVAL;
                put_u32(w, m->event_mask);
                break;
        case GD_MSG_ERROR:
                if (m->error.code <= 0 || m->error.code >= _GD_ERR_MAX || m->error.errno_value < 0)
                        return -EINVAL;
                put_i32(w, m->error.code);
                put_i32(w, m->error.errno_value);
                put_str(w, m->error.message, GD_TEXT_MAX);
                break;
        case GD_MSG_HELLO_REPLY:
                /* One version on the wire: the chosen one, from version_min (or version_max if that is 0). */
                put_u32(w, m->hello.version_min ?: m->hello.version_max);
                put_str(w, m->hello.name, GD_NAME_MAX);
                put_str(w, m->hello.host, GD_NAME_MAX);
                break;
        case GD_MSG_GROUPS:
                if (m->groups.more > 1)
                        return -EINVAL;
                put_u8(w, m->groups.more);
                if (put_count(w, m->groups.groups, m->groups.n_groups, UINT16_MAX))
                        for (size_t i = 0; i < m->groups.n_groups && w->error >= 0; i++)
                                put_group(w, &m->groups.groups[i]);
                break;
        case GD_MSG_ACQUIRED:
        case GD_MSG_ACQUIRED_DELIVERY:
                put_token(w, m->acquired.token);
                put_lease(w, &m->acquired.lease);
                put_u32(w, m->acquired.iommu_type);
                put_dma(w, &m->acquired.dma);
                put_u64(w, m->acquired.memlock);
                if (m->type == GD_MSG_ACQUIRED)
                        break;
                if (m->acquired.delivery >= GD_DELIVERY_AUTO)
                        return -EINVAL;
                put_u32(w, m->acquired.delivery);
                put_u32(w, m->acquired.grant_uid);
                if (put_count(w, m->acquired.devices, m->acquired.n_devices, GD_DEVICES_PER_ACQUIRE_MAX))
                        for (size_t i = 0; i < m->acquired.n_devices; i++)
                                put_str(w, m->acquired.devices[i], GD_PCI_ADDR_MAX);
                if (put_count(w, m->acquired.nodes, m->acquired.n_nodes, GD_GROUPS_PER_ACQUIRE_MAX))
                        for (size_t i = 0; i < m->acquired.n_nodes; i++)
                                put_str(w, m->acquired.nodes[i], GD_NODE_PATH_MAX);
                break;
        case GD_MSG_LEASES:
                if (m->leases.more > 1)
                        return -EINVAL;
                put_u8(w, m->leases.more);
                if (put_count(w, m->leases.leases, m->leases.n_leases, UINT16_MAX))
                        for (size_t i = 0; i < m->leases.n_leases && w->error >= 0; i++)
                                put_lease(w, &m->leases.leases[i]);
                break;
        case GD_MSG_STATUS_REPLY:
                put_str(w, m->status.version, GD_NAME_MAX);
                put_str(w, m->status.host, GD_NAME_MAX);
                put_u32(w, m->status.n_groups);
                put_u32(w, m->status.n_leases);
                put_u32(w, m->status.n_clients);
                put_u64(w, m->status.started_usec);
                break;
        case GD_MSG_EVENT:
                if (m->event.kind >= _GD_EVENT_MAX || m->event.reason >= _GD_REASON_MAX ||
                    m->event.errno_value < 0)
                        return -EINVAL;
                put_u32(w, m->event.kind);
                put_lease(w, &m->event.lease);
                put_u32(w, m->event.reason);
                put_i32(w, m->event.errno_value);
                put_str(w, m->event.detail, GD_TEXT_MAX);
                break;
        default:
                return -EBADMSG;
        }

        return w->error;
}

int gd_msg_encode(const GdMsg *m, uint8_t *buf, size_t size, size_t *ret_len) {
        Writer w = { .buf = buf, .size = buf ? size : 0 };
        int r;

        if (!m)
                return -EINVAL;

        put_u16(&w, GD_PROTO_VERSION);
        put_u16(&w, m->type);
        put_u32(&w, m->serial);
        put_u32(&w, 0); /* the length, filled in below */

        r = put_payload(&w, m);
        if (r < 0)
                return r;

        if (w.pos > w.size) {
                if (ret_len)
                        *ret_len = w.pos;
                return -ENOBUFS;
        }

        uint32_t length = (uint32_t) (w.pos - GD_HEADER_SIZE);
        buf[8] = (uint8_t) length;
        buf[9] = (uint8_t) (length >> 8);
        buf[10] = (uint8_t) (length >> 16);
        buf[11] = (uint8_t) (length >> 24);

        if (ret_len)
                *ret_len = w.pos;
        return 0;
}

/* ---------------------------------------------------------------- decoding */

typedef struct Reader {
        const uint8_t *p;
        size_t left;
} Reader;

static int get_bytes(Reader *r, size_t n, const uint8_t **ret) {
        if (n > r->left)
                return -EBADMSG;
        *ret = r->p;
        r->p += n;
        r->left -= n;
        return 0;
}

static int get_u8(Reader *r, uint8_t *ret) {
        const uint8_t *b;
        int k = get_bytes(r, 1, &b);
        if (k < 0)
                return k;
        *ret = b[0];
        return 0;
}

static int get_u16(Reader *r, uint16_t *ret) {
        const uint8_t *b;
        int k = get_bytes(r, 2, &b);
        if (k < 0)
                return k;
        *ret = (uint16_t) (b[0] | b[1] << 8);
        return 0;
}

static int get_u32(Reader *r, uint32_t *ret) {
        const uint8_t *b;
        int k = get_bytes(r, 4, &b);
        if (k < 0)
                return k;
        *ret = (uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16 | (uint32_t) b[3] << 24;
        return 0;
}

static int get_u64(Reader *r, uint64_t *ret) {
        uint32_t lo, hi;
        int k;

        k = get_u32(r, &lo);
        if (k < 0)
                return k;
        k = get_u32(r, &hi);
        if (k < 0)
                return k;
        *ret = (uint64_t) hi << 32 | lo;
        return 0;
}

static int get_i32(Reader *r, int32_t *ret) {
        uint32_t u;
        int k = get_u32(r, &u);
        if (k < 0)
                return k;
        *ret = (int32_t) u;
        return 0;
}

/* A u32 that must be below max (an enum). */
static int get_enum(Reader *r, uint32_t max, uint32_t *ret) {
        int k = get_u32(r, ret);
        if (k < 0)
                return k;
        return *ret < max ? 0 : -EBADMSG;
}

/* A u32 that must carry no bits outside mask. */
static int get_bits(Reader *r, uint32_t mask, uint32_t *ret) {
        int k = get_u32(r, ret);
        if (k < 0)
                return k;
        return (*ret & ~mask) ? -EBADMSG : 0;
}

/* A string of at most max bytes, none of them NUL; returned as a malloc()ed NUL-terminated copy. */
static int get_str(Reader *r, size_t max, char **ret) {
        const uint8_t *b;
        uint16_t n;
        char *s;
        int k;

        k = get_u16(r, &n);
        if (k < 0)
                return k;
        if (n > max)
                return -EBADMSG;
        k = get_bytes(r, n, &b);
        if (k < 0)
                return k;
        if (n > 0 && memchr(b, 0, n))
                return -EBADMSG;

        s = malloc((size_t) n + 1);
        if (!s)
                return -ENOMEM;
        if (n > 0)
                memcpy(s, b, n);
        s[n] = 0;
        *ret = s;
        return 0;
}

static int get_token(Reader *r, char **ret) {
        int k = get_str(r, GD_TOKEN_LEN, ret);
        if (k < 0)
                return k;
        return gd_token_is_valid(*ret) ? 0 : -EBADMSG; /* *ret is freed with the rest of the message */
}

/* An array count, at most max, and at least min (0 or 1); the array is allocated zeroed only once the
 * bytes left could hold that many elements of at least elem_wire_min bytes each. The count is stored
 * before the elements are decoded, so that freeing a half-decoded message frees what is there. */
static int get_array(Reader *r, size_t min, size_t max, size_t elem_wire_min, size_t elem_size,
                     void **ret_array, uint16_t *ret_n) {
        uint16_t n;
        void *a;
        int k;

        k = get_u16(r, &n);
        if (k < 0)
                return k;
        if (n < min || n > max || n > r->left / elem_wire_min)
                return -EBADMSG;
        if (n == 0)
                return 0;

        a = calloc(n, elem_size);
        if (!a)
                return -ENOMEM;
        *ret_array = a;
        *ret_n = n;
        return 0;
}

static int get_lease(Reader *r, GdLease *l) {
        void *groups = NULL;
        int k;

        if ((k = get_str(r, GD_LEASE_ID_MAX, &l->id)) < 0 ||
            (k = get_str(r, GD_LABEL_MAX, &l->label)) < 0 ||
            (k = get_u32(r, &l->uid)) < 0 ||
            (k = get_u32(r, &l->pid)) < 0 ||
            (k = get_enum(r, _GD_OWNER_MAX, &l->owner_kind)) < 0 ||
            (k = get_u32(r, &l->owner_pid)) < 0 ||
            (k = get_enum(r, _GD_LEASE_STATE_MAX, &l->state)) < 0 ||
            (k = get_u64(r, &l->since_usec)) < 0)
                return k;

        k = get_array(r, 0, GD_GROUPS_PER_ACQUIRE_MAX, 4, sizeof(uint32_t), &groups, &l->n_groups);
        l->groups = groups;
        if (k < 0)
                return k;
        for (size_t i = 0; i < l->n_groups; i++)
                if ((k = get_u32(r, &l->groups[i])) < 0)
                        return k;
        return 0;
}

static int get_device(Reader *r, GdDevice *d) {
        int k;

        if ((k = get_str(r, GD_PCI_ADDR_MAX, &d->address)) < 0 ||
            (k = get_u16(r, &d->vendor)) < 0 ||
            (k = get_u16(r, &d->device)) < 0 ||
            (k = get_u32(r, &d->class_code)) < 0 ||
            (k = get_str(r, GD_NAME_MAX, &d->driver)) < 0 ||
            (k = get_str(r, GD_NAME_MAX, &d->driver_override)) < 0)
                return k;
        return 0;
}

static int get_region(Reader *r, GdRegion *g) {
        int k;

        if ((k = get_u64(r, &g->start)) < 0 ||
            (k = get_u64(r, &g->end)) < 0 ||
            (k = get_str(r, GD_NAME_MAX, &g->type)) < 0)
                return k;
        return 0;
}

static int get_group(Reader *r, GdGroup *g) {
        void *a;
        int k;

        if ((k = get_u32(r, &g->id)) < 0 ||
            (k = get_bits(r, GROUP_FLAGS_ALL, &g->flags)) < 0 ||
            (k = get_str(r, GD_NAME_MAX, &g->type)) < 0 ||
            (k = get_str(r, GD_TEXT_MAX, &g->viability)) < 0)
                return k;

        a = NULL;
        k = get_array(r, 0, GD_DEVICES_PER_GROUP_MAX, DEVICE_WIRE_MIN, sizeof(GdDevice), &a, &g->n_devices);
        g->devices = a;
        if (k < 0)
                return k;
        for (size_t i = 0; i < g->n_devices; i++)
                if ((k = get_device(r, &g->devices[i])) < 0)
                        return k;

        a = NULL;
        k = get_array(r, 0, GD_REGIONS_PER_GROUP_MAX, REGION_WIRE_MIN, sizeof(GdRegion), &a, &g->n_regions);
        g->regions = a;
        if (k < 0)
                return k;
        for (size_t i = 0; i < g->n_regions; i++)
                if ((k = get_region(r, &g->regions[i])) < 0)
                        return k;

        if ((k = get_str(r, GD_LEASE_ID_MAX, &g->lease_id)) < 0 ||
            (k = get_str(r, GD_LABEL_MAX, &g->holder_label)) < 0 ||
            (k = get_u32(r, &g->holder_uid)) < 0 ||
            (k = get_u32(r, &g->holder_pid)) < 0 ||
            (k = get_str(r, GD_TEXT_MAX, &g->policy_note)) < 0)
                return k;
        return 0;
}

static int get_more(Reader *r, uint8_t *ret) {
        int k = get_u8(r, ret);
        if (k < 0)
                return k;
        return *ret <= 1 ? 0 : -EBADMSG;
}

static int get_dma(Reader *r, GdDma *d) {
        int k;

        if ((k = get_bits(r, _GD_DMA_ALL, &d->flags)) < 0 ||
            (k = get_u32(r, &d->iommu_type)) < 0 ||
            (k = get_u64(r, &d->pgsizes)) < 0 ||
            (k = get_u16(r, &d->n_iova)) < 0)
                return k;
        if (d->n_iova > GD_IOVA_RANGES_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < d->n_iova; i++)
                if ((k = get_u64(r, &d->iova[i].start)) < 0 ||
                    (k = get_u64(r, &d->iova[i].end)) < 0)
                        return k;
        if ((k = get_u32(r, &d->dma_avail)) < 0 ||
            (k = get_u32(r, &d->migration_flags)) < 0 ||
            (k = get_u64(r, &d->migration_pgsizes)) < 0 ||
            (k = get_u64(r, &d->migration_max_dirty_bitmap_size)) < 0 ||
            (k = get_u32(r, &d->spapr_dma32_start)) < 0 ||
            (k = get_u32(r, &d->spapr_dma32_size)) < 0 ||
            (k = get_u64(r, &d->spapr_ddw_pgsizes)) < 0 ||
            (k = get_u32(r, &d->spapr_ddw_max_windows)) < 0 ||
            (k = get_u32(r, &d->spapr_ddw_levels)) < 0)
                return k;
        return 0;
}

static int get_payload(Reader *r, GdMsg *m) {
        uint32_t u;
        void *a;
        int k;

        switch (m->type) {
        case GD_MSG_HELLO:
                if ((k = get_u32(r, &m->hello.version_min)) < 0 ||
                    (k = get_u32(r, &m->hello.version_max)) < 0 ||
                    (k = get_str(r, GD_NAME_MAX, &m->hello.name)) < 0)
                        return k;
                return 0;

        case GD_MSG_LIST_GROUPS:
        case GD_MSG_LIST_LEASES:
        case GD_MSG_STATUS:
        case GD_MSG_OK:
                return 0;

        case GD_MSG_SHOW_GROUP:
        case GD_MSG_DMA_INFO:
                return get_str(r, GD_SPEC_MAX, &m->spec);

        case GD_MSG_DMA_INFO_REPLY: {
                uint8_t kvm;

                if ((k = get_u32(r, &m->dma_info.group)) < 0 ||
                    (k = get_enum(r, _GD_DMA_SOURCE_MAX, &m->dma_info.source)) < 0 ||
                    (k = get_dma(r, &m->dma_info.dma)) < 0)
                        return k;
                a = NULL;
                k = get_array(r, 0, GD_REGIONS_PER_GROUP_MAX, REGION_WIRE_MIN, sizeof(GdRegion), &a,
                              &m->dma_info.n_regions);
                m->dma_info.regions = a;
                if (k < 0)
                        return k;
                for (size_t i = 0; i < m->dma_info.n_regions; i++)
                        if ((k = get_region(r, &m->dma_info.regions[i])) < 0)
                                return k;
                if ((k = get_u32(r, &m->dma_info.n_devices)) < 0 ||
                    (k = get_u8(r, &kvm)) < 0)
                        return k;
                if (kvm > 1)
                        return -EBADMSG;
                m->dma_info.kvm = kvm;
                return get_str(r, GD_TEXT_MAX, &m->dma_info.note);
        }

        case GD_MSG_ACQUIRE:
                if ((k = get_bits(r, _GD_ACQUIRE_ALL, &m->acquire.flags)) < 0 ||
                    (k = get_str(r, GD_LABEL_MAX, &m->acquire.label)) < 0)
                        return k;
                a = NULL;
                k = get_array(r, 1, GD_GROUPS_PER_ACQUIRE_MAX, SPEC_WIRE_MIN, sizeof(char *), &a,
                              &m->acquire.n_specs);
                m->acquire.specs = a;
                if (k < 0)
                        return k;
                for (size_t i = 0; i < m->acquire.n_specs; i++)
                        if ((k = get_str(r, GD_SPEC_MAX, &m->acquire.specs[i])) < 0)
                                return k;
                if ((k = get_u64(r, &m->acquire.guest_ram)) < 0)
                        return k;
                if (!(m->acquire.flags & GD_ACQUIRE_DELIVERY)) {
                        m->acquire.delivery = GD_DELIVERY_LEGACY;
                        m->acquire.grant_uid = GD_GRANT_UID_CALLER;
                        return 0;
                }
                if ((k = get_u32(r, &m->acquire.delivery)) < 0)
                        return k;
                return get_u32(r, &m->acquire.grant_uid);

        case GD_MSG_RELEASE:
                return get_token(r, &m->token);

        case GD_MSG_REVOKE:
                if ((k = get_str(r, GD_LEASE_ID_MAX, &m->revoke.lease_id)) < 0 ||
                    (k = get_u32(r, &m->revoke.deadline_sec)) < 0)
                        return k;
                if (isempty(m->revoke.lease_id))
                        return -EBADMSG;
                return get_bits(r, _GD_REVOKE_ALL, &m->revoke.flags);

        case GD_MSG_SUBSCRIBE:
                return get_bits(r, EVENT_MASK_ALL, &m->event_mask);

        case GD_MSG_ERROR:
                if ((k = get_i32(r, &m->error.code)) < 0 ||
                    (k = get_i32(r, &m->error.errno_value)) < 0)
                        return k;
                if (m->error.code <= 0 || m->error.code >= _GD_ERR_MAX || m->error.errno_value < 0)
                        return -EBADMSG;
                return get_str(r, GD_TEXT_MAX, &m->error.message);

        case GD_MSG_HELLO_REPLY:
                if ((k = get_u32(r, &u)) < 0 ||
                    (k = get_str(r, GD_NAME_MAX, &m->hello.name)) < 0 ||
                    (k = get_str(r, GD_NAME_MAX, &m->hello.host)) < 0)
                        return k;
                m->hello.version_min = m->hello.version_max = u;
                return 0;

        case GD_MSG_GROUPS:
                if ((k = get_more(r, &m->groups.more)) < 0)
                        return k;
                a = NULL;
                k = get_array(r, 0, UINT16_MAX, GROUP_WIRE_MIN, sizeof(GdGroup), &a, &m->groups.n_groups);
                m->groups.groups = a;
                if (k < 0)
                        return k;
                for (size_t i = 0; i < m->groups.n_groups; i++)
                        if ((k = get_group(r, &m->groups.groups[i])) < 0)
                                return k;
                return 0;

        case GD_MSG_ACQUIRED:
        case GD_MSG_ACQUIRED_DELIVERY:
                if ((k = get_token(r, &m->acquired.token)) < 0 ||
                    (k = get_lease(r, &m->acquired.lease)) < 0 ||
                    (k = get_u32(r, &m->acquired.iommu_type)) < 0 ||
                    (k = get_dma(r, &m->acquired.dma)) < 0 ||
                    (k = get_u64(r, &m->acquired.memlock)) < 0)
                        return k;
                if (m->type == GD_MSG_ACQUIRED)
                        return 0;
                /* The delivery block. */
                if ((k = get_enum(r, GD_DELIVERY_AUTO, &m->acquired.delivery)) < 0 ||
                    (k = get_u32(r, &m->acquired.grant_uid)) < 0)
                        return k;
                a = NULL;
                k = get_array(r, 0, GD_DEVICES_PER_ACQUIRE_MAX, SPEC_WIRE_MIN, sizeof(char *), &a,
                              &m->acquired.n_devices);
                m->acquired.devices = a;
                if (k < 0)
                        return k;
                for (size_t i = 0; i < m->acquired.n_devices; i++)
                        if ((k = get_str(r, GD_PCI_ADDR_MAX, &m->acquired.devices[i])) < 0)
                                return k;
                a = NULL;
                k = get_array(r, 0, GD_GROUPS_PER_ACQUIRE_MAX, SPEC_WIRE_MIN, sizeof(char *), &a,
                              &m->acquired.n_nodes);
                m->acquired.nodes = a;
                if (k < 0)
                        return k;
                for (size_t i = 0; i < m->acquired.n_nodes; i++)
                        if ((k = get_str(r, GD_NODE_PATH_MAX, &m->acquired.nodes[i])) < 0)
                                return k;
                /* Each mode has its own labels: device addresses with iommufd (at least one), nodes with
                 * node-grant, neither with legacy. */
                if ((m->acquired.delivery == GD_DELIVERY_IOMMUFD) != (m->acquired.n_devices > 0) ||
                    (m->acquired.delivery != GD_DELIVERY_NODE_GRANT && m->acquired.n_nodes > 0))
                        return -EBADMSG;
                return 0;

        case GD_MSG_LEASES:
                if ((k = get_more(r, &m->leases.more)) < 0)
                        return k;
                a = NULL;
                k = get_array(r, 0, UINT16_MAX, LEASE_WIRE_MIN, sizeof(GdLease), &a, &m->leases.n_leases);
                m->leases.leases = a;
                if (k < 0)
                        return k;
                for (size_t i = 0; i < m->leases.n_leases; i++)
                        if ((k = get_lease(r, &m->leases.leases[i])) < 0)
                                return k;
                return 0;

        case GD_MSG_STATUS_REPLY:
                if ((k = get_str(r, GD_NAME_MAX, &m->status.version)) < 0 ||
                    (k = get_str(r, GD_NAME_MAX, &m->status.host)) < 0 ||
                    (k = get_u32(r, &m->status.n_groups)) < 0 ||
                    (k = get_u32(r, &m->status.n_leases)) < 0 ||
                    (k = get_u32(r, &m->status.n_clients)) < 0 ||
                    (k = get_u64(r, &m->status.started_usec)) < 0)
                        return k;
                return 0;

        case GD_MSG_EVENT:
                if ((k = get_enum(r, _GD_EVENT_MAX, &m->event.kind)) < 0 ||
                    (k = get_lease(r, &m->event.lease)) < 0 ||
                    (k = get_enum(r, _GD_REASON_MAX, &m->event.reason)) < 0 ||
                    (k = get_i32(r, &m->event.errno_value)) < 0)
                        return k;
                if (m->event.errno_value < 0)
                        return -EBADMSG;
                return get_str(r, GD_TEXT_MAX, &m->event.detail);

        default:
                return -EBADMSG;
        }
}

int gd_msg_decode(const uint8_t *buf, size_t len, GdMsg *ret) {
        GdMsg m = {};
        uint16_t version;
        uint32_t length;
        Reader r;
        int k;

        if (!ret)
                return -EINVAL;
        *ret = (GdMsg) {};

        if (len > GD_MSG_SIZE_MAX)
                return -EMSGSIZE;
        if (!buf || len < GD_HEADER_SIZE)
                return -EBADMSG;

        r = (Reader) { .p = buf, .left = len };
        (void) get_u16(&r, &version);
        (void) get_u16(&r, &m.type);
        (void) get_u32(&r, &m.serial);
        (void) get_u32(&r, &length);

        /* Framing first: a packet whose length field lies is garbage, whatever its version says. */
        if (length != r.left)
                return -EBADMSG;
        if (version != GD_PROTO_VERSION)
                return -EPROTONOSUPPORT;

        k = get_payload(&r, &m);
        if (k >= 0 && r.left > 0)
                k = -EBADMSG; /* bytes left over */
        if (k < 0) {
                gd_msg_done(&m);
                return k;
        }

        *ret = m;
        return 0;
}
