/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small helpers shared by the daemon, the client library and the tests:
 * cleanup attributes, ownership transfer, array sizes. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _pure_ __attribute__((pure))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                                 \
        ({                                          \
                __typeof__(p) _tp_ = (p);           \
                (p) = NULL;                         \
                _tp_;                               \
        })

#define TAKE_FD(fd)                                 \
        ({                                          \
                int _tf_ = (fd);                    \
                (fd) = -EBADF;                      \
                _tf_;                               \
        })

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes fd if valid, keeps errno, returns -EBADF so that "fd = safe_close(fd);" resets the field. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void close_many(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

static inline const char *strempty(const char *s) {
        return s ?: "";
}
static inline const char *strna(const char *s) {
        return s && *s ? s : "n/a";
}
static inline bool isempty(const char *s) {
        return !s || !*s;
}

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)      \
        static inline void func##p(type *p) {        \
                if (*p)                              \
                        *p = func(*p);               \
        }

/* Negative errno from a return value that may be -1 with errno set. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* If s begins with prefix, returns what follows it, else NULL. */
static inline const char *startswith_word(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

/* An enum's string table: NAME_to_string() (NULL when out of range) and NAME_from_string() (-EINVAL when
 * unknown), as systemd's DEFINE_STRING_TABLE_LOOKUP. The table is indexed by the enum's values. */
#define DEFINE_STRING_TABLE_LOOKUP(name, type, table)                                   \
        const char *name##_to_string(type i) {                                          \
                if ((int) i < 0 || (size_t) i >= ELEMENTSOF(table))                     \
                        return NULL;                                                    \
                return table[i];                                                        \
        }                                                                               \
        type name##_from_string(const char *s) {                                        \
                if (!s)                                                                 \
                        return (type) -EINVAL;                                          \
                for (size_t _i_ = 0; _i_ < ELEMENTSOF(table); _i_++)                    \
                        if (table[_i_] && streq(table[_i_], s))                         \
                                return (type) _i_;                                      \
                return (type) -EINVAL;                                                  \
        }

/* CLOCK_MONOTONIC now plus ms: the deadline of a pthread_cond_timedwait() on a condition variable whose
 * clock was set to CLOCK_MONOTONIC. */
static inline struct timespec monotonic_after_ms(unsigned ms) {
        struct timespec t;

        (void) clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += ms / 1000;
        t.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000L;
        }
        return t;
}
