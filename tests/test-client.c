/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libgroupd against a fake daemon: a forked child on the other end of a socketpair() that speaks the wire
 * protocol with gd_msg_encode()/gd_msg_decode() and follows a script. The child checks what the library
 * sends (and exits non-zero when it is wrong); the test checks what the library makes of the answers. */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "fd-util.h"
#include "groupd-client.h"
#include "test-util.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

/* ---------------------------------------------------------------- the fake daemon's side */

#define EXPECT(x)                                                                                  \
        do {                                                                                       \
                if (!(x)) {                                                                        \
                        fprintf(stderr, "fake daemon: %s:%d: expected %s\n", __FILE__, __LINE__, #x); \
                        _exit(1);                                                                  \
                }                                                                                  \
        } while (0)

static uint8_t fbuf[GD_MSG_SIZE_MAX];

/* Receives one request; returns its fds in fds[] (up to 8). */
static void fake_recv(int fd, GdMsg *m, int *fds, size_t *n_fds) {
        int got[FD_MSG_MAX];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        size_t n = 0;
        ssize_t l;

        EXPECT(poll(&p, 1, 10000) == 1);   /* a client that never asks fails, in 10 s */
        l = fd_recv_msg(fd, fbuf, sizeof fbuf, got, ELEMENTSOF(got), &n);
        EXPECT(l > 0);
        EXPECT(gd_msg_decode(fbuf, (size_t) l, m) == 0);
        if (fds) {
                EXPECT(n <= 8);
                memcpy(fds, got, n * sizeof(int));
                *n_fds = n;
        } else {
                EXPECT(n == 0);
        }
}

static void fake_send(int fd, const GdMsg *m, const int *fds, size_t n_fds) {
        size_t len;

        EXPECT(gd_msg_encode(m, fbuf, sizeof fbuf, &len) == 0);
        EXPECT(fd_send_msg(fd, fbuf, len, fds, n_fds) == 0);
}

/* Receives a request of this type and returns its serial. */
static uint32_t fake_expect(int fd, uint16_t type, GdMsg *ret) {
        GdMsg m = {};
        uint32_t serial;

        fake_recv(fd, &m, NULL, NULL);
        EXPECT(m.type == type);
        EXPECT(m.serial != 0);
        serial = m.serial;
        if (ret)
                *ret = m;
        else
                gd_msg_done(&m);
        return serial;
}

static void fake_ok(int fd, uint32_t serial) {
        fake_send(fd, &(GdMsg) { .type = GD_MSG_OK, .serial = serial }, NULL, 0);
}

static void fake_hello(int fd) {
        GdMsg m = {};
        uint32_t serial = fake_expect(fd, GD_MSG_HELLO, &m);

        EXPECT(m.hello.version_min <= GD_PROTO_VERSION && m.hello.version_max >= GD_PROTO_VERSION);
        EXPECT(m.hello.name && strlen(m.hello.name) > 0);
        gd_msg_done(&m);
        fake_send(fd,
                  &(GdMsg) {
                          .type = GD_MSG_HELLO_REPLY,
                          .serial = serial,
                          .hello = { .version_min = 1, .version_max = 1, .name = (char *) "9.9",
                                     .host = (char *) "sim" },
                  },
                  NULL, 0);
}

/* Waits for the client to hang up (and nothing else). */
static void fake_expect_eof(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t l;

        EXPECT(poll(&p, 1, 10000) == 1);   /* a client that never hangs up fails, in 10 s */
        l = recv(fd, fbuf, sizeof fbuf, 0);
        EXPECT(l == 0);
}

static void fake_event(int fd, const char *id, GdEventKind kind) {
        uint32_t groups[] = { 1 };
        fake_send(fd,
                  &(GdMsg) {
                          .type = GD_MSG_EVENT,
                          .serial = 0,
                          .event = {
                                  .kind = kind,
                                  .lease = { .id = (char *) id, .label = (char *) "vm1", .groups = groups,
                                             .n_groups = 1 },
                                  .reason = GD_REASON_OWNER_EXITED,
                                  .detail = (char *) "host drivers restored: 0000:01:00.0 → nouveau",
                          },
                  },
                  NULL, 0);
}

/* ---------------------------------------------------------------- the test's side */

typedef void (*Script)(int fd);

static pid_t fake_pid = -1;

/* Starts the fake daemon running script and connects a client to it. */
static GdClient *fake_start(Script script) {
        GdClient *c = NULL;
        int sp[2], r;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        fake_pid = fork();
        ck_assert_int_ge(fake_pid, 0);
        if (fake_pid == 0) {
                close(sp[0]);
                alarm(20);
                script(sp[1]);
                _exit(0);
        }
        close(sp[1]);

        r = gd_client_new_from_fd(sp[0], &c);
        ck_assert_msg(r == 0, "gd_client_new_from_fd: %s", strerror(-r));
        return c;
}

/* Frees the client and checks that the fake daemon saw everything it expected. */
static void fake_finish(GdClient *c) {
        int status = 0;

        gd_client_free(c);
        ck_assert_int_eq(waitpid(fake_pid, &status, 0), fake_pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fake daemon failed (status 0x%x)", status);
        fake_pid = -1;
}

/* ---------------------------------------------------------------- hello */

static void script_hello_then_eof(int fd) {
        fake_hello(fd);
        fake_expect_eof(fd);
}

START_TEST(test_hello) {
        GdClient *c = fake_start(script_hello_then_eof);

        ck_assert_str_eq(gd_client_daemon_host(c), "sim");
        ck_assert_int_eq(gd_client_error_code(c), 0);
        ck_assert_int_ge(gd_client_get_fd(c), 0);
        ck_assert(fcntl(gd_client_get_fd(c), F_GETFD) & FD_CLOEXEC);
        fake_finish(c);
}
END_TEST

static void script_version_refused(int fd) {
        uint32_t serial = fake_expect(fd, GD_MSG_HELLO, NULL);
        fake_send(fd,
                  &(GdMsg) {
                          .type = GD_MSG_ERROR,
                          .serial = serial,
                          .error = { .code = GD_ERR_VERSION, .errno_value = 0, .message = (char *) "only version 7" },
                  },
                  NULL, 0);
        fake_expect_eof(fd);
}

START_TEST(test_hello_version_refused) {
        int sp[2], status;
        GdClient *c = NULL;
        pid_t pid;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(sp[0]);
                alarm(20);
                script_version_refused(sp[1]);
                _exit(0);
        }
        close(sp[1]);
        /* No common version: the errno of GD_ERR_VERSION, and the connection is closed (EOF above). */
        ck_assert_int_eq(gd_client_new_from_fd(sp[0], &c), -EPROTONOSUPPORT);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* ---------------------------------------------------------------- lists in several packets */

static void script_lists(int fd) {
        GdDevice d1[] = {
                { .address = (char *) "0000:01:00.0", .vendor = 0x10de, .device = 0x1eb8, .class_code = 0x030200,
                  .driver = (char *) "nouveau", .driver_override = (char *) "" },
                { .address = (char *) "0000:01:00.1", .vendor = 0x10de, .device = 0x10fa, .class_code = 0x040300,
                  .driver = (char *) "snd_hda_intel", .driver_override = (char *) "" },
        };
        GdRegion r1[] = { { .start = 0xfee00000, .end = 0xfeefffff, .type = (char *) "msi" } };
        GdGroup first[] = {
                { .id = 0, .flags = GD_GROUP_VIABLE, .type = (char *) "DMA-FQ" },
                { .id = 1, .type = (char *) "DMA-FQ", .viability = (char *) "0000:01:00.0 is bound to nouveau",
                  .devices = d1, .n_devices = 2, .regions = r1, .n_regions = 1 },
        };
        GdGroup second[] = {
                { .id = 7, .flags = GD_GROUP_VIABLE | GD_GROUP_LEASED, .type = (char *) "DMA",
                  .lease_id = (char *) "3f2a", .holder_label = (char *) "vm1", .holder_uid = 107, .holder_pid = 1234 },
        };
        uint32_t g1[] = { 7 }, g2[] = { 2, 3 };
        GdLease leases1[] = { { .id = (char *) "3f2a", .label = (char *) "vm1", .groups = g1, .n_groups = 1 } };
        GdLease leases2[] = { { .id = (char *) "77aa", .owner_kind = GD_OWNER_PROCESS, .owner_pid = 99, .groups = g2,
                                .n_groups = 2 } };
        GdMsg m = {};
        uint32_t serial;

        fake_hello(fd);

        serial = fake_expect(fd, GD_MSG_LIST_GROUPS, NULL);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_GROUPS, .serial = serial,
                             .groups = { .more = 1, .groups = first, .n_groups = 2 } },
                  NULL, 0);
        /* An event between the packets of one reply is queued, not mistaken for it. */
        fake_event(fd, "0ld1", GD_EVENT_LEASE_STARTED);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_GROUPS, .serial = serial,
                             .groups = { .more = 0, .groups = second, .n_groups = 1 } },
                  NULL, 0);

        serial = fake_expect(fd, GD_MSG_LIST_LEASES, NULL);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_LEASES, .serial = serial,
                             .leases = { .more = 1, .leases = leases1, .n_leases = 1 } },
                  NULL, 0);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_LEASES, .serial = serial,
                             .leases = { .more = 0, .leases = leases2, .n_leases = 1 } },
                  NULL, 0);

        serial = fake_expect(fd, GD_MSG_SHOW_GROUP, &m);
        EXPECT(m.spec && strcmp(m.spec, "0000:01:00.1") == 0);
        gd_msg_done(&m);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_GROUPS, .serial = serial, .groups = { .groups = first + 1, .n_groups = 1 } },
                  NULL, 0);

        /* An empty list is one packet with no groups. */
        serial = fake_expect(fd, GD_MSG_LIST_GROUPS, NULL);
        fake_send(fd, &(GdMsg) { .type = GD_MSG_GROUPS, .serial = serial }, NULL, 0);

        fake_expect_eof(fd);
}

