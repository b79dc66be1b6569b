/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the wire codec (proto/proto.c): round trips of every message type, the exact bytes of a
 * few packets, every way a packet can be malformed, the name tables, and a deterministic garbage loop.
 * Leaks are caught by running this under ASan (--enable-sanitizers) or valgrind (CK_FORK=no). */
#include <check.h>
#include <stdio.h>

#include "groupd-proto.h"
#include "macro.h"
#include "test-util.h"

#define TOKEN_A "0123456789abcdef0123456789abcdef"
#define TOKEN_B "ffffffffffffffff0000000000000000"

/* ---------------------------------------------------------------- sample messages */

static GdDevice sample_devices[] = {
        { .address = (char *) "0000:01:00.0", .vendor = 0x8086, .device = 0x10d3, .class_code = 0x020000,
          .driver = (char *) "vfio-pci", .driver_override = (char *) "vfio-pci" },
        { .address = (char *) "0000:01:00.1", .vendor = 0xffff, .device = 0x0001, .class_code = 0xffffff,
          .driver = NULL, .driver_override = (char *) "" },
};

static GdRegion sample_regions[] = {
        { .start = 0xfee00000, .end = 0xfeefffff, .type = (char *) "msi" },
        { .start = 0, .end = UINT64_MAX, .type = (char *) "direct-relaxable" },
};

static GdGroup sample_groups[] = {
        { .id = 7, .flags = GD_GROUP_VIABLE | GD_GROUP_LEASED, .type = (char *) "DMA-FQ", .viability = (char *) "",
          .devices = sample_devices, .n_devices = 2, .regions = sample_regions, .n_regions = 2,
          .lease_id = (char *) "a1b2c3d4", .holder_label = (char *) "vm \"web\" 1", .holder_uid = 107,
          .holder_pid = 4242, .policy_note = (char *) "" },
        { .id = UINT32_MAX, .flags = GD_GROUP_NEVER, .type = NULL,
          .viability = (char *) "0000:00:1f.3 is bound to snd_hda_intel",
          .holder_uid = UINT32_MAX, .policy_note = (char *) "the host's sound card" },
};

static uint32_t sample_lease_groups[] = { 7, 12, 0xfffffffe };

static GdLease sample_leases[] = {
        { .id = (char *) "a1b2c3d4", .label = (char *) "4c4c4544-0031-3010-8056-b4c04f4b4e32", .uid = 107,
          .pid = 4242, .owner_kind = GD_OWNER_PROCESS, .owner_pid = 4243, .state = GD_LEASE_ACTIVE,
          .since_usec = 0x0102030405060708ull, .groups = sample_lease_groups, .n_groups = 3 },
        { .id = NULL, .label = NULL, .owner_kind = GD_OWNER_CONNECTION, .state = GD_LEASE_RELEASED,
          .since_usec = UINT64_MAX },
};

static char *sample_specs[] = { (char *) "7", (char *) "0000:01:00.0", (char *) "01:00.0" };
static char *sample_nodes[] = { (char *) "/dev/vfio/7" };

static const GdMsg samples[] = {
        { .type = GD_MSG_HELLO, .serial = 1,
          .hello = { .version_min = 1, .version_max = 3, .name = (char *) "qemu-9.0" } },
        { .type = GD_MSG_HELLO, .serial = 2, .hello = { .version_min = 0, .version_max = UINT32_MAX } },
        { .type = GD_MSG_LIST_GROUPS, .serial = 3 },
        { .type = GD_MSG_SHOW_GROUP, .serial = 4, .spec = (char *) "0000:01:00.0" },
        { .type = GD_MSG_SHOW_GROUP, .serial = 5, .spec = NULL },
        { .type = GD_MSG_ACQUIRE, .serial = 6,
          .acquire = { .flags = GD_ACQUIRE_CONFIGURE_IOMMU | GD_ACQUIRE_OWNER_PROCESS | GD_ACQUIRE_LEASE_FD,
                       .label = (char *) "vm-1", .specs = sample_specs, .n_specs = 3 } },
        { .type = GD_MSG_ACQUIRE, .serial = 7, .acquire = { .specs = sample_specs, .n_specs = 1 } },
        { .type = GD_MSG_ACQUIRE, .serial = 30,
          .acquire = { .flags = GD_ACQUIRE_OWNER_PROCESS | GD_ACQUIRE_KVM | GD_ACQUIRE_MEMLOCK | GD_ACQUIRE_VIOMMU,
                       .specs = sample_specs, .n_specs = 1, .guest_ram = UINT64_C(8) << 30 } },
        { .type = GD_MSG_ACQUIRE, .serial = 32,
          .acquire = { .flags = GD_ACQUIRE_DELIVERY, .specs = sample_specs, .n_specs = 1,
                       .delivery = GD_DELIVERY_IOMMUFD, .grant_uid = GD_GRANT_UID_CALLER } },
        { .type = GD_MSG_ACQUIRE, .serial = 33,
          .acquire = { .flags = GD_ACQUIRE_DELIVERY | GD_ACQUIRE_OWNER_PROCESS, .specs = sample_specs, .n_specs = 1,
                       .delivery = GD_DELIVERY_NODE_GRANT, .grant_uid = 1000 } },
        { .type = GD_MSG_DMA_INFO, .serial = 31, .spec = (char *) "3" },
        { .type = GD_MSG_DMA_INFO_REPLY, .serial = 34,
          .dma_info = { .group = 3, .source = GD_DMA_SOURCE_CONTAINER, .n_devices = 2, .kvm = 1,
                        .note = (char *) "", .regions = sample_regions, .n_regions = 1,
                        .dma = { .flags = GD_DMA_PGSIZES | GD_DMA_IOVA | GD_DMA_AVAIL | GD_DMA_MIGRATION,
                                 .iommu_type = 3, .pgsizes = 0x40201000, .n_iova = 2,
                                 .iova = { { 0, 0xfedfffff }, { 0xfef00000, 0xffffffffffff } },
                                 .dma_avail = 65535, .migration_pgsizes = 0x1000,
                                 .migration_max_dirty_bitmap_size = 0x10000000 } } },
        { .type = GD_MSG_DMA_INFO_REPLY, .serial = 35,
          .dma_info = { .group = 9, .source = GD_DMA_SOURCE_SYSFS, .note = (char *) "not leased",
                        .dma = { .flags = GD_DMA_SPAPR | GD_DMA_SPAPR_DDW, .spapr_dma32_size = 0x40000000,
                                 .spapr_ddw_pgsizes = 0x1011000, .spapr_ddw_max_windows = 2,
                                 .spapr_ddw_levels = 5 } } },
        { .type = GD_MSG_RELEASE, .serial = 8, .token = (char *) TOKEN_A },
        { .type = GD_MSG_REVOKE, .serial = 36,
          .revoke = { .lease_id = (char *) "6cdc36278a81", .deadline_sec = 30, .flags = GD_REVOKE_FORCE } },
        { .type = GD_MSG_REVOKE, .serial = 37, .revoke = { .lease_id = (char *) "6cdc36278a81" } },
        { .type = GD_MSG_LIST_LEASES, .serial = 9 },
        { .type = GD_MSG_SUBSCRIBE, .serial = 10, .event_mask = 0 },
        { .type = GD_MSG_SUBSCRIBE, .serial = 11, .event_mask = (1u << _GD_EVENT_MAX) - 1 },
        { .type = GD_MSG_STATUS, .serial = UINT32_MAX },
        { .type = GD_MSG_ERROR, .serial = 12,
          .error = { .code = GD_ERR_BUSY, .errno_value = EBUSY, .message = (char *) "group 7 is leased" } },
        { .type = GD_MSG_ERROR, .serial = 13, .error = { .code = GD_ERR_SHUTTING_DOWN } },
        { .type = GD_MSG_OK, .serial = 14 },
        { .type = GD_MSG_HELLO_REPLY, .serial = 15,
          .hello = { .version_min = 1, .version_max = 1, .name = (char *) "0.1", .host = (char *) "sim" } },
        { .type = GD_MSG_GROUPS, .serial = 16, .groups = { .more = 1, .groups = sample_groups, .n_groups = 2 } },
        { .type = GD_MSG_GROUPS, .serial = 17, .groups = { .more = 0 } },
        { .type = GD_MSG_ACQUIRED, .serial = 18,
          .acquired = { .token = (char *) TOKEN_B, .lease = {
                                .id = (char *) "a1b2c3d4", .label = (char *) "vm-1", .uid = 1000, .pid = 99,
                                .owner_kind = GD_OWNER_LEASE_FD, .state = GD_LEASE_ACTIVE, .since_usec = 1,
                                .groups = sample_lease_groups, .n_groups = 2 },
                        .iommu_type = 3, .memlock = UINT64_C(9) << 30,
                        .dma = { .flags = GD_DMA_PGSIZES | GD_DMA_IOVA, .pgsizes = 0x1000, .n_iova = 1,
                                 .iova = { { 0x1000, 0xfedfffff } } } } },
        { .type = GD_MSG_ACQUIRED_DELIVERY, .serial = 36,
          .acquired = { .token = (char *) TOKEN_B, .lease = {
                                .id = (char *) "a1b2c3d4", .owner_kind = GD_OWNER_PROCESS, .state = GD_LEASE_ACTIVE,
                                .groups = sample_lease_groups, .n_groups = 1 },
                        .delivery = GD_DELIVERY_IOMMUFD, .devices = sample_specs + 1,
                        .n_devices = 2 } },
        { .type = GD_MSG_ACQUIRED_DELIVERY, .serial = 37,
          .acquired = { .token = (char *) TOKEN_B, .lease = {
                                .id = (char *) "a1b2c3d4", .owner_kind = GD_OWNER_LEASE_FD, .state = GD_LEASE_ACTIVE,
                                .groups = sample_lease_groups, .n_groups = 1 },
                        .delivery = GD_DELIVERY_NODE_GRANT, .grant_uid = 1000,
                        .nodes = sample_nodes, .n_nodes = 1 } },
        { .type = GD_MSG_ACQUIRED_DELIVERY, .serial = 38,
          .acquired = { .token = (char *) TOKEN_B, .lease = {
                                .id = (char *) "a1b2c3d4", .owner_kind = GD_OWNER_CONNECTION, .state = GD_LEASE_ACTIVE,
                                .groups = sample_lease_groups, .n_groups = 2 },
                        .delivery = GD_DELIVERY_LEGACY } },
        { .type = GD_MSG_LEASES, .serial = 19, .leases = { .more = 0, .leases = sample_leases, .n_leases = 2 } },
        { .type = GD_MSG_LEASES, .serial = 20, .leases = { .more = 1 } },
        { .type = GD_MSG_STATUS_REPLY, .serial = 21,
          .status = { .version = (char *) "0.1", .host = (char *) "linux", .n_groups = 40, .n_leases = 2,
                      .n_clients = UINT32_MAX, .started_usec = 1700000000000000ull } },
        { .type = GD_MSG_EVENT, .serial = 0,
          .event = { .kind = GD_EVENT_LEASE_ENDED, .reason = GD_REASON_RECOVERED_DEAD, .errno_value = EIO,
                     .detail = (char *) "0000:01:00.0: e1000e did not come back",
                     .lease = { .id = (char *) "a1b2c3d4", .owner_kind = GD_OWNER_LEASE_FD,
                                .state = GD_LEASE_RELEASED, .groups = sample_lease_groups, .n_groups = 1 } } },
        { .type = GD_MSG_EVENT, .serial = 0,
          .event = { .kind = GD_EVENT_GROUP_CHANGED,
                     .lease = { .groups = sample_lease_groups + 1, .n_groups = 1 } } },
};

