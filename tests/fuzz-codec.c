/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the wire codec (proto/proto.c). tests/fuzz.sh builds and runs it.
 *
 * For every input: decode it; when that fails nothing may be left allocated and the result must be empty;
 * when it succeeds the message must re-encode to exactly the input (the encoding is canonical), and
 * decode again to a message that encodes the same once more. Encoding into a buffer one byte short must
 * fail with -ENOBUFS and report the size needed.
 *
 * Built with -DGD_FUZZ_WRITE_SEEDS instead, this file is a small program that writes one valid packet of
 * every message type into the directory given as its argument: the seed corpus. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupd-proto.h"

#ifndef GD_FUZZ_WRITE_SEEDS

static void check(int ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "fuzz-codec: %s\n", what);
                abort();
        }
}

static int is_zero(const void *p, size_t n) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                if (b[i])
                        return 0;
        return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        GdMsg m, again;
        uint8_t *buf;
        size_t len = 0, need = 0;
        int r;

        r = gd_msg_decode(data, size, &m);
        if (r < 0) {
                check(r == -EBADMSG || r == -EPROTONOSUPPORT || r == -EMSGSIZE, "unexpected decode error");
                check(is_zero(&m, sizeof m), "a failed decode left something behind");
                return 0;
        }

        /* Touch the rest of the API on what was decoded. */
        check(gd_msg_expected_fds(&m) <= GD_FDS_PER_MSG_MAX, "more fds than a message may carry");
        check(gd_msg_type_to_string(m.type) != NULL, "decoded a type without a name");

        buf = malloc(size);
        check(buf != NULL, "out of memory");

        r = gd_msg_encode(&m, buf, size, &len);
        check(r == 0, "a decoded message does not encode");
        check(len == size && memcmp(buf, data, size) == 0, "re-encoding differs from the input");

        r = gd_msg_encode(&m, buf, size - 1, &need);
        check(r == -ENOBUFS && need == size, "a buffer one byte short is not -ENOBUFS with the size");

        r = gd_msg_decode(data, size, &again);
        check(r == 0, "the input no longer decodes");
        r = gd_msg_encode(&again, buf, size, &len);
        check(r == 0 && len == size && memcmp(buf, data, size) == 0, "second round trip differs");

        gd_msg_done(&again);
        gd_msg_done(&m);
        check(is_zero(&m, sizeof m), "gd_msg_done() did not clear the message");
        gd_msg_done(&m);
        free(buf);
        return 0;
}

#else /* GD_FUZZ_WRITE_SEEDS */

static int write_seed(const char *dir, const char *name, const GdMsg *m) {
        static uint8_t buf[GD_MSG_SIZE_MAX];
        char path[4096];
        size_t len;
        FILE *f;
        int r;

        r = gd_msg_encode(m, buf, sizeof buf, &len);
        if (r < 0) {
                fprintf(stderr, "cannot encode seed %s: %s\n", name, strerror(-r));
                return r;
        }
        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "we");
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
                fprintf(stderr, "cannot write %s: %m\n", path);
                return -EIO;
        }
        return 0;
}

