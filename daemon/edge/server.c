/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-login.h>

#include "fd-util.h"
#include "log.h"
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

static uint64_t now_mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* A line about what a client did: at most LOG_CLIENT_BURST per client and LOG_SERVER_BURST for all
 * clients per interval; the first line let through after some were held back says how many (c NULL: a
 * connection not yet a client, counted against the server's limit only). */
static void client_log(Server *s, Client *c, int level, const char *fmt, ...) _printf_(4, 5);
static void client_log(Server *s, Client *c, int level, const char *fmt, ...) {
        uint64_t now = now_mono();
        unsigned held_c = 0, held_s = 0;
        char line[512];
        va_list ap;

        if (level > log_get_max_level())
                return;
        if (c && !ratelimit_below(&c->log_rl, now, &held_c))
                return;
        if (!ratelimit_below(&s->log_rl, now, &held_s)) {
                if (c) {  /* counted once, by the server's limit */
                        c->log_rl.n--;
                        c->log_rl.suppressed += held_c;
                }
                return;
        }
        va_start(ap, fmt);
        (void) vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (held_c + held_s > 0)
                log_full(level, "%s (suppressed %u similar message(s) before this one)", line, held_c + held_s);
        else
                log_full(level, "%s", line);
}

/* What a queued packet costs in memory, about: its bytes, its record, malloc's overhead for both. */
#define PACKET_COST(len) ((len) + sizeof(Packet) + 32)

static void packet_free(Packet *p) {
        close_many(p->fds, p->n_fds);
        free(p->data);
        free(p);
}

/* The slot of uid in s->uids: where it is, or the free slot where it would go. Linear probing; removal
 * shifts back (no tombstones), so a probe stops at the first free slot. */
static size_t uid_slot(Server *s, uid_t uid) {
        size_t i = ((size_t) uid * 2654435761u) % UID_SLOTS;

        while (s->uids[i].n > 0 && s->uids[i].uid != uid)
                i = (i + 1) % UID_SLOTS;
        return i;
}

static void uid_count_add(Server *s, uid_t uid) {
        size_t i = uid_slot(s, uid);

        s->uids[i].uid = uid;
        s->uids[i].n++;
}

static void uid_count_remove(Server *s, uid_t uid) {
        size_t i = uid_slot(s, uid), j = i;

        assert(s->uids[i].n > 0);
        if (--s->uids[i].n > 0)
                return;
        /* Backward shift: move up every following entry whose home is not between the hole and it. */
        for (;;) {
                size_t home;

                j = (j + 1) % UID_SLOTS;
                if (s->uids[j].n == 0)
                        return;
                home = ((size_t) s->uids[j].uid * 2654435761u) % UID_SLOTS;
                if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
                        s->uids[i] = s->uids[j];
                        s->uids[j].n = 0;
                        i = j;
                }
        }
}

static Client *client_free(Client *c) {
        Server *s;

        if (!c)
                return NULL;
        s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_clients--;
        uid_count_remove(s, c->caller.uid);

        while (c->queue_head) {
                Packet *p = c->queue_head;
                c->queue_head = p->next;
                packet_free(p);
        }
        s->queued_event_bytes -= c->queue_event_bytes;
        if (c->log_rl.suppressed > 0)
                client_log(s, NULL, LOG_NOTICE, "Client %" PRIu64 " (uid %u) gone; %u message(s) about it were "
                           "suppressed.", c->id, (unsigned) c->caller.uid, ratelimit_take_suppressed(&c->log_rl));
        sd_event_source_disable_unref(c->hello_timer);
        sd_event_source_disable_unref(c->retry_timer);
        if (c->fd >= 0)
                (void) epoll_ctl(s->clients_epoll, EPOLL_CTL_DEL, c->fd, NULL);
        safe_close(c->fd);
        free(c);
        return NULL;
}

static void client_disconnect(Client *c) {
        Server *s = c->server;
        uint64_t id = c->id;

        client_free(c);
        /* After the client is gone, so that nothing is sent to it from the manager's callbacks. */
        manager_connection_closed(s->manager, id);
}

static Client *server_find_client(Server *s, uint64_t id) {
        for (Client *c = s->clients; c; c = c->next)
                if (c->id == id)
                        return c;
        return NULL;
}

size_t server_n_clients(Server *s) {
        return s->n_clients;
}

/* ---------------------------------------------------------------- sending */

/* What to wait for: EPOLLOUT while packets wait (unless a retry timer runs); EPOLLIN unless so many
 * packets wait that the client plainly does not read its replies (it is read again once they go). */