/* Every message type appears among the samples. */
static const uint16_t all_types[] = {
        GD_MSG_HELLO, GD_MSG_LIST_GROUPS, GD_MSG_SHOW_GROUP, GD_MSG_ACQUIRE, GD_MSG_RELEASE,
        GD_MSG_LIST_LEASES, GD_MSG_SUBSCRIBE, GD_MSG_STATUS, GD_MSG_ERROR, GD_MSG_OK, GD_MSG_HELLO_REPLY,
        GD_MSG_GROUPS, GD_MSG_ACQUIRED, GD_MSG_LEASES, GD_MSG_STATUS_REPLY, GD_MSG_EVENT,
        GD_MSG_DMA_INFO, GD_MSG_DMA_INFO_REPLY, GD_MSG_REVOKE, GD_MSG_ACQUIRED_DELIVERY,
};

/* ---------------------------------------------------------------- comparing */

/* A NULL string is encoded as "": the two compare equal. */
static void assert_str_eq(const char *a, const char *b) {
        ck_assert_str_eq(strempty(a), strempty(b));
}

/* Decoded strings are always allocated, never NULL. */
static void assert_str_decoded(const char *s) {
        ck_assert_ptr_nonnull(s);
}

static void assert_lease_eq(const GdLease *a, const GdLease *d) {
        assert_str_eq(a->id, d->id);
        assert_str_eq(a->label, d->label);
        assert_str_decoded(d->id);
        assert_str_decoded(d->label);
        ck_assert_uint_eq(a->uid, d->uid);
        ck_assert_uint_eq(a->pid, d->pid);
        ck_assert_uint_eq(a->owner_kind, d->owner_kind);
        ck_assert_uint_eq(a->owner_pid, d->owner_pid);
        ck_assert_uint_eq(a->state, d->state);
        ck_assert_uint_eq(a->since_usec, d->since_usec);
        ck_assert_uint_eq(a->n_groups, d->n_groups);
        for (size_t i = 0; i < a->n_groups; i++)
                ck_assert_uint_eq(a->groups[i], d->groups[i]);
}

static void assert_group_eq(const GdGroup *a, const GdGroup *d) {
        ck_assert_uint_eq(a->id, d->id);
        ck_assert_uint_eq(a->flags, d->flags);
        assert_str_eq(a->type, d->type);
        assert_str_eq(a->viability, d->viability);
        ck_assert_uint_eq(a->n_devices, d->n_devices);
        for (size_t i = 0; i < a->n_devices; i++) {
                assert_str_eq(a->devices[i].address, d->devices[i].address);
                ck_assert_uint_eq(a->devices[i].vendor, d->devices[i].vendor);
                ck_assert_uint_eq(a->devices[i].device, d->devices[i].device);
                ck_assert_uint_eq(a->devices[i].class_code, d->devices[i].class_code);
                assert_str_eq(a->devices[i].driver, d->devices[i].driver);
                assert_str_eq(a->devices[i].driver_override, d->devices[i].driver_override);
                assert_str_decoded(d->devices[i].driver);
        }
        ck_assert_uint_eq(a->n_regions, d->n_regions);
        for (size_t i = 0; i < a->n_regions; i++) {
                ck_assert_uint_eq(a->regions[i].start, d->regions[i].start);
                ck_assert_uint_eq(a->regions[i].end, d->regions[i].end);
                assert_str_eq(a->regions[i].type, d->regions[i].type);
        }
        assert_str_eq(a->lease_id, d->lease_id);
        assert_str_eq(a->holder_label, d->holder_label);
        ck_assert_uint_eq(a->holder_uid, d->holder_uid);
        ck_assert_uint_eq(a->holder_pid, d->holder_pid);
        assert_str_eq(a->policy_note, d->policy_note);
        assert_str_decoded(d->type);
        assert_str_decoded(d->policy_note);
}

static void assert_dma_eq(const GdDma *a, const GdDma *d) {
        /* Every field is on the wire: the whole struct round-trips, ranges past n_iova stay zero. */
        ck_assert_mem_eq(a, d, sizeof *a);
}

static void assert_msg_eq(const GdMsg *a, const GdMsg *d) {
        ck_assert_uint_eq(a->type, d->type);
        ck_assert_uint_eq(a->serial, d->serial);

        switch (a->type) {
        case GD_MSG_HELLO:
                ck_assert_uint_eq(a->hello.version_min, d->hello.version_min);
                ck_assert_uint_eq(a->hello.version_max, d->hello.version_max);
                assert_str_eq(a->hello.name, d->hello.name);
                assert_str_decoded(d->hello.name);
                ck_assert_ptr_null(d->hello.host); /* not on the wire in a request */
                break;
        case GD_MSG_HELLO_REPLY:
                /* One version on the wire, decoded into both. */
                ck_assert_uint_eq(d->hello.version_min, a->hello.version_min);
                ck_assert_uint_eq(d->hello.version_max, a->hello.version_min);
                assert_str_eq(a->hello.name, d->hello.name);
                assert_str_eq(a->hello.host, d->hello.host);
                break;
        case GD_MSG_SHOW_GROUP:
        case GD_MSG_DMA_INFO:
                assert_str_eq(a->spec, d->spec);
                assert_str_decoded(d->spec);
                break;
        case GD_MSG_DMA_INFO_REPLY:
                ck_assert_uint_eq(a->dma_info.group, d->dma_info.group);
                ck_assert_uint_eq(a->dma_info.source, d->dma_info.source);
                assert_dma_eq(&a->dma_info.dma, &d->dma_info.dma);
                ck_assert_uint_eq(a->dma_info.n_regions, d->dma_info.n_regions);
                for (size_t i = 0; i < a->dma_info.n_regions; i++) {
                        ck_assert_uint_eq(a->dma_info.regions[i].start, d->dma_info.regions[i].start);
                        ck_assert_uint_eq(a->dma_info.regions[i].end, d->dma_info.regions[i].end);
                        assert_str_eq(a->dma_info.regions[i].type, d->dma_info.regions[i].type);
                }
                ck_assert_uint_eq(a->dma_info.n_devices, d->dma_info.n_devices);
                ck_assert_uint_eq(a->dma_info.kvm, d->dma_info.kvm);
                assert_str_eq(a->dma_info.note, d->dma_info.note);
                break;
        case GD_MSG_ACQUIRE:
                ck_assert_uint_eq(a->acquire.guest_ram, d->acquire.guest_ram);
                ck_assert_uint_eq(a->acquire.flags, d->acquire.flags);
                assert_str_eq(a->acquire.label, d->acquire.label);
                ck_assert_uint_eq(a->acquire.n_specs, d->acquire.n_specs);
                for (size_t i = 0; i < a->acquire.n_specs; i++)
                        assert_str_eq(a->acquire.specs[i], d->acquire.specs[i]);
                if (a->acquire.flags & GD_ACQUIRE_DELIVERY) {
                        ck_assert_uint_eq(a->acquire.delivery, d->acquire.delivery);
                        ck_assert_uint_eq(a->acquire.grant_uid, d->acquire.grant_uid);
                } else {
                        /* Without the field: what protocol 1 always meant. */
                        ck_assert_uint_eq(d->acquire.delivery, GD_DELIVERY_LEGACY);
                        ck_assert_uint_eq(d->acquire.grant_uid, GD_GRANT_UID_CALLER);
                }
                break;
        case GD_MSG_RELEASE:
                assert_str_eq(a->token, d->token);
                break;
        case GD_MSG_REVOKE:
                assert_str_eq(a->revoke.lease_id, d->revoke.lease_id);
                ck_assert_uint_eq(a->revoke.deadline_sec, d->revoke.deadline_sec);
                ck_assert_uint_eq(a->revoke.flags, d->revoke.flags);
                break;
        case GD_MSG_SUBSCRIBE:
                ck_assert_uint_eq(a->event_mask, d->event_mask);
                break;
        case GD_MSG_ERROR:
                ck_assert_int_eq(a->error.code, d->error.code);
                ck_assert_int_eq(a->error.errno_value, d->error.errno_value);
                assert_str_eq(a->error.message, d->error.message);
                assert_str_decoded(d->error.message);
                break;
        case GD_MSG_GROUPS:
                ck_assert_uint_eq(a->groups.more, d->groups.more);
                ck_assert_uint_eq(a->groups.n_groups, d->groups.n_groups);
                for (size_t i = 0; i < a->groups.n_groups; i++)
                        assert_group_eq(&a->groups.groups[i], &d->groups.groups[i]);
                break;
        case GD_MSG_ACQUIRED:
        case GD_MSG_ACQUIRED_DELIVERY:
                assert_str_eq(a->acquired.token, d->acquired.token);
                assert_lease_eq(&a->acquired.lease, &d->acquired.lease);
                ck_assert_uint_eq(a->acquired.iommu_type, d->acquired.iommu_type);
                assert_dma_eq(&a->acquired.dma, &d->acquired.dma);
                ck_assert_uint_eq(a->acquired.memlock, d->acquired.memlock);
                ck_assert_uint_eq(a->acquired.delivery, d->acquired.delivery);
                ck_assert_uint_eq(a->acquired.grant_uid, d->acquired.grant_uid);
                ck_assert_uint_eq(a->acquired.n_devices, d->acquired.n_devices);
                for (size_t i = 0; i < a->acquired.n_devices; i++)
                        assert_str_eq(a->acquired.devices[i], d->acquired.devices[i]);
                ck_assert_uint_eq(a->acquired.n_nodes, d->acquired.n_nodes);
                for (size_t i = 0; i < a->acquired.n_nodes; i++)
                        assert_str_eq(a->acquired.nodes[i], d->acquired.nodes[i]);
                break;
        case GD_MSG_LEASES:
                ck_assert_uint_eq(a->leases.more, d->leases.more);
                ck_assert_uint_eq(a->leases.n_leases, d->leases.n_leases);
                for (size_t i = 0; i < a->leases.n_leases; i++)
                        assert_lease_eq(&a->leases.leases[i], &d->leases.leases[i]);
                break;
        case GD_MSG_STATUS_REPLY:
                assert_str_eq(a->status.version, d->status.version);
                assert_str_eq(a->status.host, d->status.host);
                ck_assert_uint_eq(a->status.n_groups, d->status.n_groups);
                ck_assert_uint_eq(a->status.n_leases, d->status.n_leases);
                ck_assert_uint_eq(a->status.n_clients, d->status.n_clients);
                ck_assert_uint_eq(a->status.started_usec, d->status.started_usec);
                break;
        case GD_MSG_EVENT:
                ck_assert_uint_eq(a->event.kind, d->event.kind);
                assert_lease_eq(&a->event.lease, &d->event.lease);
                ck_assert_uint_eq(a->event.reason, d->event.reason);
                ck_assert_int_eq(a->event.errno_value, d->event.errno_value);
                assert_str_eq(a->event.detail, d->event.detail);
                break;
        default:
                break;
        }
}

