/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How much memory a VMM must be allowed to lock (RLIMIT_MEMLOCK) to use assigned devices: pure
 * arithmetic, shared by the daemon (which raises the limit when asked) and groupctl (which reports it).
 *
 * The rule is libvirt's (qemuDomainGetMemLockLimitBytes): with VFIO the whole guest RAM is pinned for
 * DMA, once per IOMMU address space, plus 1 GiB for what QEMU maps and pins besides (ROMs, MMIO of
 * other devices, its own buffers):
 *
 *         limit = factor * guest_ram + 1 GiB
 *         factor = the number of assigned devices when the guest has a vIOMMU (each device then has an
 *                  address space of its own, and the same RAM is pinned and counted once per device),
 *                  else 1
 *
 * On sPAPR (ppc64) the kernel charges a container's whole 32-bit DMA window to locked memory when the
 * IOMMU is enabled (v1: VFIO_IOMMU_ENABLE; 1 GiB on pseries, 2 GiB on powernv), before any mapping:
 * that window is added on top, once per container. */

#include <stdbool.h>
#include <stdint.h>

#define MEMLOCK_EXTRA_BYTES (UINT64_C(1) << 30)

typedef struct MemlockInput {
        uint64_t guest_ram;             /* bytes; > 0 */
        unsigned n_devices;             /* assigned devices; counts only with viommu */
        bool viommu;
        uint64_t spapr_dma32_window;    /* bytes; 0 when not sPAPR */
} MemlockInput;

/* Returns 0 and the limit in bytes, -EINVAL for no guest RAM (or a vIOMMU with no device), -ERANGE when
 * the result does not fit in 64 bits. */
int memlock_limit(const MemlockInput *in, uint64_t *ret);

/* One group of a request, as memlock_limit_for_groups() counts it. */
typedef struct MemlockGroup {
        unsigned id;                    /* the IOMMU group number */
        unsigned n_devices;             /* the devices an acquire assigns from it */
        uint64_t spapr_dma32_window;    /* its container's DMA32 window, bytes; 0 when not sPAPR or unknown */
} MemlockGroup;

/* The limit for a set of groups leased together, the one rule the daemon, its D-Bus API and groupctl
 * share: a group named twice is one group (an acquire folds repeats, so it is counted once); the devices
 * of the distinct groups add up; the groups share one container, so its DMA32 window is charged once
 * (the largest given). The input as counted goes to ret_input (may be NULL). Errors as memlock_limit(). */
int memlock_limit_for_groups(uint64_t guest_ram, bool viommu, const MemlockGroup *groups, size_t n_groups,
                             uint64_t *ret, MemlockInput *ret_input);

/* Parses a size: a decimal number with an optional binary suffix K, M, G, T (or KiB, MiB, GiB, TiB;
 * "8G" = 8 GiB); a plain number is bytes. -EINVAL for anything else, -ERANGE on overflow. */
int memlock_parse_size(const char *s, uint64_t *ret);

/* Formats bytes as "9.0 GiB" style text into buf. */
const char *memlock_format_size(uint64_t bytes, char *buf, size_t size);
