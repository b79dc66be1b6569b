/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* systemd's log rate limiting: at most burst events per interval; what is over the limit is counted, and
 * the first event let through after a suppression learns how many were held back, so that the log says
 * "suppressed N messages" once instead of N lines. Pure bookkeeping on CLOCK_MONOTONIC: no logging here. */

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin_usec;     /* start of the current interval */
        unsigned n;              /* events let through in it */
        unsigned suppressed;     /* events held back since the last one let through */
} RateLimit;

#define RATELIMIT_INIT(interval, b) ((RateLimit) { .interval_usec = (interval), .burst = (b) })

/* True if one more event may go now (at now_usec). *ret_suppressed (may be NULL) gets the number held
 * back since the last event let through, and the count restarts; false counts one more held back. */
bool ratelimit_below(RateLimit *rl, uint64_t now_usec, unsigned *ret_suppressed);
/* Takes the count of held-back events (e.g. to say so when the object goes away). */
unsigned ratelimit_take_suppressed(RateLimit *rl);