static bool msg_is_zero(const GdMsg *m) {
        static const GdMsg zero = {};
        return memcmp(m, &zero, sizeof zero) == 0;
}

/* Encodes m into a fresh buffer, checking the header it wrote. */
static uint8_t *encode_alloc(const GdMsg *m, size_t *ret_len) {
        uint8_t *buf = malloc(GD_MSG_SIZE_MAX);
        size_t len = 0;

        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(gd_msg_encode(m, buf, GD_MSG_SIZE_MAX, &len), 0);
        ck_assert_uint_ge(len, GD_HEADER_SIZE);
        ck_assert_uint_eq(buf[0] | buf[1] << 8, GD_PROTO_VERSION);
        ck_assert_uint_eq(buf[2] | buf[3] << 8, m->type);
        ck_assert_uint_eq((uint32_t) buf[8] | (uint32_t) buf[9] << 8 | (uint32_t) buf[10] << 16 |
                          (uint32_t) buf[11] << 24, len - GD_HEADER_SIZE);
        *ret_len = len;
        return buf;
}

/* Decoding must fail with the given error and leave *ret zeroed. */
static void assert_decode_fails(const uint8_t *buf, size_t len, int error) {
        GdMsg m;

        memset(&m, 0xaa, sizeof m);
        ck_assert_int_eq(gd_msg_decode(buf, len, &m), error);
        ck_assert(msg_is_zero(&m));
}

static void set_length(uint8_t *buf, uint32_t length) {
        buf[8] = (uint8_t) length;
        buf[9] = (uint8_t) (length >> 8);
        buf[10] = (uint8_t) (length >> 16);
        buf[11] = (uint8_t) (length >> 24);
}

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

/* ---------------------------------------------------------------- round trips */

START_TEST(test_roundtrip) {
        const GdMsg *a = &samples[_i];
        _cleanup_free_ uint8_t *buf = NULL, *again = NULL;
        size_t len, len2;
        GdMsg d;

        buf = encode_alloc(a, &len);
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
        assert_msg_eq(a, &d);

        /* Re-encoding the decoded message gives the same bytes. */
        again = encode_alloc(&d, &len2);
        ck_assert_uint_eq(len, len2);
        ck_assert_int_eq(memcmp(buf, again, len), 0);

        gd_msg_done(&d);
        ck_assert(msg_is_zero(&d));
        gd_msg_done(&d); /* idempotent */
        ck_assert(msg_is_zero(&d));
}
END_TEST

START_TEST(test_samples_cover_every_type) {
        for (size_t t = 0; t < ELEMENTSOF(all_types); t++) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(samples); i++)
                        if (samples[i].type == all_types[t])
                                found = true;
                ck_assert_msg(found, "no sample of type %u", all_types[t]);
        }
}
END_TEST

/* Every limit is inclusive: a message with every field at its limit encodes and decodes. */
START_TEST(test_roundtrip_limits) {
        char label[GD_LABEL_MAX + 1], spec[GD_SPEC_MAX + 1], name[GD_NAME_MAX + 1], text[GD_TEXT_MAX + 1],
                addr[GD_PCI_ADDR_MAX + 1], lid[GD_LEASE_ID_MAX + 1];
        char *specs[GD_GROUPS_PER_ACQUIRE_MAX];
        GdDevice devices[GD_DEVICES_PER_GROUP_MAX];
        GdRegion regions[GD_REGIONS_PER_GROUP_MAX];
        uint32_t ids[GD_GROUPS_PER_ACQUIRE_MAX];
        _cleanup_free_ uint8_t *buf = NULL, *again = NULL;
        size_t len, len2;
        GdMsg d;

        memset(label, 'l', GD_LABEL_MAX), label[GD_LABEL_MAX] = 0;
        memset(spec, '9', GD_SPEC_MAX), spec[GD_SPEC_MAX] = 0;
        memset(name, 'n', GD_NAME_MAX), name[GD_NAME_MAX] = 0;
        memset(text, 't', GD_TEXT_MAX), text[GD_TEXT_MAX] = 0;
        memset(addr, 'a', GD_PCI_ADDR_MAX), addr[GD_PCI_ADDR_MAX] = 0;
        memset(lid, 'i', GD_LEASE_ID_MAX), lid[GD_LEASE_ID_MAX] = 0;
        for (size_t i = 0; i < ELEMENTSOF(specs); i++)
                specs[i] = spec;
        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                devices[i] = (GdDevice) { .address = addr, .vendor = (uint16_t) i, .driver = name,
                                          .driver_override = name };
        for (size_t i = 0; i < ELEMENTSOF(regions); i++)
                regions[i] = (GdRegion) { .start = i, .end = UINT64_MAX - i, .type = name };
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                ids[i] = (uint32_t) i * 3;

        GdMsg acquire = { .type = GD_MSG_ACQUIRE, .serial = 1,
                          .acquire = { .flags = _GD_ACQUIRE_ALL, .label = label, .specs = specs,
                                       .n_specs = GD_GROUPS_PER_ACQUIRE_MAX } };
        GdGroup group = { .id = 1, .type = name, .viability = text, .devices = devices,
                          .n_devices = GD_DEVICES_PER_GROUP_MAX, .regions = regions,
                          .n_regions = GD_REGIONS_PER_GROUP_MAX, .lease_id = lid, .holder_label = label,
                          .policy_note = text };
        GdMsg groups = { .type = GD_MSG_GROUPS, .serial = 2, .groups = { .groups = &group, .n_groups = 1 } };
        GdMsg event = { .type = GD_MSG_EVENT,
                        .event = { .kind = _GD_EVENT_MAX - 1, .reason = _GD_REASON_MAX - 1, .detail = text,
                                   .lease = { .id = lid, .label = label, .owner_kind = _GD_OWNER_MAX - 1,
                                              .state = _GD_LEASE_STATE_MAX - 1, .groups = ids,
                                              .n_groups = GD_GROUPS_PER_ACQUIRE_MAX } } };
        GdMsg error = { .type = GD_MSG_ERROR, .error = { .code = _GD_ERR_MAX - 1, .errno_value = INT32_MAX,
                                                          .message = text } };
        GdMsg hello = { .type = GD_MSG_HELLO_REPLY, .hello = { .version_min = 1, .name = name, .host = name } };
        const GdMsg *all[] = { &acquire, &groups, &event, &error, &hello };

        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                buf = encode_alloc(all[i], &len);
                ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
                assert_msg_eq(all[i], &d);
                again = encode_alloc(&d, &len2);
                ck_assert_uint_eq(len, len2);
                ck_assert_int_eq(memcmp(buf, again, len), 0);
                gd_msg_done(&d);
                free(buf);
                free(again);
                buf = again = NULL;
        }
}
END_TEST

/* ---------------------------------------------------------------- exact bytes */

static void assert_encodes_to(const GdMsg *m, const uint8_t *want, size_t want_len) {
        uint8_t buf[256];
        size_t len = 0;
        GdMsg d;

        ck_assert_int_eq(gd_msg_encode(m, buf, sizeof buf, &len), 0);
        ck_assert_uint_eq(len, want_len);
        for (size_t i = 0; i < len; i++)
                ck_assert_msg(buf[i] == want[i], "byte %zu is 0x%02x, want 0x%02x", i, buf[i], want[i]);

        ck_assert_int_eq(gd_msg_decode(want, want_len, &d), 0);
        assert_msg_eq(m, &d);
        gd_msg_done(&d);
}

START_TEST(test_bytes_hello) {
        static const uint8_t want[] = {
                0x01, 0x00,             /* version */
                0x01, 0x00,             /* type HELLO */
                0x01, 0x02, 0x03, 0x04, /* serial */
                0x0e, 0x00, 0x00, 0x00, /* length 14 */
                0x01, 0x00, 0x00, 0x00, /* version_min */
                0x03, 0x00, 0x00, 0x00, /* version_max */
                0x04, 0x00, 'q', 'e', 'm', 'u',
        };
        GdMsg m = { .type = GD_MSG_HELLO, .serial = 0x04030201,
                    .hello = { .version_min = 1, .version_max = 3, .name = (char *) "qemu" } };

        assert_encodes_to(&m, want, sizeof want);
}
END_TEST

START_TEST(test_bytes_acquire) {
        static const uint8_t want[] = {
                0x01, 0x00, 0x04, 0x00, 0x07, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00,
                0x06, 0x00, 0x00, 0x00,             /* flags OWNER_PROCESS | LEASE_FD */
                0x02, 0x00, 'v', 'm',               /* label */
                0x02, 0x00,                         /* two specs */
                0x01, 0x00, '7',
                0x07, 0x00, '0', '1', ':', '0', '0', '.', '0',
                0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, /* guest_ram 8 GiB */
        };
        char *specs[] = { (char *) "7", (char *) "01:00.0" };
        GdMsg m = { .type = GD_MSG_ACQUIRE, .serial = 7,
                    .acquire = { .flags = GD_ACQUIRE_OWNER_PROCESS | GD_ACQUIRE_LEASE_FD, .label = (char *) "vm",
                                 .specs = specs, .n_specs = 2, .guest_ram = UINT64_C(8) << 30 } };

        assert_encodes_to(&m, want, sizeof want);
}
END_TEST

/* With DELIVERY, the two fields follow guest_ram; a mode the codec does not know still encodes (the
 * daemon refuses it by name: ERROR invalid, not a malformed packet). */
