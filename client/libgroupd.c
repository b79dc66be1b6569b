/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libgroupd: the client side of the native protocol, on one blocking SOCK_SEQPACKET connection.
 *
 * Every request gets the next serial number and is answered by one reply with that serial (or, for the
 * group and lease lists, by several packets with `more` set on all but the last). Events (serial 0) that
 * arrive while a reply is awaited are queued and handed out by gd_client_next_event(). An ERROR with
 * serial 0 is the daemon speaking about the whole connection (shutting down, too many clients): it
 * answers whatever request is pending. Anything else is a protocol error.
 *
 * A library: no global state, nothing printed, every fd close-on-exec. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <linux/vfio.h>

#include "fd-util.h"
#include "groupd-client.h"
#include "kvm-vfio.h"
#include "libgroupd-internal.h"
#include "macro.h"


/* ---------------------------------------------------------------- freeing what the codec allocated */

void gd_event_done(GdEvent *e) {
        if (!e)
                return;
        gd_lease_done(&e->lease);
        free(e->detail);
        *e = (GdEvent) {};
}

void gd_status_done(GdStatus *s) {
        if (!s)
                return;
        free(s->version);
        free(s->host);
        *s = (GdStatus) {};
}

/* ---------------------------------------------------------------- errors */

/* The errno a GdError stands for when the daemon sent none. */
static int errno_from_gd_error(int code) {
        switch (code) {
        case GD_ERR_PROTOCOL:
                return EBADMSG;
        case GD_ERR_VERSION:
                return EPROTONOSUPPORT;
        case GD_ERR_INVALID:
                return EINVAL;
        case GD_ERR_NOT_FOUND:
                return ENOENT;
        case GD_ERR_BUSY:
                return EBUSY;
        case GD_ERR_DENIED:
                return EPERM;
        case GD_ERR_NOT_VIABLE:
                return EIO;
        case GD_ERR_HOST:
                return EIO;
        case GD_ERR_LIMIT:
                return ENOSPC;
        case GD_ERR_BAD_TOKEN:
                return ENOKEY;
        case GD_ERR_INTERNAL:
                return EIO;
        case GD_ERR_SHUTTING_DOWN:
                return ESHUTDOWN;
        default:
                return EPROTO;
        }
}

void client_clear_error(GdClient *c) {
        c->error_code = 0;
        c->error_message[0] = 0;
        c->error_from_daemon = false;
}

/* Records a failure found on this side (code 0 unless it is a protocol error) and returns r. */
int client_fail(GdClient *c, int r, int code, const char *fmt, ...) {
        va_list ap;

        c->error_code = code;
        va_start(ap, fmt);
        (void) vsnprintf(c->error_message, sizeof c->error_message, fmt, ap);
        va_end(ap);
        return r;
}

static int client_fail_io(GdClient *c, int r) {
        if (r == -ECONNRESET || r == -EPIPE)
                return client_fail(c, r, 0, "groupd closed the connection");
        if (r == -EBADMSG)
                return client_fail(c, r, GD_ERR_PROTOCOL, "malformed message from groupd");
        if (r == -EMSGSIZE)
                return client_fail(c, -EBADMSG, GD_ERR_PROTOCOL, "oversized message from groupd");
        return client_fail(c, r, 0, "%s", strerror(-r));
}

/* Takes the daemon's ERROR reply: records it, returns the negative errno it stands for. */
static int client_take_error(GdClient *c, const GdErrorMsg *e) {
        int err = e->errno_value > 0 ? e->errno_value : errno_from_gd_error(e->code);

        c->error_code = e->code;
        c->error_from_daemon = true;
        (void) snprintf(c->error_message, sizeof c->error_message, "%s",
                        !isempty(e->message) ? e->message : strerror(err));
        return -err;
}

/* ---------------------------------------------------------------- the event queue */

