/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* groupctl dma GROUP and groupctl memlock GROUP... --guest-ram SIZE [--viommu]: a group's DMA window and
 * how much memory a VMM must be allowed to lock for it. */

#include <inttypes.h>
#include <stdio.h>

#include "groupctl.h"
#include "log.h"
#include "memlock.h"

static const char *iommu_type_name(uint32_t t) {
        switch (t) {
        case 0: return "none";
        case 1: return "Type1";
        case 2: return "sPAPR TCE";
        case 3: return "Type1v2";
        case 7: return "sPAPR TCE v2";
        default: return "?";
        }
}

static void pgsizes_text(uint64_t bitmap, char *buf, size_t size) {
        size_t off = 0;
        unsigned n = (unsigned) __builtin_popcountll(bitmap);

        buf[0] = 0;
        if (bitmap == 0)
                return;
        if (n > 4) {
                /* AMD-Vi offers nearly every power of two: the smallest, the largest and how many. */
                char lo[32], hi[32];
                (void) memlock_format_size(UINT64_C(1) << __builtin_ctzll(bitmap), lo, sizeof lo);
                (void) memlock_format_size(UINT64_C(1) << (63 - __builtin_clzll(bitmap)), hi, sizeof hi);
                (void) snprintf(buf, size, "%u sizes from %s to %s", n, lo, hi);
                return;
        }
        for (unsigned b = 0; b < 64 && off < size; b++) {
                char s[32];
                if (!(bitmap & (UINT64_C(1) << b)))
                        continue;
                (void) memlock_format_size(UINT64_C(1) << b, s, sizeof s);
                off += (size_t) snprintf(buf + off, size - off, "%s%s", off ? ", " : "", s);
        }
}

static void field(const char *name) {
        printf("%s%16s:%s ", ansi_bold(), name, ansi_normal());
}

void print_dma_info(const GdDmaInfo *d) {
        const GdDma *x = &d->dma;
        char buf[512];

        field("DMA facts from");
        if (d->source == GD_DMA_SOURCE_CONTAINER)
                printf("the lease's container (IOMMU %s)\n", iommu_type_name(x->iommu_type));
        else {
                fputs("sysfs only: ", stdout);
                fputs_escaped(d->note, stdout);
                putchar('\n');
        }
        if (x->flags & GD_DMA_IOVA) {
                field("IOVA ranges");
                for (size_t i = 0; i < x->n_iova; i++) {
                        if (i > 0)
                                printf("%18s", "");
                        printf("0x%016" PRIx64 "-0x%016" PRIx64 "\n", x->iova[i].start, x->iova[i].end);
                }
        }
        if (x->flags & GD_DMA_PGSIZES) {
                pgsizes_text(x->pgsizes, buf, sizeof buf);
                field("Page sizes");
                printf("0x%" PRIx64 " (%s)\n", x->pgsizes, buf);
        }
        if (x->flags & GD_DMA_AVAIL) {
                field("DMA mappings");
                printf("%" PRIu32 " available\n", x->dma_avail);
        }
        if (x->flags & GD_DMA_MIGRATION) {
                pgsizes_text(x->migration_pgsizes, buf, sizeof buf);
                field("Dirty tracking");
                printf("page sizes 0x%" PRIx64 " (%s), bitmap up to %" PRIu64 " bytes\n", x->migration_pgsizes,
                       buf, x->migration_max_dirty_bitmap_size);
        } else if (d->source == GD_DMA_SOURCE_CONTAINER && !(x->flags & GD_DMA_SPAPR)) {
                field("Dirty tracking");
                puts("not offered by the IOMMU driver");
        }
        if (x->flags & GD_DMA_SPAPR) {
                field("DMA32 window");
                printf("0x%08" PRIx32 "-0x%08" PRIx64 " (%s)\n", x->spapr_dma32_start,
                       (uint64_t) x->spapr_dma32_start + x->spapr_dma32_size - 1,
                       memlock_format_size(x->spapr_dma32_size, buf, sizeof buf));
                if (x->flags & GD_DMA_SPAPR_DDW) {
                        char p[256];
                        pgsizes_text(x->spapr_ddw_pgsizes, p, sizeof p);
                        field("Dynamic windows");
                        printf("up to %" PRIu32 ", page sizes %s, %" PRIu32 " levels\n", x->spapr_ddw_max_windows,
                               p, x->spapr_ddw_levels);
                }
        }
        field("Reserved");
        if (d->n_regions == 0)
                puts("none");
        for (size_t i = 0; i < d->n_regions; i++) {
                if (i > 0)
                        printf("%18s", "");
                printf("0x%016" PRIx64 "-0x%016" PRIx64 " ", d->regions[i].start, d->regions[i].end);
                fputs_escaped(d->regions[i].type, stdout);
                putchar('\n');
        }
        field("KVM");
        puts(d->kvm ? "registered with the lease's kvm-vfio device" : "not registered");
        field("Devices");
        printf("%" PRIu32 " to assign\n", d->n_devices);
}

