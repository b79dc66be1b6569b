/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The D-Bus edge: org.groupd1 on the system bus, the API of proto/org.groupd1.xml. Like the native server
 * it turns requests into manager calls and the manager's answers and events into replies and signals; it
 * identifies callers with the bus's GetConnectionCredentials and authorizes them with polkit
 * (CheckAuthorization, asynchronously: the request waits, the loop does not). libdbus-1 runs on the
 * daemon's sd-event loop (bus-glue.c). */

#include <systemd/sd-event.h>

#include "bus-error.h"
#include "manager.h"

#define BUS_NAME "org.groupd1"
#define BUS_PATH "/org/groupd1"

typedef struct Bus Bus;

/* Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, as libdbus reads it) and requests BUS_NAME.
 * -ENOENT / -ECONNREFUSED and the like when there is no bus; -EEXIST when another owns the name. */
int bus_new(sd_event *e, Manager *m, Bus **ret);
Bus *bus_free(Bus *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Bus *, bus_free);

/* Refuses new method calls (groupd is stopping) without dropping the connection, so that LeaseEnded
 * signals of the shutdown still go out. */
void bus_stop_accepting(Bus *b);