START_TEST(test_lists) {
        GdClient *c = fake_start(script_lists);
        GdGroup *g = NULL;
        GdLease *l = NULL;
        GdEvent e = {};
        size_t n = 0;

        ck_assert_int_eq(gd_client_list_groups(c, &g, &n), 3);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(g[0].id, 0);
        ck_assert_uint_eq(g[1].id, 1);
        ck_assert_uint_eq(g[2].id, 7);
        ck_assert_uint_eq(g[1].n_devices, 2);
        ck_assert_str_eq(g[1].devices[1].address, "0000:01:00.1");
        ck_assert_str_eq(g[1].devices[1].driver, "snd_hda_intel");
        ck_assert_uint_eq(g[1].devices[0].vendor, 0x10de);
        ck_assert_uint_eq(g[1].devices[0].class_code, 0x030200);
        ck_assert_str_eq(g[1].viability, "0000:01:00.0 is bound to nouveau");
        ck_assert_uint_eq(g[1].n_regions, 1);
        ck_assert_uint_eq(g[1].regions[0].end, 0xfeefffff);
        ck_assert(g[2].flags & GD_GROUP_LEASED);
        ck_assert_str_eq(g[2].holder_label, "vm1");
        ck_assert_uint_eq(g[2].holder_uid, 107);
        gd_groups_free(g, n);

        ck_assert_int_eq(gd_client_list_leases(c, &l, &n), 2);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(l[0].id, "3f2a");
        ck_assert_str_eq(l[1].id, "77aa");
        ck_assert_uint_eq(l[1].n_groups, 2);
        ck_assert_uint_eq(l[1].groups[1], 3);
        ck_assert_uint_eq(l[1].owner_pid, 99);
        gd_leases_free(l, n);

        ck_assert_int_eq(gd_client_show_group(c, "0000:01:00.1", &g), 0);
        ck_assert_uint_eq(g->id, 1);
        ck_assert_uint_eq(g->n_devices, 2);
        gd_groups_free(g, 1);

        g = NULL;
        ck_assert_int_eq(gd_client_list_groups(c, &g, &n), 0);
        ck_assert_uint_eq(n, 0);
        gd_groups_free(g, n);

        /* The event that came between the packets. */
        ck_assert_int_eq(gd_client_next_event(c, 0, &e), 1);
        ck_assert_uint_eq(e.kind, GD_EVENT_LEASE_STARTED);
        ck_assert_str_eq(e.lease.id, "0ld1");
        gd_event_done(&e);
        ck_assert_int_eq(gd_client_next_event(c, 0, &e), 0);

        fake_finish(c);
}
END_TEST