static void json_hex(FILE *f, uint64_t v) {
        char hex[32];
        snprintf(hex, sizeof hex, "0x%" PRIx64, v);
        json_string(f, hex);
}

void json_dma_info(FILE *f, const GdDmaInfo *d) {
        const GdDma *x = &d->dma;
        bool first = true;

        fputc('{', f);
        json_key(f, &first, "group");
        fprintf(f, "%" PRIu32, d->group);
        json_key(f, &first, "source");
        json_string(f, gd_dma_source_to_string((int) d->source));
        json_key(f, &first, "note");
        json_string_or_null(f, d->note);
        json_key(f, &first, "iommu_type");
        fprintf(f, "%" PRIu32, x->iommu_type);
        json_key(f, &first, "iova_ranges");
        if (x->flags & GD_DMA_IOVA) {
                fputc('[', f);
                for (size_t i = 0; i < x->n_iova; i++) {
                        bool rf = true;
                        fputs(i > 0 ? ",{" : "{", f);
                        json_key(f, &rf, "start");
                        json_hex(f, x->iova[i].start);
                        json_key(f, &rf, "end");
                        json_hex(f, x->iova[i].end);
                        fputc('}', f);
                }
                fputc(']', f);
        } else
                fputs("null", f);
        json_key(f, &first, "pgsizes");
        if (x->flags & GD_DMA_PGSIZES)
                json_hex(f, x->pgsizes);
        else
                fputs("null", f);
        json_key(f, &first, "dma_avail");
        if (x->flags & GD_DMA_AVAIL)
                fprintf(f, "%" PRIu32, x->dma_avail);
        else
                fputs("null", f);
        json_key(f, &first, "migration");
        if (x->flags & GD_DMA_MIGRATION) {
                bool mf = true;
                fputc('{', f);
                json_key(f, &mf, "flags");
                fprintf(f, "%" PRIu32, x->migration_flags);
                json_key(f, &mf, "pgsizes");
                json_hex(f, x->migration_pgsizes);
                json_key(f, &mf, "max_dirty_bitmap_size");
                fprintf(f, "%" PRIu64, x->migration_max_dirty_bitmap_size);
                fputc('}', f);
        } else
                fputs("null", f);
        json_key(f, &first, "spapr");
        if (x->flags & GD_DMA_SPAPR) {
                bool sf = true;
                fputc('{', f);
                json_key(f, &sf, "dma32_window_start");
                json_hex(f, x->spapr_dma32_start);
                json_key(f, &sf, "dma32_window_size");
                fprintf(f, "%" PRIu32, x->spapr_dma32_size);
                if (x->flags & GD_DMA_SPAPR_DDW) {
                        json_key(f, &sf, "ddw_pgsizes");
                        json_hex(f, x->spapr_ddw_pgsizes);
                        json_key(f, &sf, "ddw_max_windows");
                        fprintf(f, "%" PRIu32, x->spapr_ddw_max_windows);
                        json_key(f, &sf, "ddw_levels");
                        fprintf(f, "%" PRIu32, x->spapr_ddw_levels);
                }
                fputc('}', f);
        } else
                fputs("null", f);
        json_key(f, &first, "reserved_regions");
        fputc('[', f);
        for (size_t i = 0; i < d->n_regions; i++) {
                bool rf = true;
                fputs(i > 0 ? ",{" : "{", f);
                json_key(f, &rf, "start");
                json_hex(f, d->regions[i].start);
                json_key(f, &rf, "end");
                json_hex(f, d->regions[i].end);
                json_key(f, &rf, "type");
                json_string(f, d->regions[i].type);
                fputc('}', f);
        }
        fputc(']', f);
        json_key(f, &first, "kvm_registered");
        fputs(d->kvm ? "true" : "false", f);
        json_key(f, &first, "devices");
        fprintf(f, "%" PRIu32, d->n_devices);
        fputc('}', f);
}