static int client_queue_event(GdClient *c, GdEvent *e) {
        if (c->events_head > 0 && c->events_head == c->n_events)
                c->events_head = c->n_events = 0;

        /* A client that never reads its events must not fail its requests: the oldest go. */
        if (c->n_events - c->events_head >= EVENT_QUEUE_MAX)
                gd_event_done(&c->events[c->events_head++]);

        if (c->n_events >= c->events_allocated) {
                if (c->events_head > 0) {
                        /* Compact instead of growing. */
                        memmove(c->events, c->events + c->events_head,
                                (c->n_events - c->events_head) * sizeof *c->events);
                        c->n_events -= c->events_head;
                        c->events_head = 0;
                } else {
                        size_t n = MAX(c->events_allocated * 2, 8u);
                        GdEvent *p = realloc(c->events, n * sizeof *p);
                        if (!p)
                                return -ENOMEM;
                        c->events = p;
                        c->events_allocated = n;
                }
        }

        c->events[c->n_events++] = *e;
        *e = (GdEvent) {};
        return 0;
}

static bool client_pop_event(GdClient *c, GdEvent *ret) {
        if (c->events_head >= c->n_events)
                return false;
        *ret = c->events[c->events_head];
        c->events[c->events_head++] = (GdEvent) {};
        if (c->events_head == c->n_events)
                c->events_head = c->n_events = 0;
        return true;
}

/* ---------------------------------------------------------------- sending and receiving */

static int client_send(GdClient *c, GdMsg *m, const int *fds, size_t n_fds) {
        size_t len;
        int r;

        if (c->fd < 0)
                return client_fail(c, -ENOTCONN, 0, "not connected to groupd");

        c->serial++;
        if (c->serial == 0) /* 0 is the events' */
                c->serial = 1;
        m->serial = c->serial;

        r = gd_msg_encode(m, c->buf, GD_MSG_SIZE_MAX, &len);
        if (r == -EINVAL)
                return client_fail(c, r, GD_ERR_INVALID, "a field of the %s request is too long or contains NUL",
                                   strna(gd_msg_type_to_string(m->type)));
        if (r < 0)
                return client_fail(c, r, GD_ERR_INVALID, "cannot encode the %s request: %s",
                                   strna(gd_msg_type_to_string(m->type)), strerror(-r));

        r = fd_send_msg(c->fd, c->buf, len, fds, n_fds);
        if (r < 0)
                return client_fail_io(c, r);
        return 0;
}

/* Receives and decodes one packet; checks it carries exactly the fds its type expects (extra ones are
 * closed, a missing one is -EBADMSG). The fds land in fds[] (capacity GD_FDS_PER_MSG_MAX). */
static int client_recv_one(GdClient *c, GdMsg *ret, int *fds, size_t *ret_n_fds) {
        int received[FD_MSG_MAX];
        size_t n_fds = 0, expected;
        ssize_t n;
        int r;

        if (c->fd < 0)
                return -ENOTCONN;

        n = fd_recv_msg(c->fd, c->buf, GD_MSG_SIZE_MAX, received, ELEMENTSOF(received), &n_fds);
        if (n == 0)
                return -ECONNRESET;
        if (n < 0)
                return (int) n;

        r = gd_msg_decode(c->buf, (size_t) n, ret);
        if (r < 0) {
                close_many(received, n_fds);
                return -EBADMSG;
        }

        expected = gd_msg_expected_fds(ret);
        if (n_fds < expected || expected > GD_FDS_PER_MSG_MAX) {
                close_many(received, n_fds);
                gd_msg_done(ret);
                return -EBADMSG;
        }
        close_many(received + expected, n_fds - expected);

        memcpy(fds, received, expected * sizeof(int));
        *ret_n_fds = expected;
        return 0;
}

/* Waits for the reply of type `type` to request `serial`, queueing events that come first. On an ERROR
 * reply records it and returns its negative errno. */
static int client_recv_reply(GdClient *c, uint32_t serial, uint16_t type, GdMsg *ret, int *fds,
                             size_t *ret_n_fds) {
        for (;;) {
                GdMsg m = {};
                size_t n_fds = 0;
                int r;

                r = client_recv_one(c, &m, fds, &n_fds);
                if (r < 0)
                        return client_fail_io(c, r);

                if (m.type == GD_MSG_EVENT && m.serial == 0) {
                        r = client_queue_event(c, &m.event);
                        gd_msg_done(&m);
                        if (r < 0)
                                return client_fail(c, r, 0, "out of memory");
                        continue;
                }

                if (m.type == GD_MSG_ERROR && (m.serial == serial || m.serial == 0)) {
                        r = client_take_error(c, &m.error);
                        close_many(fds, n_fds);
                        gd_msg_done(&m);
                        return r;
                }

                if (m.serial != serial || m.type != type) {
                        uint32_t got_serial = m.serial;
                        uint16_t got_type = m.type;

                        close_many(fds, n_fds);
                        gd_msg_done(&m);
                        return client_fail(c, -EBADMSG, GD_ERR_PROTOCOL,
                                           "unexpected %s (serial %u) from groupd while waiting for %s "
                                           "(serial %u)",
                                           strna(gd_msg_type_to_string(got_type)), got_serial,
                                           strna(gd_msg_type_to_string(type)), serial);
                }

                *ret = m;
                *ret_n_fds = n_fds;
                return 0;
        }
}