/* ---------------------------------------------------------------- acquire: fds */

static int pipe_with(const char *text) {
        int p[2];
        EXPECT(pipe2(p, O_CLOEXEC) == 0);
        EXPECT(write(p[1], text, strlen(text)) == (ssize_t) strlen(text));
        close(p[1]);
        return p[0];
}

static void script_acquire(int fd) {
        uint32_t groups[] = { 1, 7 };
        int fds[8], extra[2], send_fds[4];
        size_t n_fds = 0;
        struct pollfd p;
        GdMsg m = {};
        uint32_t serial;
        char b[16];

        fake_hello(fd);

        /* The request: flags, label, specs, and the owner's pidfd attached. */
        fake_recv(fd, &m, fds, &n_fds);
        EXPECT(m.type == GD_MSG_ACQUIRE);
        EXPECT(m.acquire.flags == (GD_ACQUIRE_OWNER_PROCESS | GD_ACQUIRE_CONFIGURE_IOMMU | GD_ACQUIRE_DELIVERY));
        EXPECT(m.acquire.delivery == GD_DELIVERY_AUTO && m.acquire.grant_uid == GD_GRANT_UID_CALLER);
        EXPECT(m.acquire.label && strcmp(m.acquire.label, "vm1") == 0);
        EXPECT(m.acquire.n_specs == 2);
        EXPECT(strcmp(m.acquire.specs[0], "1") == 0 && strcmp(m.acquire.specs[1], "0000:07:00.0") == 0);
        EXPECT(n_fds == 1);
        /* It is the fd the client passed: a pipe's read end with "pid" waiting in it. */
        EXPECT(read(fds[0], b, sizeof b) == 3 && memcmp(b, "pid", 3) == 0);
        close(fds[0]);
        serial = m.serial;
        gd_msg_done(&m);

        /* The reply: container and two groups, each a pipe with a word in it, and one fd too many: the
         * write end of a pipe whose read end we keep, so that we see whether the client closed it. */
        EXPECT(pipe2(extra, O_CLOEXEC) == 0);
        send_fds[0] = pipe_with("container");
        send_fds[1] = pipe_with("group1");
        send_fds[2] = pipe_with("group7");
        send_fds[3] = extra[1];
        fake_send(fd,
                  &(GdMsg) {
                          .type = GD_MSG_ACQUIRED_DELIVERY,
                          .serial = serial,
                          .acquired = {
                                  .delivery = GD_DELIVERY_LEGACY,
                                  .token = (char *) TOKEN,
                                  .lease = { .id = (char *) "3f2a", .label = (char *) "vm1",
                                             .owner_kind = GD_OWNER_PROCESS, .owner_pid = 42,
                                             .state = GD_LEASE_ACTIVE, .groups = groups, .n_groups = 2 },
                                  .iommu_type = 8,
                          },
                  },
                  send_fds, 4);
        close_many(send_fds, 4);

        /* The client's next request: by now its copy of the extra fd must be closed. */
        serial = fake_expect(fd, GD_MSG_STATUS, NULL);
        p = (struct pollfd) { .fd = extra[0], .events = POLLIN };
        EXPECT(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_STATUS_REPLY, .serial = serial,
                             .status = { .version = (char *) "9.9", .host = (char *) "sim", .n_groups = 8,
                                         .n_leases = 1, .n_clients = 2, .started_usec = 1000000 } },
                  NULL, 0);

        /* A reply that lacks an fd: two groups, but only the container and one group fd. */
        fake_recv(fd, &m, fds, &n_fds);
        EXPECT(m.type == GD_MSG_ACQUIRE && n_fds == 0 && m.acquire.flags == GD_ACQUIRE_DELIVERY);
        serial = m.serial;
        gd_msg_done(&m);
        EXPECT(pipe2(extra, O_CLOEXEC) == 0);
        send_fds[0] = extra[1];
        send_fds[1] = pipe_with("group1");
        fake_send(fd,
                  &(GdMsg) {
                          .type = GD_MSG_ACQUIRED_DELIVERY,
                          .serial = serial,
                          .acquired = { .token = (char *) TOKEN,
                                        .lease = { .id = (char *) "3f2b", .groups = groups, .n_groups = 2 } },
                  },
                  send_fds, 2);
        close_many(send_fds, 2);

        /* The client refuses it and closes what came with it. */
        serial = fake_expect(fd, GD_MSG_RELEASE, &m);
        EXPECT(strcmp(m.token, TOKEN) == 0);
        gd_msg_done(&m);
        p = (struct pollfd) { .fd = extra[0], .events = POLLIN };
        EXPECT(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
        fake_ok(fd, serial);

        fake_expect_eof(fd);
}

