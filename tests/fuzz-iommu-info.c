/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the VFIO_IOMMU_GET_INFO parsers (daemon/host/iommu-info.c). tests/fuzz.sh builds and
 * runs it, seeded with the buffers the real-kernel tier captured (tests/data/iommu-info-*.bin) and the
 * builder's own layouts.
 *
 * For every input: the type1 parser either refuses it (-EBADMSG, the answer left empty), reports it short
 * (-ENOBUFS, with a size larger than the input), or accepts it; accepted facts must be sane (at most
 * HOST_IOVA_RANGES_MAX ranges, ascending and disjoint), and the builder must lay them out again in a
 * buffer that parses back to the same facts. The sPAPR parser must never read past the input either. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu-info.h"

static void check(int ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "fuzz-iommu-info: %s\n", what);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t built[65536];
        HostIommuInfo info, again, sp = {};
        size_t needed = 0;
        int r;

        r = iommu_info_parse_type1(data, size, &info, &needed);
        if (r == -EBADMSG) {
                check(info.flags == 0 && info.n_iova == 0, "refused, but the answer is not empty");
        } else if (r == -ENOBUFS) {
                check(needed > size, "short, but the size needed is not larger");
        } else {
                check(r == 0, "an error other than EBADMSG or ENOBUFS");
                check(info.n_iova <= HOST_IOVA_RANGES_MAX, "too many ranges");
                for (uint32_t i = 0; i < info.n_iova; i++) {
                        check(info.iova[i].start <= info.iova[i].end, "a range ends before it starts");
                        check(i == 0 || info.iova[i].start > info.iova[i - 1].end, "ranges not ascending");
                }
                for (int align8 = 0; align8 <= 1; align8++) {
                        int n = iommu_info_build_type1(&info, align8, built, sizeof built, NULL);
                        check(n > 0, "the builder refused parsed facts");
                        check(iommu_info_parse_type1(built, (size_t) n, &again, NULL) == 0, "built facts do not parse");
                        check(again.flags == info.flags && again.pgsizes == info.pgsizes &&
                              again.n_iova == info.n_iova && again.dma_avail == info.dma_avail &&
                              again.migration_pgsizes == info.migration_pgsizes &&
                              again.migration_max_dirty_bitmap_size == info.migration_max_dirty_bitmap_size &&
                              memcmp(again.iova, info.iova, info.n_iova * sizeof info.iova[0]) == 0,
                              "facts change in a round trip");
                }
        }

        r = iommu_info_parse_spapr(data, size, &sp);
        check(r == 0 || r == -EBADMSG, "sPAPR: an error other than EBADMSG");
        return 0;
}

#ifdef GD_FUZZ_WRITE_SEEDS
/* Writes the builder's layouts (6.1 and 6.12, Intel and AMD ranges) into the directory argv[1]. */
int main(int argc, char **argv) {
        HostIommuInfo info = {
                .flags = HOST_IOMMU_PGSIZES | HOST_IOMMU_IOVA | HOST_IOMMU_DMA_AVAIL | HOST_IOMMU_MIGRATION,
                .pgsizes = 0x40201000, .n_iova = 3,
                .iova = { { 0, 0xfedfffff }, { 0xfef00000, 0xfcffffffff }, { 0x10000000000, 0xffffffffffff } },
                .dma_avail = 65535, .migration_pgsizes = 0x1000, .migration_max_dirty_bitmap_size = 0x10000000,
        };
        static uint8_t buf[4096];

        if (argc != 2)
                return 2;
        for (int align8 = 0; align8 <= 1; align8++)
                for (uint32_t n = 1; n <= 3; n++) {
                        char path[4096];
                        FILE *f;
                        int len;

                        info.n_iova = n;
                        len = iommu_info_build_type1(&info, align8, buf, sizeof buf, NULL);
                        if (len < 0)
                                return 1;
                        snprintf(path, sizeof path, "%s/built-%s-%u", argv[1], align8 ? "6.12" : "6.1", n);
                        f = fopen(path, "we");
                        if (!f)
                                return 1;
                        fwrite(buf, 1, (size_t) len, f);
                        fclose(f);
                }
        return 0;
}
#endif
