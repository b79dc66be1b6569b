/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "ratelimit.h"

bool ratelimit_below(RateLimit *rl, uint64_t now_usec, unsigned *ret_suppressed) {
        assert(rl);
        assert(rl->burst > 0);

        if (rl->begin_usec == 0 || now_usec - rl->begin_usec >= rl->interval_usec) {
                rl->begin_usec = now_usec ?: 1;
                rl->n = 0;
        }
        if (rl->n >= rl->burst) {
                if (rl->suppressed < UINT32_MAX)
                        rl->suppressed++;
                return false;
        }
        rl->n++;
        if (ret_suppressed)
                *ret_suppressed = ratelimit_take_suppressed(rl);
        return true;
}

unsigned ratelimit_take_suppressed(RateLimit *rl) {
        unsigned n;

        assert(rl);
        n = rl->suppressed;
        rl->suppressed = 0;
        return n;
}