START_TEST(test_bytes_acquire_delivery) {
        static const uint8_t want[] = {
                0x01, 0x00, 0x04, 0x00, 0x07, 0x00, 0x00, 0x00, 0x1b, 0x00, 0x00, 0x00,
                0x40, 0x00, 0x00, 0x00,             /* flags DELIVERY */
                0x00, 0x00,                         /* label "" */
                0x01, 0x00,                         /* one spec */
                0x01, 0x00, '3',
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* guest_ram */
                0x02, 0x00, 0x00, 0x00,             /* delivery node-grant */
                0xe8, 0x03, 0x00, 0x00,             /* grant_uid 1000 */
        };
        char *specs[] = { (char *) "3" };
        GdMsg m = { .type = GD_MSG_ACQUIRE, .serial = 7,
                    .acquire = { .flags = GD_ACQUIRE_DELIVERY, .specs = specs, .n_specs = 1,
                                 .delivery = GD_DELIVERY_NODE_GRANT, .grant_uid = 1000 } };
        GdMsg d = {};

        assert_encodes_to(&m, want, sizeof want);
        m.acquire.delivery = 9;
        ck_assert_int_eq(gd_msg_encode(&m, NULL, 0, NULL), -ENOBUFS);
        {
                uint8_t buf[sizeof want];
                memcpy(buf, want, sizeof want);
                buf[sizeof want - 8] = 9;
                ck_assert_int_eq(gd_msg_decode(buf, sizeof buf, &d), 0);
                ck_assert_uint_eq(d.acquire.delivery, 9);
                gd_msg_done(&d);
        }
}
END_TEST

/* ACQUIRED's delivery block must fit its mode: device labels with iommufd (at least one), nodes only with
 * node-grant, never "auto". */
START_TEST(test_acquired_delivery_block) {
        char *devs[] = { (char *) "0000:00:03.0" }, *nodes[] = { (char *) "/dev/vfio/3" };
        uint32_t groups[] = { 3 };
        GdMsg m = { .type = GD_MSG_ACQUIRED_DELIVERY, .serial = 2,
                    .acquired = { .token = (char *) TOKEN_B,
                                  .lease = { .id = (char *) "x", .state = GD_LEASE_ACTIVE, .groups = groups,
                                             .n_groups = 1 } } };
        struct { uint32_t delivery; uint16_t n_devices, n_nodes; bool ok; } cases[] = {
                { GD_DELIVERY_LEGACY, 0, 0, true },
                { GD_DELIVERY_LEGACY, 1, 0, false },
                { GD_DELIVERY_LEGACY, 0, 1, false },
                { GD_DELIVERY_IOMMUFD, 1, 0, true },
                { GD_DELIVERY_IOMMUFD, 0, 0, false },
                { GD_DELIVERY_IOMMUFD, 1, 1, false },
                { GD_DELIVERY_NODE_GRANT, 0, 1, true },
                { GD_DELIVERY_NODE_GRANT, 1, 1, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *buf = NULL;
                GdMsg d = {};
                size_t len;

                m.acquired.delivery = cases[i].delivery;
                m.acquired.devices = devs;
                m.acquired.n_devices = cases[i].n_devices;
                m.acquired.nodes = nodes;
                m.acquired.n_nodes = cases[i].n_nodes;
                buf = encode_alloc(&m, &len);
                ck_assert_msg((gd_msg_decode(buf, len, &d) == 0) == cases[i].ok, "case %zu", i);
                gd_msg_done(&d);
        }
        /* "auto" is a request's word only. */
        m.acquired.delivery = GD_DELIVERY_AUTO;
        m.acquired.n_devices = m.acquired.n_nodes = 0;
        ck_assert_int_eq(gd_msg_encode(&m, NULL, 0, NULL), -EINVAL);
}
END_TEST

START_TEST(test_bytes_event) {
        static const uint8_t want[] = {
                0x01, 0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x37, 0x00, 0x00, 0x00,
                0x02, 0x00, 0x00, 0x00,                         /* kind LEASE_ENDED */
                0x02, 0x00, 'a', 'b',                           /* lease.id */
                0x00, 0x00,                                     /* lease.label "" */
                0xe8, 0x03, 0x00, 0x00,                         /* uid 1000 */
                0x2a, 0x00, 0x00, 0x00,                         /* pid 42 */
                0x01, 0x00, 0x00, 0x00,                         /* owner_kind process */
                0x2b, 0x00, 0x00, 0x00,                         /* owner_pid 43 */
                0x03, 0x00, 0x00, 0x00,                         /* state released */
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* since_usec */
                0x01, 0x00, 0x07, 0x00, 0x00, 0x00,             /* groups: 7 */
                0x06, 0x00, 0x00, 0x00,                         /* reason device-vanished */
                0x05, 0x00, 0x00, 0x00,                         /* errno EIO */
                0x01, 0x00, 'x',                                /* detail */
        };
        uint32_t groups[] = { 7 };
        GdMsg m = { .type = GD_MSG_EVENT,
                    .event = { .kind = GD_EVENT_LEASE_ENDED, .reason = GD_REASON_DEVICE_VANISHED,
                               .errno_value = 5, .detail = (char *) "x",
                               .lease = { .id = (char *) "ab", .uid = 1000, .pid = 42,
                                          .owner_kind = GD_OWNER_PROCESS, .owner_pid = 43,
                                          .state = GD_LEASE_RELEASED, .since_usec = 0x0102030405060708ull,
                                          .groups = groups, .n_groups = 1 } } };

        assert_encodes_to(&m, want, sizeof want);
}
END_TEST

START_TEST(test_bytes_hello_reply) {
        static const uint8_t want[] = {
                0x01, 0x00, 0x42, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00,
                0x01, 0x00, 0x00, 0x00,         /* the chosen version */
                0x03, 0x00, '0', '.', '1',
                0x03, 0x00, 's', 'i', 'm',
        };
        GdMsg m = { .type = GD_MSG_HELLO_REPLY, .serial = 5,
                    .hello = { .version_min = 1, .version_max = 1, .name = (char *) "0.1", .host = (char *) "sim" } };

        assert_encodes_to(&m, want, sizeof want);

        /* Set in version_max only, it is still the one sent. */
        m.hello.version_min = 0;
        uint8_t buf[64];
        size_t len;
        ck_assert_int_eq(gd_msg_encode(&m, buf, sizeof buf, &len), 0);
        ck_assert_int_eq(memcmp(buf, want, sizeof want), 0);
}
END_TEST

/* ---------------------------------------------------------------- malformed input */

/* Every proper prefix of a valid packet is rejected: as it comes (the length field then lies), and with
 * the length field fixed up to match the shorter payload. */
START_TEST(test_truncated) {
        const GdMsg *a = &samples[_i];
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        buf = encode_alloc(a, &len);
        for (size_t l = 0; l < len; l++) {
                /* Exactly l bytes, so that ASan sees any read past them. */
                _cleanup_free_ uint8_t *copy = malloc(l ?: 1);

                ck_assert_ptr_nonnull(copy);
                memcpy(copy, buf, l);
                assert_decode_fails(l > 0 ? copy : NULL, l, -EBADMSG);
                if (l >= GD_HEADER_SIZE) {
                        set_length(copy, (uint32_t) (l - GD_HEADER_SIZE));
                        assert_decode_fails(copy, l, -EBADMSG);
                }
        }
}
END_TEST

START_TEST(test_leftover_bytes) {
        const GdMsg *a = &samples[_i];
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t *longer;
        size_t len;

        buf = encode_alloc(a, &len);
        longer = malloc(len + 1);
        ck_assert_ptr_nonnull(longer);
        memcpy(longer, buf, len);
        longer[len] = 0;

        /* The length field tells the truth about a packet with one byte too many. */
        set_length(longer, (uint32_t) (len + 1 - GD_HEADER_SIZE));
        assert_decode_fails(longer, len + 1, -EBADMSG);
        /* The length field matches the message, not the packet. */
        set_length(longer, (uint32_t) (len - GD_HEADER_SIZE));
        assert_decode_fails(longer, len + 1, -EBADMSG);
        free(longer);
}
END_TEST

START_TEST(test_length_lies) {
        static const uint32_t lies[] = { 1, 2, 13, 100, GD_MSG_SIZE_MAX, UINT32_MAX };
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        GdMsg d;

        buf = encode_alloc(&samples[0], &len); /* HELLO, 30 bytes */
        for (size_t i = 0; i < ELEMENTSOF(lies); i++) {
                set_length(buf, lies[i]);
                assert_decode_fails(buf, len, -EBADMSG);
        }
        set_length(buf, (uint32_t) (len - GD_HEADER_SIZE));
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
        gd_msg_done(&d);

        /* An empty message that claims a payload. */
        uint8_t ok[GD_HEADER_SIZE] = { 1, 0, GD_MSG_OK, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        ck_assert_int_eq(gd_msg_decode(ok, sizeof ok, &d), 0);
        gd_msg_done(&d);
        set_length(ok, 4);
        assert_decode_fails(ok, sizeof ok, -EBADMSG);
}
END_TEST

START_TEST(test_oversize) {
        _cleanup_free_ uint8_t *buf = calloc(1, GD_MSG_SIZE_MAX + 1);
        size_t len;
        GdMsg d;

        ck_assert_ptr_nonnull(buf);

        /* A packet of exactly the limit is fine (a SHOW_GROUP would not be, but not for its size). */
        buf[0] = 1, buf[2] = GD_MSG_OK;
        set_length(buf, GD_MSG_SIZE_MAX + 1 - GD_HEADER_SIZE);
        assert_decode_fails(buf, GD_MSG_SIZE_MAX + 1, -EMSGSIZE);
        set_length(buf, GD_MSG_SIZE_MAX - GD_HEADER_SIZE);
        assert_decode_fails(buf, GD_MSG_SIZE_MAX, -EBADMSG); /* leftover bytes after OK */
        assert_decode_fails(buf, SIZE_MAX, -EMSGSIZE);

        /* The largest GROUPS the limit allows, and one more byte. 16 groups of one device: each group has
         * fixed 30 bytes + device 14 + address string. Fill up with the viability text. */
        char text[GD_TEXT_MAX + 1];
        memset(text, 'v', GD_TEXT_MAX), text[GD_TEXT_MAX] = 0;
        GdGroup groups[70];
        for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                groups[i] = (GdGroup) { .id = (uint32_t) i, .viability = text, .policy_note = text };
        GdMsg m = { .type = GD_MSG_GROUPS, .groups = { .groups = groups, .n_groups = ELEMENTSOF(groups) } };
        /* 70 × (30 + 2048) + 15 bytes > 64 KiB. */
        ck_assert_int_eq(gd_msg_encode(&m, buf, GD_MSG_SIZE_MAX + 1, &len), -EMSGSIZE);
        /* Even into a tiny buffer, the size is what is wrong. */
        ck_assert_int_eq(gd_msg_encode(&m, buf, 10, &len), -EMSGSIZE);

        /* Exactly GD_MSG_SIZE_MAX: 12 + 1 + 2 + 31 × (30 + 2048) = 64433; the last group's note makes up
         * the rest: 65536 - 64433 - 30 - 1024 = 49 bytes. One byte more is too much. */
        char tail[51];
        memset(tail, 'w', 49), tail[49] = 0;
        groups[31] = (GdGroup) { .id = 31, .viability = text, .policy_note = tail };
        m.groups.n_groups = 32;
        ck_assert_int_eq(gd_msg_encode(&m, buf, GD_MSG_SIZE_MAX + 1, &len), 0);
        ck_assert_uint_eq(len, GD_MSG_SIZE_MAX);
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
        ck_assert_uint_eq(d.groups.n_groups, 32);
        ck_assert_uint_eq(strlen(d.groups.groups[31].policy_note), 49);
        gd_msg_done(&d);
        tail[49] = 'w', tail[50] = 0;
        ck_assert_int_eq(gd_msg_encode(&m, buf, GD_MSG_SIZE_MAX + 1, &len), -EMSGSIZE);
}
END_TEST

START_TEST(test_version) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        buf = encode_alloc(&samples[0], &len);
        put_le16(buf, 0);
        assert_decode_fails(buf, len, -EPROTONOSUPPORT);
        put_le16(buf, 2);
        assert_decode_fails(buf, len, -EPROTONOSUPPORT);
        put_le16(buf, 0x0100); /* big-endian 1 */
        assert_decode_fails(buf, len, -EPROTONOSUPPORT);

        /* A short packet is malformed whatever its version says. */
        assert_decode_fails(buf, GD_HEADER_SIZE - 1, -EBADMSG);
}
END_TEST

/* A revoke names a lease and knows only its own flags. */
START_TEST(test_revoke_malformed) {
        uint8_t buf[64];
        size_t len;
        GdMsg d;

        GdMsg no_id = { .type = GD_MSG_REVOKE };
        ck_assert_int_eq(gd_msg_encode(&no_id, buf, sizeof buf, &len), -EINVAL);
        GdMsg bad_flags = { .type = GD_MSG_REVOKE, .revoke = { .lease_id = (char *) "6cdc36278a81", .flags = 2 } };
        ck_assert_int_eq(gd_msg_encode(&bad_flags, buf, sizeof buf, &len), -EINVAL);

        /* The same, built by hand: refused by the decoder too. */
        GdMsg ok = { .type = GD_MSG_REVOKE, .revoke = { .lease_id = (char *) "6cdc36278a81", .flags = 1 } };
        ck_assert_int_eq(gd_msg_encode(&ok, buf, sizeof buf, &len), 0);
        buf[len - 4] = 2; /* flags, little-endian, last */
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), -EBADMSG);
        buf[len - 4] = 1;
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
        gd_msg_done(&d);
}
END_TEST

