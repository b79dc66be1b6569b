/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the native server's files share: its bounds, its clients and their queues. server.c accepts and
 * admits connections, bounds them and fans events out; server-send.c queues and sends a client's
 * packets (hand-overs retried, events bounded); server-request.c reads a client's requests and answers
 * them. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "ratelimit.h"
#include "server.h"
#include "wire-view.h"

/* Every per-client resource has a bound (issue 11), and running out of one never makes the loop spin. */
#define CLIENTS_MAX 4096                  /* connections at once, if the fd limit allows ... */
#define FDS_RESERVE 256                   /* ... with this many fds (or 3/4 of a low limit) kept for leases
                                           * and the host (reading a group takes dozens for a moment) */
#define CLIENTS_ROOT_RESERVE 64           /* the last connections are root's only (a quarter of them with
                                           * a low fd limit) */
#define CLIENTS_PER_UID_MAX 128           /* connections of one non-root uid */
#define HELLO_TIMEOUT_USEC (5 * USEC_PER_SEC)   /* a new connection's first well-formed message */
#define PROTOCOL_ERRORS_MAX 8
#define UNEXPECTED_FDS_MAX GD_FDS_PER_MSG_MAX   /* fds a client may send that no request wanted */
#define QUEUE_PACKETS_MAX 4096            /* replies queued for one client (it stops being read at
                                           * REPLY_BACKLOG_MAX, so only a split list gets near) */
#define REPLY_BACKLOG_MAX 64              /* a client's requests are not read while this many packets
                                           * wait for it to read them */
#define CLIENT_EVENTS_MAX 1024            /* events queued for one subscriber */
#define EVENT_BYTES_MAX (8u << 20)        /* memory of events queued for all subscribers together */
#define LISTEN_BACKLOG 256                /* connections not yet accepted: each may hold a queue of fds in
                                           * flight, so not SOMAXCONN's thousands */
#define ACCEPT_BATCH 32                   /* accepts per wake-up: a crowd of refused connects is drained
                                           * without a loop iteration each */
#define TARPIT_MAX 1024                   /* refused connections held before their refusal is sent ... */
#define TARPIT_USEC (1 * USEC_PER_SEC)    /* ... this long, so that a reconnect loop runs at this pace */
#define CLIENT_EVENTS_BATCH 64            /* client wake-ups handled per dispatch of the clients' epoll */
#define UID_SLOTS 8192                    /* per-uid connection counts: open addressing, > CLIENTS_MAX */
#define ACCEPT_PAUSE_USEC (100 * USEC_PER_MSEC) /* out of fds: stop accepting this long */
#define HANDOVER_RETRY_USEC (50 * USEC_PER_MSEC)  /* ETOOMANYREFS: retry a send this often ... */
#define HANDOVER_RETRY_MAX_USEC (30 * USEC_PER_SEC) /* ... for this long */
#define LOG_CLIENT_INTERVAL_USEC (10 * USEC_PER_SEC)
#define LOG_CLIENT_BURST 5                /* lines per client per interval */
#define LOG_SERVER_BURST 20               /* client lines for all clients together per interval */

#ifndef USEC_PER_SEC
#define USEC_PER_SEC 1000000ULL
#endif
#ifndef USEC_PER_MSEC
#define USEC_PER_MSEC 1000ULL
#endif

typedef struct Packet Packet;
struct Packet {
        uint8_t *data;
        size_t len;
        int fds[GD_FDS_PER_MSG_MAX];
        size_t n_fds;
        bool event;          /* an event (may be dropped), not a reply */
        Packet *next;
};

/* What a queued packet costs in memory, about: its bytes, its record, malloc's overhead for both. */
#define PACKET_COST(len) ((len) + sizeof(Packet) + 32)