/* One request, one reply without fds. */
static int client_call(GdClient *c, GdMsg *req, const int *fds, size_t n_fds, uint16_t type, GdMsg *ret) {
        int reply_fds[GD_FDS_PER_MSG_MAX];
        size_t n = 0;
        int r;

        r = client_send(c, req, fds, n_fds);
        if (r < 0)
                return r;
        r = client_recv_reply(c, req->serial, type, ret, reply_fds, &n);
        if (r < 0)
                return r;
        close_many(reply_fds, n); /* none expected: gd_msg_expected_fds() said so */
        return 0;
}

/* ---------------------------------------------------------------- connecting */

/* Copies s into buf (size bytes), cut at a UTF-8 character boundary if it does not fit. */
static void copy_utf8_cut(char *buf, size_t size, const char *s) {
        size_t l = strlen(s), i;

        if (l < size) {
                memcpy(buf, s, l + 1);
                return;
        }
        l = size - 1;
        /* Back off to the start of the character that straddles the cut. */
        for (i = l; i > 0 && ((unsigned char) s[i] & 0xc0) == 0x80; i--)
                ;
        memcpy(buf, s, i);
        buf[i] = 0;
}

static int client_hello(GdClient *c) {
        char name[GD_NAME_MAX];
        GdMsg reply = {};
        uint32_t v;
        int r;

        copy_utf8_cut(name, sizeof name, strempty(program_invocation_short_name));

        GdMsg req = {
                .type = GD_MSG_HELLO,
                .hello = { .version_min = GD_PROTO_VERSION, .version_max = GD_PROTO_VERSION, .name = name },
        };
        r = client_call(c, &req, NULL, 0, GD_MSG_HELLO_REPLY, &reply);
        if (r < 0)
                return r;

        /* HELLO_REPLY carries one version; the codec may put it in either field. */
        v = reply.hello.version_min ?: reply.hello.version_max;
        if (v != GD_PROTO_VERSION) {
                gd_msg_done(&reply);
                return client_fail(c, -EPROTONOSUPPORT, GD_ERR_VERSION,
                                   "groupd chose protocol version %u, not %u", v, GD_PROTO_VERSION);
        }
        (void) snprintf(c->daemon_version, sizeof c->daemon_version, "%s", strempty(reply.hello.name));
        (void) snprintf(c->host, sizeof c->host, "%s", strempty(reply.hello.host));
        gd_msg_done(&reply);
        return 0;
}

int gd_client_new_from_fd(int fd, GdClient **ret) {
        GdClient *c;
        int r;

        if (fd < 0 || !ret) {
                safe_close(fd);
                return -EINVAL;
        }

        /* Ours now: a blocking, close-on-exec connection. */
        r = fd_set_nonblock(fd, false);
        if (r >= 0)
                r = fd_set_cloexec(fd, true);
        if (r < 0) {
                safe_close(fd);
                return r;
        }

        c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->fd = fd;
        c->buf = malloc(GD_MSG_SIZE_MAX);
        if (!c->buf) {
                gd_client_free(c);
                return -ENOMEM;
        }

        r = client_hello(c);
        if (r < 0) {
                gd_client_free(c);
                return r;
        }

        *ret = c;
        return 0;
}

int gd_client_connect(const char *path, GdClient **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        size_t l;

        if (!ret)
                return -EINVAL;

        if (!path)
                path = secure_getenv("GROUPD_SOCKET");
        if (isempty(path))
                path = GD_SOCKET_PATH;

        l = strlen(path);
        if (l >= sizeof sa.sun_path)
                return -EINVAL;
        memcpy(sa.sun_path, path, l + 1);

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;

        if (connect(fd, (struct sockaddr *) &sa, offsetof(struct sockaddr_un, sun_path) + l + 1) < 0) {
                if (errno != EINTR)
                        return -errno;

                /* Interrupted: the connection goes on in the background; wait for its outcome. */
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                int err = 0;
                socklen_t sl = sizeof err;

                while (poll(&p, 1, -1) < 0)
                        if (errno != EINTR)
                                return -errno;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }

        return gd_client_new_from_fd(TAKE_FD(fd), ret);
}