START_TEST(test_unknown_type) {
        static const uint16_t bad[] = { 0, 11, 12, 63, 73, 95, 97, 0xffff };
        uint8_t buf[GD_HEADER_SIZE] = { 1, 0 };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                GdMsg m = { .type = bad[i] };
                size_t len;

                put_le16(buf + 2, bad[i]);
                assert_decode_fails(buf, sizeof buf, -EBADMSG);
                ck_assert_int_eq(gd_msg_encode(&m, buf, sizeof buf, &len), -EBADMSG);
                ck_assert_ptr_null(gd_msg_type_to_string(bad[i]));
        }
}
END_TEST

/* Builds a SHOW_GROUP packet with the given spec bytes (which may hold NUL). */
static size_t make_show_group(uint8_t *buf, const void *spec, size_t n) {
        memset(buf, 0, GD_HEADER_SIZE);
        buf[0] = 1;
        buf[2] = GD_MSG_SHOW_GROUP;
        put_le16(buf + GD_HEADER_SIZE, (uint16_t) n);
        memcpy(buf + GD_HEADER_SIZE + 2, spec, n);
        set_length(buf, (uint32_t) (2 + n));
        return GD_HEADER_SIZE + 2 + n;
}

START_TEST(test_strings) {
        uint8_t buf[256];
        char spec[GD_SPEC_MAX + 2];
        size_t len;
        GdMsg d;

        /* NUL anywhere in a string. */
        len = make_show_group(buf, "7\0", 2);
        assert_decode_fails(buf, len, -EBADMSG);
        len = make_show_group(buf, "\0" "7", 2);
        assert_decode_fails(buf, len, -EBADMSG);
        len = make_show_group(buf, "\0", 1);
        assert_decode_fails(buf, len, -EBADMSG);
        len = make_show_group(buf, "7", 1);
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
        ck_assert_str_eq(d.spec, "7");
        gd_msg_done(&d);

        /* At the limit and one over it, both ways. */
        memset(spec, '1', sizeof spec);
        len = make_show_group(buf, spec, GD_SPEC_MAX);
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
        ck_assert_uint_eq(strlen(d.spec), GD_SPEC_MAX);
        gd_msg_done(&d);
        len = make_show_group(buf, spec, GD_SPEC_MAX + 1);
        assert_decode_fails(buf, len, -EBADMSG);

        spec[GD_SPEC_MAX + 1] = 0;
        GdMsg m = { .type = GD_MSG_SHOW_GROUP, .spec = spec };
        ck_assert_int_eq(gd_msg_encode(&m, buf, sizeof buf, &len), -EINVAL);
        spec[GD_SPEC_MAX] = 0;
        ck_assert_int_eq(gd_msg_encode(&m, buf, sizeof buf, &len), 0);

        /* A string length pointing past the end. */
        len = make_show_group(buf, "7", 1);
        put_le16(buf + GD_HEADER_SIZE, 2);
        assert_decode_fails(buf, len, -EBADMSG);
}
END_TEST

START_TEST(test_over_limit_encode) {
        char big[GD_TEXT_MAX + 2];
        uint8_t *buf = malloc(GD_MSG_SIZE_MAX);
        size_t len;

        ck_assert_ptr_nonnull(buf);
        big[sizeof big - 1] = 0;

#define OVER(limit, ...)                                                                        \
        do {                                                                                    \
                GdMsg _m = __VA_ARGS__;                                                         \
                memset(big, 'x', sizeof big - 1);                                               \
                big[(limit) + 1] = 0;                                                           \
                ck_assert_int_eq(gd_msg_encode(&_m, buf, GD_MSG_SIZE_MAX, &len), -EINVAL);      \
                big[limit] = 0;                                                                 \
                ck_assert_int_eq(gd_msg_encode(&_m, buf, GD_MSG_SIZE_MAX, &len), 0);            \
                GdMsg _d;                                                                       \
                ck_assert_int_eq(gd_msg_decode(buf, len, &_d), 0);                              \
                gd_msg_done(&_d);                                                               \
        } while (0)

        OVER(GD_NAME_MAX, { .type = GD_MSG_HELLO, .hello = { .name = big } });
        OVER(GD_NAME_MAX, { .type = GD_MSG_HELLO_REPLY, .hello = { .name = big } });
        OVER(GD_NAME_MAX, { .type = GD_MSG_HELLO_REPLY, .hello = { .host = big } });
        OVER(GD_LABEL_MAX, { .type = GD_MSG_ACQUIRE,
                             .acquire = { .label = big, .specs = sample_specs, .n_specs = 1 } });
        char *specs[] = { big };
        OVER(GD_SPEC_MAX, { .type = GD_MSG_ACQUIRE, .acquire = { .specs = specs, .n_specs = 1 } });
        OVER(GD_TEXT_MAX, { .type = GD_MSG_ERROR, .error = { .code = 1, .message = big } });
        OVER(GD_NAME_MAX, { .type = GD_MSG_STATUS_REPLY, .status = { .version = big } });
        OVER(GD_TEXT_MAX, { .type = GD_MSG_EVENT, .event = { .detail = big } });
        OVER(GD_LEASE_ID_MAX, { .type = GD_MSG_EVENT, .event = { .lease = { .id = big } } });
        OVER(GD_LABEL_MAX, { .type = GD_MSG_LEASES, .leases = { .leases = &(GdLease) { .label = big },
                                                                .n_leases = 1 } });
        OVER(GD_PCI_ADDR_MAX, { .type = GD_MSG_GROUPS, .groups = {
                .groups = &(GdGroup) { .devices = &(GdDevice) { .address = big }, .n_devices = 1 },
                .n_groups = 1 } });
        OVER(GD_NAME_MAX, { .type = GD_MSG_GROUPS, .groups = {
                .groups = &(GdGroup) { .regions = &(GdRegion) { .type = big }, .n_regions = 1 },
                .n_groups = 1 } });
        OVER(GD_TEXT_MAX, { .type = GD_MSG_GROUPS, .groups = {
                .groups = &(GdGroup) { .viability = big }, .n_groups = 1 } });
        OVER(GD_LABEL_MAX, { .type = GD_MSG_GROUPS, .groups = {
                .groups = &(GdGroup) { .holder_label = big }, .n_groups = 1 } });
#undef OVER
        free(buf);
}
END_TEST

START_TEST(test_tokens) {
        static const char *const bad[] = {
                "", "0123456789abcdef0123456789abcde",          /* 31 */
                "0123456789abcdef0123456789abcdef0",            /* 33 */
                "0123456789ABCDEF0123456789abcdef",             /* upper case */
                "0123456789abcdef0123456789abcdeg",             /* not hex */
                " 123456789abcdef0123456789abcdef",
        };
        uint8_t buf[128];
        size_t len;
        GdMsg d;

        ck_assert(gd_token_is_valid(TOKEN_A));
        ck_assert(gd_token_is_valid(TOKEN_B));
        ck_assert(!gd_token_is_valid(NULL));

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                GdMsg m = { .type = GD_MSG_RELEASE, .token = (char *) bad[i] };
                GdMsg a = { .type = GD_MSG_ACQUIRED, .acquired = { .token = (char *) bad[i] } };

                ck_assert(!gd_token_is_valid(bad[i]));
                ck_assert_int_eq(gd_msg_encode(&m, buf, sizeof buf, &len), -EINVAL);
                ck_assert_int_eq(gd_msg_encode(&a, buf, sizeof buf, &len), -EINVAL);

                /* The same on the wire: build a RELEASE with the bad token by hand. */
                size_t n = strlen(bad[i]);
                memset(buf, 0, GD_HEADER_SIZE);
                buf[0] = 1, buf[2] = GD_MSG_RELEASE;
                put_le16(buf + GD_HEADER_SIZE, (uint16_t) n);
                memcpy(buf + GD_HEADER_SIZE + 2, bad[i], n);
                set_length(buf, (uint32_t) (2 + n));
                assert_decode_fails(buf, GD_HEADER_SIZE + 2 + n, -EBADMSG);
        }

        GdMsg null_token = { .type = GD_MSG_RELEASE };
        ck_assert_int_eq(gd_msg_encode(&null_token, buf, sizeof buf, &len), -EINVAL);

        GdMsg m = { .type = GD_MSG_RELEASE, .token = (char *) TOKEN_A };
        ck_assert_int_eq(gd_msg_encode(&m, buf, sizeof buf, &len), 0);
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0);
        ck_assert_str_eq(d.token, TOKEN_A);
        gd_msg_done(&d);
        /* A NUL in the middle of a token on the wire. */
        buf[GD_HEADER_SIZE + 2 + 5] = 0;
        assert_decode_fails(buf, len, -EBADMSG);
}
END_TEST

