/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who a caller is: the bus's GetConnectionCredentials, asked once per unique name. */

#include "bus-internal.h"

#define CALLER_CACHE_MAX 1024

struct CallerCache {
        char *name;
        Caller caller;   /* uid, gid, pid, gids */
        CallerCache *next;
};

/* Identifies r's sender (from the cache, or by asking the bus), then continues with request_continue(). */
void request_start(Request *r);
void caller_cache_drop(Bus *b, const char *name);
