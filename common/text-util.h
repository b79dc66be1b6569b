/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "macro.h"

/* Appends to a NUL-terminated list in buf, ", " between items; silently truncates at size. */
void text_append(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
