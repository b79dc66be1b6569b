/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The benchmark driver: one program, one verb per measurement, each printing CSV lines
 * "name,unit,value" on stdout for bench/run.sh to collect. Nothing here asserts anything: these are
 * figures, not tests.
 *
 *   bench cycle SOCKET N GROUP         acquire + release through libgroupd, waiting for LEASE_ENDED
 *   bench floor N                      the same message pattern on a bare SOCK_SEQPACKET pair
 *   bench death SOCKET N GROUP         owner SIGKILLed -> LEASE_ENDED at a subscriber
 *   bench hold SOCKET FIRST COUNT      acquire COUNT groups (one lease each), print, wait for stdin EOF
 *   bench throughput SOCKET CLIENTS SECONDS FIRST
 *                                      CLIENTS processes cycling acquire+release on groups FIRST+i
 *   bench idle SOCKET                  waits until no lease is left (releases run after a holder goes)
 *   bench topology GROUPS FILE         writes a sim topology with GROUPS groups of two devices
 *   bench ready GROUPD ARGS...         start to READY=1 of a groupd (NOTIFY_SOCKET), then SIGTERM
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#include "groupd-client.h"

static void die(const char *what, int r) {
        fprintf(stderr, "bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static GdClient *connect_or_die(const char *path) {
        GdClient *c = NULL;
        int r = gd_client_connect(path, &c);
        if (r < 0)
                die("connect", r);
        return c;
}

/* Waits for LEASE_ENDED of the lease id. */
static void wait_ended(GdClient *c, const char *id) {
        for (;;) {
                GdEvent e = {};
                int r = gd_client_next_event(c, 10000, &e);
                if (r <= 0)
                        die("waiting for LEASE_ENDED", r == 0 ? ETIMEDOUT : r);
                bool done = e.kind == GD_EVENT_LEASE_ENDED && strcmp(e.lease.id, id) == 0;
                gd_event_done(&e);
                if (done)
                        return;
        }
}

/* One full cycle: acquire, close the fds as a VMM does when it is done, release, wait until the group is
 * back on its host drivers (LEASE_ENDED). Returns the acquire's share in *acq. */
static int cycle_once(GdClient *c, const char *group, uint64_t *acq) {
        const char *specs[] = { group };
        GdClientLease *l = NULL;
        char token[GD_TOKEN_LEN + 1], id[GD_LEASE_ID_MAX];
        uint64_t t0 = bench_now_ns();
        int r;

        r = gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .owner_pidfd = -1 }, &l);
        if (r < 0)
                return r;
        if (acq)
                *acq = bench_now_ns() - t0;
        memcpy(token, l->token, sizeof token);
        snprintf(id, sizeof id, "%s", l->lease.id);
        gd_client_lease_free(l);
        r = gd_client_release(c, token);
        if (r < 0)
                return r;
        wait_ended(c, id);
        return 0;
}

static int verb_cycle(int argc, char **argv) {
        if (argc != 3)
                return 2;
        size_t n = strtoul(argv[1], NULL, 10);
        uint64_t *all = calloc(n, sizeof *all), *acq = calloc(n, sizeof *acq);
        GdClient *c = connect_or_die(argv[0]);
        int r;

        r = gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
        if (r < 0)
                die("subscribe", r);
        for (size_t i = 0; i < n / 10 + 1; i++) /* warm-up */
                if ((r = cycle_once(c, argv[2], NULL)) < 0)
                        die(gd_client_error_message(c), r);
        for (size_t i = 0; i < n; i++) {
                uint64_t t0 = bench_now_ns();
                if ((r = cycle_once(c, argv[2], &acq[i])) < 0)
                        die(gd_client_error_message(c), r);
                all[i] = bench_now_ns() - t0;
        }
        bench_report("groupd_cycle", all, n);
        bench_report("groupd_acquire", acq, n);
        gd_client_free(c);
        free(all);
        free(acq);
        return 0;
}

/* The floor: what the same conversation costs on a bare SOCK_SEQPACKET socketpair with a server that
 * does nothing. Per cycle: a request (64 bytes) answered by a reply carrying two fds (the container and
 * the group: 256 bytes), a request answered by a short OK, and an event (128 bytes), as groupd's
 * acquire, release and LEASE_ENDED. The server sends dups of two fds it holds, as groupd does. */
static void floor_server(int s) {
        char buf[4096], reply[256] = {}, ok[16] = {}, event[128] = {};
        int fds[2] = { open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_RDONLY | O_CLOEXEC) };

        for (;;) {
                ssize_t k = recv(s, buf, sizeof buf, 0);
                if (k <= 0)
                        _exit(0);
                if (buf[0] == 'A') {
                        union {
                                struct cmsghdr h;
                                char b[CMSG_SPACE(2 * sizeof(int))];
                        } u = {};
                        struct iovec iov = { reply, sizeof reply };
                        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                                             .msg_controllen = sizeof u.b };
                        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        int d[2] = { fcntl(fds[0], F_DUPFD_CLOEXEC, 3), fcntl(fds[1], F_DUPFD_CLOEXEC, 3) };
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof d);
                        memcpy(CMSG_DATA(c), d, sizeof d);
                        if (sendmsg(s, &mh, MSG_NOSIGNAL) < 0)
                                _exit(1);
                        close(d[0]);
                        close(d[1]);
                } else {
                        if (send(s, ok, sizeof ok, MSG_NOSIGNAL) < 0 ||
                            send(s, event, sizeof event, MSG_NOSIGNAL) < 0)
                                _exit(1);
                }
        }
}

