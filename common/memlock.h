/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How much memory a VMM must be allowed to lock (RLIMIT_MEMLOCK) to use assigned devices: pure
 * arithmetic, shared by the daemon (which raises the limit when asked) and groupctl (which reports it).
 *
 * The rules are libvirt's (qemuDomainGetMemLockLimitBytes), by the guest's architecture, which for KVM
 * is the host's (memlock_rule_host()):
 *
 * MEMLOCK_RULE_DEFAULT (x86 and the rest): with VFIO the whole guest RAM is pinned for DMA, once per IOMMU
 * address space, plus 1 GiB for what QEMU maps and pins besides (ROMs, MMIO of other devices, buffers):
 *
 *         limit = factor * guest_ram + 1 GiB
 *         factor = the number of assigned devices when the guest has a vIOMMU (each device then has an
 *                  address space of its own, and the same RAM is pinned and counted once per device),
 *                  else 1
 *
 * MEMLOCK_RULE_PPC64 (pseries guests on POWER), computed in KiB as libvirt does (memory = guest RAM,
 * max = the guest's maximum memory with hotplug, else its RAM; PHBs = the guest's PCI host bridges,
 * counting the default one):
 *
 *         base        = max / 128                       the hash page table
 *                       + 4 MiB * PHBs + 8 MiB          the DMA32 windows' TCE tables
 *         passthrough = MAX(2 GiB * PHBs,               the pre-DDW DMA32 window, charged whole when the
 *                                                       IOMMU is enabled (1 GiB on pseries, 2 on powernv)
 *                           memory                      with DDW and pre-registration: RAM, counted once
 *                           + memory / 512 * PHBs       the 64-bit window's TCEs (4 KiB IOMMU pages)
 *                           + 8 MiB)
 *         limit       = base + passthrough
 *
 * The figure depends only on the guest, never on a lease: groupctl memlock says the same before a lease
 * and during one, and it is what groupd sets at acquire. (The DMA32 window the kernel reports is covered
 * by the 2 GiB per PHB; it is not added on top.) */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define MEMLOCK_EXTRA_BYTES (UINT64_C(1) << 30)

typedef enum MemlockRule {
        MEMLOCK_RULE_DEFAULT,
        MEMLOCK_RULE_PPC64,
        _MEMLOCK_RULE_MAX,
        _MEMLOCK_RULE_INVALID = -EINVAL,
} MemlockRule;

typedef struct MemlockInput {
        uint64_t guest_ram;             /* bytes; > 0 */
        unsigned n_devices;             /* assigned devices; counts only with viommu (default rule) */
        bool viommu;
        MemlockRule rule;               /* zero: MEMLOCK_RULE_DEFAULT */
        uint64_t max_memory;            /* ppc64: bytes, the guest's maximum memory; 0: guest_ram */
        unsigned n_phbs;                /* ppc64: the guest's PCI host bridges; 0: 1, QEMU's default PHB,
                                         * where assigned devices go unless placed on another */
} MemlockInput;

/* The rule for guests of the architecture groupd was built for (KVM guests are the host's). */
MemlockRule memlock_rule_host(void);
const char *memlock_rule_to_string(MemlockRule r);
MemlockRule memlock_rule_from_string(const char *s);

/* Returns 0 and the limit in bytes, -EINVAL for no guest RAM (or a vIOMMU with no device, or a max_memory
 * below guest_ram, or an unknown rule), -ERANGE when the result does not fit in 64 bits. */
int memlock_limit(const MemlockInput *in, uint64_t *ret);

/* One group of a request, as memlock_limit_for_groups() counts it. */
typedef struct MemlockGroup {
        unsigned id;                    /* the IOMMU group number */
        unsigned n_devices;             /* the devices an acquire assigns from it */
} MemlockGroup;

/* The limit for a set of groups leased together, the one rule the daemon, its D-Bus API and groupctl
 * share, by the host's rule (memlock_rule_host()): a group named twice is one group (an acquire folds
 * repeats, so it is counted once); the devices of the distinct groups add up. Nothing of a lease goes in,
 * so the figure is the same before a lease and during one. The input as counted goes to ret_input (may be
 * NULL). Errors as memlock_limit(). */
int memlock_limit_for_groups(uint64_t guest_ram, bool viommu, const MemlockGroup *groups, size_t n_groups,
                             uint64_t *ret, MemlockInput *ret_input);

/* Parses a size: a decimal number with an optional binary suffix K, M, G, T (or KiB, MiB, GiB, TiB;
 * "8G" = 8 GiB); a plain number is bytes. -EINVAL for anything else, -ERANGE on overflow. */
int memlock_parse_size(const char *s, uint64_t *ret);

/* Formats bytes as "9.0 GiB" style text into buf. */
const char *memlock_format_size(uint64_t bytes, char *buf, size_t size);