GdClient *gd_client_free(GdClient *c) {
        if (!c)
                return NULL;

        /* No shutdown(): a forked child may share the socket; closing our copy is all. */
        c->fd = safe_close(c->fd);
        for (size_t i = c->events_head; i < c->n_events; i++)
                gd_event_done(&c->events[i]);
        free(c->events);
        free(c->buf);
        free(c);
        return NULL;
}

int gd_client_get_fd(GdClient *c) {
        if (!c)
                return -EINVAL;
        return c->fd;
}

int gd_client_error_code(GdClient *c) {
        return c ? c->error_code : 0;
}

const char *gd_client_error_message(GdClient *c) {
        return c ? c->error_message : "";
}

const char *gd_client_daemon_host(GdClient *c) {
        return c ? c->host : "";
}

/* ---------------------------------------------------------------- groups */

/* Receives GROUPS packets for `serial` until one without `more`, appending to *groups. */
static int client_gather_groups(GdClient *c, uint32_t serial, GdGroup **groups, size_t *n,
                                size_t *allocated) {
        bool more;

        do {
                int fds[GD_FDS_PER_MSG_MAX];
                size_t n_fds = 0;
                GdMsg m = {};
                int r;

                r = client_recv_reply(c, serial, GD_MSG_GROUPS, &m, fds, &n_fds);
                if (r < 0)
                        return r;
                close_many(fds, n_fds);

                if (*n + m.groups.n_groups > *allocated) {
                        size_t k = MAX(*allocated * 2, *n + m.groups.n_groups);
                        GdGroup *p = realloc(*groups, k * sizeof *p);
                        if (!p) {
                                gd_msg_done(&m);
                                return client_fail(c, -ENOMEM, 0, "out of memory");
                        }
                        *groups = p;
                        *allocated = k;
                }

                /* Move the groups over, then let the codec free the emptied array. */
                if (m.groups.n_groups > 0)
                        memcpy(*groups + *n, m.groups.groups, m.groups.n_groups * sizeof(GdGroup));
                *n += m.groups.n_groups;
                more = m.groups.more;
                free(m.groups.groups);
                m.groups.groups = NULL;
                m.groups.n_groups = 0;
                gd_msg_done(&m);
        } while (more);

        return 0;
}

int gd_client_list_groups(GdClient *c, GdGroup **ret, size_t *ret_n) {
        GdGroup *groups = NULL;
        size_t n = 0, allocated = 0;
        GdMsg req = { .type = GD_MSG_LIST_GROUPS };
        int r;

        if (!c || !ret || !ret_n)
                return -EINVAL;
        client_clear_error(c);

        r = client_send(c, &req, NULL, 0);
        if (r < 0)
                return r;
        r = client_gather_groups(c, req.serial, &groups, &n, &allocated);
        if (r < 0) {
                gd_groups_free(groups, n);
                return r;
        }

        *ret = groups;
        *ret_n = n;
        return (int) MIN(n, (size_t) INT32_MAX);
}

int gd_client_show_group(GdClient *c, const char *spec, GdGroup **ret) {
        GdGroup *groups = NULL;
        size_t n = 0, allocated = 0;
        int r;

        if (!c || !spec || !ret)
                return -EINVAL;
        client_clear_error(c);

        GdMsg req = { .type = GD_MSG_SHOW_GROUP, .spec = (char *) spec };
        r = client_send(c, &req, NULL, 0);
        if (r < 0)
                return r;
        r = client_gather_groups(c, req.serial, &groups, &n, &allocated);
        if (r < 0) {
                gd_groups_free(groups, n);
                return r;
        }
        if (n != 1) {
                gd_groups_free(groups, n);
                return client_fail(c, -EBADMSG, GD_ERR_PROTOCOL, "groupd answered with %zu groups, not one", n);
        }

        *ret = groups;
        return 0;
}

/* ---------------------------------------------------------------- leases */