/* Patches a u32 at byte offset off of an encoded packet, then expects decode to fail. */
static void assert_patched_u32_fails(const GdMsg *m, size_t off, uint32_t v) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        GdMsg d;

        buf = encode_alloc(m, &len);
        ck_assert_int_eq(gd_msg_decode(buf, len, &d), 0); /* fine before the patch */
        gd_msg_done(&d);
        ck_assert_uint_le(off + 4, len);
        buf[off] = (uint8_t) v;
        buf[off + 1] = (uint8_t) (v >> 8);
        buf[off + 2] = (uint8_t) (v >> 16);
        buf[off + 3] = (uint8_t) (v >> 24);
        assert_decode_fails(buf, len, -EBADMSG);
}

START_TEST(test_flags_and_enums) {
        uint8_t buf[256];
        size_t len;
        const size_t P = GD_HEADER_SIZE;
        /* The offset of a lease's owner_kind, after id "ab" and label "": 4 + 2 + 4 + 4 */
        const size_t LEASE_OWNER = 2 + 2 + 2 + 4 + 4;

        /* ACQUIRE flags: every unknown bit. */
        GdMsg acq = { .type = GD_MSG_ACQUIRE, .acquire = { .specs = sample_specs, .n_specs = 1 } };
        for (unsigned bit = 7; bit < 32; bit++) {
                assert_patched_u32_fails(&acq, P, 1u << bit);
                acq.acquire.flags = 1u << bit;
                ck_assert_int_eq(gd_msg_encode(&acq, buf, sizeof buf, &len), -EINVAL);
                acq.acquire.flags = 0;
        }

        /* DMA_INFO_REPLY: the source, the facts' flags, more IOVA ranges than allowed, kvm not 0/1. */
        GdMsg di = { .type = GD_MSG_DMA_INFO_REPLY, .dma_info = { .group = 3 } };
        assert_patched_u32_fails(&di, P + 4, _GD_DMA_SOURCE_MAX);
        assert_patched_u32_fails(&di, P + 8, 1u << 6);
        {
                _cleanup_free_ uint8_t *b = encode_alloc(&di, &len);
                b[P + 8 + 4 + 4 + 8] = GD_IOVA_RANGES_MAX + 1;   /* n_iova */
                assert_decode_fails(b, len, -EBADMSG);
        }
        di.dma_info.source = _GD_DMA_SOURCE_MAX;
        ck_assert_int_eq(gd_msg_encode(&di, buf, sizeof buf, &len), -EINVAL);
        di.dma_info.source = 0, di.dma_info.dma.flags = 1u << 6;
        ck_assert_int_eq(gd_msg_encode(&di, buf, sizeof buf, &len), -EINVAL);
        di.dma_info.dma.flags = 0, di.dma_info.dma.n_iova = GD_IOVA_RANGES_MAX + 1;
        ck_assert_int_eq(gd_msg_encode(&di, buf, sizeof buf, &len), -EINVAL);
        di.dma_info.dma.n_iova = 0, di.dma_info.kvm = 2;
        ck_assert_int_eq(gd_msg_encode(&di, buf, sizeof buf, &len), -EINVAL);

        /* SUBSCRIBE mask bits beyond the event kinds. */
        GdMsg sub = { .type = GD_MSG_SUBSCRIBE };
        assert_patched_u32_fails(&sub, P, 1u << _GD_EVENT_MAX);
        assert_patched_u32_fails(&sub, P, UINT32_MAX);
        sub.event_mask = 1u << _GD_EVENT_MAX;
        ck_assert_int_eq(gd_msg_encode(&sub, buf, sizeof buf, &len), -EINVAL);

        /* ERROR codes out of range, and a negative errno. */
        GdMsg err = { .type = GD_MSG_ERROR, .error = { .code = GD_ERR_BUSY } };
        assert_patched_u32_fails(&err, P, 0);
        assert_patched_u32_fails(&err, P, _GD_ERR_MAX);
        assert_patched_u32_fails(&err, P, (uint32_t) -1);
        assert_patched_u32_fails(&err, P + 4, (uint32_t) -EBUSY);
        err.error.code = _GD_ERR_MAX;
        ck_assert_int_eq(gd_msg_encode(&err, buf, sizeof buf, &len), -EINVAL);
        err.error.code = 0;
        ck_assert_int_eq(gd_msg_encode(&err, buf, sizeof buf, &len), -EINVAL);
        err.error.code = GD_ERR_BUSY, err.error.errno_value = -1;
        ck_assert_int_eq(gd_msg_encode(&err, buf, sizeof buf, &len), -EINVAL);

        /* EVENT: kind, owner kind, lease state, reason, errno. */
        GdMsg ev = { .type = GD_MSG_EVENT, .event = { .lease = { .id = (char *) "ab" } } };
        assert_patched_u32_fails(&ev, P, _GD_EVENT_MAX);
        assert_patched_u32_fails(&ev, P + 4 + LEASE_OWNER, _GD_OWNER_MAX);
        assert_patched_u32_fails(&ev, P + 4 + LEASE_OWNER + 8, _GD_LEASE_STATE_MAX);
        /* After the lease: since (8), groups count (2). */
        assert_patched_u32_fails(&ev, P + 4 + LEASE_OWNER + 12 + 8 + 2, _GD_REASON_MAX);
        assert_patched_u32_fails(&ev, P + 4 + LEASE_OWNER + 12 + 8 + 2 + 4, (uint32_t) -5);
        GdMsg bad_ev[] = {
                { .type = GD_MSG_EVENT, .event = { .kind = _GD_EVENT_MAX } },
                { .type = GD_MSG_EVENT, .event = { .reason = _GD_REASON_MAX } },
                { .type = GD_MSG_EVENT, .event = { .errno_value = -1 } },
                { .type = GD_MSG_EVENT, .event = { .lease = { .owner_kind = _GD_OWNER_MAX } } },
                { .type = GD_MSG_EVENT, .event = { .lease = { .state = _GD_LEASE_STATE_MAX } } },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_ev); i++)
                ck_assert_int_eq(gd_msg_encode(&bad_ev[i], buf, sizeof buf, &len), -EINVAL);

        /* GROUPS: the `more` byte and the group flags. */
        GdMsg gr = { .type = GD_MSG_GROUPS, .groups = { .groups = &(GdGroup) { .id = 1 }, .n_groups = 1 } };
        _cleanup_free_ uint8_t *g = NULL;
        g = encode_alloc(&gr, &len);
        g[P] = 2;
        assert_decode_fails(g, len, -EBADMSG);
        g[P] = 0;
        assert_patched_u32_fails(&gr, P + 1 + 2 + 4, 1u << 3);
        gr.groups.more = 2;
        ck_assert_int_eq(gd_msg_encode(&gr, buf, sizeof buf, &len), -EINVAL);
        gr.groups.more = 0;
        gr.groups.groups[0].flags = 1u << 3;
        ck_assert_int_eq(gd_msg_encode(&gr, buf, sizeof buf, &len), -EINVAL);

        /* LEASES `more`. */
        GdMsg ls = { .type = GD_MSG_LEASES, .leases = { .more = 2 } };
        ck_assert_int_eq(gd_msg_encode(&ls, buf, sizeof buf, &len), -EINVAL);
        ls.leases.more = 1;
        ck_assert_int_eq(gd_msg_encode(&ls, buf, sizeof buf, &len), 0);
        buf[P] = 0xff;
        assert_decode_fails(buf, len, -EBADMSG);
}
END_TEST

START_TEST(test_counts) {
        uint8_t buf[512];
        size_t len;
        const size_t P = GD_HEADER_SIZE;

        /* ACQUIRE: no specs; too many specs (encode and decode). */
        GdMsg acq = { .type = GD_MSG_ACQUIRE, .acquire = { .specs = sample_specs, .n_specs = 0 } };
        ck_assert_int_eq(gd_msg_encode(&acq, buf, sizeof buf, &len), -EINVAL);
        acq.acquire.n_specs = GD_GROUPS_PER_ACQUIRE_MAX + 1;
        ck_assert_int_eq(gd_msg_encode(&acq, buf, sizeof buf, &len), -EINVAL);
        /* A NULL array with a count is a caller's bug, not a crash. */
        acq.acquire.specs = NULL, acq.acquire.n_specs = 1;
        ck_assert_int_eq(gd_msg_encode(&acq, buf, sizeof buf, &len), -EINVAL);

        /* By hand: flags 0, label "", count n, then n one-byte specs. */
        for (unsigned n = 0; n <= GD_GROUPS_PER_ACQUIRE_MAX + 1; n++) {
                GdMsg d;
                size_t at = P;
                memset(buf, 0, sizeof buf);
                buf[0] = 1, buf[2] = GD_MSG_ACQUIRE;
                at += 4 + 2;
                put_le16(buf + at, (uint16_t) n), at += 2;
                for (unsigned i = 0; i < n; i++) {
                        put_le16(buf + at, 1), at += 2;
                        buf[at++] = '1';
                }
                at += 8; /* guest_ram 0 */
                set_length(buf, (uint32_t) (at - P));
                if (n == 0 || n > GD_GROUPS_PER_ACQUIRE_MAX)
                        assert_decode_fails(buf, at, -EBADMSG);
                else {
                        ck_assert_int_eq(gd_msg_decode(buf, at, &d), 0);
                        ck_assert_uint_eq(d.acquire.n_specs, n);
                        gd_msg_done(&d);
                }
        }

        /* Counts claiming more elements than there are bytes. */
        uint8_t groups[] = { 1, 0, GD_MSG_GROUPS, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0xff, 0xff };
        assert_decode_fails(groups, sizeof groups, -EBADMSG);
        uint8_t leases[] = { 1, 0, GD_MSG_LEASES, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0xff, 0xff };
        assert_decode_fails(leases, sizeof leases, -EBADMSG);

        GdMsg ev = { .type = GD_MSG_EVENT };
        _cleanup_free_ uint8_t *e = encode_alloc(&ev, &len);
        /* kind 4, id 2, label 2, five u32 20, since 8: the groups count. */
        const size_t count_at = P + 4 + 2 + 2 + 20 + 8;
        put_le16(e + count_at, 1); /* one group, but its 4 bytes are the reason */
        assert_decode_fails(e, len, -EBADMSG);
        put_le16(e + count_at, GD_GROUPS_PER_ACQUIRE_MAX + 1);
        assert_decode_fails(e, len, -EBADMSG);
        put_le16(e + count_at, 0xffff);
        assert_decode_fails(e, len, -EBADMSG);

        /* Devices and regions per group over their limits: encode refuses; decode refuses the count
         * even when the bytes are all there. */
        GdDevice *devs = calloc(GD_DEVICES_PER_GROUP_MAX + 1, sizeof *devs);
        GdRegion *regs = calloc(GD_REGIONS_PER_GROUP_MAX + 1, sizeof *regs);
        uint8_t *big = malloc(GD_MSG_SIZE_MAX);
        ck_assert(devs && regs && big);
        GdGroup g = { .devices = devs, .n_devices = GD_DEVICES_PER_GROUP_MAX + 1 };
        GdMsg gm = { .type = GD_MSG_GROUPS, .groups = { .groups = &g, .n_groups = 1 } };
        ck_assert_int_eq(gd_msg_encode(&gm, big, GD_MSG_SIZE_MAX, &len), -EINVAL);
        g.n_devices = GD_DEVICES_PER_GROUP_MAX;
        ck_assert_int_eq(gd_msg_encode(&gm, big, GD_MSG_SIZE_MAX, &len), 0);
        {
                /* Append one more (empty) device and bump the count: 14 zero bytes, after the device array
                 * and before the regions count. */
                const size_t dev_count_at = P + 1 + 2 + 4 + 4 + 2 + 2;
                const size_t dev_end = dev_count_at + 2 + GD_DEVICES_PER_GROUP_MAX * 14;
                memmove(big + dev_end + 14, big + dev_end, len - dev_end);
                memset(big + dev_end, 0, 14);
                len += 14;
                set_length(big, (uint32_t) (len - P));
                GdMsg d;
                ck_assert_int_eq(gd_msg_decode(big, len, &d), -EBADMSG); /* the count still says 256 */
                put_le16(big + dev_count_at, GD_DEVICES_PER_GROUP_MAX + 1);
                assert_decode_fails(big, len, -EBADMSG);
        }
        g = (GdGroup) { .regions = regs, .n_regions = GD_REGIONS_PER_GROUP_MAX + 1 };
        ck_assert_int_eq(gd_msg_encode(&gm, big, GD_MSG_SIZE_MAX, &len), -EINVAL);
        g.n_regions = GD_REGIONS_PER_GROUP_MAX;
        ck_assert_int_eq(gd_msg_encode(&gm, big, GD_MSG_SIZE_MAX, &len), 0);
        {
                const size_t reg_count_at = P + 1 + 2 + 4 + 4 + 2 + 2 + 2;
                const size_t reg_end = reg_count_at + 2 + GD_REGIONS_PER_GROUP_MAX * 18;
                memmove(big + reg_end + 18, big + reg_end, len - reg_end);
                memset(big + reg_end, 0, 18);
                len += 18;
                set_length(big, (uint32_t) (len - P));
                put_le16(big + reg_count_at, GD_REGIONS_PER_GROUP_MAX + 1);
                assert_decode_fails(big, len, -EBADMSG);
                put_le16(big + reg_count_at, GD_REGIONS_PER_GROUP_MAX);
                assert_decode_fails(big, len, -EBADMSG); /* now 18 bytes are left over */
        }
        free(devs);
        free(regs);
        free(big);

        /* A lease with more groups than an acquire can name. */
        uint32_t ids[GD_GROUPS_PER_ACQUIRE_MAX + 1] = {};
        GdMsg ac = { .type = GD_MSG_ACQUIRED, .acquired = { .token = (char *) TOKEN_A,
                                                            .lease = { .groups = ids,
                                                                       .n_groups = ELEMENTSOF(ids) } } };
        ck_assert_int_eq(gd_msg_encode(&ac, buf, sizeof buf, &len), -EINVAL);
}
END_TEST