static void floor_cycle(int s) {
        char req[64] = "A", rel[64] = "R", buf[4096];
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(8 * sizeof(int))];
        } u;
        struct iovec iov = { buf, sizeof buf };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };

        if (send(s, req, sizeof req, 0) < 0 || recvmsg(s, &mh, MSG_CMSG_CLOEXEC) <= 0)
                die("floor", errno);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        int fds[8];
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        memcpy(fds, CMSG_DATA(c), k * sizeof(int));
                        for (size_t i = 0; i < k; i++)
                                close(fds[i]);
                }
        if (send(s, rel, sizeof rel, 0) < 0 || recv(s, buf, sizeof buf, 0) <= 0 || recv(s, buf, sizeof buf, 0) <= 0)
                die("floor", errno);
}

static int verb_floor(int argc, char **argv) {
        if (argc != 1)
                return 2;
        size_t n = strtoul(argv[0], NULL, 10);
        uint64_t *all = calloc(n, sizeof *all);
        int sp[2];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                die("socketpair", errno);
        pid_t pid = fork();
        if (pid == 0) {
                close(sp[0]);
                floor_server(sp[1]);
        }
        close(sp[1]);
        for (size_t i = 0; i < n / 10 + 1; i++)
                floor_cycle(sp[0]);
        for (size_t i = 0; i < n; i++) {
                uint64_t t0 = bench_now_ns();
                floor_cycle(sp[0]);
                all[i] = bench_now_ns() - t0;
        }
        close(sp[0]);
        waitpid(pid, NULL, 0);
        bench_report("floor_cycle", all, n);
        free(all);
        return 0;
}

/* Owner death: a child owns the lease (pidfd); it is SIGKILLed and we time until LEASE_ENDED. */
static int verb_death(int argc, char **argv) {
        if (argc != 3)
                return 2;
        size_t n = strtoul(argv[1], NULL, 10);
        uint64_t *all = calloc(n, sizeof *all);
        GdClient *c = connect_or_die(argv[0]);
        const char *specs[] = { argv[2] };
        int r;

        r = gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
        if (r < 0)
                die("subscribe", r);
        for (size_t i = 0; i < n; i++) {
                GdClientLease *l = NULL;
                char id[GD_LEASE_ID_MAX];
                pid_t pid = fork();
                if (pid == 0) {
                        pause();
                        _exit(0);
                }
                int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
                r = gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .owner_pidfd = pidfd }, &l);
                if (r < 0)
                        die(gd_client_error_message(c), r);
                close(pidfd);
                snprintf(id, sizeof id, "%s", l->lease.id);
                gd_client_lease_free(l);
                uint64_t t0 = bench_now_ns();
                kill(pid, SIGKILL);
                wait_ended(c, id);
                all[i] = bench_now_ns() - t0;
                waitpid(pid, NULL, 0);
        }
        bench_report("owner_death_to_ended", all, n);
        gd_client_free(c);
        free(all);
        return 0;
}

/* Holds COUNT leases (groups FIRST..FIRST+COUNT-1) until stdin closes, so that run.sh can read RSS. */
static int verb_hold(int argc, char **argv) {
        if (argc != 3)
                return 2;
        unsigned first = (unsigned) strtoul(argv[1], NULL, 10), count = (unsigned) strtoul(argv[2], NULL, 10);
        GdClient *c = connect_or_die(argv[0]);
        char spec[16], buf[16];
        int r;

        for (unsigned i = 0; i < count; i++) {
                const char *specs[] = { spec };
                GdClientLease *l = NULL;
                snprintf(spec, sizeof spec, "%u", first + i);
                r = gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .owner_pidfd = -1 }, &l);
                if (r < 0)
                        die(gd_client_error_message(c), r);
                gd_client_lease_free(l); /* the fds; the lease is the connection's */
        }
        printf("held %u\n", count);
        fflush(stdout);
        while (read(0, buf, sizeof buf) > 0)
                ;
        gd_client_free(c);
        return 0;
}

static int verb_idle(int argc, char **argv) {
        if (argc != 1)
                return 2;
        GdClient *c = connect_or_die(argv[0]);
        for (int i = 0; i < 6000; i++) {
                GdLease *l = NULL;
                size_t n = 0;
                int r = gd_client_list_leases(c, &l, &n);
                if (r < 0)
                        die("list leases", r);
                gd_leases_free(l, n);
                if (n == 0) {
                        gd_client_free(c);
                        return 0;
                }
                usleep(10000);
        }
        die("leases still there after 60 s", ETIMEDOUT);
        return 1;
}

