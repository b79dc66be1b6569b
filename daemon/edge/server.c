/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-login.h>

#include "fd-util.h"
#include "log.h"
#include "server.h"
#include "wire-view.h"

#define CLIENTS_MAX 4096
#define PROTOCOL_ERRORS_MAX 8
#define QUEUE_PACKETS_MAX 4096

typedef struct Packet Packet;
struct Packet {
        uint8_t *data;
        size_t len;
        int fds[GD_FDS_PER_MSG_MAX];
        size_t n_fds;
        Packet *next;
};

typedef struct Client Client;
struct Client {
        Server *server;
        uint64_t id;
        int fd;
        sd_event_source *source;
        Caller caller;
        bool subscribed;
        uint32_t event_mask;
        unsigned protocol_errors;
        Packet *queue_head, *queue_tail;
        size_t queue_len;
        Client *prev, *next;
};

struct Server {
        sd_event *event;
        Manager *manager;
        int listen_fd;
        sd_event_source *listen_source;
        Client *clients;
        size_t n_clients;
        uint64_t next_client_id;
        uint8_t buf[GD_MSG_SIZE_MAX + 1];
};

static void packet_free(Packet *p) {
        close_many(p->fds, p->n_fds);
        free(p->data);
        free(p);
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

        while (c->queue_head) {
                Packet *p = c->queue_head;
                c->queue_head = p->next;
                packet_free(p);
        }
        sd_event_source_disable_unref(c->source);
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

static int client_flush(Client *c) {
        while (c->queue_head) {
                Packet *p = c->queue_head;
                int r = fd_send_msg(c->fd, p->data, p->len, p->fds, p->n_fds);
                if (r == -EAGAIN)
                        return sd_event_source_set_io_events(c->source, EPOLLIN | EPOLLOUT);
                if (r < 0)
                        return r;
                c->queue_head = p->next;
                if (!c->queue_head)
                        c->queue_tail = NULL;
                c->queue_len--;
                packet_free(p);
        }
        return sd_event_source_set_io_events(c->source, EPOLLIN);
}

/* Sends m with fds (borrowed). If the socket is full the packet is queued with copies of the fds. */
static int client_send(Client *c, const GdMsg *m, const int *fds, size_t n_fds) {
        size_t len;
        Packet *p;
        int r;

        r = gd_msg_encode(m, c->server->buf, sizeof c->server->buf, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to encode %s reply: %m", strna(gd_msg_type_to_string(m->type)));

        if (!c->queue_head) {
                r = fd_send_msg(c->fd, c->server->buf, len, fds, n_fds);
                if (r != -EAGAIN)
                        return r;
        }

        if (c->queue_len >= QUEUE_PACKETS_MAX)
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
        if (c->queue_tail)
                c->queue_tail->next = p;
        else
                c->queue_head = p;
        c->queue_tail = p;
        c->queue_len++;
        return sd_event_source_set_io_events(c->source, EPOLLIN | EPOLLOUT);
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
static int client_send_list(Client *c, uint32_t serial, GdMsgType type, void *items, size_t n) {
        size_t at = 0, batch = type == GD_MSG_GROUPS ? 128 : 256;

        do {
                size_t k = MIN(batch, n - at), len;
                GdMsg m = { .type = type, .serial = serial };
                int r;

                if (type == GD_MSG_GROUPS)
                        m.groups = (typeof(m.groups)) { .more = at + k < n, .n_groups = (uint16_t) k,
                                                        .groups = items ? (GdGroup *) items + at : NULL };
                else
                        m.leases = (typeof(m.leases)) { .more = at + k < n, .n_leases = (uint16_t) k,
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

static int client_send_groups(Client *c, uint32_t serial, const GroupView *views, size_t n) {
        GdGroup *groups = NULL;
        int r;

        r = wire_groups(views, n, &groups);
        if (r < 0)
                return client_send_error(c, serial, GD_ERR_INTERNAL, r, "out of memory");
        r = client_send_list(c, serial, GD_MSG_GROUPS, groups, n);
        gd_groups_free(groups, n);
        return r;
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
} AcquireCtx;

static int on_acquire_done(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata) {
        AcquireCtx *ctx = userdata;
        Client *c = server_find_client(ctx->server, ctx->client_id);
        uint32_t serial = ctx->serial;
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

        GdMsg reply = { .type = GD_MSG_ACQUIRED, .serial = serial };
        reply.acquired.token = l->token;
        reply.acquired.iommu_type = l->iommu_type;
        reply.acquired.memlock = l->memlock;
        wire_dma(&l->dma, &reply.acquired.dma);
        wire_lease(l, &reply.acquired.lease);

        fds[n_fds++] = l->container_fd;
        for (size_t i = 0; i < l->n_groups; i++)
                fds[n_fds++] = l->group_fds[i];
        if (*lease_fd >= 0)
                fds[n_fds++] = *lease_fd;

        r = client_send(c, &reply, fds, n_fds);
        if (r < 0) {
                log_warning_errno(r, "Failed to hand lease %s to client %" PRIu64 ": %m", l->id, c->id);
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

        case GD_MSG_LIST_GROUPS: {
                GroupView *groups = NULL;
                size_t n = 0;

                r = manager_list_groups(s->manager, &groups, &n);
                if (r < 0)
                        return client_send_error(c, m->serial, GD_ERR_HOST, r, "cannot list the IOMMU groups");
                r = client_send_groups(c, m->serial, groups, n);
                group_views_free(groups, n);
                return r;
        }

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
                *ctx = (AcquireCtx) { .server = s, .client_id = c->id, .serial = m->serial };

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
                log_warning("Disconnecting client %" PRIu64 " (uid %u, pid %i): %u malformed messages, the last: %s",
                            c->id, (unsigned) c->caller.uid, (int) c->caller.pid, c->protocol_errors, msg);
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
        if (n == -EMSGSIZE)
                return client_protocol_error(c, peek_serial(s->buf, GD_HEADER_SIZE), GD_ERR_PROTOCOL, EMSGSIZE,
                                             "message too large, or with too many fds");
        if (n < 0)
                return (int) n;
        if (n == 0)
                return -ECONNRESET;

        r = gd_msg_decode(s->buf, (size_t) n, &m);
        if (r < 0) {
                close_many(fds, n_fds);
                if (r == -EPROTONOSUPPORT)
                        return client_protocol_error(c, peek_serial(s->buf, (size_t) n), GD_ERR_VERSION, -r,
                                                     "unsupported protocol version");
                return client_protocol_error(c, peek_serial(s->buf, (size_t) n), GD_ERR_PROTOCOL, -r,
                                             r == -EMSGSIZE ? "message too large" : "malformed message");
        }

        if (n_fds != gd_msg_expected_fds(&m)) {
                char msg[128];
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

static int on_client_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        int r = 0;

        if (revents & EPOLLOUT) {
                r = client_flush(c);
                if (r < 0)
                        goto fail;
        }
        if (revents & EPOLLIN) {
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
                log_debug_errno(r, "Client %" PRIu64 " dropped: %m", c->id);
        client_disconnect(c);
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;
        _cleanup_close_ int cfd = -EBADF;
        struct ucred cred;
        socklen_t len = sizeof cred;
        Client *c;
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_warning_errno(-errno, "Failed to accept a connection: %m");
                return 0;
        }
        if (s->n_clients >= CLIENTS_MAX) {
                log_warning("Refusing a connection: %u clients already.", CLIENTS_MAX);
                return 0;
        }
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                log_warning_errno(-errno, "Failed to identify a client (SO_PEERCRED): %m");
                return 0;
        }

        c = calloc(1, sizeof *c);
        if (!c)
                return log_oom();
        c->server = s;
        c->id = ++s->next_client_id;
        c->caller.uid = cred.uid;
        c->caller.gid = cred.gid;
        c->caller.pid = cred.pid;
        c->caller.connection_id = c->id;
        len = sizeof c->caller.gids;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERGROUPS, c->caller.gids, &len) >= 0)
                c->caller.n_gids = len / sizeof(gid_t);
        {
                /* Its cgroup, for unit= and cgroup= rules: read at connect, as the credentials are. */
                _cleanup_free_ char *cg = NULL;
                if (cred.pid > 0 && sd_pid_get_cgroup(cred.pid, &cg) >= 0 && strlen(cg) < sizeof c->caller.cgroup)
                        strcpy(c->caller.cgroup, cg);
        }

        c->next = s->clients;
        if (s->clients)
                s->clients->prev = c;
        s->clients = c;
        s->n_clients++;
        c->fd = TAKE_FD(cfd);

        r = sd_event_add_io(s->event, &c->source, c->fd, EPOLLIN, on_client_io, c);
        if (r < 0) {
                client_free(c);
                return log_error_errno(r, "Failed to watch a client: %m");
        }
        (void) sd_event_source_set_description(c->source, "client");
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
                next = c->next;
                if (!c->subscribed || !(c->event_mask & (1u << kind)))
                        continue;
                if (client_send(c, &msg, NULL, 0) < 0) {
                        log_warning("Dropping subscriber %" PRIu64 " (uid %u): it does not read its events.",
                                    c->id, (unsigned) c->caller.uid);
                        client_disconnect(c);
                }
        }
}

/* ---------------------------------------------------------------- set-up */

int server_listen_path(const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        mode_t old;
        int r;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        (void) unlink(path);
        old = umask(0111);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
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
        s->event = sd_event_ref(e);
        s->manager = m;
        s->listen_fd = listen_fd;

        r = fd_set_nonblock(listen_fd, true);
        if (r < 0)
                return r;
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

void server_stop_accepting(Server *s) {
        s->listen_source = sd_event_source_disable_unref(s->listen_source);
        s->listen_fd = safe_close(s->listen_fd);
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->clients)
                client_free(s->clients);
        sd_event_source_disable_unref(s->listen_source);
        safe_close(s->listen_fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