START_TEST(test_nobufs) {
        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                _cleanup_free_ uint8_t *buf = NULL, *small = NULL;
                size_t len, need = 0;

                buf = encode_alloc(&samples[i], &len);
                small = malloc(len);
                ck_assert_ptr_nonnull(small);
                memset(small, 0xee, len);
                ck_assert_int_eq(gd_msg_encode(&samples[i], small, len - 1, &need), -ENOBUFS);
                ck_assert_uint_eq(need, len); /* tells how much it needs */
                ck_assert_uint_eq(small[len - 1], 0xee); /* and wrote nothing past the size it was given */
                ck_assert_int_eq(gd_msg_encode(&samples[i], NULL, 0, &need), -ENOBUFS);
                ck_assert_uint_eq(need, len);
                ck_assert_int_eq(gd_msg_encode(&samples[i], small, len, &need), 0);
                ck_assert_int_eq(memcmp(small, buf, len), 0);
        }
}
END_TEST

START_TEST(test_done) {
        GdMsg m = {};

        gd_msg_done(&m);
        gd_msg_done(&m);
        gd_msg_done(NULL);
        ck_assert(msg_is_zero(&m));

        /* NULL where a message belongs. */
        uint8_t buf[GD_HEADER_SIZE] = { 1, 0, GD_MSG_OK };
        size_t len;
        ck_assert_int_eq(gd_msg_encode(NULL, buf, sizeof buf, &len), -EINVAL);
        ck_assert_int_eq(gd_msg_decode(buf, sizeof buf, NULL), -EINVAL);
        ck_assert_int_eq(gd_msg_decode(buf, sizeof buf, &m), 0);
        ck_assert_uint_eq(m.type, GD_MSG_OK);
        gd_msg_done(&m);
        /* The length is optional. */
        ck_assert_int_eq(gd_msg_encode(&(GdMsg) { .type = GD_MSG_OK }, buf, sizeof buf, NULL), 0);

        /* A message built by a caller with malloc()ed fields, half filled. */
        m.type = GD_MSG_GROUPS;
        m.groups.n_groups = 2;
        m.groups.groups = calloc(2, sizeof(GdGroup));
        ck_assert_ptr_nonnull(m.groups.groups);
        m.groups.groups[0].type = strdup("DMA");
        m.groups.groups[0].n_devices = 3;
        m.groups.groups[0].devices = calloc(3, sizeof(GdDevice));
        m.groups.groups[0].devices[1].driver = strdup("e1000e");
        m.groups.groups[1].n_regions = 5; /* a count without an array */
        gd_msg_done(&m);
        ck_assert(msg_is_zero(&m));

        m.type = GD_MSG_ACQUIRE;
        m.acquire.n_specs = 2;
        m.acquire.specs = calloc(2, sizeof(char *));
        m.acquire.specs[1] = strdup("7");
        m.acquire.label = strdup("x");
        gd_msg_done(&m);
        ck_assert(msg_is_zero(&m));
}
END_TEST

START_TEST(test_expected_fds) {
        GdMsg m = { .type = GD_MSG_ACQUIRE };

        ck_assert_uint_eq(gd_msg_expected_fds(&m), 0);
        m.acquire.flags = GD_ACQUIRE_LEASE_FD | GD_ACQUIRE_CONFIGURE_IOMMU;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 0);
        m.acquire.flags = GD_ACQUIRE_OWNER_PROCESS;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 1);
        /* KVM registration travels as a flag: the client does it, no kvm-vfio fd goes to the daemon. */
        m.acquire.flags = GD_ACQUIRE_KVM | GD_ACQUIRE_MEMLOCK;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 0);
        m.acquire.flags = GD_ACQUIRE_OWNER_PROCESS | GD_ACQUIRE_KVM;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 1);

        m = (GdMsg) { .type = GD_MSG_ACQUIRED, .acquired = { .lease = { .n_groups = 3 } } };
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 4);
        m.acquired.lease.owner_kind = GD_OWNER_PROCESS;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 4);
        m.acquired.lease.owner_kind = GD_OWNER_LEASE_FD;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 5);
        m.acquired.lease.n_groups = GD_GROUPS_PER_ACQUIRE_MAX;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), GD_FDS_PER_MSG_MAX);

        /* The delivery says which fds: iommufd one per device besides the iommufd, node-grant none. */
        m = (GdMsg) { .type = GD_MSG_ACQUIRED_DELIVERY, .acquired = { .lease = { .n_groups = 2 },
                                                                      .delivery = GD_DELIVERY_IOMMUFD, .n_devices = 5 } };
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 6);
        m.acquired.lease.owner_kind = GD_OWNER_LEASE_FD;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 7);
        m.acquired.n_devices = GD_DEVICES_PER_ACQUIRE_MAX;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), GD_FDS_PER_MSG_MAX);
        m.acquired.delivery = GD_DELIVERY_NODE_GRANT;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 1);
        m.acquired.lease.owner_kind = GD_OWNER_PROCESS;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 0);
        m.acquired.delivery = GD_DELIVERY_LEGACY;
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 3);
        m = (GdMsg) { .type = GD_MSG_ACQUIRE, .acquire = { .flags = GD_ACQUIRE_DELIVERY,
                                                           .delivery = GD_DELIVERY_NODE_GRANT } };
        ck_assert_uint_eq(gd_msg_expected_fds(&m), 0);

        for (size_t i = 0; i < ELEMENTSOF(samples); i++)
                if (samples[i].type != GD_MSG_ACQUIRE && samples[i].type != GD_MSG_ACQUIRED &&
                    samples[i].type != GD_MSG_ACQUIRED_DELIVERY)
                        ck_assert_uint_eq(gd_msg_expected_fds(&samples[i]), 0);
        ck_assert_uint_eq(gd_msg_expected_fds(NULL), 0);
}
END_TEST

/* ---------------------------------------------------------------- names */

static void assert_table(const char *(*to)(int), int (*from)(const char *), int first, int max) {
        for (int i = first; i < max; i++) {
                const char *s = to(i);
                ck_assert_msg(s, "value %d has no name", i);
                ck_assert_int_eq(from(s), i);
                for (int j = first; j < i; j++)
                        ck_assert_str_ne(to(j), s);
        }
        ck_assert_ptr_null(to(max));
        ck_assert_ptr_null(to(-1));
        ck_assert_ptr_null(to(INT32_MIN));
        ck_assert_int_eq(from("no-such-name"), -EINVAL);
        ck_assert_int_eq(from(""), -EINVAL);
        ck_assert_int_eq(from(NULL), -EINVAL);
}

