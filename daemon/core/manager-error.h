/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How the core says no: a kind, the errno behind it, and a sentence for the person who asked. */

#include "macro.h"

#define MANAGER_TEXT_MAX 1024u      /* error messages, details, notes */

/* What kind of failure a refusal is. The values are the native protocol's error codes (checked by the
 * wire-view), so that an edge can map them by value; the core never sees the wire's enum. */
typedef enum ManagerErrorCode {
        MANAGER_ERROR_INVALID = 3,          /* a bad argument: spec, flags, label */
        MANAGER_ERROR_NOT_FOUND = 4,        /* no such group, device or lease */
        MANAGER_ERROR_BUSY = 5,             /* leased, or being acquired or released */
        MANAGER_ERROR_DENIED = 6,           /* policy refuses it */
        MANAGER_ERROR_NOT_VIABLE = 7,       /* the group cannot be made viable */
        MANAGER_ERROR_HOST = 8,             /* a kernel (host) operation failed */
        MANAGER_ERROR_LIMIT = 9,            /* too many of something */
        MANAGER_ERROR_BAD_TOKEN = 10,       /* no lease has this token */
        MANAGER_ERROR_INTERNAL = 11,
        MANAGER_ERROR_SHUTTING_DOWN = 12,
} ManagerErrorCode;

typedef struct ManagerError {
        ManagerErrorCode code;
        int errno_value;             /* positive, or 0 */
        char message[MANAGER_TEXT_MAX];
} ManagerError;

/* Fills *err (if err is not NULL). errno_value may be negative or positive. */
void manager_error(ManagerError *err, ManagerErrorCode code, int errno_value, const char *fmt, ...)
        _printf_(4, 5);