typedef struct Client Client;
struct Client {
        Server *server;
        uint64_t id;
        int fd;
        uint32_t io_events;              /* what the clients' epoll waits for on fd */
        Caller caller;
        bool subscribed;
        uint32_t event_mask;
        unsigned protocol_errors;
        unsigned unexpected_fds;
        bool greeted;                    /* a well-formed message came: the HELLO deadline is off */
        sd_event_source *hello_timer;
        Packet *queue_head, *queue_tail;
        size_t queue_len;
        size_t queue_events, queue_event_bytes;
        sd_event_source *retry_timer;    /* a send failed with ETOOMANYREFS: retry then */
        uint64_t retry_since;
        RateLimit log_rl;
        Client *prev, *next;
};

struct Server {
        sd_event *event;
        Manager *manager;
        int listen_fd;
        sd_event_source *listen_source;
        /* The clients' fds live in an epoll of their own, one source for sd-event: with thousands of
         * connections ready at once (a crowd hanging up), sd-event would dispatch one source per loop
         * iteration and re-read every ready fd each time (quadratic); this epoll hands them out one by
         * one, round robin, CLIENT_EVENTS_BATCH per dispatch. */
        int clients_epoll;
        sd_event_source *clients_source;
        Client *clients;
        size_t n_clients;
        uint64_t next_client_id;
        uint64_t hello_timeout_usec;
        size_t clients_max;              /* CLIENTS_MAX, or less for a low fd limit */
        struct { uid_t uid; uint32_t n; } uids[UID_SLOTS]; /* connections per uid (n 0: free slot) */
        size_t root_reserve;
        struct { int fd; uint64_t until; char why[128]; } tarpit[TARPIT_MAX]; /* a ring, oldest first */
        size_t tarpit_first, tarpit_n, tarpit_max;
        sd_event_source *tarpit_timer;
        sd_event_source *accept_timer;   /* out of fds: accepting again then */
        unsigned accept_pauses;          /* in the current episode; 0: none */
        size_t queued_event_bytes;       /* over all clients */
        RateLimit log_rl;                /* client lines over all clients */
        uint8_t buf[GD_MSG_SIZE_MAX + 1];
};

uint64_t now_mono(void);
void client_log(Server *s, Client *c, int level, const char *fmt, ...) _printf_(4, 5);
void packet_free(Packet *p);
size_t uid_slot(Server *s, uid_t uid);
void uid_count_add(Server *s, uid_t uid);
void uid_count_remove(Server *s, uid_t uid);
Client *client_free(Client *c);
void client_disconnect(Client *c);
Client *server_find_client(Server *s, uint64_t id);
int client_update_io(Client *c);
void client_unqueue(Client *c, Packet *p, Packet *prev);
int on_retry_timer(sd_event_source *src, uint64_t usec, void *userdata);
int client_retry_later(Client *c);
int client_flush(Client *c);
int client_send(Client *c, const GdMsg *m, const int *fds, size_t n_fds);
int client_drop_events(Client *c, const char *why);
void server_bound_events(Server *s);
int client_send_error(Client *c, uint32_t serial, GdError code, int errno_value, const char *message);
int client_send_manager_error(Client *c, uint32_t serial, const ManagerError *e);
int client_send_ok(Client *c, uint32_t serial);
int client_send_list_part(Client *c, uint32_t serial, GdMsgType type, void *items, size_t n, bool more_after);
int client_send_list(Client *c, uint32_t serial, GdMsgType type, void *items, size_t n);
int client_send_groups_part(Client *c, uint32_t serial, const GroupView *views, size_t n, bool more_after);
int client_send_groups(Client *c, uint32_t serial, const GroupView *views, size_t n);
int client_send_all_groups(Client *c, uint32_t serial);
int client_send_leases(Client *c, uint32_t serial);
int on_acquire_done(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata);
int client_handle(Client *c, GdMsg *m, int *fds, size_t n_fds);
uint32_t peek_serial(const uint8_t *buf, size_t len);
int client_protocol_error(Client *c, uint32_t serial, GdError code, int errno_value, const char *msg);
int client_read_one(Client *c);
int on_client_io(Client *c, uint32_t revents);
int on_clients_ready(sd_event_source *src, int fd, uint32_t revents, void *userdata);
