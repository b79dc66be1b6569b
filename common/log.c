/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *log_prefix = NULL;
static bool show_priority = true;

void log_set_show_priority(bool b) {
        show_priority = b;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_prefix(const char *prefix) {
        log_prefix = prefix;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        va_list ap;

        (void) file;
        (void) line;
        (void) func;

        if (error != 0)
                errno = abs(error);

        /* One write per line, assembled here: never interleaved with another thread's line, one syscall,
         * and none of stdio's per-character work on the unbuffered stderr. */
        int saved_errno = errno;
        size_t n;

        buf[0] = 0;
        if (show_priority)
                (void) snprintf(buf, sizeof buf, "<%i>", level & LOG_PRIMASK);
        n = strlen(buf);
        if (log_prefix)
                (void) snprintf(buf + n, sizeof buf - n, "%s: ", log_prefix);
        n = strlen(buf);
        errno = saved_errno; /* for %m */
        va_start(ap, format);
        (void) vsnprintf(buf + n, sizeof buf - n, format, ap);
        va_end(ap);
        n = strnlen(buf, sizeof buf - 1);
        buf[n++] = '\n';
        (void) !write(STDERR_FILENO, buf, n);
        return -abs(error);
}
