/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The native server: reading a client's requests and answering them. */
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

/* ---------------------------------------------------------------- requests */

typedef struct AcquireCtx {
        Server *server;
        uint64_t client_id;
        uint32_t serial;
        bool delivery_block;    /* the ACQUIRE had GD_ACQUIRE_DELIVERY: so has the reply */
} AcquireCtx;

int on_acquire_done(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata) {
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

int client_handle(Client *c, GdMsg *m, int *fds, size_t n_fds) {
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
uint32_t peek_serial(const uint8_t *buf, size_t len) {
        if (len < GD_HEADER_SIZE)
                return 0;
        return (uint32_t) buf[4] | (uint32_t) buf[5] << 8 | (uint32_t) buf[6] << 16 | (uint32_t) buf[7] << 24;
}

int client_protocol_error(Client *c, uint32_t serial, GdError code, int errno_value, const char *msg) {
        c->protocol_errors++;
        if (c->protocol_errors > PROTOCOL_ERRORS_MAX) {
                client_log(c->server, c, LOG_WARNING, "Disconnecting client %" PRIu64 " (uid %u, pid %i): %u "
                           "malformed messages, the last: %s", c->id, (unsigned) c->caller.uid,
                           (int) c->caller.pid, c->protocol_errors, msg);
                return -EBADMSG;
        }
        return client_send_error(c, serial, code, errno_value, msg);
}

int client_read_one(Client *c) {
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

int on_client_io(Client *c, uint32_t revents) {
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
int on_clients_ready(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
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