static int verb_throughput(int argc, char **argv) {
        if (argc != 4)
                return 2;
        unsigned clients = (unsigned) strtoul(argv[1], NULL, 10), first = (unsigned) strtoul(argv[3], NULL, 10);
        double seconds = strtod(argv[2], NULL);
        int p[2];
        pid_t *pids = calloc(clients, sizeof *pids);

        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe", errno);
        uint64_t start = bench_now_ns() + 200000000ull; /* everyone connected first */
        for (unsigned i = 0; i < clients; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        char spec[16];
                        unsigned long count = 0;
                        GdClient *c = connect_or_die(argv[0]);
                        snprintf(spec, sizeof spec, "%u", first + i);
                        if (gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED) < 0)
                                _exit(1);
                        while (bench_now_ns() < start)
                                usleep(1000);
                        uint64_t end = start + (uint64_t) (seconds * 1e9);
                        while (bench_now_ns() < end) {
                                int r = cycle_once(c, spec, NULL);
                                if (r < 0)
                                        die(gd_client_error_message(c), r);
                                count++;
                        }
                        if (write(p[1], &count, sizeof count) != sizeof count)
                                _exit(1);
                        gd_client_free(c);
                        _exit(0);
                }
        }
        close(p[1]);
        unsigned long total = 0, one;
        while (read(p[0], &one, sizeof one) == sizeof one)
                total += one;
        for (unsigned i = 0; i < clients; i++)
                waitpid(pids[i], NULL, 0);
        printf("throughput_%u_clients,cycles_per_s,%.0f\n", clients, (double) total / seconds);
        free(pids);
        return 0;
}

static int verb_topology(int argc, char **argv) {
        if (argc != 2)
                return 2;
        unsigned n = (unsigned) strtoul(argv[0], NULL, 10);
        FILE *f = fopen(argv[1], "we");
        if (!f)
                die(argv[1], errno);
        fprintf(f, "# %u groups of two functions each: one without a driver, one on a host NIC driver.\n", n);
        for (unsigned g = 0; g < n; g++) {
                unsigned bus = g / 32, dev = g % 32;
                fprintf(f, "group %u\nregion 0x00000000fee00000 0x00000000feefffff msi\n", g);
                fprintf(f, "device 0000:%02x:%02x.0 vendor=0x1234 device=0x11e8 class=0x00ff00\n", bus, dev);
                fprintf(f, "device 0000:%02x:%02x.1 vendor=0x8086 device=0x100e class=0x020000 native=e1000\n",
                        bus, dev);
        }
        fclose(f);
        return 0;
}

/* Start to READY=1: we play systemd's notify socket. */
static int verb_ready(int argc, char **argv) {
        if (argc < 1)
                return 2;
        char path[108], buf[4096];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        snprintf(path, sizeof path, "/dev/shm/groupd-bench-notify.%d", (int) getpid());
        memcpy(sa.sun_path, path, strlen(path) + 1);
        unlink(path);
        if (s < 0 || bind(s, (struct sockaddr *) &sa, sizeof sa) < 0)
                die("notify socket", errno);
        uint64_t t0 = bench_now_ns();
        pid_t pid = fork();
        if (pid == 0) {
                setenv("NOTIFY_SOCKET", path, 1);
                dup2(2, 1); /* our stdout is the caller's pipe: the daemon must not keep it open */
                execv(argv[0], argv);
                _exit(127);
        }
        for (;;) {
                struct pollfd pfd = { s, POLLIN, 0 };
                if (poll(&pfd, 1, 60000) <= 0)
                        die("no READY=1 within 60 s", ETIMEDOUT);
                ssize_t k = recv(s, buf, sizeof buf - 1, 0);
                if (k <= 0)
                        continue;
                buf[k] = 0;
                if (strstr(buf, "READY=1"))
                        break;
        }
        uint64_t dt = bench_now_ns() - t0;
        printf("%d %.1f\n", (int) pid, (double) dt / 1e6);
        unlink(path);
        return 0;
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } verbs[] = {
                { "cycle", verb_cycle },   { "floor", verb_floor },           { "death", verb_death },
                { "hold", verb_hold },     { "throughput", verb_throughput }, { "topology", verb_topology },
                { "ready", verb_ready },     { "idle", verb_idle },
        };

        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; argc >= 2 && i < sizeof verbs / sizeof verbs[0]; i++)
                if (strcmp(argv[1], verbs[i].name) == 0) {
                        int r = verbs[i].fn(argc - 2, argv + 2);
                        if (r == 2)
                                fprintf(stderr, "bench %s: wrong arguments (see bench/bench.c)\n", argv[1]);
                        return r;
                }
        fprintf(stderr, "usage: bench cycle|floor|death|hold|idle|throughput|topology|ready ... (see bench/bench.c)\n");
        return 2;
}
