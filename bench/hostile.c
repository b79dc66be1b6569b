/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostile: the hostile-client harness (issue 11). Runs each attack for a bounded time against a groupd on
 * the simulated host while a good client works, and asserts what must hold whatever the machine's speed:
 * the good client is served (every one of its operations succeeds), the daemon's fd count and RSS stay
 * under stated bounds and come back to their baseline once the attack stops, the log stays under a stated
 * number of lines (notice and above), and the daemon neither crashes nor fails to stop cleanly. Latency
 * is measured, never asserted: the good client's median and p99 under attack, as ratios to its own
 * baseline in the same run, go to stdout as bench/run.sh's CSV (name,unit,value).
 *
 *   hostile GROUPD_BIN [--seconds=S] [--only=NAME[,NAME...]] [--keep] [--no-rss-bounds]
 *
 * Needs root (attackers run as other uids). Exit status: 0 if every bound held, 1 if one did not (each
 * broken bound is printed to stderr with "FAIL"), 77 if it cannot run here. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "fd-util.h"
#include "groupd-client.h"
#include "groupd-proto.h"

static const char *groupd_bin;
static double arg_seconds = 10;
static const char *arg_only;
static bool arg_keep;
static bool arg_rss_bounds = true;   /* off for sanitizer builds: ASan keeps freed memory in quarantine */
static char rt[256], sock_path[300], log_path[300];
static pid_t daemon_pid = -1;
static int failures;

#define ATTACKERS_MAX 64

typedef struct Attack {
        const char *name;
        const char *what;
        rlim_t daemon_nofile;         /* > 0: the daemon's RLIMIT_NOFILE (soft and hard) */
        bool fresh_connects;          /* the good client also connects anew each round */
        unsigned n_attackers;
        void (*attacker)(unsigned idx);
        /* Bounds, over the baseline (the daemon before the attack). */
        unsigned fds_over;            /* at most baseline + this many fds during the attack */
        unsigned rss_over_kib;        /* at most baseline + this much RSS during the attack */
        unsigned log_lines;           /* at most this many log lines of priority notice or above per 10 s
                                       * (the daemon's rate limit's interval) of attack and settling */
        bool needs_sys_resource;      /* the good client is served at once only if the daemon has
                                       * CAP_SYS_RESOURCE; without it the daemon's hand-overs share root's
                                       * in-flight fd limit with the attacker and wait (retried) until the
                                       * flood ends: served all the same, its latency is the flood's */
} Attack;

/* ---------------------------------------------------------------- the daemon */

static void fail(const char *attack, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *attack, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "hostile: FAIL %s: ", attack);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        failures++;
}