GdClientLease *gd_client_lease_free(GdClientLease *l) {
        if (!l)
                return NULL;
        if (l->kvm_fd >= 0) {
                for (size_t i = 0; i < l->n_group_fds; i++)
                        (void) kvm_vfio_del(l->kvm_fd, l->group_fds[i], l->lease.groups[i]);
                l->kvm_fd = safe_close(l->kvm_fd);
        }
        l->container_fd = safe_close(l->container_fd);
        if (l->group_fds)
                close_many(l->group_fds, l->n_group_fds);
        free(l->group_fds);
        l->iommufd = safe_close(l->iommufd);
        if (l->device_fds)
                close_many(l->device_fds, l->n_device_fds);
        free(l->device_fds);
        for (size_t i = 0; l->device_addresses && i < l->n_device_fds; i++)
                free(l->device_addresses[i]);
        free(l->device_addresses);
        for (size_t i = 0; l->nodes && i < l->n_nodes; i++)
                free(l->nodes[i]);
        free(l->nodes);
        l->lease_fd = safe_close(l->lease_fd);
        gd_lease_done(&l->lease);
        free(l);
        return NULL;
}

int gd_client_acquire(GdClient *c, const char *const *specs, size_t n_specs, const GdAcquireOptions *opts,
                      GdClientLease **ret) {
        static const GdAcquireOptions defaults = { .owner_pidfd = -EBADF };
        int fds[GD_FDS_PER_MSG_MAX];
        GdClientLease *l = NULL;
        GdMsg reply = {};
        size_t n_fds = 0, want;
        int pidfd, kvmfd, delivery, r;

        if (!c || (!specs && n_specs > 0) || !ret)
                return -EINVAL;
        client_clear_error(c);

        if (!opts)
                opts = &defaults;
        if (n_specs == 0 || n_specs > GD_GROUPS_PER_ACQUIRE_MAX)
                return client_fail(c, -EINVAL, GD_ERR_INVALID, "an acquire names 1 to %u groups, not %zu",
                                   GD_GROUPS_PER_ACQUIRE_MAX, n_specs);
        for (size_t i = 0; i < n_specs; i++)
                if (!specs[i])
                        return client_fail(c, -EINVAL, GD_ERR_INVALID, "group %zu of the acquire is NULL", i);

        pidfd = opts->owner_pidfd > 0 ? opts->owner_pidfd : -EBADF;
        kvmfd = opts->kvm_fd > 0 ? opts->kvm_fd : -EBADF;
        if (opts->viommu && opts->memlock_guest_ram == 0)
                return client_fail(c, -EINVAL, GD_ERR_INVALID, "viommu is for memlock: give the guest's RAM too");
        if (kvmfd >= 0) {
                r = kvm_vfio_kind(kvmfd);
                if (r < 0)
                        return client_fail(c, r, GD_ERR_INVALID, "fd %i is not a kvm-vfio device%s", kvmfd,
                                           kvm_vfio_error_hint(r));
        }
        delivery = opts->delivery ? gd_delivery_from_string(opts->delivery) : GD_DELIVERY_AUTO;
        if (delivery < 0)
                return client_fail(c, -EINVAL, GD_ERR_INVALID,
                                   "unknown delivery mode \"%s\" (iommufd, legacy, node-grant or auto)",
                                   opts->delivery);
        if (kvmfd >= 0 && delivery == GD_DELIVERY_AUTO)
                delivery = GD_DELIVERY_LEGACY;
        if (kvmfd >= 0 && delivery != GD_DELIVERY_LEGACY)
                return client_fail(c, -EINVAL, GD_ERR_INVALID, "kvm_fd registers group fds: it needs legacy "
                                   "delivery, not %s", gd_delivery_to_string(delivery));
        if (opts->grant_uid_set && delivery != GD_DELIVERY_NODE_GRANT)
                return client_fail(c, -EINVAL, GD_ERR_INVALID, "a grant uid goes with node-grant delivery only");

        GdMsg req = {
                .type = GD_MSG_ACQUIRE,
                .acquire = {
                        .flags = (opts->configure_iommu ? GD_ACQUIRE_CONFIGURE_IOMMU : 0) |
                                 (pidfd >= 0 ? GD_ACQUIRE_OWNER_PROCESS : 0) |
                                 (opts->lease_fd ? GD_ACQUIRE_LEASE_FD : 0) |
                                 (kvmfd >= 0 ? GD_ACQUIRE_KVM : 0) |
                                 (opts->memlock_guest_ram > 0 ? GD_ACQUIRE_MEMLOCK : 0) |
                                 (opts->viommu ? GD_ACQUIRE_VIOMMU : 0) |
                                 GD_ACQUIRE_DELIVERY,
                        .label = (char *) opts->label,
                        .specs = (char **) specs,
                        .n_specs = (uint16_t) n_specs,
                        .guest_ram = opts->memlock_guest_ram,
                        .delivery = (uint32_t) delivery,
                        .grant_uid = opts->grant_uid_set ? opts->grant_uid : GD_GRANT_UID_CALLER,
                },
        };

        /* A daemon older than the delivery modes refuses the DELIVERY flag as malformed (ERROR protocol):
         * what it can do, legacy (which auto means there), is asked again as protocol 1 asked it, and the
         * connection remembers. */
        if (c->no_delivery && (delivery == GD_DELIVERY_AUTO || delivery == GD_DELIVERY_LEGACY)) {
                req.acquire.flags &= ~(uint32_t) GD_ACQUIRE_DELIVERY;
                delivery = GD_DELIVERY_LEGACY;
        } else if (c->no_delivery)
                return client_fail(c, -EOPNOTSUPP, GD_ERR_INVALID, "this groupd predates delivery %s",
                                   gd_delivery_to_string(delivery));
        for (;;) {
                bool with_delivery = req.acquire.flags & GD_ACQUIRE_DELIVERY;

                r = client_send(c, &req, pidfd >= 0 ? &pidfd : NULL, pidfd >= 0 ? 1 : 0);
                if (r < 0)
                        return r;
                r = client_recv_reply(c, req.serial, with_delivery ? GD_MSG_ACQUIRED_DELIVERY : GD_MSG_ACQUIRED,
                                      &reply, fds, &n_fds);
                if (r < 0 && with_delivery && c->error_from_daemon && c->error_code == GD_ERR_PROTOCOL) {
                        if (delivery != GD_DELIVERY_AUTO && delivery != GD_DELIVERY_LEGACY) {
                                char msg[GD_TEXT_MAX + 1];
                                snprintf(msg, sizeof msg, "%s", c->error_message);
                                return client_fail(c, -EOPNOTSUPP, GD_ERR_PROTOCOL,
                                                   "this groupd predates delivery %s (it said: %s)",
                                                   gd_delivery_to_string(delivery), msg);
                        }
                        c->no_delivery = true;
                        req.acquire.flags &= ~(uint32_t) GD_ACQUIRE_DELIVERY;
                        delivery = GD_DELIVERY_LEGACY;
                        client_clear_error(c);
                        continue;
                }
                if (r < 0)
                        return r;
                break;
        }

        /* As the delivery says (legacy: the container and one fd per group; iommufd: the iommufd and one
         * per device; node-grant: none), and the lease fd when asked for: exactly. */
        want = gd_msg_expected_fds(&reply);
        if (n_fds != want || !gd_token_is_valid(reply.acquired.token) || reply.acquired.lease.n_groups == 0 ||
            (reply.acquired.lease.owner_kind == GD_OWNER_LEASE_FD) != opts->lease_fd ||
            (delivery != GD_DELIVERY_AUTO && reply.acquired.delivery != (uint32_t) delivery)) {
                close_many(fds, n_fds);
                gd_msg_done(&reply);
                return client_fail(c, -EBADMSG, GD_ERR_PROTOCOL,
                                   "malformed ACQUIRED reply from groupd (%zu fds, want %zu)", n_fds, want);
        }

        l = calloc(1, sizeof *l);
        if (l) {
                l->container_fd = l->iommufd = l->lease_fd = l->kvm_fd = -EBADF;
                l->group_fds = calloc(reply.acquired.lease.n_groups, sizeof(int));
                l->device_fds = calloc(MAX(reply.acquired.n_devices, (uint16_t) 1), sizeof(int));
        }
        if (!l || !l->group_fds || !l->device_fds) {
                if (l) {
                        free(l->group_fds);
                        free(l->device_fds);
                }
                free(l);
                close_many(fds, n_fds);
                gd_msg_done(&reply);
                return client_fail(c, -ENOMEM, 0, "out of memory");
        }

        memcpy(l->token, reply.acquired.token, GD_TOKEN_LEN);
        l->token[GD_TOKEN_LEN] = 0;
        l->lease = reply.acquired.lease;
        reply.acquired.lease = (GdLease) {};
        l->iommu_type = reply.acquired.iommu_type;
        l->dma = reply.acquired.dma;
        l->memlock = reply.acquired.memlock;
        l->delivery = reply.acquired.delivery;
        l->grant_uid = reply.acquired.grant_uid;
        if (l->delivery == GD_DELIVERY_LEGACY) {
                l->container_fd = fds[0];
                l->n_group_fds = l->lease.n_groups;
                memcpy(l->group_fds, fds + 1, l->n_group_fds * sizeof(int));
        } else if (l->delivery == GD_DELIVERY_IOMMUFD) {
                l->iommufd = fds[0];
                l->n_device_fds = reply.acquired.n_devices;
                memcpy(l->device_fds, fds + 1, l->n_device_fds * sizeof(int));
                l->device_addresses = TAKE_PTR(reply.acquired.devices);
                reply.acquired.n_devices = 0;
        } else {
                l->nodes = TAKE_PTR(reply.acquired.nodes);
                l->n_nodes = reply.acquired.n_nodes;
                reply.acquired.n_nodes = 0;
        }
        l->lease_fd = opts->lease_fd ? fds[n_fds - 1] : -EBADF;
        gd_msg_done(&reply);

        /* Registered with the VM right away, as QEMU does after opening a group; if KVM refuses, the lease
         * goes back at once and the caller gets the kernel's answer. */
        if (kvmfd >= 0) {
                r = gd_client_lease_kvm_add(c, l, kvmfd);
                if (r < 0) {
                        char msg[GD_TEXT_MAX + 1];
                        int code = gd_client_error_code(c);

                        snprintf(msg, sizeof msg, "%s", gd_client_error_message(c));
                        (void) gd_client_release(c, l->token);
                        gd_client_lease_free(l);
                        return client_fail(c, r, code, "%s; the lease was given back", msg);
                }
        }

        *ret = l;
        return 0;
}