static void read_word(int fd, const char *want) {
        char b[32] = {};
        test_wait_readable(fd, 10000, want);
        ck_assert_int_eq(read(fd, b, sizeof b - 1), (ssize_t) strlen(want));
        ck_assert_str_eq(b, want);
}

START_TEST(test_acquire_fds) {
        GdClient *c = fake_start(script_acquire);
        const char *specs[] = { "1", "0000:07:00.0" };
        GdClientLease *l = NULL;
        GdStatus s = {};
        int pidfd_standin;

        pidfd_standin = pipe_with("pid");
        ck_assert_int_eq(gd_client_acquire(c, specs, 2,
                                           &(GdAcquireOptions) { .label = "vm1", .configure_iommu = true,
                                                                 .owner_pidfd = pidfd_standin },
                                           &l),
                         0);
        /* Borrowed, not closed. */
        ck_assert(test_fd_is_open(pidfd_standin));
        close(pidfd_standin);

        ck_assert_str_eq(l->token, TOKEN);
        ck_assert_str_eq(l->lease.id, "3f2a");
        ck_assert_uint_eq(l->lease.owner_pid, 42);
        ck_assert_uint_eq(l->iommu_type, 8);
        ck_assert_uint_eq(l->n_group_fds, 2);
        ck_assert_int_lt(l->lease_fd, 0);
        /* Working fds, in order, close-on-exec. */
        read_word(l->container_fd, "container");
        read_word(l->group_fds[0], "group1");
        read_word(l->group_fds[1], "group7");
        ck_assert(fcntl(l->container_fd, F_GETFD) & FD_CLOEXEC);
        ck_assert(fcntl(l->group_fds[1], F_GETFD) & FD_CLOEXEC);

        ck_assert_int_eq(gd_client_status(c, &s), 0);
        ck_assert_uint_eq(s.n_clients, 2);
        ck_assert_str_eq(s.host, "sim");
        ck_assert_uint_eq(s.started_usec, 1000000);
        gd_status_done(&s);

        int fd0 = l->container_fd;
        l = gd_client_lease_free(l);
        ck_assert(!test_fd_is_open(fd0));

        /* A reply short of an fd is a protocol error. */
        ck_assert_int_eq(gd_client_acquire(c, specs, 1, NULL, &l), -EBADMSG);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_PROTOCOL);
        ck_assert_ptr_null(l);

        ck_assert_int_eq(gd_client_release(c, TOKEN), 0);
        ck_assert_int_eq(gd_client_error_code(c), 0);
        fake_finish(c);
}
END_TEST