static int raw_connect_path(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return -errno;
        if (strlen(path) >= sizeof sa.sun_path) {
                close(fd);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        /* Non-blocking: EAGAIN is a full backlog, and the socket is not connected. */
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int daemon_start(const Attack *a) {
        daemon_pid = fork();
        if (daemon_pid < 0)
                return -errno;
        if (daemon_pid == 0) {
                char a1[300], a2[400], a3[400];
                int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                if (a->daemon_nofile > 0) {
                        struct rlimit rl = { a->daemon_nofile, a->daemon_nofile };
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
                snprintf(a1, sizeof a1, "--runtime-dir=%s", rt);
                snprintf(a2, sizeof a2, "--socket=%s", sock_path);
                snprintf(a3, sizeof a3, "--policy=%s/policy.conf", rt);
                execl(groupd_bin, "groupd", "--host=sim", a1, a2, a3, "--no-bus", "--release-deadline=2",
                      (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                GdClient *c = NULL;
                int status;
                if (gd_client_connect(sock_path, &c) >= 0) {
                        gd_client_free(c);
                        return 0;
                }
                if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
                        daemon_pid = -1;
                        return -ECHILD;
                }
                usleep(10000);
        }
        return -ETIMEDOUT;
}

static int daemon_stop(void) {
        int status = 0;

        if (daemon_pid <= 0)
                return -1;
        kill(daemon_pid, SIGTERM);
        for (int i = 0; i < 1000 && waitpid(daemon_pid, &status, WNOHANG) == 0; i++)
                usleep(10000);
        if (waitpid(daemon_pid, &status, WNOHANG) == 0) {
                kill(daemon_pid, SIGKILL);
                waitpid(daemon_pid, &status, 0);
        }
        daemon_pid = -1;
        return status;
}

static bool daemon_alive(void) {
        int status;
        return daemon_pid > 0 && waitpid(daemon_pid, &status, WNOHANG) == 0;
}

static unsigned daemon_fds(void) {
        char path[64];
        unsigned n = 0;
        DIR *d;

        snprintf(path, sizeof path, "/proc/%i/fd", (int) daemon_pid);
        d = opendir(path);
        if (!d)
                return 0;
        for (struct dirent *e; (e = readdir(d));)
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

static unsigned daemon_rss_kib(void) {
        char path[64], line[256];
        unsigned kib = 0;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%i/status", (int) daemon_pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmRSS: %u", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* Lines of priority 0-5 (notice and above) in the log from byte offset from on. */
static unsigned log_lines_since(long from, long *ret_end) {
        char line[8192];
        unsigned n = 0;
        FILE *f = fopen(log_path, "re");

        if (!f)
                return 0;
        fseek(f, from, SEEK_SET);
        while (fgets(line, sizeof line, f))
                n += line[0] == '<' && line[1] >= '0' && line[1] <= '5' && line[2] == '>';
        if (ret_end)
                *ret_end = ftell(f);
        fclose(f);
        return n;
}

static long log_size(void) {
        struct stat st;
        return stat(log_path, &st) < 0 ? 0 : (long) st.st_size;
}

/* ---------------------------------------------------------------- attackers (children, killed at the end) */

static void become(uid_t uid) {
        if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
                _exit(2);
}

static int encode(const GdMsg *m, uint8_t *buf, size_t size, size_t *len) {
        return gd_msg_encode(m, buf, size, len);
}

/* Holds up to `want` connections that never send a byte; reconnects those the daemon closes. */
static void hold_idle(unsigned want, bool hello) {
        struct pollfd p[512];
        uint8_t buf[GD_MSG_SIZE_MAX], hb[256];
        size_t n = 0, hlen = 0;
        GdMsg h = { .type = GD_MSG_HELLO, .serial = 1,
                    .hello = { .version_min = 1, .version_max = 1, .name = (char *) "hostile" } };

        if (want > 512)
                want = 512;
        (void) encode(&h, hb, sizeof hb, &hlen);
        for (;;) {
                while (n < want) {
                        int fd = raw_connect_path(sock_path);
                        if (fd < 0)
                                break;
                        if (hello)
                                (void) send(fd, hb, hlen, MSG_DONTWAIT);
                        p[n++] = (struct pollfd) { .fd = fd, .events = POLLIN };
                }
                if (poll(p, n, n < want ? 50 : 1000) < 0)
                        continue;
                for (size_t i = 0; i < n;) {
                        if (p[i].revents) {
                                ssize_t k = recv(p[i].fd, buf, sizeof buf, MSG_DONTWAIT);
                                if (k <= 0 && !(k < 0 && errno == EAGAIN)) {
                                        close(p[i].fd);
                                        p[i] = p[--n];
                                        continue;
                                }
                        }
                        i++;
                }
        }
}

/* Many uids, each at its per-uid cap of idle connections that never say HELLO. */
static void attack_idle(unsigned idx) {
        become(60000 + idx);
        hold_idle(140, false);
}

/* root, holding connections that said HELLO (so no deadline closes them), against a daemon with 256
 * fds: without a bound the daemon runs out of fds. */
static void attack_emfile(unsigned idx) {
        hold_idle(300, true);
}

/* root clients sending 253 fds a message (SCM_RIGHTS's most), as fast as the socket takes them, never
 * reading: the fds stay in flight on root's count, which the daemon's own hand-overs share unless it has
 * CAP_SYS_RESOURCE. */
static void attack_fdflood(unsigned idx) {
        int fds[253];
        uint8_t buf[64];
        size_t len = 0;
        GdMsg m = { .type = GD_MSG_STATUS, .serial = 1 };

        for (size_t i = 0; i < 253; i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        (void) encode(&m, buf, sizeof buf, &len);
        for (;;) {
                int s = raw_connect_path(sock_path);
                if (s < 0) {
                        usleep(1000);
                        continue;
                }
                for (int k = 0; k < 100000; k++) {
                        int r = fd_send_msg(s, buf, len, fds, k % 2 ? 253 : 100);
                        if (r == -EAGAIN) {
                                struct pollfd p = { .fd = s, .events = POLLOUT };
                                (void) poll(&p, 1, 100);
                                if (p.revents & (POLLHUP | POLLERR))
                                        break;
                                continue;
                        }
                        if (r < 0)
                                break;
                }
                close(s);
        }
}

/* Subscribers that never read their events, and a churner making events. */
static void attack_events(unsigned idx) {
        if (idx == 0) {
                GdClient *c = NULL;
                while (gd_client_connect(sock_path, &c) < 0)
                        usleep(10000);
                (void) gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
                for (;;) {
                        const char *specs[] = { "6" };
                        GdClientLease *l = NULL;
                        if (gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .owner_pidfd = -1 }, &l) < 0) {
                                usleep(1000);
                                continue;
                        }
                        char id[GD_LEASE_ID_MAX + 1];
                        snprintf(id, sizeof id, "%s", l->lease.id);
                        (void) gd_client_release_lease(c, l);
                        gd_client_lease_free(l);
                        for (;;) {
                                GdEvent e = {};
                                if (gd_client_next_event(c, 2000, &e) <= 0)
                                        break;
                                bool done = e.kind == GD_EVENT_LEASE_ENDED && strcmp(e.lease.id, id) == 0;
                                gd_event_done(&e);
                                if (done)
                                        break;
                        }
                }
        }
        /* 50 lazy subscribers a process. */
        GdClient *subs[50];
        for (int i = 0; i < 50; i++) {
                subs[i] = NULL;
                if (gd_client_connect(sock_path, &subs[i]) >= 0)
                        (void) gd_client_subscribe(subs[i], 0);
        }
        for (;;)
                pause();
}

/* Garbage, empty packets and hang-ups, as fast as it goes, from many uids. */
static void attack_garbage(unsigned idx) {
        uint8_t in[GD_MSG_SIZE_MAX];

        become(61000 + idx);
        for (;;) {
                int s = raw_connect_path(sock_path);
                if (s < 0) {
                        usleep(1000);
                        continue;
                }
                for (int k = 0; k < 12; k++) {
                        if (k % 3 == 0)
                                (void) send(s, "", 0, MSG_DONTWAIT);
                        else
                                (void) send(s, "garbage!garbage!garbage!", 24, MSG_DONTWAIT);
                        struct pollfd p = { .fd = s, .events = POLLIN };
                        (void) poll(&p, 1, 100);
                        (void) recv(s, in, sizeof in, MSG_DONTWAIT);
                }
                close(s);
        }
}

/* Requests without reading the replies. */
static void attack_reqflood(unsigned idx) {
        uint8_t buf[64];
        size_t len = 0;
        GdMsg m = { .type = idx % 2 ? GD_MSG_LIST_GROUPS : GD_MSG_LIST_LEASES, .serial = 1 };

        (void) encode(&m, buf, sizeof buf, &len);
        for (;;) {
                int s = raw_connect_path(sock_path);
                if (s < 0) {
                        usleep(1000);
                        continue;
                }
                for (;;) {
                        if (send(s, buf, len, MSG_DONTWAIT) < 0) {
                                if (errno != EAGAIN)
                                        break;
                                struct pollfd p = { .fd = s, .events = POLLOUT };
                                (void) poll(&p, 1, 200);
                                if (p.revents & (POLLHUP | POLLERR))
                                        break;
                        }
                }
                close(s);
        }
}

static const Attack attacks[] = {
        { "idle", "idle connections from 40 uids, never a byte, reconnecting when closed", 0, true, 40,
          attack_idle, 4096 + 1024 + 32, 64 * 1024, 30 },
        { "emfile", "root holds 900 HELLO'd idle connections against a daemon limited to 256 fds", 256, false, 3,
          attack_emfile, 256, 16 * 1024, 30 },
        { "fdflood", "root floods 100- and 253-fd messages on 4 connections, never reading", 0, true, 4,
          attack_fdflood, 1200, 32 * 1024, 30, true },
        { "events", "200 subscribers that never read, and a churner making events", 0, true, 5, attack_events,
          260, 48 * 1024, 30 },
        { "garbage", "garbage, empty packets and hang-ups from 8 uids", 0, true, 8, attack_garbage, 64,
          16 * 1024, 30 },
        { "reqflood", "4 clients send requests without reading replies", 0, true, 4, attack_reqflood, 64,
          32 * 1024, 30 },
};

/* ---------------------------------------------------------------- the good client */

typedef struct Samples {
        uint64_t *v;
        size_t n, cap;
        unsigned failed;
        char last_error[256];
        unsigned fds_max, rss_max;
} Samples;

static void samples_add(Samples *s, uint64_t ns) {
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 1024;
                s->v = realloc(s->v, s->cap * sizeof *s->v);
        }
        s->v[s->n++] = ns;
}

/* One round: (a fresh connection: HELLO, STATUS;) on the kept connection, acquire group 2 with an owner
 * pidfd (ours), release it, and wait for its end. */
static int good_round(GdClient *c, bool fresh, char *err, size_t size) {
        uint64_t t0 = bench_now_ns();
        const char *specs[] = { "2" };
        char id[GD_LEASE_ID_MAX + 1];
        GdClientLease *l = NULL;
        int pidfd, r;

        if (fresh) {
                GdClient *f = NULL;
                GdStatus st = {};
                r = gd_client_connect(sock_path, &f);
                if (r < 0) {
                        snprintf(err, size, "connect: %s", strerror(-r));
                        return r;
                }
                r = gd_client_status(f, &st);
                if (r < 0)
                        snprintf(err, size, "status: %s", gd_client_error_message(f));
                else
                        gd_status_done(&st);
                gd_client_free(f);
                if (r < 0)
                        return r;
        }
        uint64_t t_conn = bench_now_ns();
        pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        r = gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .owner_pidfd = pidfd }, &l);
        close(pidfd);
        if (r < 0) {
                snprintf(err, size, "acquire: %s", gd_client_error_message(c));
                return r;
        }
        snprintf(id, sizeof id, "%s", l->lease.id);
        r = gd_client_release_lease(c, l);
        gd_client_lease_free(l);
        if (r < 0) {
                snprintf(err, size, "release: %s", gd_client_error_message(c));
                return r;
        }
        uint64_t t_acq = bench_now_ns();
        for (;;) {
                GdEvent e = {};
                r = gd_client_next_event(c, 10000, &e);
                if (r <= 0) {
                        snprintf(err, size, "no lease-ended within 10 s (%s)", r < 0 ? strerror(-r) : "timeout");
                        return -ETIMEDOUT;
                }
                bool done = e.kind == GD_EVENT_LEASE_ENDED && strcmp(e.lease.id, id) == 0;
                gd_event_done(&e);
                if (done) {
                        static unsigned shown;
                        if (getenv("HOSTILE_DEBUG") && bench_now_ns() - t0 > 5000000 && shown++ < 15)
                                fprintf(stderr, "hostile: round: fresh %.2f ms, acquire+release %.2f ms, "
                                        "until ended %.2f ms\n", (t_conn - t0) / 1e6, (t_acq - t_conn) / 1e6,
                                        (bench_now_ns() - t_acq) / 1e6);
                        return 0;
                }
        }
}

static void good_run(GdClient *c, bool fresh, double seconds, Samples *s) {
        uint64_t end = bench_now_ns() + (uint64_t) (seconds * 1e9), last_sample = 0;

        while (bench_now_ns() < end) {
                uint64_t t0 = bench_now_ns();
                char err[256] = "";
                if (good_round(c, fresh, err, sizeof err) < 0) {
                        s->failed++;
                        snprintf(s->last_error, sizeof s->last_error, "%s", err);
                        usleep(10000);
                } else
                        samples_add(s, bench_now_ns() - t0);
                if (bench_now_ns() - last_sample > 50000000ull) {
                        unsigned f = daemon_fds(), r = daemon_rss_kib();
                        s->fds_max = f > s->fds_max ? f : s->fds_max;
                        s->rss_max = r > s->rss_max ? r : s->rss_max;
                        last_sample = bench_now_ns();
                }
        }
}

static uint64_t pct(Samples *s, unsigned p) {
        if (s->n == 0)
                return 0;
        qsort(s->v, s->n, sizeof *s->v, bench_cmp_u64);
        size_t k = (s->n * p + 99) / 100;
        return s->v[(k ? k : 1) - 1];
}

/* ---------------------------------------------------------------- one attack */

/* Whether the daemons started here can have CAP_SYS_RESOURCE: in our bounding set (they inherit it). */
static bool have_sys_resource(void) {
        char line[256];
        unsigned long long bnd = 0;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return false;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "CapBnd: %llx", &bnd) == 1)
                        break;
        fclose(f);
        return bnd & (1ull << 24); /* CAP_SYS_RESOURCE */
}