/* ---------------------------------------------------------------- DMA facts */

int gd_client_dma_info(GdClient *c, const char *spec, GdDmaInfo **ret) {
        GdMsg reply = {};
        GdDmaInfo *d;
        int r;

        if (!c || !spec || !ret)
                return -EINVAL;
        client_clear_error(c);

        GdMsg req = { .type = GD_MSG_DMA_INFO, .spec = (char *) spec };
        r = client_call(c, &req, NULL, 0, GD_MSG_DMA_INFO_REPLY, &reply);
        if (r < 0)
                return r;
        d = malloc(sizeof *d);
        if (!d) {
                gd_msg_done(&reply);
                return client_fail(c, -ENOMEM, 0, "out of memory");
        }
        *d = reply.dma_info;
        reply.dma_info = (GdDmaInfo) {};
        reply.type = 0; /* nothing left to free */
        *ret = d;
        return 0;
}

/* ---------------------------------------------------------------- releasing, revoking, listing */

int gd_client_release(GdClient *c, const char *token) {
        GdMsg reply = {};
        int r;

        if (!c || !token)
                return -EINVAL;
        client_clear_error(c);

        GdMsg req = { .type = GD_MSG_RELEASE, .token = (char *) token };
        r = client_call(c, &req, NULL, 0, GD_MSG_OK, &reply);
        if (r < 0)
                return r;
        gd_msg_done(&reply);
        return 0;
}