static int client_update_io(Client *c) {
        uint32_t events = 0;

        if (c->queue_len < REPLY_BACKLOG_MAX)
                events |= EPOLLIN;
        if (c->queue_head && !c->retry_timer)
                events |= EPOLLOUT;
        if (events == c->io_events)
                return 0;
        struct epoll_event ev = { .events = events, .data.ptr = c };
        if (epoll_ctl(c->server->clients_epoll, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                return -errno;
        c->io_events = events;
        return 0;
}

static void client_unqueue(Client *c, Packet *p, Packet *prev) {
        if (prev)
                prev->next = p->next;
        else
                c->queue_head = p->next;
        if (c->queue_tail == p)
                c->queue_tail = prev;
        c->queue_len--;
        if (p->event) {
                c->queue_events--;
                c->queue_event_bytes -= PACKET_COST(p->len);
                c->server->queued_event_bytes -= PACKET_COST(p->len);
        }
        packet_free(p);
}

static int client_flush(Client *c);

static int on_retry_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Client *c = userdata;
        int r;

        c->retry_timer = sd_event_source_disable_unref(c->retry_timer);
        r = client_flush(c);
        if (r < 0) {
                uint64_t id = c->id;
                Server *s = c->server;

                log_warning("Dropping client %" PRIu64 " (uid %u): could not hand it its fds for %llu s (%s).", id,
                            (unsigned) c->caller.uid, (unsigned long long) (HANDOVER_RETRY_MAX_USEC / USEC_PER_SEC),
                            strerror(-r));
                client_free(c);
                manager_connection_closed(s->manager, id);
        }
        return 0;
}

/* The kernel refused to put more fds in flight for our uid (ETOOMANYREFS: every sender of our uid shares
 * one count unless it has CAP_SYS_RESOURCE; another client's fd flood can fill it). That is someone
 * else's doing and passes once they are read: keep the packet and try again shortly, for a while. */
static int client_retry_later(Client *c) {
        uint64_t now = now_mono();
        int r;

        if (c->retry_since == 0) {
                c->retry_since = now;
                /* Once per episode and client, and never lost in a flood's rate limit: this is the victim. */
                log_warning("Hand-over to client %" PRIu64 " (uid %u) delayed: the kernel refuses more fds in "
                            "flight for groupd's uid (ETOOMANYREFS: another process of that uid has too many "
                            "queued, and groupd lacks CAP_SYS_RESOURCE); retrying every %llu ms for up to %llu s.",
                            c->id, (unsigned) c->caller.uid,
                            (unsigned long long) (HANDOVER_RETRY_USEC / USEC_PER_MSEC),
                            (unsigned long long) (HANDOVER_RETRY_MAX_USEC / USEC_PER_SEC));
        } else if (now - c->retry_since > HANDOVER_RETRY_MAX_USEC)
                return -ETOOMANYREFS;
        if (!c->retry_timer) {
                r = sd_event_add_time_relative(c->server->event, &c->retry_timer, CLOCK_MONOTONIC,
                                               HANDOVER_RETRY_USEC, 0, on_retry_timer, c);
                if (r < 0)
                        return r;
        }
        return client_update_io(c);
}

static int client_flush(Client *c) {
        while (c->queue_head) {
                Packet *p = c->queue_head;
                int r = fd_send_msg(c->fd, p->data, p->len, p->fds, p->n_fds);
                if (r == -EAGAIN)
                        break;
                if (r == -ETOOMANYREFS)
                        return client_retry_later(c);
                if (r < 0)
                        return r;
                c->retry_since = 0;
                client_unqueue(c, p, NULL);
        }
        return client_update_io(c);
}

static void server_bound_events(Server *s);

/* Sends m with fds (borrowed). If the socket is full (or the kernel refuses more fds in flight for now)
 * the packet is queued with copies of the fds. */
static int client_send(Client *c, const GdMsg *m, const int *fds, size_t n_fds) {
        bool event = m->type == GD_MSG_EVENT && m->event.kind != GD_EVENT_EVENTS_DROPPED;
        size_t len;
        Packet *p;
        int r = 0;

        r = gd_msg_encode(m, c->server->buf, sizeof c->server->buf, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to encode %s reply: %m", strna(gd_msg_type_to_string(m->type)));

        if (!c->queue_head) {
                r = fd_send_msg(c->fd, c->server->buf, len, fds, n_fds);
                if (r != -EAGAIN && r != -ETOOMANYREFS)
                        return r;
        }

        if (!event && c->queue_len >= QUEUE_PACKETS_MAX)
                return -ENOBUFS;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->data = malloc(len);
        if (!p->data) {
                free(p);
                return -ENOMEM;
        }
        memcpy(p->data, c->server->buf, len);
        p->len = len;
        for (size_t i = 0; i < n_fds; i++) {
                p->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                if (p->fds[i] < 0) {
                        r = -errno;
                        p->n_fds = i;
                        packet_free(p);
                        return r;
                }
        }
        p->n_fds = n_fds;
        p->event = event;
        if (c->queue_tail)
                c->queue_tail->next = p;
        else
                c->queue_head = p;
        c->queue_tail = p;
        c->queue_len++;
        if (event) {
                c->queue_events++;
                c->queue_event_bytes += PACKET_COST(len);
                c->server->queued_event_bytes += PACKET_COST(len);
        }
        if (r == -ETOOMANYREFS)
                return client_retry_later(c);
        return client_update_io(c);
}

/* c fell too far behind its events: forget what is queued for it, end its subscription, and tell it so
 * with one last event (its replies, and their fds, stay queued; its connection, and leases it owns, stay). */
static int client_drop_events(Client *c, const char *why) {
        size_t dropped = c->queue_events;
        Packet *prev = NULL, *next;
        char detail[256];

        for (Packet *p = c->queue_head; p; p = next) {
                next = p->next;
                if (p->event)
                        client_unqueue(c, p, prev);
                else
                        prev = p;
        }
        c->subscribed = false;
        client_log(c->server, c, LOG_WARNING, "Subscriber %" PRIu64 " (uid %u, pid %i) does not read its events "
                   "(%s): dropped %zu queued event(s) and ended its subscription.", c->id,
                   (unsigned) c->caller.uid, (int) c->caller.pid, why, dropped);

        (void) snprintf(detail, sizeof detail, "groupd dropped %zu queued event(s) and ended this subscription: "
                        "%s. SUBSCRIBE again and LIST_LEASES to catch up", dropped, why);
        GdMsg m = {
                .type = GD_MSG_EVENT,
                .event = {
                        .kind = GD_EVENT_EVENTS_DROPPED,
                        .errno_value = ENOBUFS,
                        .detail = detail,
                        .lease = { .id = (char *) "", .label = (char *) "" },
                },
        };
        return client_send(c, &m, NULL, 0);
}

/* All subscribers together may have EVENT_BYTES_MAX of events queued: past that the slowest (the one
 * with the most queued) is dropped, until under. */
static void server_bound_events(Server *s) {
        while (s->queued_event_bytes > EVENT_BYTES_MAX) {
                Client *slowest = NULL;

                for (Client *c = s->clients; c; c = c->next)
                        if (c->queue_event_bytes > 0 && (!slowest || c->queue_event_bytes > slowest->queue_event_bytes))
                                slowest = c;
                assert(slowest);
                (void) client_drop_events(slowest, "the daemon's queue for all subscribers is full, and it is "
                                          "the furthest behind");
        }
}

static int client_send_error(Client *c, uint32_t serial, GdError code, int errno_value, const char *message) {
        GdMsg m = {
                .type = GD_MSG_ERROR,
                .serial = serial,
                .error = { .code = code, .errno_value = abs(errno_value), .message = (char *) message },
        };
        return client_send(c, &m, NULL, 0);
}

static int client_send_manager_error(Client *c, uint32_t serial, const ManagerError *e) {
        return client_send_error(c, serial, wire_error(e->code), e->errno_value, e->message);
}

static int client_send_ok(Client *c, uint32_t serial) {
        GdMsg m = { .type = GD_MSG_OK, .serial = serial };
        return client_send(c, &m, NULL, 0);
}

/* Sends a list (GROUPS or LEASES) in as many packets as it takes, `more` set on all but the last: as many
 * items a packet as fit, halving the batch when one does not. */
static int client_send_list_part(Client *c, uint32_t serial, GdMsgType type, void *items, size_t n,
                                 bool more_after) {
        size_t at = 0, batch = type == GD_MSG_GROUPS ? 128 : 256;

        do {
                size_t k = MIN(batch, n - at), len;
                GdMsg m = { .type = type, .serial = serial };
                int r;

                if (type == GD_MSG_GROUPS)
                        m.groups = (typeof(m.groups)) { .more = at + k < n || more_after, .n_groups = (uint16_t) k,
                                                        .groups = items ? (GdGroup *) items + at : NULL };
                else
                        m.leases = (typeof(m.leases)) { .more = at + k < n || more_after, .n_leases = (uint16_t) k,
                                                        .leases = items ? (GdLease *) items + at : NULL };
                r = gd_msg_encode(&m, c->server->buf, sizeof c->server->buf, &len);
                if ((r == -EMSGSIZE || r == -ENOBUFS) && k > 1) {
                        batch = MAX(k / 2, 1u);
                        continue;
                }
                if (r < 0)
                        return r;
                r = client_send(c, &m, NULL, 0);
                if (r < 0)
                        return r;
                at += k;
        } while (at < n);
        return 0;
}


static int client_send_list(Client *c, uint32_t serial, GdMsgType type, void *items, size_t n) {
        return client_send_list_part(c, serial, type, items, n, false);
}

static int client_send_groups_part(Client *c, uint32_t serial, const GroupView *views, size_t n, bool more_after) {
        GdGroup *groups = NULL;
        int r;

        r = wire_groups(views, n, &groups);
        if (r < 0)
                return client_send_error(c, serial, GD_ERR_INTERNAL, r, "out of memory");
        r = client_send_list_part(c, serial, GD_MSG_GROUPS, groups, n, more_after);
        gd_groups_free(groups, n);
        return r;
}

static int client_send_groups(Client *c, uint32_t serial, const GroupView *views, size_t n) {
        return client_send_groups_part(c, serial, views, n, false);
}

/* Every group, LIST_BATCH_GROUPS at a time: read, made wire records, sent (or queued) and freed before the
 * next batch is read, so that a list of a big host never holds every group twice over (views and wire
 * records: 8 MiB for 4096 groups, most of which malloc kept afterwards). */
#define LIST_BATCH_GROUPS 128

static int client_send_all_groups(Client *c, uint32_t serial) {
        _cleanup_free_ unsigned *ids = NULL;
        size_t n_ids = 0, at = 0;
        int r;

        r = manager_list_group_ids(c->server->manager, &ids, &n_ids);
        if (r < 0)
                return client_send_error(c, serial, GD_ERR_HOST, r, "cannot list the IOMMU groups");
        do {
                size_t k = MIN((size_t) LIST_BATCH_GROUPS, n_ids - at), n = 0;
                GroupView *views = NULL;

                r = manager_group_views(c->server->manager, ids + at, k, &views, &n);
                if (r < 0)
                        return client_send_error(c, serial, GD_ERR_HOST, r, "cannot list the IOMMU groups");
                at += k;
                r = client_send_groups_part(c, serial, views, n, at < n_ids);
                group_views_free(views, n);
                if (r < 0)
                        return r;
        } while (at < n_ids);
        return 0;
}

static int client_send_leases(Client *c, uint32_t serial) {
        Manager *mgr = c->server->manager;
        size_t n = manager_n_leases(mgr), i = 0;
        _cleanup_free_ GdLease *all = NULL;

        if (n > 0) {
                all = calloc(n, sizeof *all);
                if (!all)
                        return -ENOMEM;
                for (Lease *l = manager_first_lease(mgr); l && i < n; l = l->next)
                        wire_lease(l, &all[i++]);
        }
        return client_send_list(c, serial, GD_MSG_LEASES, all, i);
}

/* ---------------------------------------------------------------- requests */

typedef struct AcquireCtx {
        Server *server;
        uint64_t client_id;
        uint32_t serial;
        bool delivery_block;    /* the ACQUIRE had GD_ACQUIRE_DELIVERY: so has the reply */
} AcquireCtx;

static int on_acquire_done(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata) {
        AcquireCtx *ctx = userdata;
        Client *c = server_find_client(ctx->server, ctx->client_id);
        uint32_t serial = ctx->serial;
        bool delivery_block = ctx->delivery_block;
        int fds[GD_FDS_PER_MSG_MAX], r;
        size_t n_fds = 0;

        free(ctx);
        if (!c)
                return -ECONNRESET;

        if (err) {
                r = client_send_manager_error(c, serial, err);
                if (r < 0)
                        client_disconnect(c);
                return 0;
        }

        GdMsg reply = { .type = delivery_block ? GD_MSG_ACQUIRED_DELIVERY : GD_MSG_ACQUIRED, .serial = serial };
        reply.acquired.token = l->token;
        reply.acquired.iommu_type = l->iommu_type;
        reply.acquired.memlock = l->memlock;
        wire_dma(&l->dma, &reply.acquired.dma);
        wire_lease(l, &reply.acquired.lease);

        if (delivery_block && wire_acquired_delivery(l, &reply.acquired) < 0) {
                log_oom();
                client_disconnect(c);
                return -ENOMEM;
        }
        if (l->delivery == LEASE_DELIVERY_IOMMUFD) {
                fds[n_fds++] = l->iommufd;
                for (size_t i = 0; i < l->n_devices; i++)
                        fds[n_fds++] = l->device_fds[i];
        } else if (l->delivery == LEASE_DELIVERY_LEGACY) {
                fds[n_fds++] = l->container_fd;
                for (size_t i = 0; i < l->n_groups; i++)
                        fds[n_fds++] = l->group_fds[i];
        }
        if (*lease_fd >= 0)
                fds[n_fds++] = *lease_fd;

        r = client_send(c, &reply, fds, n_fds);
        wire_acquired_delivery_done(&reply.acquired);
        if (r < 0) {
                client_log(c->server, c, LOG_WARNING, "Failed to hand lease %s to client %" PRIu64 ": %s", l->id,
                           c->id, strerror(-r));
                client_disconnect(c);
                return r;
        }
        return 0;
}

static int client_handle(Client *c, GdMsg *m, int *fds, size_t n_fds) {
        Server *s = c->server;
        ManagerError err = {};
        int r;

        switch (m->type) {
        case GD_MSG_HELLO: {
                if (m->hello.version_min > GD_PROTO_VERSION || m->hello.version_max < GD_PROTO_VERSION) {
                        char msg[128];
                        snprintf(msg, sizeof msg, "this daemon speaks protocol version %u only", GD_PROTO_VERSION);
                        return client_send_error(c, m->serial, GD_ERR_VERSION, EPROTONOSUPPORT, msg);
                }
                GdMsg reply = {
                        .type = GD_MSG_HELLO_REPLY,
                        .serial = m->serial,
                        .hello = {
                                .version_min = GD_PROTO_VERSION,
                                .version_max = GD_PROTO_VERSION,
                                .name = (char *) PACKAGE_VERSION,
                                .host = (char *) manager_host_kind(s->manager),
                        },
                };
                return client_send(c, &reply, NULL, 0);
        }

        case GD_MSG_LIST_GROUPS:
                return client_send_all_groups(c, m->serial);

        case GD_MSG_SHOW_GROUP: {
                GroupView g = {};

                r = manager_get_group(s->manager, m->spec, &g, &err);
                if (r < 0)
                        return client_send_manager_error(c, m->serial, &err);
                r = client_send_groups(c, m->serial, &g, 1);
                group_view_done(&g);
                return r;
        }

        case GD_MSG_ACQUIRE: {
                AcquireCtx *ctx;
                AcquireRequest req;

                r = wire_acquire_request(&m->acquire, n_fds > 0 ? fds[0] : -EBADF, &req, &err);
                if (r < 0)
                        return client_send_manager_error(c, m->serial, &err);

                ctx = calloc(1, sizeof *ctx);
                if (!ctx)
                        return client_send_error(c, m->serial, GD_ERR_INTERNAL, ENOMEM, "out of memory");
                *ctx = (AcquireCtx) { .server = s, .client_id = c->id, .serial = m->serial,
                                      .delivery_block = m->acquire.flags & GD_ACQUIRE_DELIVERY };

                r = manager_acquire(s->manager, &c->caller, &req, on_acquire_done, ctx, &err);
                if (r < 0) {
                        free(ctx);
                        return client_send_manager_error(c, m->serial, &err);
                }
                return 0;
        }

        case GD_MSG_RELEASE:
                r = manager_release_token(s->manager, &c->caller, m->token, &err);
                if (r < 0)
                        return client_send_manager_error(c, m->serial, &err);
                return client_send_ok(c, m->serial);

        case GD_MSG_REVOKE:
                r = manager_revoke(s->manager, &c->caller, m->revoke.lease_id,
                                   (uint64_t) m->revoke.deadline_sec * 1000000ULL,
                                   m->revoke.flags & GD_REVOKE_FORCE, &err);
                if (r < 0)
                        return client_send_manager_error(c, m->serial, &err);
                return client_send_ok(c, m->serial);

        case GD_MSG_LIST_LEASES:
                return client_send_leases(c, m->serial);

        case GD_MSG_DMA_INFO: {
                _cleanup_(dma_view_done) DmaView v = {};
                GdDmaInfo *d = NULL;

                r = manager_dma_info(s->manager, m->spec, &v, &err);
                if (r < 0)
                        return client_send_manager_error(c, m->serial, &err);
                r = wire_dma_info(&v, &d);
                if (r < 0)
                        return client_send_error(c, m->serial, GD_ERR_INTERNAL, r, "out of memory");
                GdMsg reply = { .type = GD_MSG_DMA_INFO_REPLY, .serial = m->serial, .dma_info = *d };
                r = client_send(c, &reply, NULL, 0);
                gd_dma_info_free(d);
                return r;
        }

        case GD_MSG_SUBSCRIBE:
                c->subscribed = true;
                c->event_mask = m->event_mask ?: UINT32_MAX;
                return client_send_ok(c, m->serial);

        case GD_MSG_STATUS: {
                _cleanup_free_ unsigned *ids = NULL;
                size_t n_ids = 0;

                (void) manager_list_group_ids(s->manager, &ids, &n_ids);
                GdMsg reply = {
                        .type = GD_MSG_STATUS_REPLY,
                        .serial = m->serial,
                        .status = {
                                .version = (char *) PACKAGE_VERSION,
                                .host = (char *) manager_host_kind(s->manager),
                                .n_groups = (uint32_t) n_ids,
                                .n_leases = (uint32_t) manager_n_leases(s->manager),
                                .n_clients = (uint32_t) s->n_clients,
                                .started_usec = manager_started_usec(s->manager),
                        },
                };
                return client_send(c, &reply, NULL, 0);
        }

        default:
                return client_send_error(c, m->serial, GD_ERR_PROTOCOL, EBADMSG, "not a request");
        }
}

/* Reads the serial from a header we could not decode, so the error reply can name the request. */
static uint32_t peek_serial(const uint8_t *buf, size_t len) {
        if (len < GD_HEADER_SIZE)
                return 0;
        return (uint32_t) buf[4] | (uint32_t) buf[5] << 8 | (uint32_t) buf[6] << 16 | (uint32_t) buf[7] << 24;
}

static int client_protocol_error(Client *c, uint32_t serial, GdError code, int errno_value, const char *msg) {
        c->protocol_errors++;
        if (c->protocol_errors > PROTOCOL_ERRORS_MAX) {
                client_log(c->server, c, LOG_WARNING, "Disconnecting client %" PRIu64 " (uid %u, pid %i): %u "
                           "malformed messages, the last: %s", c->id, (unsigned) c->caller.uid,
                           (int) c->caller.pid, c->protocol_errors, msg);
                return -EBADMSG;
        }
        return client_send_error(c, serial, code, errno_value, msg);
}

static int client_read_one(Client *c) {
        Server *s = c->server;
        int fds[FD_MSG_MAX];
        size_t n_fds = 0;
        GdMsg m = {};
        ssize_t n;
        int r;

        n = fd_recv_msg(c->fd, s->buf, sizeof s->buf, fds, ELEMENTSOF(fds), &n_fds);
        if (n == -EAGAIN)
                return 0;
        if (n == -EMSGSIZE && n_fds > GD_FDS_PER_MSG_MAX) {
                /* More fds than any request carries: a flood, whose fds stay in flight (on the sender's
                 * uid's count, and ours for a root client) until read. Cut it off: closing drops what it
                 * queued. */
                client_log(s, c, LOG_WARNING, "Disconnecting client %" PRIu64 " (uid %u, pid %i): a message with "
                           "more than %zu fds.", c->id, (unsigned) c->caller.uid, (int) c->caller.pid, n_fds - 1);
                return -EBADMSG;
        }
        if (n == -EMSGSIZE)
                return client_protocol_error(c, peek_serial(s->buf, GD_HEADER_SIZE), GD_ERR_PROTOCOL, EMSGSIZE,
                                             "message too large, or with too many fds");
        if (n < 0)
                return (int) n;
        if (n == 0) {
                /* On SOCK_SEQPACKET 0 is a hang-up, or a packet of 0 bytes: the peer shut down only in the
                 * first case. */
                struct pollfd pfd = { .fd = c->fd, .events = POLLIN | POLLRDHUP };
                if (poll(&pfd, 1, 0) < 0 || (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                        return -ECONNRESET;
                close_many(fds, n_fds);
                return client_protocol_error(c, 0, GD_ERR_PROTOCOL, EBADMSG,
                                             "empty packet (a message is at least its 12-byte header)");
        }

        r = gd_msg_decode(s->buf, (size_t) n, &m);
        if (r < 0) {
                close_many(fds, n_fds);
                if (r == -EPROTONOSUPPORT)
                        return client_protocol_error(c, peek_serial(s->buf, (size_t) n), GD_ERR_VERSION, -r,
                                                     "unsupported protocol version");
                return client_protocol_error(c, peek_serial(s->buf, (size_t) n), GD_ERR_PROTOCOL, -r,
                                             r == -EMSGSIZE ? "message too large" : "malformed message");
        }

        if (!c->greeted) {
                c->greeted = true;
                c->hello_timer = sd_event_source_disable_unref(c->hello_timer);
        }

        if (n_fds != gd_msg_expected_fds(&m)) {
                char msg[128];

                if (n_fds > gd_msg_expected_fds(&m))
                        c->unexpected_fds += (unsigned) (n_fds - gd_msg_expected_fds(&m));
                if (c->unexpected_fds > UNEXPECTED_FDS_MAX) {
                        /* Whoever sends fds nobody asked for keeps them in flight, on their uid's count
                         * (and ours, for a root client): cut it off, which also drops what it queued. */
                        client_log(s, c, LOG_WARNING, "Disconnecting client %" PRIu64 " (uid %u, pid %i): it sent "
                                   "%u fds no request wanted.", c->id, (unsigned) c->caller.uid,
                                   (int) c->caller.pid, c->unexpected_fds);
                        close_many(fds, n_fds);
                        gd_msg_done(&m);
                        return -EBADMSG;
                }
                snprintf(msg, sizeof msg, "%s carries %zu fd(s), expected %zu",
                         strna(gd_msg_type_to_string(m.type)), n_fds, gd_msg_expected_fds(&m));
                close_many(fds, n_fds);
                r = client_protocol_error(c, m.serial, GD_ERR_PROTOCOL, EBADMSG, msg);
                gd_msg_done(&m);
                return r;
        }

        r = client_handle(c, &m, fds, n_fds);
        close_many(fds, n_fds);
        gd_msg_done(&m);
        return r;
}

static int on_client_io(Client *c, uint32_t revents) {
        int r = 0;

        if (revents & EPOLLOUT) {
                r = client_flush(c);
                if (r < 0)
                        goto fail;
        }
        if ((revents & EPOLLIN) && c->queue_len < REPLY_BACKLOG_MAX) {
                /* One request per wake-up keeps one busy client from starving the others. */
                r = client_read_one(c);
                if (r < 0)
                        goto fail;
                return 0;
        }
        if (revents & (EPOLLHUP | EPOLLERR)) {
                r = -ECONNRESET;
                goto fail;
        }
        return 0;

fail:
        if (r != -ECONNRESET && r != -EPIPE && r != -EBADMSG)
                client_log(c->server, c, LOG_DEBUG, "Client %" PRIu64 " dropped: %s", c->id, strerror(-r));
        client_disconnect(c);
        return 0;
}

/* One at a time (maxevents 1): a client freed while handling another is out of the epoll already, so no
 * stale pointer can come back; and epoll moves a level-triggered fd to the back of its ready list. */
static int on_clients_ready(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;

        for (unsigned i = 0; i < CLIENT_EVENTS_BATCH; i++) {
                struct epoll_event ev;
                int n = epoll_wait(s->clients_epoll, &ev, 1, 0);
                if (n <= 0)
                        break;
                (void) on_client_io(ev.data.ptr, ev.events);
        }
        return 0;
}

static int on_hello_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Client *c = userdata;

        client_log(c->server, c, LOG_NOTICE, "Disconnecting client %" PRIu64 " (uid %u, pid %i): no message within "
                   "%llu ms of connecting.", c->id, (unsigned) c->caller.uid, (int) c->caller.pid,
                   (unsigned long long) (c->server->hello_timeout_usec / USEC_PER_MSEC));
        client_disconnect(c);
        return 0;
}

static int on_accept_resume(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;

        s->accept_timer = sd_event_source_disable_unref(s->accept_timer);
        if (s->listen_source)
                (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        return 0;
}

/* accept() failed for want of a resource (fds, memory): the listener stays readable, so waiting for it
 * would spin. Stop watching it for a moment, and say so once per episode. */
static void server_pause_accepting(Server *s, int error) {
        if (s->accept_pauses++ == 0)
                log_warning_errno(error, "Cannot accept connections (%m) with %zu clients connected: pausing "
                                  "accepts for %llu ms at a time until it passes.", s->n_clients,
                                  (unsigned long long) (ACCEPT_PAUSE_USEC / USEC_PER_MSEC));
        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
        if (!s->accept_timer &&
            sd_event_add_time_relative(s->event, &s->accept_timer, CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC, 0,
                                       on_accept_resume, s) < 0)
                (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON); /* better than never */
}

static int tarpit_arm(Server *s);

/* Sends the refusal (ERROR limit, serial 0, why) and closes. */
static void refuse_now(Server *s, int fd, const char *why) {
        GdMsg m = { .type = GD_MSG_ERROR, .error = { .code = GD_ERR_LIMIT, .errno_value = EUSERS,
                                                     .message = (char *) why } };
        size_t n;

        if (gd_msg_encode(&m, s->buf, sizeof s->buf, &n) >= 0)
                (void) fd_send_msg(fd, s->buf, n, NULL, 0);
        safe_close(fd);
}

static int on_tarpit(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;
        uint64_t now = now_mono();

        s->tarpit_timer = sd_event_source_disable_unref(s->tarpit_timer);
        while (s->tarpit_n > 0 && s->tarpit[s->tarpit_first].until <= now) {
                refuse_now(s, s->tarpit[s->tarpit_first].fd, s->tarpit[s->tarpit_first].why);
                s->tarpit_first = (s->tarpit_first + 1) % TARPIT_MAX;
                s->tarpit_n--;
        }
        (void) tarpit_arm(s);
        return 0;
}

static int tarpit_arm(Server *s) {
        if (s->tarpit_n == 0 || s->tarpit_timer)
                return 0;
        return sd_event_add_time(s->event, &s->tarpit_timer, CLOCK_MONOTONIC, s->tarpit[s->tarpit_first].until,
                                 10 * USEC_PER_MSEC, on_tarpit, s);
}

/* A connection over a bound is refused, but only after TARPIT_USEC: whoever reconnects in a loop does so
 * once a second instead of as fast as accept() goes (which starves everyone else's connects). The pit
 * holds tarpit_max at most (they cost an fd each); past that, the refusal is at once. */
static void server_refuse(Server *s, int fd_consume, const char *why) {
        if (s->tarpit_n >= s->tarpit_max) {
                refuse_now(s, fd_consume, why);
                return;
        }
        size_t i = (s->tarpit_first + s->tarpit_n) % TARPIT_MAX;
        s->tarpit[i].fd = fd_consume;
        s->tarpit[i].until = now_mono() + TARPIT_USEC;
        (void) snprintf(s->tarpit[i].why, sizeof s->tarpit[i].why, "%s", why);
        s->tarpit_n++;
        if (tarpit_arm(s) < 0) {
                /* No timer: refuse what waits now rather than never. */
                (void) on_tarpit(NULL, 0, s);
        }
}

/* May uid have one more connection? If not, *why says which bound. */
static bool server_admit(Server *s, uid_t uid, char *why, size_t size) {
        size_t n_uid = 0;

        if (s->n_clients >= s->clients_max) {
                snprintf(why, size, "groupd has %zu connections, its maximum", s->clients_max);
                return false;
        }
        if (uid == 0)
                return true;
        if (s->n_clients >= s->clients_max - s->root_reserve) {
                snprintf(why, size, "groupd has %zu connections; the last %zu are kept for root", s->n_clients,
                         s->root_reserve);
                return false;
        }
        n_uid = s->uids[uid_slot(s, uid)].n;
        if (n_uid >= CLIENTS_PER_UID_MAX) {
                snprintf(why, size, "uid %u has %zu connections, the most one uid may have", (unsigned) uid, n_uid);
                return false;
        }
        return true;
}

/* Accepts one connection: 1 if one came (admitted or refused), 0 if none waits (or accepting paused). */
static int accept_one(Server *s, int fd) {
        _cleanup_close_ int cfd = -EBADF;
        struct ucred cred;
        socklen_t len = sizeof cred;
        Client *c;
        int r;

        char why[128];

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        server_pause_accepting(s, -errno);
                else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        client_log(s, NULL, LOG_WARNING, "Failed to accept a connection: %s", strerror(errno));
                return errno == ECONNABORTED || errno == EINTR ? 1 : 0;
        }
        if (s->accept_pauses > 0) {
                log_notice("Accepting connections again, after %u pause(s).", s->accept_pauses);
                s->accept_pauses = 0;
        }
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                client_log(s, NULL, LOG_WARNING, "Failed to identify a client (SO_PEERCRED): %s", strerror(errno));
                return 1;
        }
        if (!server_admit(s, cred.uid, why, sizeof why)) {
                client_log(s, NULL, LOG_NOTICE, "Refusing a connection of uid %u pid %i: %s.", (unsigned) cred.uid,
                           (int) cred.pid, why);
                server_refuse(s, TAKE_FD(cfd), why);
                return 1;
        }

        c = calloc(1, sizeof *c);
        if (!c)
                return log_oom();
        c->log_rl = RATELIMIT_INIT(LOG_CLIENT_INTERVAL_USEC, LOG_CLIENT_BURST);
        c->server = s;
        c->id = ++s->next_client_id;
        c->caller.uid = cred.uid;
        c->caller.gid = cred.gid;
        c->caller.pid = cred.pid;
        c->caller.connection_id = c->id;
        len = sizeof c->caller.gids;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERGROUPS, c->caller.gids, &len) >= 0)
                c->caller.n_gids = len / sizeof(gid_t);
        caller_read_cgroup(&c->caller);  /* read at connect, as the credentials are */

        c->next = s->clients;
        if (s->clients)
                s->clients->prev = c;
        s->clients = c;
        s->n_clients++;
        uid_count_add(s, c->caller.uid);
        c->fd = TAKE_FD(cfd);

        c->io_events = EPOLLIN;
        if (epoll_ctl(s->clients_epoll, EPOLL_CTL_ADD, c->fd, &(struct epoll_event) { .events = EPOLLIN,
                                                                                    .data.ptr = c }) < 0) {
                r = -errno;
                c->fd = safe_close(c->fd);
                client_free(c);
                return log_error_errno(r, "Failed to watch a client: %m");
        }
        r = sd_event_add_time_relative(s->event, &c->hello_timer, CLOCK_MONOTONIC, s->hello_timeout_usec, 0,
                                       on_hello_timeout, c);
        if (r < 0) {
                client_free(c);
                return log_error_errno(r, "Failed to arm a client's deadline: %m");
        }
        return 1;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;

        for (unsigned i = 0; i < ACCEPT_BATCH && s->listen_source; i++)
                if (accept_one(s, fd) <= 0)
                        break;
        return 0;
}