/* The attack ends on time even when the good client is stuck in a call (a hand-over held up by the
 * attack itself): SIGALRM kills the attackers. */
static pid_t kids[ATTACKERS_MAX];
static unsigned n_kids;

static void on_alarm(int sig) {
        for (unsigned i = 0; i < n_kids; i++)
                if (kids[i] > 0)
                        kill(kids[i], SIGKILL);
}

static void run_attack(const Attack *a) {
        Samples base = {}, under = {};
        GdClient *c = NULL;
        unsigned fds0, rss0, fds1 = 0, rss1 = 0, lines;
        long log_from, log_end;
        int r, status;
        uint64_t settle0;

        bool judge_service = true;

        r = daemon_start(a);
        if (r < 0) {
                fail(a->name, "groupd did not start: %s", strerror(-r));
                return;
        }
        if (gd_client_connect(sock_path, &c) < 0 || gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED) < 0) {
                fail(a->name, "the good client cannot connect");
                daemon_stop();
                return;
        }

        /* Baseline: the good client alone, and the daemon's fds and RSS after it. */
        good_run(c, a->fresh_connects, arg_seconds / 2, &base);
        fds0 = daemon_fds();
        rss0 = daemon_rss_kib();
        log_from = log_size();

        n_kids = a->n_attackers;
        for (unsigned i = 0; i < a->n_attackers; i++) {
                kids[i] = fork();
                if (kids[i] == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        /* A control: attackers at a lower CPU priority separate what the daemon does from
                         * what sharing the CPUs with them costs. */
                        if (getenv("HOSTILE_ATTACKER_NICE"))
                                (void) !nice(atoi(getenv("HOSTILE_ATTACKER_NICE")));
                        struct rlimit rl = { 4096, 4096 };
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                        a->attacker(i);
                        _exit(0);
                }
        }
        uint64_t t_attack = bench_now_ns();
        {
                struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
                double t = arg_seconds + 0.3;
                struct itimerval it = { .it_value = { .tv_sec = (time_t) t,
                                                      .tv_usec = (suseconds_t) ((t - (time_t) t) * 1e6) } };
                sigaction(SIGALRM, &sa, NULL);
                setitimer(ITIMER_REAL, &it, NULL);
        }
        usleep(300000); /* let the attack build up */
        under.fds_max = daemon_fds();
        under.rss_max = daemon_rss_kib();
        good_run(c, a->fresh_connects, arg_seconds, &under);

        setitimer(ITIMER_REAL, &(struct itimerval) {}, NULL);
        on_alarm(SIGALRM);
        for (unsigned i = 0; i < a->n_attackers; i++)
                if (kids[i] > 0)
                        waitpid(kids[i], NULL, 0);
        n_kids = 0;

        /* Back to baseline: fds within a few of it (the hang-ups are read, the deadlines run out). */
        settle0 = bench_now_ns();
        while (bench_now_ns() - settle0 < 15000000000ull && daemon_alive()) {
                fds1 = daemon_fds();
                if (fds1 <= fds0 + 2)
                        break;
                if (getenv("HOSTILE_DEBUG"))
                        fprintf(stderr, "hostile: settling: %u fds at %.1f s\n", fds1,
                                (bench_now_ns() - settle0) / 1e9);
                usleep(getenv("HOSTILE_DEBUG") ? 1000000 : 50000);
        }
        {
                /* One more good round after the attack: served. */
                char err[256] = "";
                if (judge_service && daemon_alive() && good_round(c, a->fresh_connects, err, sizeof err) < 0)
                        fail(a->name, "the good client is not served after the attack: %s", err);
        }
        rss1 = daemon_rss_kib();
        lines = log_lines_since(log_from, &log_end);
        unsigned intervals = (unsigned) ((bench_now_ns() - t_attack) / 10000000000ull) + 1;
        if (a->needs_sys_resource && !have_sys_resource())
                fprintf(stderr, "hostile: %s: no CAP_SYS_RESOURCE here: the daemon's hand-overs share root's "
                        "in-flight fd limit with the attacker and wait for the flood to end (its latency ratio "
                        "is the flood's length, not the daemon's speed)\n", a->name);

        if (!daemon_alive())
                fail(a->name, "groupd died");
        if (judge_service && under.failed > 0)
                fail(a->name, "the good client failed %u time(s) (of %zu); the last: %s", under.failed,
                     under.n + under.failed, under.last_error);
        if (judge_service && under.n == 0)
                fail(a->name, "the good client got nothing done");
        if (under.fds_max > fds0 + a->fds_over)
                fail(a->name, "%u fds at most, bound %u + %u", under.fds_max, fds0, a->fds_over);
        if (arg_rss_bounds && under.rss_max > rss0 + a->rss_over_kib)
                fail(a->name, "RSS %u KiB at most, bound %u + %u KiB", under.rss_max, rss0, a->rss_over_kib);
        if (fds1 > fds0 + (judge_service ? 2 : 8)) /* a hand-over still waiting holds its fds */
                fail(a->name, "fds did not come back: %u after, %u before", fds1, fds0);
        if (arg_rss_bounds && rss1 > rss0 + 16 * 1024)
                fail(a->name, "RSS did not come back: %u KiB after, %u KiB before", rss1, rss0);
        if (lines > a->log_lines * intervals)
                fail(a->name, "%u log lines (notice and above) in %u×10 s of attack and settling, bound %u", lines,
                     intervals, a->log_lines * intervals);

        gd_client_free(c);
        status = daemon_stop();
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                fail(a->name, "groupd did not stop cleanly (status 0x%x)", (unsigned) status);

        uint64_t bm = pct(&base, 50), bp = pct(&base, 99), um = pct(&under, 50), up = pct(&under, 99);
        printf("hostile_%s_base_median,us,%.1f\n", a->name, bm / 1000.0);
        printf("hostile_%s_base_p99,us,%.1f\n", a->name, bp / 1000.0);
        printf("hostile_%s_median,us,%.1f\n", a->name, um / 1000.0);
        printf("hostile_%s_p99,us,%.1f\n", a->name, up / 1000.0);
        printf("hostile_%s_median_ratio,ratio,%.2f\n", a->name, bm ? (double) um / (double) bm : 0);
        printf("hostile_%s_p99_ratio,ratio,%.2f\n", a->name, bp ? (double) up / (double) bp : 0);
        printf("hostile_%s_rounds,count,%zu\n", a->name, under.n);
        printf("hostile_%s_failed,count,%u\n", a->name, under.failed);
        printf("hostile_%s_fds,count,%u/%u/%u\n", a->name, fds0, under.fds_max, fds1);
        printf("hostile_%s_rss,KiB,%u/%u/%u\n", a->name, rss0, under.rss_max, rss1);
        printf("hostile_%s_log_lines,count,%u\n", a->name, lines);
        printf("hostile_%s_service_asserted,bool,%d\n", a->name, judge_service);
        fflush(stdout);
        fprintf(stderr, "hostile: %-8s %s: good client %zu rounds (%u failed), median %.2fx p99 %.2fx; fds %u→%u→%u; "
                "RSS %u→%u→%u KiB; %u log lines\n", a->name, a->what, under.n, under.failed,
                bm ? (double) um / (double) bm : 0, bp ? (double) up / (double) bp : 0, fds0, under.fds_max, fds1,
                rss0, under.rss_max, rss1, lines);
        free(base.v);
        free(under.v);
}

