/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libdbus-1 on the daemon's sd-event loop, with no second loop and no thread:
 *
 *   watches   → one sd-event io source per fd. libdbus may add two watches on one fd (one for reading,
 *               one for writing), and epoll takes an fd once, so the watches of an fd share one source
 *               whose events are the union of the enabled watches' flags.
 *   timeouts  → a CLOCK_MONOTONIC time source each, re-armed after it fires (libdbus timeouts repeat
 *               until removed).
 *   dispatch  → a defer source, enabled while the dispatch status is DATA_REMAINS. */

#include <dbus/dbus.h>
#include <systemd/sd-event.h>

typedef struct BusGlue BusGlue;

/* Attaches c to e. The connection must outlive the glue: free the glue before the last unref of c. */
int bus_glue_attach(DBusConnection *c, sd_event *e, BusGlue **ret);
BusGlue *bus_glue_free(BusGlue *g);