/* ---------------------------------------------------------------- a daemon older than the delivery modes */

/* It calls the DELIVERY flag malformed, as protocol 1's decoder does; then answers the plain ACQUIRE with a
 * plain ACQUIRED. A second acquire on the connection comes plain at once; an iommufd one is refused here,
 * locally, without asking. */
static void script_old_daemon(int fd) {
        static uint32_t groups[] = { 4 };
        GdMsg m = {};
        int fds[GD_FDS_PER_MSG_MAX], send_fds[2];
        size_t n_fds = 0;
        uint32_t serial;

        fake_hello(fd);
        for (int round = 0; round < 2; round++) {
                if (round == 0) {
                        fake_recv(fd, &m, fds, &n_fds);
                        EXPECT(m.type == GD_MSG_ACQUIRE && (m.acquire.flags & GD_ACQUIRE_DELIVERY));
                        fake_send(fd,
                                  &(GdMsg) { .type = GD_MSG_ERROR, .serial = m.serial,
                                             .error = { .code = GD_ERR_PROTOCOL, .errno_value = EBADMSG,
                                                        .message = (char *) "malformed message" } },
                                  NULL, 0);
                        gd_msg_done(&m);
                }
                fake_recv(fd, &m, fds, &n_fds);
                EXPECT(m.type == GD_MSG_ACQUIRE && m.acquire.flags == 0 && n_fds == 0);
                serial = m.serial;
                gd_msg_done(&m);
                send_fds[0] = pipe_with("container");
                send_fds[1] = pipe_with("group4");
                fake_send(fd,
                          &(GdMsg) { .type = GD_MSG_ACQUIRED, .serial = serial,
                                     .acquired = { .token = (char *) TOKEN,
                                                   .lease = { .id = (char *) "old", .state = GD_LEASE_ACTIVE,
                                                              .groups = groups, .n_groups = 1 } } },
                          send_fds, 2);
                close_many(send_fds, 2);
        }
        fake_expect_eof(fd);
}

