/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of the service manager's protocol (systemd's sd_notify and socket activation):
 *
 *   - at start, the fds passed in (LISTEN_FDS, LISTEN_FDNAMES): the listening socket, and the fds of the
 *     fd store, which go back to the manager by name (manager_offer_stored_fd());
 *   - the fd store: FDSTORE=1 with FDNAME= for each fd the manager wants kept across a restart, and
 *     FDSTOREREMOVE=1 with FDNAME= when it lets go of them;
 *   - READY=1 and STATUS= lines with the lease count. (WATCHDOG=1 comes from sd-event itself,
 *     sd_event_set_watchdog().)
 *
 * All of it talks to $NOTIFY_SOCKET; without one (not run by a service manager) it does nothing. */

#include "manager.h"

/* Takes the fds passed in: the listening socket (a SOCK_SEQPACKET unix socket that listens; -EBADF in
 * *ret_listen_fd when none came) and the stored fds, offered to m. Call before manager_start(). */
int service_take_fds(Manager *m, int *ret_listen_fd);

/* Starts using the fd store (when $NOTIFY_SOCKET is set, unless $FDSTORE is "0") and sending STATUS=
 * lines on lease events. Call before manager_start(), so that recovered leases are stored too. */
int service_attach(Manager *m);

/* Drops a STATUS= line still owed (the rate limit's timer). Call before freeing the manager. */
void service_detach(void);
/* READY=1 with a STATUS= line. */
void service_notify_ready(Manager *m);
