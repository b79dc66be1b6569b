/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The native edge: an AF_UNIX SOCK_SEQPACKET socket speaking proto/PROTOCOL.md. It identifies callers
 * with SO_PEERCRED / SO_PEERGROUPS, turns requests into manager calls and the manager's answers and events
 * into packets, with fds attached to the packet they belong to. Bad input gets an error reply; a client
 * that keeps sending garbage is disconnected with one log line. */

#include <systemd/sd-event.h>

#include "manager.h"

typedef struct Server Server;

/* Whether path may be listened on: 0 if nothing is there, 1 if a stale socket is (nobody listens),
 * -EEXIST if something that is not a socket is there (never removed), -EADDRINUSE if a live server
 * answers there. */
int server_check_path(const char *path);
/* Creates the listening socket at path (a stale socket is replaced; nothing else ever is), mode 0666:
 * the policy decides who may do what, not the file mode. Fails as server_check_path() does. */
int server_listen_path(const char *path, int *ret_fd);

int server_new(sd_event *e, Manager *m, int listen_fd, Server **ret); /* takes listen_fd */
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

/* How long a new connection has to send its first well-formed message (HELLO) before it is closed. */
void server_set_hello_timeout(Server *s, uint64_t usec);
void server_stop_accepting(Server *s);
size_t server_n_clients(Server *s);