/* ---------------------------------------------------------------- events */

static void on_manager_event(Manager *m, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                             const char *detail, void *userdata) {
        Server *s = userdata;
        uint32_t g32 = group;
        Client *next;
        GdMsg msg = {
                .type = GD_MSG_EVENT,
                .event = {
                        .kind = wire_event_kind(kind),
                        .errno_value = abs(errno_value),
                        .detail = (char *) strempty(detail),
                },
        };

        if (l) {
                wire_lease(l, &msg.event.lease);
                msg.event.reason = wire_reason(l->reason);
        } else {
                msg.event.lease = (GdLease) { .id = (char *) "", .label = (char *) "", .groups = &g32, .n_groups = 1 };
        }

        for (Client *c = s->clients; c; c = next) {
                int r;

                next = c->next;
                if (!c->subscribed || !(c->event_mask & (1u << kind)))
                        continue;
                if (c->queue_events >= CLIENT_EVENTS_MAX)
                        r = client_drop_events(c, "its own queue is full");
                else
                        r = client_send(c, &msg, NULL, 0);
                if (r < 0) {
                        client_log(s, c, LOG_WARNING, "Dropping subscriber %" PRIu64 " (uid %u): %s.", c->id,
                                   (unsigned) c->caller.uid, strerror(-r));
                        client_disconnect(c);
                }
        }
        server_bound_events(s);
}

