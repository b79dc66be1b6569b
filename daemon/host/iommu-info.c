/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The pure parsers and builders of iommu-info.h. Every read goes through get_u16/u32/u64, which check
 * bounds and copy (capabilities need not be aligned: 6.1 puts the IOVA ranges at offset 68). */

#include <errno.h>
#include <string.h>

#include "iommu-info.h"
#include "macro.h"

#define CAP_HEADER_SIZE 8u
#define CAP_IOVA_RANGE 1u        /* VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE */
#define CAP_MIGRATION 2u         /* VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION */
#define CAP_DMA_AVAIL 3u         /* VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL */
#define CAP_IOVA_SIZE 16u        /* header, u32 nr_iovas, u32 reserved; then 16 bytes per range */
#define CAP_MIGRATION_SIZE 32u   /* header, u32 flags, (pad), u64 pgsize_bitmap, u64 max_dirty_bitmap_size */
#define CAP_DMA_AVAIL_SIZE 12u   /* header, u32 avail */
#define INFO_FLAG_PGSIZES 1u     /* VFIO_IOMMU_INFO_PGSIZES */
#define INFO_FLAG_CAPS 2u        /* VFIO_IOMMU_INFO_CAPS */
#define SPAPR_FLAG_DDW 1u        /* VFIO_IOMMU_SPAPR_INFO_DDW */

static uint16_t get_u16(const uint8_t *p) {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        return v;
}

static uint32_t get_u32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        return v;
}

static uint64_t get_u64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return v;
}

static void put_u16(uint8_t *p, uint16_t v) {
        memcpy(p, &v, sizeof v);
}

static void put_u32(uint8_t *p, uint32_t v) {
        memcpy(p, &v, sizeof v);
}

static void put_u64(uint8_t *p, uint64_t v) {
        memcpy(p, &v, sizeof v);
}

static int parse_cap(const uint8_t *cap, size_t avail, uint16_t id, HostIommuInfo *info) {
        switch (id) {
        case CAP_IOVA_RANGE: {
                uint32_t n;

                if (info->flags & HOST_IOMMU_IOVA)
                        return -EBADMSG;
                if (avail < CAP_IOVA_SIZE)
                        return -EBADMSG;
                n = get_u32(cap + 8);
                if (n > HOST_IOVA_RANGES_MAX || (size_t) n * 16u > avail - CAP_IOVA_SIZE)
                        return -EBADMSG;
                for (uint32_t i = 0; i < n; i++) {
                        const uint8_t *r = cap + CAP_IOVA_SIZE + (size_t) i * 16u;
                        HostIovaRange range = { .start = get_u64(r), .end = get_u64(r + 8) };

                        if (range.start > range.end)
                                return -EBADMSG;
                        if (i > 0 && range.start <= info->iova[i - 1].end)
                                return -EBADMSG;  /* not ascending and disjoint */
                        info->iova[i] = range;
                }
                info->n_iova = n;
                info->flags |= HOST_IOMMU_IOVA;
                return 0;
        }
        case CAP_MIGRATION:
                if (info->flags & HOST_IOMMU_MIGRATION)
                        return -EBADMSG;
                if (avail < CAP_MIGRATION_SIZE)
                        return -EBADMSG;
                info->migration_flags = get_u32(cap + 8);
                info->migration_pgsizes = get_u64(cap + 16);
                info->migration_max_dirty_bitmap_size = get_u64(cap + 24);
                info->flags |= HOST_IOMMU_MIGRATION;
                return 0;
        case CAP_DMA_AVAIL:
                if (info->flags & HOST_IOMMU_DMA_AVAIL)
                        return -EBADMSG;
                if (avail < CAP_DMA_AVAIL_SIZE)
                        return -EBADMSG;
                info->dma_avail = get_u32(cap + 8);
                info->flags |= HOST_IOMMU_DMA_AVAIL;
                return 0;
        default:
                return 0; /* a capability this parser does not know: skipped */
        }
}