int main(int argc, char **argv) {
        static char *specs[] = { (char *) "7", (char *) "0000:01:00.0", (char *) "01:00.0" };
        static char *nodes[] = { (char *) "/dev/vfio/7" };
        static uint32_t ids[] = { 7, 12 };
        static GdDevice devices[] = {
                { .address = (char *) "0000:01:00.0", .vendor = 0x8086, .device = 0x10d3, .class_code = 0x020000,
                  .driver = (char *) "vfio-pci", .driver_override = (char *) "vfio-pci" },
                { .address = (char *) "0000:01:00.1", .vendor = 0x8086, .device = 0x10d4, .class_code = 0x0c0330,
                  .driver = (char *) "" },
        };
        static GdRegion regions[] = {
                { .start = 0xfee00000, .end = 0xfeefffff, .type = (char *) "msi" },
                { .start = 0, .end = 0xfff, .type = (char *) "direct" },
        };
        static GdGroup groups[] = {
                { .id = 7, .flags = GD_GROUP_VIABLE | GD_GROUP_LEASED, .type = (char *) "DMA",
                  .devices = devices, .n_devices = 2, .regions = regions, .n_regions = 2,
                  .lease_id = (char *) "a1b2c3d4", .holder_label = (char *) "vm-1", .holder_uid = 107,
                  .holder_pid = 4242 },
                { .id = 12, .flags = GD_GROUP_NEVER, .type = (char *) "identity",
                  .viability = (char *) "0000:00:1f.3 is on snd_hda_intel", .policy_note = (char *) "sound" },
        };
        static GdLease leases[] = {
                { .id = (char *) "a1b2c3d4", .label = (char *) "vm-1", .uid = 107, .pid = 4242,
                  .owner_kind = GD_OWNER_PROCESS, .owner_pid = 4243, .state = GD_LEASE_ACTIVE,
                  .since_usec = 1700000000000000ull, .groups = ids, .n_groups = 2 },
                { .id = (char *) "e5f6", .owner_kind = GD_OWNER_LEASE_FD, .state = GD_LEASE_RELEASING,
                  .groups = ids + 1, .n_groups = 1 },
        };
        const struct {
                const char *name;
                GdMsg m;
        } seeds[] = {
                { "hello", { .type = GD_MSG_HELLO, .serial = 1,
                             .hello = { .version_min = 1, .version_max = 1, .name = (char *) "qemu" } } },
                { "list-groups", { .type = GD_MSG_LIST_GROUPS, .serial = 2 } },
                { "show-group", { .type = GD_MSG_SHOW_GROUP, .serial = 3, .spec = (char *) "0000:01:00.0" } },
                { "acquire", { .type = GD_MSG_ACQUIRE, .serial = 4,
                               .acquire = { .flags = GD_ACQUIRE_OWNER_PROCESS | GD_ACQUIRE_CONFIGURE_IOMMU,
                                            .label = (char *) "vm-1", .specs = specs, .n_specs = 3 } } },
                { "acquire-delivery", { .type = GD_MSG_ACQUIRE, .serial = 4,
                                        .acquire = { .flags = GD_ACQUIRE_OWNER_PROCESS | GD_ACQUIRE_DELIVERY,
                                                     .label = (char *) "vm-1", .specs = specs, .n_specs = 1,
                                                     .delivery = GD_DELIVERY_NODE_GRANT, .grant_uid = 1000 } } },
                { "release", { .type = GD_MSG_RELEASE, .serial = 5,
                               .token = (char *) "0123456789abcdef0123456789abcdef" } },
                { "list-leases", { .type = GD_MSG_LIST_LEASES, .serial = 6 } },
                { "revoke", { .type = GD_MSG_REVOKE, .serial = 12,
                              .revoke = { .lease_id = (char *) "6cdc36278a81", .deadline_sec = 10,
                                          .flags = GD_REVOKE_FORCE } } },
                { "subscribe", { .type = GD_MSG_SUBSCRIBE, .serial = 7, .event_mask = 0x5 } },
                { "status", { .type = GD_MSG_STATUS, .serial = 8 } },
                { "error", { .type = GD_MSG_ERROR, .serial = 9,
                             .error = { .code = GD_ERR_BUSY, .errno_value = EBUSY,
                                        .message = (char *) "group 7 is leased" } } },
                { "ok", { .type = GD_MSG_OK, .serial = 10 } },
                { "dma-info", { .type = GD_MSG_DMA_INFO, .serial = 11, .spec = (char *) "3" } },
                { "dma-info-reply", { .type = GD_MSG_DMA_INFO_REPLY, .serial = 11,
                                      .dma_info = { .group = 3, .source = GD_DMA_SOURCE_CONTAINER, .kvm = 1,
                                                    .n_devices = 2, .regions = regions, .n_regions = 2,
                                                    .note = (char *) "",
                                                    .dma = { .flags = 0xf, .iommu_type = 3, .pgsizes = 0x40201000,
                                                             .n_iova = 2, .iova = { { 0, 0xfedfffff },
                                                                                    { 0xfef00000, 0x7fffffffff } },
                                                             .dma_avail = 65535, .migration_pgsizes = 0x1000,
                                                             .migration_max_dirty_bitmap_size = 0x10000000 } } } },
                { "hello-reply", { .type = GD_MSG_HELLO_REPLY, .serial = 1,
                                   .hello = { .version_min = 1, .name = (char *) "0.1", .host = (char *) "sim" } } },
                { "groups", { .type = GD_MSG_GROUPS, .serial = 2,
                              .groups = { .more = 1, .groups = groups, .n_groups = 2 } } },
                { "acquired", { .type = GD_MSG_ACQUIRED, .serial = 4,
                                .acquired = { .token = (char *) "ffffffffffffffff0000000000000000",
                                              .lease = leases[0], .iommu_type = 3 } } },
                { "acquired-iommufd", { .type = GD_MSG_ACQUIRED_DELIVERY, .serial = 4,
                                        .acquired = { .token = (char *) "ffffffffffffffff0000000000000000",
                                                      .lease = leases[0],
                                                      .delivery = GD_DELIVERY_IOMMUFD, .devices = specs + 1,
                                                      .n_devices = 2 } } },
                { "acquired-node-grant", { .type = GD_MSG_ACQUIRED_DELIVERY, .serial = 4,
                                           .acquired = { .token = (char *) "ffffffffffffffff0000000000000000",
                                                         .lease = leases[0],
                                                         .delivery = GD_DELIVERY_NODE_GRANT, .grant_uid = 1000,
                                                         .nodes = nodes, .n_nodes = 1 } } },
                { "leases", { .type = GD_MSG_LEASES, .serial = 6,
                              .leases = { .leases = leases, .n_leases = 2 } } },
                { "status-reply", { .type = GD_MSG_STATUS_REPLY, .serial = 8,
                                    .status = { .version = (char *) "0.1", .host = (char *) "linux", .n_groups = 3,
                                                .n_leases = 1, .n_clients = 2, .started_usec = 1 } } },
                { "event-ended", { .type = GD_MSG_EVENT,
                                   .event = { .kind = GD_EVENT_LEASE_ENDED, .lease = leases[1],
                                              .reason = GD_REASON_OWNER_EXITED, .errno_value = EIO,
                                              .detail = (char *) "e1000e did not come back" } } },
                { "event-group", { .type = GD_MSG_EVENT,
                                   .event = { .kind = GD_EVENT_GROUP_CHANGED,
                                              .lease = { .groups = ids, .n_groups = 1 } } } },
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
                return 2;
        }
        for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
                if (write_seed(argv[1], seeds[i].name, &seeds[i].m) < 0)
                        return 1;
        return 0;
}

#endif