int gd_client_revoke(GdClient *c, const char *lease_id, uint32_t deadline_sec, uint32_t flags) {
        GdMsg reply = {};
        int r;

        if (!c || isempty(lease_id) || (flags & ~(uint32_t) _GD_REVOKE_ALL))
                return -EINVAL;
        client_clear_error(c);

        GdMsg req = { .type = GD_MSG_REVOKE,
                      .revoke = { .lease_id = (char *) lease_id, .deadline_sec = deadline_sec, .flags = flags } };
        r = client_call(c, &req, NULL, 0, GD_MSG_OK, &reply);
        if (r < 0)
                return r;
        gd_msg_done(&reply);
        return 0;
}

int gd_client_list_leases(GdClient *c, GdLease **ret, size_t *ret_n) {
        GdLease *leases = NULL;
        size_t n = 0, allocated = 0;
        bool more;
        int r;

        if (!c || !ret || !ret_n)
                return -EINVAL;
        client_clear_error(c);

        GdMsg req = { .type = GD_MSG_LIST_LEASES };
        r = client_send(c, &req, NULL, 0);
        if (r < 0)
                return r;

        do {
                int fds[GD_FDS_PER_MSG_MAX];
                size_t n_fds = 0;
                GdMsg m = {};

                r = client_recv_reply(c, req.serial, GD_MSG_LEASES, &m, fds, &n_fds);
                if (r < 0) {
                        gd_leases_free(leases, n);
                        return r;
                }
                close_many(fds, n_fds);

                if (n + m.leases.n_leases > allocated) {
                        size_t k = MAX(allocated * 2, n + m.leases.n_leases);
                        GdLease *p = realloc(leases, k * sizeof *p);
                        if (!p) {
                                gd_msg_done(&m);
                                gd_leases_free(leases, n);
                                return client_fail(c, -ENOMEM, 0, "out of memory");
                        }
                        leases = p;
                        allocated = k;
                }
                if (m.leases.n_leases > 0)
                        memcpy(leases + n, m.leases.leases, m.leases.n_leases * sizeof(GdLease));
                n += m.leases.n_leases;
                more = m.leases.more;
                free(m.leases.leases);
                m.leases.leases = NULL;
                m.leases.n_leases = 0;
                gd_msg_done(&m);
        } while (more);

        *ret = leases;
        *ret_n = n;
        return (int) MIN(n, (size_t) INT32_MAX);
}