int iommu_info_parse_type1(const uint8_t *buf, size_t len, HostIommuInfo *ret, size_t *ret_needed) {
        HostIommuInfo info = {};
        uint32_t argsz, flags, offset;
        size_t end;

        if (!buf || !ret)
                return -EINVAL;
        *ret = (HostIommuInfo) {};
        if (len < IOMMU_TYPE1_INFO_SIZE)
                return -EBADMSG;

        argsz = get_u32(buf);
        flags = get_u32(buf + 4);
        if (argsz < IOMMU_TYPE1_INFO_SIZE)
                return -EBADMSG;
        if (flags & INFO_FLAG_PGSIZES) {
                info.pgsizes = get_u64(buf + 8);
                info.flags |= HOST_IOMMU_PGSIZES;
        }
        if (argsz > len) {
                /* The kernel wanted a larger buffer and left the capabilities out. */
                if (ret_needed)
                        *ret_needed = argsz;
                *ret = info;
                return -ENOBUFS;
        }
        if (ret_needed)
                *ret_needed = argsz;
        end = argsz;  /* what the kernel filled in; bytes past it are the caller's */

        offset = (flags & INFO_FLAG_CAPS) ? get_u32(buf + 16) : 0;
        for (unsigned n = 0; offset != 0; n++) {
                uint16_t id;
                uint32_t next;
                size_t avail;
                int r;

                if (n >= IOMMU_INFO_CAPS_MAX)
                        return -EBADMSG;
                if (offset < IOMMU_TYPE1_INFO_SIZE || offset > end || end - offset < CAP_HEADER_SIZE)
                        return -EBADMSG;  /* inside the fixed part, or its header past the end */
                id = get_u16(buf + offset);
                next = get_u32(buf + offset + 4);
                /* The kernel lays the chain out forwards: a next that does not move past this header is a
                 * loop (or a capability overlapping this one). */
                if (next != 0 && (next < offset + CAP_HEADER_SIZE || next > end))
                        return -EBADMSG;
                avail = (next != 0 ? next : end) - offset;
                r = parse_cap(buf + offset, avail, id, &info);
                if (r < 0)
                        return r;
                offset = next;
        }

        *ret = info;
        return 0;
}

int iommu_info_parse_spapr(const uint8_t *buf, size_t len, HostIommuInfo *ret) {
        uint32_t argsz, flags;

        if (!buf || !ret)
                return -EINVAL;
        if (len < IOMMU_SPAPR_INFO_SIZE)
                return -EBADMSG;
        argsz = get_u32(buf);
        if (argsz < IOMMU_SPAPR_INFO_SIZE || argsz > len)
                return -EBADMSG;
        flags = get_u32(buf + 4);

        ret->spapr_dma32_start = get_u32(buf + 8);
        ret->spapr_dma32_size = get_u32(buf + 12);
        ret->flags |= HOST_IOMMU_SPAPR;
        ret->flags &= ~(uint32_t) HOST_IOMMU_SPAPR_DDW;
        ret->spapr_ddw_pgsizes = ret->spapr_ddw_max_windows = ret->spapr_ddw_levels = 0;
        if (flags & SPAPR_FLAG_DDW) {
                ret->spapr_ddw_pgsizes = get_u64(buf + 16);
                ret->spapr_ddw_max_windows = get_u32(buf + 24);
                ret->spapr_ddw_levels = get_u32(buf + 28);
                ret->flags |= HOST_IOMMU_SPAPR_DDW;
        }
        return 0;
}

static size_t cap_size(size_t raw, bool align8) {
        return align8 ? (raw + 7u) & ~(size_t) 7u : raw;
}