START_TEST(test_names) {
        assert_table(gd_error_to_string, gd_error_from_string, 1, _GD_ERR_MAX);
        ck_assert_ptr_null(gd_error_to_string(0));
        ck_assert_str_eq(gd_error_to_string(GD_ERR_BUSY), "busy");
        ck_assert_str_eq(gd_error_to_string(GD_ERR_NOT_FOUND), "not-found");
        ck_assert_str_eq(gd_error_to_string(GD_ERR_SHUTTING_DOWN), "shutting-down");
        ck_assert_int_eq(gd_error_from_string("BUSY"), -EINVAL);

        assert_table(gd_owner_kind_to_string, gd_owner_kind_from_string, 0, _GD_OWNER_MAX);
        ck_assert_str_eq(gd_owner_kind_to_string(GD_OWNER_LEASE_FD), "lease-fd");

        assert_table(gd_lease_state_to_string, gd_lease_state_from_string, 0, _GD_LEASE_STATE_MAX);
        ck_assert_str_eq(gd_lease_state_to_string(GD_LEASE_ACTIVE), "active");

        assert_table(gd_reason_to_string, gd_reason_from_string, 0, _GD_REASON_MAX);
        ck_assert_str_eq(gd_reason_to_string(GD_REASON_CONNECTION_CLOSED), "connection-closed");
        ck_assert_str_eq(gd_reason_to_string(GD_REASON_RECOVERED_DEAD), "recovered-dead");
        ck_assert_str_eq(gd_reason_to_string(GD_REASON_DAEMON_RESTARTED), "daemon-restarted");
        ck_assert_int_eq(GD_REASON_DAEMON_RESTARTED, 8);  /* the wire's number, as PROTOCOL.md says */

        assert_table(gd_event_kind_to_string, gd_event_kind_from_string, 0, _GD_EVENT_MAX);
        assert_table(gd_delivery_to_string, gd_delivery_from_string, 0, _GD_DELIVERY_MAX);
        ck_assert_str_eq(gd_event_kind_to_string(GD_EVENT_LEASE_STARTED), "lease-started");
        ck_assert_str_eq(gd_event_kind_to_string(GD_EVENT_EVENTS_DROPPED), "events-dropped");
        ck_assert_int_eq(GD_EVENT_EVENTS_DROPPED, 4);

        for (size_t i = 0; i < ELEMENTSOF(all_types); i++) {
                ck_assert_ptr_nonnull(gd_msg_type_to_string(all_types[i]));
                for (size_t j = 0; j < i; j++)
                        ck_assert_str_ne(gd_msg_type_to_string(all_types[i]),
                                         gd_msg_type_to_string(all_types[j]));
        }
        ck_assert_str_eq(gd_msg_type_to_string(GD_MSG_HELLO_REPLY), "hello-reply");
        ck_assert_ptr_null(gd_msg_type_to_string(-1));
        ck_assert_ptr_null(gd_msg_type_to_string(0));
        ck_assert_ptr_null(gd_msg_type_to_string(GD_MSG_EVENT + 1));
        ck_assert_ptr_null(gd_msg_type_to_string(100000));
}
END_TEST

START_TEST(test_error_from_errno) {
        static const struct {
                int errno_value;
                GdError code;
        } table[] = {
                { EINVAL, GD_ERR_INVALID },
                { ENOENT, GD_ERR_NOT_FOUND },      { ENODEV, GD_ERR_NOT_FOUND },      { ENXIO, GD_ERR_NOT_FOUND },
                { EBUSY, GD_ERR_BUSY },            { EALREADY, GD_ERR_BUSY },         { EINPROGRESS, GD_ERR_BUSY },
                { EPERM, GD_ERR_DENIED },          { EACCES, GD_ERR_DENIED },
                { E2BIG, GD_ERR_LIMIT },           { EMFILE, GD_ERR_LIMIT },          { ENFILE, GD_ERR_LIMIT },
                { ENOSPC, GD_ERR_LIMIT },          { EUSERS, GD_ERR_LIMIT },
                { EBADMSG, GD_ERR_PROTOCOL },      { EPROTO, GD_ERR_PROTOCOL },       { EMSGSIZE, GD_ERR_PROTOCOL },
                { EPROTONOSUPPORT, GD_ERR_VERSION },
                { ESHUTDOWN, GD_ERR_SHUTTING_DOWN },
                { ENOMEM, GD_ERR_INTERNAL },       { 0, GD_ERR_INTERNAL },
                { EIO, GD_ERR_HOST },              { ENOTTY, GD_ERR_HOST },           { EEXIST, GD_ERR_HOST },
                { ETIMEDOUT, GD_ERR_HOST },        { 4095, GD_ERR_HOST },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                ck_assert_int_eq(gd_error_from_errno(table[i].errno_value), table[i].code);
                ck_assert_int_eq(gd_error_from_errno(-table[i].errno_value), table[i].code);
        }
        ck_assert_int_eq(gd_error_from_errno(INT32_MIN), GD_ERR_HOST);
}
END_TEST

/* ---------------------------------------------------------------- garbage */

static uint64_t rng_state;

static uint32_t rng(void) {
        /* xorshift64*: deterministic, so a failure can be replayed. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t) ((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Decodes whatever it is given. Anything accepted re-encodes to exactly the same bytes: the encoding is
 * canonical, so the decoder cannot have accepted something it misread. */
static int decode_check(const uint8_t *buf, size_t len) {
        GdMsg m;
        int r;

        r = gd_msg_decode(buf, len, &m);
        if (r < 0) {
                ck_assert(r == -EBADMSG || r == -EPROTONOSUPPORT || r == -EMSGSIZE);
                ck_assert(msg_is_zero(&m));
                return r;
        }

        _cleanup_free_ uint8_t *again = malloc(len);
        size_t len2 = 0;
        ck_assert_ptr_nonnull(again);
        ck_assert_int_eq(gd_msg_encode(&m, again, len, &len2), 0);
        ck_assert_uint_eq(len2, len);
        ck_assert_int_eq(memcmp(buf, again, len), 0);
        gd_msg_done(&m);
        return 0;
}

START_TEST(test_garbage) {
        static const uint16_t types[] = {
                GD_MSG_HELLO, GD_MSG_SHOW_GROUP, GD_MSG_ACQUIRE, GD_MSG_RELEASE, GD_MSG_SUBSCRIBE,
                GD_MSG_ERROR, GD_MSG_HELLO_REPLY, GD_MSG_GROUPS, GD_MSG_ACQUIRED, GD_MSG_LEASES,
                GD_MSG_STATUS_REPLY, GD_MSG_EVENT, GD_MSG_OK, GD_MSG_ACQUIRED_DELIVERY, 0, 200,
        };
        uint8_t *buf = malloc(1024);
        unsigned accepted = 0;

        ck_assert_ptr_nonnull(buf);
        rng_state = 0x9e3779b97f4a7c15ull;

        for (unsigned n = 0; n < 100000; n++) {
                size_t len = rng() % 1024;

                for (size_t i = 0; i < len; i++)
                        buf[i] = (uint8_t) rng();
                /* Most of the time make the header plausible, so the payload decoders get exercised. */
                if (len >= GD_HEADER_SIZE && (n % 4) != 0) {
                        put_le16(buf, GD_PROTO_VERSION);
                        put_le16(buf + 2, types[rng() % ELEMENTSOF(types)]);
                        set_length(buf, (uint32_t) (len - GD_HEADER_SIZE));
                        /* Small counts and lengths are far likelier to parse. */
                        for (size_t i = GD_HEADER_SIZE + 1; i < len; i += 1 + rng() % 8)
                                if (rng() % 2)
                                        buf[i] = 0;
                }
                if (decode_check(buf, len) == 0)
                        accepted++;
        }
        free(buf);
        /* Short messages (OK, SUBSCRIBE...) do get through now and then; that is fine. */
        ck_assert_uint_lt(accepted, 100000);
}
END_TEST

START_TEST(test_mutations) {
        unsigned accepted = 0, rejected = 0;

        rng_state = 0x0123456789abcdefull;

        for (size_t s = 0; s < ELEMENTSOF(samples); s++) {
                _cleanup_free_ uint8_t *orig = NULL;
                uint8_t *buf = malloc(GD_MSG_SIZE_MAX);
                size_t len;

                ck_assert_ptr_nonnull(buf);
                orig = encode_alloc(&samples[s], &len);

                for (unsigned n = 0; n < 5000; n++) {
                        size_t l = len;

                        memcpy(buf, orig, len);
                        switch (rng() % 4) {
                        case 0: /* change a few bytes */
                                for (unsigned k = 1 + rng() % 4; k > 0; k--)
                                        buf[rng() % l] = (uint8_t) rng();
                                break;
                        case 1: /* flip one bit past the header */
                                if (l > GD_HEADER_SIZE) {
                                        size_t at = GD_HEADER_SIZE + rng() % (l - GD_HEADER_SIZE);
                                        buf[at] ^= (uint8_t) (1u << (rng() % 8));
                                }
                                break;
                        case 2: /* cut or grow */
                                l = rng() % (len + 16);
                                for (size_t i = len; i < l; i++)
                                        buf[i] = (uint8_t) rng();
                                break;
                        case 3: /* small or huge numbers where a count or a length may sit */
                                if (l > GD_HEADER_SIZE + 1) {
                                        size_t at = GD_HEADER_SIZE + rng() % (l - GD_HEADER_SIZE - 1);
                                        static const uint16_t v[] = { 0, 1, 2, 64, 65, 256, 257, 0x7fff, 0xffff };
                                        put_le16(buf + at, v[rng() % ELEMENTSOF(v)]);
                                }
                                break;
                        }
                        if (l >= GD_HEADER_SIZE && rng() % 4 != 0)
                                set_length(buf, (uint32_t) (l - GD_HEADER_SIZE));

                        if (decode_check(buf, l) == 0)
                                accepted++;
                        else
                                rejected++;
                }
                free(buf);
        }
        /* Both outcomes happen: the mutations are neither all harmless nor all fatal. */
        ck_assert_uint_gt(accepted, 0);
        ck_assert_uint_gt(rejected, 0);
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *codec_suite(void) {
        Suite *s = suite_create("codec");
        TCase *tc;

        tc = tcase_create("roundtrip");
        tcase_add_loop_test(tc, test_roundtrip, 0, ELEMENTSOF(samples));
        tcase_add_test(tc, test_samples_cover_every_type);
        tcase_add_test(tc, test_roundtrip_limits);
        tcase_add_test(tc, test_bytes_hello);
        tcase_add_test(tc, test_bytes_acquire);
        tcase_add_test(tc, test_bytes_acquire_delivery);
        tcase_add_test(tc, test_acquired_delivery_block);
        tcase_add_test(tc, test_bytes_event);
        tcase_add_test(tc, test_bytes_hello_reply);
        suite_add_tcase(s, tc);

        tc = tcase_create("malformed");
        tcase_add_loop_test(tc, test_truncated, 0, ELEMENTSOF(samples));
        tcase_add_loop_test(tc, test_leftover_bytes, 0, ELEMENTSOF(samples));
        tcase_add_test(tc, test_length_lies);
        tcase_add_test(tc, test_oversize);
        tcase_add_test(tc, test_version);
        tcase_add_test(tc, test_unknown_type);
        tcase_add_test(tc, test_revoke_malformed);
        tcase_add_test(tc, test_strings);
        tcase_add_test(tc, test_over_limit_encode);
        tcase_add_test(tc, test_tokens);
        tcase_add_test(tc, test_flags_and_enums);
        tcase_add_test(tc, test_counts);
        tcase_add_test(tc, test_nobufs);
        suite_add_tcase(s, tc);

        tc = tcase_create("misc");
        tcase_add_test(tc, test_done);
        tcase_add_test(tc, test_expected_fds);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_error_from_errno);
        suite_add_tcase(s, tc);

        tc = tcase_create("garbage");
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_garbage);
        tcase_add_test(tc, test_mutations);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        return test_run_suite(codec_suite(), NULL);
}