/* ---------------------------------------------------------------- status and events */

int gd_client_status(GdClient *c, GdStatus *ret) {
        GdMsg reply = {};
        int r;

        if (!c || !ret)
                return -EINVAL;
        client_clear_error(c);

        GdMsg req = { .type = GD_MSG_STATUS };
        r = client_call(c, &req, NULL, 0, GD_MSG_STATUS_REPLY, &reply);
        if (r < 0)
                return r;

        *ret = reply.status;
        reply.status = (GdStatus) {};
        gd_msg_done(&reply);
        return 0;
}

int gd_client_subscribe(GdClient *c, uint32_t mask) {
        GdMsg reply = {};
        int r;

        if (!c)
                return -EINVAL;
        client_clear_error(c);

        GdMsg req = { .type = GD_MSG_SUBSCRIBE, .event_mask = mask };
        r = client_call(c, &req, NULL, 0, GD_MSG_OK, &reply);
        if (r < 0)
                return r;
        gd_msg_done(&reply);
        return 0;
}

static uint64_t now_msec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

int gd_client_next_event(GdClient *c, int timeout_ms, GdEvent *ret) {
        uint64_t deadline = 0;

        if (!c || !ret)
                return -EINVAL;
        client_clear_error(c);

        if (client_pop_event(c, ret))
                return 1;
        if (c->fd < 0)
                return client_fail(c, -ENOTCONN, 0, "not connected to groupd");

        if (timeout_ms > 0)
                deadline = now_msec() + (uint64_t) timeout_ms;

        for (;;) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int fds[GD_FDS_PER_MSG_MAX], wait_ms = timeout_ms < 0 ? -1 : 0, r;
                size_t n_fds = 0;
                GdMsg m = {};

                if (timeout_ms > 0) {
                        uint64_t now = now_msec();
                        wait_ms = now >= deadline ? 0 : (int) MIN(deadline - now, (uint64_t) INT32_MAX);
                }

                r = poll(&p, 1, wait_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return client_fail(c, -errno, 0, "%m");
                }
                if (r == 0)
                        return 0;

                r = client_recv_one(c, &m, fds, &n_fds);
                if (r < 0)
                        return client_fail_io(c, r);
                close_many(fds, n_fds);

                if (m.type == GD_MSG_EVENT && m.serial == 0) {
                        *ret = m.event;
                        m.event = (GdEvent) {};
                        gd_msg_done(&m);
                        return 1;
                }

                if (m.type == GD_MSG_ERROR && m.serial == 0) {
                        r = client_take_error(c, &m.error);
                        gd_msg_done(&m);
                        return r;
                }

                uint16_t got = m.type;
                gd_msg_done(&m);
                return client_fail(c, -EBADMSG, GD_ERR_PROTOCOL, "unexpected %s from groupd, no request pending",
                                   strna(gd_msg_type_to_string(got)));
        }
}