int iommu_info_build_type1(const HostIommuInfo *info, bool align8, uint8_t *buf, size_t size,
                           size_t *ret_needed) {
        size_t needed = IOMMU_TYPE1_INFO_SIZE, off, prev = 0;
        bool caps = info->flags & (HOST_IOMMU_IOVA | HOST_IOMMU_DMA_AVAIL | HOST_IOMMU_MIGRATION);
        uint32_t n_iova = info->flags & HOST_IOMMU_IOVA ? info->n_iova : 0;

        if (n_iova > HOST_IOVA_RANGES_MAX)
                return -EINVAL;
        if (info->flags & HOST_IOMMU_MIGRATION)
                needed += cap_size(CAP_MIGRATION_SIZE, align8);
        if (info->flags & HOST_IOMMU_DMA_AVAIL)
                needed += cap_size(CAP_DMA_AVAIL_SIZE, align8);
        if (info->flags & HOST_IOMMU_IOVA)
                needed += cap_size(CAP_IOVA_SIZE + 16u * n_iova, align8);
        if (ret_needed)
                *ret_needed = needed;
        if (!buf || size < IOMMU_TYPE1_INFO_SIZE)
                return -ENOBUFS;

        memset(buf, 0, MIN(size, needed));
        put_u32(buf, (uint32_t) needed);
        put_u32(buf + 4, (info->flags & HOST_IOMMU_PGSIZES ? INFO_FLAG_PGSIZES : 0) | (caps ? INFO_FLAG_CAPS : 0));
        put_u64(buf + 8, info->pgsizes);
        if (size < needed)
                return -ENOBUFS;  /* as the kernel: argsz says how much, the caps are left out */

        off = IOMMU_TYPE1_INFO_SIZE;
#define LINK(id_)                                                                 \
        do {                                                                      \
                if (prev)                                                         \
                        put_u32(buf + prev + 4, (uint32_t) off);                  \
                else                                                              \
                        put_u32(buf + 16, (uint32_t) off);                        \
                put_u16(buf + off, (id_));                                        \
                put_u16(buf + off + 2, 1);                                        \
                prev = off;                                                       \
        } while (0)
        if (info->flags & HOST_IOMMU_MIGRATION) {
                LINK(CAP_MIGRATION);
                put_u32(buf + off + 8, info->migration_flags);
                put_u64(buf + off + 16, info->migration_pgsizes);
                put_u64(buf + off + 24, info->migration_max_dirty_bitmap_size);
                off += cap_size(CAP_MIGRATION_SIZE, align8);
        }
        if (info->flags & HOST_IOMMU_DMA_AVAIL) {
                LINK(CAP_DMA_AVAIL);
                put_u32(buf + off + 8, info->dma_avail);
                off += cap_size(CAP_DMA_AVAIL_SIZE, align8);
        }
        if (info->flags & HOST_IOMMU_IOVA) {
                LINK(CAP_IOVA_RANGE);
                put_u32(buf + off + 8, n_iova);
                for (uint32_t i = 0; i < n_iova; i++) {
                        put_u64(buf + off + CAP_IOVA_SIZE + 16u * i, info->iova[i].start);
                        put_u64(buf + off + CAP_IOVA_SIZE + 16u * i + 8, info->iova[i].end);
                }
                off += cap_size(CAP_IOVA_SIZE + 16u * n_iova, align8);
        }
#undef LINK
        return (int) needed;
}

int iommu_info_build_spapr(const HostIommuInfo *info, uint8_t *buf, size_t size) {
        if (!buf || size < IOMMU_SPAPR_INFO_SIZE)
                return -ENOBUFS;
        memset(buf, 0, IOMMU_SPAPR_INFO_SIZE);
        put_u32(buf, IOMMU_SPAPR_INFO_SIZE);
        put_u32(buf + 4, info->flags & HOST_IOMMU_SPAPR_DDW ? SPAPR_FLAG_DDW : 0);
        put_u32(buf + 8, info->spapr_dma32_start);
        put_u32(buf + 12, info->spapr_dma32_size);
        put_u64(buf + 16, info->spapr_ddw_pgsizes);
        put_u32(buf + 24, info->spapr_ddw_max_windows);
        put_u32(buf + 28, info->spapr_ddw_levels);
        return IOMMU_SPAPR_INFO_SIZE;
}

void iommu_info_intersect_iova(HostIommuInfo *a, const HostIommuInfo *b) {
        HostIovaRange out[HOST_IOVA_RANGES_MAX];
        uint32_t n = 0, i = 0, j = 0;

        if (!(b->flags & HOST_IOMMU_IOVA))
                return;
        if (!(a->flags & HOST_IOMMU_IOVA)) {
                memcpy(a->iova, b->iova, sizeof a->iova);
                a->n_iova = b->n_iova;
                a->flags |= HOST_IOMMU_IOVA;
                return;
        }
        while (i < a->n_iova && j < b->n_iova && n < HOST_IOVA_RANGES_MAX) {
                uint64_t lo = a->iova[i].start > b->iova[j].start ? a->iova[i].start : b->iova[j].start;
                uint64_t hi = a->iova[i].end < b->iova[j].end ? a->iova[i].end : b->iova[j].end;

                if (lo <= hi)
                        out[n++] = (HostIovaRange) { lo, hi };
                if (a->iova[i].end < b->iova[j].end)
                        i++;
                else
                        j++;
        }
        memcpy(a->iova, out, n * sizeof *out);
        a->n_iova = n;
}
