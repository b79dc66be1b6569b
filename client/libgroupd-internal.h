/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What libgroupd's files share: the connection and how a call fails. libgroupd.c is the protocol's
 * client; libgroupd-kvm.c registers a lease's groups with a VM's kvm-vfio device in this process. Nothing
 * here is exported (client/libgroupd.sym exports gd_* only). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "groupd-client.h"
#include "macro.h"

#define EVENT_QUEUE_MAX 4096u

struct GdClient {
        int fd;
        uint32_t serial;

        int error_code;                         /* GdError of the last failed call, 0 if none */
        char error_message[GD_TEXT_MAX + 1];
        bool error_from_daemon;                 /* the last failure was an ERROR the daemon sent */
        bool no_delivery;                       /* the daemon predates the delivery modes (it called the
                                                 * DELIVERY flag malformed): ask it as protocol 1 did */

        char host[GD_NAME_MAX + 1];
        char daemon_version[GD_NAME_MAX + 1];

        GdEvent *events;                        /* queued events, [events_head, n_events) */
        size_t events_head, n_events, events_allocated;

        uint8_t *buf;                           /* GD_MSG_SIZE_MAX */
};

/* Forgets the last error, at the start of a call. */
void client_clear_error(GdClient *c);
/* Records a failure (r negative errno, code a GdError) with a message, and returns r. */
int client_fail(GdClient *c, int r, int code, const char *fmt, ...) _printf_(4, 5);
