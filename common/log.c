/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>

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

        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        /* One write per line (stderr is unbuffered): a line is never interleaved, and costs one syscall. */
        char prio[8] = "";
        if (show_priority)
                (void) snprintf(prio, sizeof prio, "<%i>", level & LOG_PRIMASK);
        (void) fprintf(stderr, "%s%s%s%s\n", prio, strempty(log_prefix), log_prefix ? ": " : "", buf);
        return -abs(error);
}
