/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Lease tokens: 128 random bits from the kernel's RNG, as 32 lowercase hex characters. Whoever holds a
 * token may act on its lease, so tokens are compared in constant time and never logged: logs and the
 * public lease id use a separate random id. */

#include <stdbool.h>

#define TOKEN_LEN 32        /* 128 bits as lowercase hex */
#define LEASE_ID_LEN 12

int token_generate(char ret[TOKEN_LEN + 1]);
int lease_id_generate(char ret[LEASE_ID_LEN + 1]);

/* Constant-time comparison of two tokens (time independent of where they differ). False if either is
 * not a valid token. */
bool token_equal(const char *a, const char *b);
/* Exactly TOKEN_LEN lowercase hex characters. */
bool token_is_valid(const char *s);