START_TEST(test_old_daemon) {
        GdClient *c = fake_start(script_old_daemon);
        const char *specs[] = { "4" };
        GdClientLease *l = NULL;

        /* auto: asked with DELIVERY, refused as malformed, asked again as protocol 1 did: legacy. */
        ck_assert_int_eq(gd_client_acquire(c, specs, 1, NULL, &l), 0);
        ck_assert_uint_eq(l->delivery, GD_DELIVERY_LEGACY);
        read_word(l->container_fd, "container");
        read_word(l->group_fds[0], "group4");
        l = gd_client_lease_free(l);
        ck_assert_int_eq(gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .delivery = "legacy" }, &l), 0);
        ck_assert_uint_eq(l->n_group_fds, 1);
        l = gd_client_lease_free(l);
        /* What only the modes can do: refused here, saying why, nothing sent. */
        ck_assert_int_eq(gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .delivery = "iommufd" }, &l),
                         -EOPNOTSUPP);
        ck_assert_msg(strstr(gd_client_error_message(c), "predates delivery iommufd"), "%s",
                      gd_client_error_message(c));
        ck_assert_int_eq(gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .delivery = "sideways" }, &l), -EINVAL);
        ck_assert_msg(strstr(gd_client_error_message(c), "unknown delivery mode \"sideways\""), "%s",
                      gd_client_error_message(c));
        fake_finish(c);
}
END_TEST

/* ---------------------------------------------------------------- errors */

static void script_errors(int fd) {
        uint32_t serial;

        fake_hello(fd);

        serial = fake_expect(fd, GD_MSG_ACQUIRE, NULL);
        fake_send(fd,
                  &(GdMsg) {
                          .type = GD_MSG_ERROR,
                          .serial = serial,
                          .error = { .code = GD_ERR_BUSY, .errno_value = 0,
                                     .message = (char *) "group 1 is held by lease 3f2a (label \"vm1\", uid 0, "
                                                         "pid 1234)" },
                  },
                  NULL, 0);

        serial = fake_expect(fd, GD_MSG_RELEASE, NULL);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_ERROR, .serial = serial,
                             .error = { .code = GD_ERR_DENIED, .errno_value = EACCES,
                                        .message = (char *) "not yours" } },
                  NULL, 0);

        serial = fake_expect(fd, GD_MSG_SUBSCRIBE, NULL);
        fake_ok(fd, serial);

        /* The right reply, but with a serial that was never asked for. */
        serial = fake_expect(fd, GD_MSG_STATUS, NULL);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_STATUS_REPLY, .serial = serial + 100,
                             .status = { .version = (char *) "9.9" } },
                  NULL, 0);

        fake_expect_eof(fd);
}