/* ---------------------------------------------------------------- set-up */

int server_check_path(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int probe = -EBADF;
        struct stat st;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        /* A socket: stale (nobody listens: ECONNREFUSED) or live. */
        probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe < 0)
                return -errno;
        if (connect(probe, (struct sockaddr *) &sa, sizeof sa) >= 0 || errno == EAGAIN || errno == EINPROGRESS)
                return -EADDRINUSE;
        return 1;
}

int server_listen_path(const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        mode_t old;
        int r;

        r = server_check_path(path);
        if (r < 0)
                return r;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        if (r > 0)
                (void) unlink(path); /* a stale socket, and only that */
        old = umask(0111);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return -errno;
        if (listen(fd, LISTEN_BACKLOG) < 0)
                return -errno;

        *ret_fd = TAKE_FD(fd);
        return 0;
}

int server_new(sd_event *e, Manager *m, int listen_fd, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s) {
                safe_close(listen_fd);
                return -ENOMEM;
        }
        s->clients_epoll = -EBADF;
        s->event = sd_event_ref(e);
        s->manager = m;
        s->listen_fd = listen_fd;
        s->hello_timeout_usec = HELLO_TIMEOUT_USEC;
        /* Connections must never take the fds that leases need: a lease takes a few, the host some. */
        {
                struct rlimit rl;
                size_t n = CLIENTS_MAX;

                if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY &&
                    rl.rlim_cur < (rlim_t) CLIENTS_MAX + 2 * FDS_RESERVE)
                        n = MAX((size_t) rl.rlim_cur > FDS_RESERVE ? (size_t) rl.rlim_cur - FDS_RESERVE : 0,
                                (size_t) rl.rlim_cur / 4);
                /* The tarpit's fds come out of the connections' share, not out of the reserve. */
                s->tarpit_max = n < CLIENTS_MAX ? MIN((size_t) TARPIT_MAX, n / 4) : TARPIT_MAX;
                s->clients_max = MAX(n - (n < CLIENTS_MAX ? s->tarpit_max : 0), (size_t) 4);
                s->root_reserve = MIN((size_t) CLIENTS_ROOT_RESERVE, s->clients_max / 4);
                if (s->clients_max < CLIENTS_MAX)
                        log_notice("The fd limit (%llu) allows %zu connections at once, not %u; raise LimitNOFILE=.",
                                   (unsigned long long) rl.rlim_cur, s->clients_max, CLIENTS_MAX);
        }
        s->log_rl = RATELIMIT_INIT(LOG_CLIENT_INTERVAL_USEC, LOG_SERVER_BURST);

        r = fd_set_nonblock(listen_fd, true);
        if (r < 0)
                return r;
        s->clients_epoll = epoll_create1(EPOLL_CLOEXEC);
        if (s->clients_epoll < 0)
                return -errno;
        r = sd_event_add_io(e, &s->clients_source, s->clients_epoll, EPOLLIN, on_clients_ready, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->clients_source, "clients");
        r = sd_event_add_io(e, &s->listen_source, listen_fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->listen_source, "listen");

        r = manager_add_listener(m, on_manager_event, s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

void server_set_hello_timeout(Server *s, uint64_t usec) {
        assert(s);
        assert(usec > 0);
        s->hello_timeout_usec = usec;
}

void server_stop_accepting(Server *s) {
        s->accept_timer = sd_event_source_disable_unref(s->accept_timer);
        s->listen_source = sd_event_source_disable_unref(s->listen_source);
        s->listen_fd = safe_close(s->listen_fd);
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->clients)
                client_free(s->clients);
        while (s->tarpit_n > 0) {
                safe_close(s->tarpit[s->tarpit_first].fd);
                s->tarpit_first = (s->tarpit_first + 1) % TARPIT_MAX;
                s->tarpit_n--;
        }
        sd_event_source_disable_unref(s->tarpit_timer);
        sd_event_source_disable_unref(s->accept_timer);
        sd_event_source_disable_unref(s->clients_source);
        safe_close(s->clients_epoll);
        sd_event_source_disable_unref(s->listen_source);
        safe_close(s->listen_fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
