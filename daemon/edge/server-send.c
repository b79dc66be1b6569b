/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The native server: queueing and sending a client's packets. */
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
#include "server-internal.h"

/* ---------------------------------------------------------------- sending */

/* What to wait for: EPOLLOUT while packets wait (unless a retry timer runs); EPOLLIN unless so many
 * packets wait that the client plainly does not read its replies (it is read again once they go). */
int client_update_io(Client *c) {
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

void client_unqueue(Client *c, Packet *p, Packet *prev) {
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


int on_retry_timer(sd_event_source *src, uint64_t usec, void *userdata) {
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
int client_retry_later(Client *c) {
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

int client_flush(Client *c) {
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


/* Sends m with fds (borrowed). If the socket is full (or the kernel refuses more fds in flight for now)
 * the packet is queued with copies of the fds. */
int client_send(Client *c, const GdMsg *m, const int *fds, size_t n_fds) {
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
int client_drop_events(Client *c, const char *why) {
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
void server_bound_events(Server *s) {
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

int client_send_error(Client *c, uint32_t serial, GdError code, int errno_value, const char *message) {
        GdMsg m = {
                .type = GD_MSG_ERROR,
                .serial = serial,
                .error = { .code = code, .errno_value = abs(errno_value), .message = (char *) message },
        };
        return client_send(c, &m, NULL, 0);
}

int client_send_manager_error(Client *c, uint32_t serial, const ManagerError *e) {
        return client_send_error(c, serial, wire_error(e->code), e->errno_value, e->message);
}

int client_send_ok(Client *c, uint32_t serial) {
        GdMsg m = { .type = GD_MSG_OK, .serial = serial };
        return client_send(c, &m, NULL, 0);
}

/* Sends a list (GROUPS or LEASES) in as many packets as it takes, `more` set on all but the last: as many
 * items a packet as fit, halving the batch when one does not. */
int client_send_list_part(Client *c, uint32_t serial, GdMsgType type, void *items, size_t n,
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


int client_send_list(Client *c, uint32_t serial, GdMsgType type, void *items, size_t n) {
        return client_send_list_part(c, serial, type, items, n, false);
}

int client_send_groups_part(Client *c, uint32_t serial, const GroupView *views, size_t n, bool more_after) {
        GdGroup *groups = NULL;
        int r;

        r = wire_groups(views, n, &groups);
        if (r < 0)
                return client_send_error(c, serial, GD_ERR_INTERNAL, r, "out of memory");
        r = client_send_list_part(c, serial, GD_MSG_GROUPS, groups, n, more_after);
        gd_groups_free(groups, n);
        return r;
}

int client_send_groups(Client *c, uint32_t serial, const GroupView *views, size_t n) {
        return client_send_groups_part(c, serial, views, n, false);
}

/* Every group, LIST_BATCH_GROUPS at a time: read, made wire records, sent (or queued) and freed before the
 * next batch is read, so that a list of a big host never holds every group twice over (views and wire
 * records: 8 MiB for 4096 groups, most of which malloc kept afterwards). */
#define LIST_BATCH_GROUPS 128

int client_send_all_groups(Client *c, uint32_t serial) {
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

int client_send_leases(Client *c, uint32_t serial) {
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
