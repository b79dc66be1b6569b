/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The native server: the listening socket, admitting and bounding connections, and events to
 * subscribers (server-send.c sends, server-request.c answers). */
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

uint64_t now_mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* A line about what a client did: at most LOG_CLIENT_BURST per client and LOG_SERVER_BURST for all
 * clients per interval; the first line let through after some were held back says how many (c NULL: a
 * connection not yet a client, counted against the server's limit only). */
void client_log(Server *s, Client *c, int level, const char *fmt, ...) {
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


void packet_free(Packet *p) {
        close_many(p->fds, p->n_fds);
        free(p->data);
        free(p);
}

/* The slot of uid in s->uids: where it is, or the free slot where it would go. Linear probing; removal
 * shifts back (no tombstones), so a probe stops at the first free slot. */
size_t uid_slot(Server *s, uid_t uid) {
        size_t i = ((size_t) uid * 2654435761u) % UID_SLOTS;

        while (s->uids[i].n > 0 && s->uids[i].uid != uid)
                i = (i + 1) % UID_SLOTS;
        return i;
}

void uid_count_add(Server *s, uid_t uid) {
        size_t i = uid_slot(s, uid);

        s->uids[i].uid = uid;
        s->uids[i].n++;
}

void uid_count_remove(Server *s, uid_t uid) {
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

Client *client_free(Client *c) {
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

void client_disconnect(Client *c) {
        Server *s = c->server;
        uint64_t id = c->id;

        client_free(c);
        /* After the client is gone, so that nothing is sent to it from the manager's callbacks. */
        manager_connection_closed(s->manager, id);
}

Client *server_find_client(Server *s, uint64_t id) {
        for (Client *c = s->clients; c; c = c->next)
                if (c->id == id)
                        return c;
        return NULL;
}

size_t server_n_clients(Server *s) {
        return s->n_clients;
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
