/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who a caller is: the bus's GetConnectionCredentials, asked once per unique name. */

#include "bus-internal.h"

/* Identifies r's sender (from the cache, or by asking the bus), then goes on with request_authorize().
 * Either way r is answered and freed in the end. */
void request_start(Request *r);
/* Forgets a unique name that left the bus. */
void caller_cache_drop(Bus *b, const char *name);
void caller_cache_clear(Bus *b);