START_TEST(test_errors) {
        GdClient *c = fake_start(script_errors);
        const char *specs[] = { "1" };
        GdClientLease *l = NULL;
        GdStatus s = {};

        /* No errno from the daemon: the one that goes with the code. */
        ck_assert_int_eq(gd_client_acquire(c, specs, 1, NULL, &l), -EBUSY);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_BUSY);
        ck_assert_str_eq(gd_client_error_message(c), "group 1 is held by lease 3f2a (label \"vm1\", uid 0, pid 1234)");
        ck_assert_ptr_null(l);

        /* The daemon's errno wins. */
        ck_assert_int_eq(gd_client_release(c, TOKEN), -EACCES);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_DENIED);
        ck_assert_str_eq(gd_client_error_message(c), "not yours");

        /* A success clears the last error. */
        ck_assert_int_eq(gd_client_subscribe(c, 0), 0);
        ck_assert_int_eq(gd_client_error_code(c), 0);
        ck_assert_str_eq(gd_client_error_message(c), "");

        ck_assert_int_eq(gd_client_status(c, &s), -EBADMSG);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_PROTOCOL);

        /* Refused locally, before anything is sent: no groups, too many groups. */
        ck_assert_int_eq(gd_client_acquire(c, specs, 0, NULL, &l), -EINVAL);
        ck_assert_int_eq(gd_client_error_code(c), GD_ERR_INVALID);
        ck_assert_int_eq(gd_client_acquire(c, specs, GD_GROUPS_PER_ACQUIRE_MAX + 1, NULL, &l), -EINVAL);

        fake_finish(c);
}
END_TEST

/* ---------------------------------------------------------------- events */

static void script_events(int fd) {
        GdMsg m = {};
        uint32_t serial;

        fake_hello(fd);

        serial = fake_expect(fd, GD_MSG_SUBSCRIBE, &m);
        EXPECT(m.event_mask == (1u << GD_EVENT_LEASE_ENDED));
        gd_msg_done(&m);
        fake_ok(fd, serial);

        /* Events arrive before the reply to a request: queued. */
        serial = fake_expect(fd, GD_MSG_RELEASE, NULL);
        fake_event(fd, "aaaa", GD_EVENT_LEASE_RELEASING);
        fake_event(fd, "bbbb", GD_EVENT_LEASE_ENDED);
        fake_ok(fd, serial);

        /* And one when nothing is asked, after the client says it waits (a STATUS request). */
        serial = fake_expect(fd, GD_MSG_STATUS, NULL);
        fake_send(fd,
                  &(GdMsg) { .type = GD_MSG_STATUS_REPLY, .serial = serial, .status = { .version = (char *) "9.9" } },
                  NULL, 0);
        usleep(100 * 1000);
        fake_event(fd, "cccc", GD_EVENT_LEASE_ENDED);

        fake_expect_eof(fd);
}

static long elapsed_ms(const struct timespec *a) {
        struct timespec b;
        clock_gettime(CLOCK_MONOTONIC, &b);
        return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

START_TEST(test_events) {
        GdClient *c = fake_start(script_events);
        struct timespec t0;
        GdStatus s = {};
        GdEvent e = {};

        ck_assert_int_eq(gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED), 0);
        ck_assert_int_eq(gd_client_release(c, TOKEN), 0);

        /* Queued in order, returned without touching the socket. */
        ck_assert_int_eq(gd_client_next_event(c, 0, &e), 1);
        ck_assert_uint_eq(e.kind, GD_EVENT_LEASE_RELEASING);
        ck_assert_str_eq(e.lease.id, "aaaa");
        gd_event_done(&e);
        ck_assert_int_eq(gd_client_next_event(c, 0, &e), 1);
        ck_assert_uint_eq(e.kind, GD_EVENT_LEASE_ENDED);
        ck_assert_str_eq(e.lease.id, "bbbb");
        ck_assert_uint_eq(e.reason, GD_REASON_OWNER_EXITED);
        ck_assert_str_eq(e.detail, "host drivers restored: 0000:01:00.0 → nouveau");
        ck_assert_uint_eq(e.lease.n_groups, 1);
        gd_event_done(&e);

        /* Nothing more yet: a poll returns 0 at once, a short wait times out. */
        ck_assert_int_eq(gd_client_status(c, &s), 0);
        gd_status_done(&s);
        ck_assert_int_eq(gd_client_next_event(c, 0, &e), 0);

        /* The one sent ~100 ms later arrives while we wait. */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ck_assert_int_eq(gd_client_next_event(c, 5000, &e), 1);
        ck_assert_str_eq(e.lease.id, "cccc");
        ck_assert_int_lt(elapsed_ms(&t0), 4000);
        gd_event_done(&e);

        clock_gettime(CLOCK_MONOTONIC, &t0);
        ck_assert_int_eq(gd_client_next_event(c, 150, &e), 0);
        ck_assert_int_ge(elapsed_ms(&t0), 140);

        fake_finish(c);
}
END_TEST

