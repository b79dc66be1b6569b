/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* A hexadecimal number, with or without "0x", all of s, at most max: sysfs attributes ("0x8086"),
 * reserved regions, topology files. -EINVAL for anything else (an empty string, a sign, trailing text). */
int parse_hex_u64(const char *s, uint64_t max, uint64_t *ret);

#include <stdbool.h>
#include <stddef.h>

/* Exactly len lowercase hexadecimal characters and nothing after them: a lease token's form, for the
 * codec and the daemon's core alike. */
bool is_lower_hex_string(const char *s, size_t len);
