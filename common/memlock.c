/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "memlock.h"

static int mul_u64(uint64_t a, uint64_t b, uint64_t *ret) {
        if (a != 0 && b > UINT64_MAX / a)
                return -ERANGE;
        *ret = a * b;
        return 0;
}

static int add_u64(uint64_t a, uint64_t b, uint64_t *ret) {
        if (b > UINT64_MAX - a)
                return -ERANGE;
        *ret = a + b;
        return 0;
}

MemlockRule memlock_rule_host(void) {
#if defined(__powerpc64__)
        return MEMLOCK_RULE_PPC64;
#else
        return MEMLOCK_RULE_DEFAULT;
#endif
}

static const char *const rule_names[_MEMLOCK_RULE_MAX] = {
        [MEMLOCK_RULE_DEFAULT] = "default",
        [MEMLOCK_RULE_PPC64] = "ppc64",
};

DEFINE_STRING_TABLE_LOOKUP(memlock_rule, MemlockRule, rule_names);

/* libvirt's ppc64 rule, in KiB as libvirt computes it (see memlock.h). */
static int limit_ppc64(const MemlockInput *in, uint64_t *ret) {
        const uint64_t MiB = 1024, GiB = 1024 * 1024;   /* in KiB */
        uint64_t memory = in->guest_ram / 1024, max = (in->max_memory ?: in->guest_ram) / 1024;
        uint64_t phbs = in->n_phbs ?: 1, base, a, b, pt, v;
        int r;

        /* base = max / 128 + 4 MiB * PHBs + 8 MiB */
        r = mul_u64(4 * MiB, phbs, &v);
        if (r >= 0)
                r = add_u64(max / 128, v, &base);
        if (r >= 0)
                r = add_u64(base, 8 * MiB, &base);
        /* passthrough = MAX(2 GiB * PHBs, memory + memory / 512 * PHBs + 8 MiB) */
        if (r >= 0)
                r = mul_u64(2 * GiB, phbs, &a);
        if (r >= 0)
                r = mul_u64(memory / 512, phbs, &b);
        if (r >= 0)
                r = add_u64(b, memory, &b);
        if (r >= 0)
                r = add_u64(b, 8 * MiB, &b);
        if (r < 0)
                return r;
        pt = a > b ? a : b;
        r = add_u64(base, pt, &v);
        if (r < 0)
                return r;
        if (v > UINT64_MAX >> 10)
                return -ERANGE;
        *ret = v << 10;
        return 0;
}

int memlock_limit(const MemlockInput *in, uint64_t *ret) {
        uint64_t factor, v;
        int r;

        if (!in || !ret || in->guest_ram == 0)
                return -EINVAL;
        switch (in->rule) {
        case MEMLOCK_RULE_PPC64:
                if (in->max_memory != 0 && in->max_memory < in->guest_ram)
                        return -EINVAL;
                return limit_ppc64(in, ret);
        case MEMLOCK_RULE_DEFAULT:
                break;
        default:
                return -EINVAL;
        }
        if (in->viommu && in->n_devices == 0)
                return -EINVAL;

        factor = in->viommu ? in->n_devices : 1;
        r = mul_u64(factor, in->guest_ram, &v);
        if (r >= 0)
                r = add_u64(v, MEMLOCK_EXTRA_BYTES, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int memlock_limit_for_groups(uint64_t guest_ram, bool viommu, const MemlockGroup *groups, size_t n_groups,
                             uint64_t *ret, MemlockInput *ret_input) {
        MemlockInput in = { .guest_ram = guest_ram, .viommu = viommu, .rule = memlock_rule_host() };
        int r;

        if (!ret || (n_groups > 0 && !groups))
                return -EINVAL;
        for (size_t i = 0; i < n_groups; i++) {
                bool seen = false;

                for (size_t k = 0; k < i && !seen; k++)
                        seen = groups[k].id == groups[i].id;
                if (seen)
                        continue;
                in.n_devices += groups[i].n_devices;
        }
        r = memlock_limit(&in, ret);
        if (r >= 0 && ret_input)
                *ret_input = in;
        return r;
}

int memlock_parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = {
                { "", 0 }, { "B", 0 },
                { "K", 10 }, { "KiB", 10 }, { "M", 20 }, { "MiB", 20 },
                { "G", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 },
        };
        uint64_t v = 0;
        const char *p = s;

        if (!s || !ret || *s < '0' || *s > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (mul_u64(v, 10, &v) < 0 || add_u64(v, (uint64_t) (*p - '0'), &v) < 0)
                        return -ERANGE;
        }
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
                if (strcmp(p, units[i].suffix) != 0)
                        continue;
                if (units[i].shift > 0 && v > (UINT64_MAX >> units[i].shift))
                        return -ERANGE;
                *ret = v << units[i].shift;
                return 0;
        }
        return -EINVAL;
}

const char *memlock_format_size(uint64_t bytes, char *buf, size_t size) {
        static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        unsigned i = 0;
        uint64_t whole = bytes, rem = 0;

        while (whole >= 1024 && i + 1 < sizeof names / sizeof names[0]) {
                rem = whole % 1024;
                whole /= 1024;
                i++;
        }
        if (i == 0 || rem == 0)
                (void) snprintf(buf, size, "%llu %s", (unsigned long long) whole, names[i]);
        else
                (void) snprintf(buf, size, "%llu.%llu %s", (unsigned long long) whole,
                                (unsigned long long) (rem * 10 / 1024), names[i]);
        return buf;
}