static void script_event_flood(int fd) {
        uint32_t serial;

        fake_hello(fd);
        serial = fake_expect(fd, GD_MSG_RELEASE, NULL);
        for (unsigned i = 0; i < 5000; i++) {
                char id[16];
                snprintf(id, sizeof id, "e%u", i);
                fake_event(fd, id, GD_EVENT_LEASE_STARTED);
        }
        fake_ok(fd, serial);
        fake_expect_eof(fd);
}

/* A client that does not read its events still gets its replies; the oldest events give way. */
START_TEST(test_event_flood) {
        GdClient *c = fake_start(script_event_flood);
        GdEvent e = {};
        unsigned n = 0;
        char first[16] = "";

        ck_assert_int_eq(gd_client_release(c, TOKEN), 0);
        while (gd_client_next_event(c, 0, &e) > 0) {
                if (n++ == 0)
                        snprintf(first, sizeof first, "%s", e.lease.id);
                gd_event_done(&e);
        }
        ck_assert_uint_eq(n, 4096);
        ck_assert_str_eq(first, "e904");
        fake_finish(c);
}
END_TEST

/* ---------------------------------------------------------------- the daemon goes away */

static void script_hangup(int fd) {
        fake_hello(fd);
        fake_expect(fd, GD_MSG_STATUS, NULL);
        /* ... and hang up without answering. */
}

START_TEST(test_hangup) {
        GdClient *c = fake_start(script_hangup);
        GdStatus s = {};
        GdEvent e = {};
        GdGroup *g = NULL;
        size_t n = 0;
        int status;

        ck_assert_int_eq(gd_client_status(c, &s), -ECONNRESET);
        ck_assert_int_eq(gd_client_error_code(c), 0);
        ck_assert_int_ne(strlen(gd_client_error_message(c)), 0);
        ck_assert_int_eq(waitpid(fake_pid, &status, 0), fake_pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* Everything after: the same, or EPIPE when sending first fails. */
        ck_assert_int_eq(gd_client_next_event(c, 1000, &e), -ECONNRESET);
        int r = gd_client_list_groups(c, &g, &n);
        ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "list after hangup: %s", strerror(-r));
        gd_client_free(c);
}
END_TEST

/* The library takes the fd even when HELLO fails, and closes it. */
static void script_hangup_at_hello(int fd) {
        fake_expect(fd, GD_MSG_HELLO, NULL);
}

START_TEST(test_hangup_at_hello) {
        int sp[2], status;
        GdClient *c = NULL;
        pid_t pid;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(sp[0]);
                script_hangup_at_hello(sp[1]);
                _exit(0);
        }
        close(sp[1]);
        ck_assert_int_eq(gd_client_new_from_fd(sp[0], &c), -ECONNRESET);
        ck_assert(!test_fd_is_open(sp[0]));
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(test_connect_nowhere) {
        GdClient *c = NULL;

        ck_assert_int_eq(gd_client_connect("/nonexistent/groupd/socket", &c), -ENOENT);
        ck_assert_ptr_null(c);
        setenv("GROUPD_SOCKET", "/nonexistent/groupd/other", 1);
        ck_assert_int_eq(gd_client_connect(NULL, &c), -ENOENT);
        ck_assert_int_eq(gd_client_new_from_fd(-EBADF, &c), -EINVAL);
}
END_TEST

static Suite *client_suite(void) {
        Suite *s = suite_create("client");
        TCase *tc = tcase_create("libgroupd");

        signal(SIGPIPE, SIG_IGN);
        tcase_add_test(tc, test_hello);
        tcase_add_test(tc, test_hello_version_refused);
        tcase_add_test(tc, test_lists);
        tcase_add_test(tc, test_acquire_fds);
        tcase_add_test(tc, test_old_daemon);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_events);
        tcase_add_test(tc, test_event_flood);
        tcase_add_test(tc, test_hangup);
        tcase_add_test(tc, test_hangup_at_hello);
        tcase_add_test(tc, test_connect_nowhere);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(client_suite(), NULL);
}