int verb_dma(int argc, char **argv) {
        GdClient *c = NULL;
        GdDmaInfo *d = NULL;
        int r;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_dma_info(c, argv[0], &d);
        if (r < 0) {
                _cleanup_free_ char *e = text_escape(argv[0]);
                r = groupctl_fail(c, r, "get the DMA facts of group %s", e ?: "?");
                gd_client_free(c);
                return r;
        }
        gd_client_free(c);

        if (arg.json) {
                json_dma_info(stdout, d);
                putchar('\n');
        } else {
                printf("%sGroup %" PRIu32 "%s\n", ansi_bold(), d->group, ansi_normal());
                print_dma_info(d);
        }
        gd_dma_info_free(d);
        return EXIT_OK;
}

int verb_memlock(int argc, char **argv) {
        _cleanup_free_ MemlockGroup *groups = NULL;
        GdClient *c = NULL;
        MemlockInput in = {};
        uint64_t limit = 0;
        char a[32], b[32];
        int r;

        if (arg.guest_ram == 0) {
                log_error("memlock needs the guest's RAM: --guest-ram=SIZE (like 8G).");
                return EXIT_USAGE;
        }
        groups = calloc(MAX(argc, 1), sizeof *groups);
        if (!groups) {
                log_oom();
                return EXIT_FAIL;
        }
        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        for (int i = 0; i < argc; i++) {
                GdDmaInfo *d = NULL;

                r = gd_client_dma_info(c, argv[i], &d);
                if (r < 0) {
                        _cleanup_free_ char *e = text_escape(argv[i]);
                        r = groupctl_fail(c, r, "get the DMA facts of group %s", e ?: "?");
                        gd_client_free(c);
                        return r;
                }
                groups[i] = (MemlockGroup) { .id = d->group, .n_devices = d->n_devices };
                gd_dma_info_free(d);
        }
        gd_client_free(c);

        /* The one rule (common/memlock.c): a group named twice counts once; the host's rule. */
        r = memlock_limit_for_groups(arg.guest_ram, arg.viommu, groups, (size_t) argc, &limit, &in);
        if (r < 0) {
                log_error_errno(r, "Cannot compute the limit: %m%s",
                                r == -EINVAL ? " (the groups have no device to assign)" : "");
                return EXIT_FAIL;
        }

        if (arg.json) {
                bool first = true;
                fputc('{', stdout);
                json_key(stdout, &first, "guest_ram");
                printf("%" PRIu64, in.guest_ram);
                json_key(stdout, &first, "devices");
                printf("%u", in.n_devices);
                json_key(stdout, &first, "viommu");
                fputs(in.viommu ? "true" : "false", stdout);
                json_key(stdout, &first, "rule");
                json_string(stdout, memlock_rule_to_string(in.rule));
                json_key(stdout, &first, "memlock");
                printf("%" PRIu64, limit);
                puts("}");
                return EXIT_OK;
        }

        printf("%s%" PRIu64 "%s bytes (%s): RLIMIT_MEMLOCK for a guest of %s with %u assigned device%s",
               ansi_bold(), limit, ansi_normal(), memlock_format_size(limit, a, sizeof a),
               memlock_format_size(in.guest_ram, b, sizeof b), in.n_devices, in.n_devices == 1 ? "" : "s");
        if (in.rule == MEMLOCK_RULE_PPC64)
                puts(" (a pseries guest with one PCI host bridge).");
        else
                printf("%s.\n", in.viommu ? " behind a vIOMMU" : "");
        if (arg.legend) {
                if (in.rule == MEMLOCK_RULE_PPC64)
                        fputs("Rule (ppc64): RAM / 128 (hash page table) + 4 MiB per PHB + 8 MiB (TCE tables), plus "
                              "the larger of 2 GiB per PHB (the DMA32 window, charged whole at VFIO_IOMMU_ENABLE) "
                              "and RAM + RAM / 512 per PHB + 8 MiB (DDW)", stdout);
                else if (in.viommu)
                        printf("Rule: guest RAM x %u devices (each has its own IOMMU address space) + 1 GiB", in.n_devices);
                else
                        printf("Rule: guest RAM (pinned once for the container) + 1 GiB");
                puts(", as libvirt computes it.");
        }
        return EXIT_OK;
}
