/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "text-util.h"

void text_append(char *buf, size_t size, const char *fmt, ...) {
        size_t off = strlen(buf);
        va_list ap;

        if (size == 0 || off >= size - 1)
                return;
        if (off > 0 && off < size - 2) {
                buf[off++] = ',';
                buf[off++] = ' ';
                buf[off] = 0;
        }
        va_start(ap, fmt);
        (void) vsnprintf(buf + off, size - off, fmt, ap);
        va_end(ap);
}
