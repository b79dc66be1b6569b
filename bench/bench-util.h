/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the benchmark programs share: a monotonic clock and the median/p99 report in bench/run.sh's CSV
 * form ("NAME_median,us,X", "NAME_p99,us,X", "NAME_samples,count,N"). Header only: each benchmark is one
 * small program. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t bench_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static inline int bench_cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Sorts the samples (ns) and prints their median and p99 in µs. */
static inline void bench_report(const char *name, uint64_t *s, size_t n) {
        if (n == 0)
                return;
        qsort(s, n, sizeof *s, bench_cmp_u64);
        size_t p99 = (n * 99 + 99) / 100;
        printf("%s_median,us,%.1f\n", name, (double) s[n / 2] / 1000.0);
        printf("%s_p99,us,%.1f\n", name, (double) s[(p99 ? p99 : 1) - 1] / 1000.0);
        printf("%s_samples,count,%zu\n", name, n);
}
