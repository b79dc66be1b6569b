/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A container's DMA facts, and the pure parsers that get them out of the kernel's answers:
 *
 *   VFIO_IOMMU_GET_INFO (type1)       struct vfio_iommu_type1_info, 24 bytes, then a chain of
 *                                     capabilities (struct vfio_info_cap_header: u16 id, u16 version,
 *                                     u32 next, the offset of the next one from the start of the buffer,
 *                                     0 at the end): IOVA ranges (id 1), migration (id 2), DMA_AVAIL (id 3)
 *   VFIO_IOMMU_SPAPR_TCE_GET_INFO     struct vfio_iommu_spapr_tce_info, 32 bytes: the DMA32 window and
 *                                     the dynamic DMA window (DDW) facts
 *
 * No I/O here: the host backends do the ioctls and hand the bytes over, so these can be fuzzed and fed
 * with buffers captured from real kernels (6.1 answers argsz 116 with the Intel IOMMU, 6.12 120, since
 * 6.12 pads every capability to 8 bytes; a capability may start at an offset that is not 8-aligned).
 *
 * The buffer is not trusted: a chain that does not move forward (a loop, or a capability pointing
 * back), a capability that starts or ends past the end of what the kernel filled in, a header or body
 * shorter than its id needs, the same capability twice, more IOVA ranges than HOST_IOVA_RANGES_MAX or
 * ranges that are not ascending and disjoint: all are -EBADMSG, with *ret left zeroed. Unknown
 * capability ids are skipped (a newer kernel may add some). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOST_IOVA_RANGES_MAX 64u
#define IOMMU_INFO_CAPS_MAX 64u          /* capabilities followed before the chain is called hostile */
#define IOMMU_TYPE1_INFO_SIZE 24u        /* sizeof(struct vfio_iommu_type1_info) */
#define IOMMU_SPAPR_INFO_SIZE 32u        /* sizeof(struct vfio_iommu_spapr_tce_info) */

typedef struct HostIovaRange {
        uint64_t start;
        uint64_t end;                    /* inclusive */
} HostIovaRange;

/* HostIommuInfo.flags: which facts are present. */
enum {
        HOST_IOMMU_PGSIZES = 1u << 0,    /* pgsizes */
        HOST_IOMMU_IOVA = 1u << 1,       /* iova[] */
        HOST_IOMMU_DMA_AVAIL = 1u << 2,  /* dma_avail */
        HOST_IOMMU_MIGRATION = 1u << 3,  /* migration_* */
        HOST_IOMMU_SPAPR = 1u << 4,      /* the spapr_* facts (SPAPR_TCE_GET_INFO) */
        HOST_IOMMU_SPAPR_DDW = 1u << 5,  /* spapr_ddw_* are valid (VFIO_IOMMU_SPAPR_INFO_DDW) */
        _HOST_IOMMU_ALL = (1u << 6) - 1,
};

typedef struct HostIommuInfo {
        uint32_t flags;
        uint32_t iommu_type;             /* the container's VFIO IOMMU type, set by the caller */
        uint64_t pgsizes;                /* bitmap of the IOMMU page sizes */
        HostIovaRange iova[HOST_IOVA_RANGES_MAX];
        uint32_t n_iova;
        uint32_t dma_avail;              /* DMA mappings the container may still make */
        uint32_t migration_flags;
        uint64_t migration_pgsizes;      /* page sizes dirty tracking supports */
        uint64_t migration_max_dirty_bitmap_size;
        uint32_t spapr_dma32_start;      /* the default 32-bit DMA window */
        uint32_t spapr_dma32_size;
        uint64_t spapr_ddw_pgsizes;
        uint32_t spapr_ddw_max_windows;
        uint32_t spapr_ddw_levels;
} HostIommuInfo;

/* Parses a VFIO_IOMMU_GET_INFO answer of len bytes (the buffer the caller handed to the kernel). When
 * the kernel's argsz says it needed more than len, the capabilities were left out: returns -ENOBUFS with
 * the size needed in *ret_needed (if given) and *ret holding the fixed part. Else 0. */
int iommu_info_parse_type1(const uint8_t *buf, size_t len, HostIommuInfo *ret, size_t *ret_needed);

/* Parses a VFIO_IOMMU_SPAPR_TCE_GET_INFO answer into the spapr_* fields of *ret (the others are kept). */
int iommu_info_parse_spapr(const uint8_t *buf, size_t len, HostIommuInfo *ret);

/* Builders, the inverse of the parsers, in the kernel's exact layout (for the simulated host and for
 * tests). align8: pad each capability to 8 bytes, as 6.12 does (6.1 does not). Capabilities are laid
 * out in the kernel's order: migration, DMA_AVAIL, IOVA ranges. Returns the bytes written, or -ENOBUFS
 * with the size needed in *ret_needed when size is too small (the kernel's rule: argsz then says how
 * much, and only the fixed part is written). */
int iommu_info_build_type1(const HostIommuInfo *info, bool align8, uint8_t *buf, size_t size,
                           size_t *ret_needed);
int iommu_info_build_spapr(const HostIommuInfo *info, uint8_t *buf, size_t size);

/* Intersects a's IOVA ranges with b's (both ascending and disjoint) into a: what a container holding
 * groups of both can map. */
void iommu_info_intersect_iova(HostIommuInfo *a, const HostIommuInfo *b);
