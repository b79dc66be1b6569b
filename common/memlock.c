/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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

int memlock_limit(const MemlockInput *in, uint64_t *ret) {
        uint64_t factor, v;
        int r;

        if (!in || !ret || in->guest_ram == 0)
                return -EINVAL;
        if (in->viommu && in->n_devices == 0)
                return -EINVAL;

        factor = in->viommu ? in->n_devices : 1;
        r = mul_u64(factor, in->guest_ram, &v);
        if (r >= 0)
                r = add_u64(v, MEMLOCK_EXTRA_BYTES, &v);
        if (r >= 0)
                r = add_u64(v, in->spapr_dma32_window, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int memlock_limit_for_groups(uint64_t guest_ram, bool viommu, const MemlockGroup *groups, size_t n_groups,
                             uint64_t *ret, MemlockInput *ret_input) {
        MemlockInput in = { .guest_ram = guest_ram, .viommu = viommu };
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
                if (groups[i].spapr_dma32_window > in.spapr_dma32_window)
                        in.spapr_dma32_window = groups[i].spapr_dma32_window;
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