static bool selected(const char *name) {
        const char *p = arg_only;
        size_t n = strlen(name);

        if (!p)
                return true;
        while (p && *p) {
                if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
                        return true;
                p = strchr(p, ',');
                if (p)
                        p++;
        }
        return false;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "seconds", required_argument, NULL, 's' },
                { "only", required_argument, NULL, 'o' },
                { "keep", no_argument, NULL, 'k' },
                { "no-rss-bounds", no_argument, NULL, 'R' },
                {}
        };
        char policy[400];
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        arg_seconds = atof(optarg);
                        break;
                case 'o':
                        arg_only = optarg;
                        break;
                case 'k':
                        arg_keep = true;
                        break;
                case 'R':
                        arg_rss_bounds = false;
                        break;
                default:
                        return 2;
                }
        if (optind != argc - 1 || !(arg_seconds > 0)) {
                fprintf(stderr, "usage: hostile GROUPD_BIN [--seconds=S] [--only=NAME,...] [--keep]\n");
                return 2;
        }
        groupd_bin = argv[optind];
        if (geteuid() != 0) {
                fprintf(stderr, "hostile: skipped: needs root (attackers run as other uids)\n");
                return 77;
        }
        signal(SIGPIPE, SIG_IGN);
        {
                /* Soft to hard: the daemons inherit it (and raise their soft limit to it anyway). */
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) >= 0) {
                        rl.rlim_cur = rl.rlim_max;
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
        }

        for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
                if (!selected(attacks[i].name))
                        continue;
                snprintf(rt, sizeof rt, "/dev/shm/groupd-hostile.XXXXXX");
                if (!mkdtemp(rt)) {
                        perror("mkdtemp");
                        return 1;
                }
                chmod(rt, 0755);
                snprintf(sock_path, sizeof sock_path, "%s/socket", rt);
                snprintf(log_path, sizeof log_path, "%s/groupd.log", rt);
                snprintf(policy, sizeof policy, "%s/policy.conf", rt);
                FILE *f = fopen(policy, "we");
                if (f) {
                        fputs("never class=0x01\n", f);
                        fclose(f);
                }
                run_attack(&attacks[i]);
                if (!arg_keep) {
                        char cmd[400];
                        snprintf(cmd, sizeof cmd, "rm -rf '%s'", rt);
                        (void) !system(cmd);
                } else
                        fprintf(stderr, "hostile: kept %s\n", rt);
        }
        if (failures)
                fprintf(stderr, "hostile: %d bound(s) broken\n", failures);
        return failures ? 1 : 0;
}
