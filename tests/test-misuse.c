/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Misuse (issue 11): the real groupd on the simulated host, attacked and misused as a local user or a
 * careless administrator would: owners that are not the caller's, a second daemon, a --socket onto a
 * file, fd exhaustion, connection hoarding, empty packets, subscribers that never read, restarts without
 * the fd store, token guessing. Each test asserts what a user would notice, and fails without the fix. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "fd-util.h"
#include "groupd-client.h"
#include "groupd-proto.h"
#include "test-util.h"

static char runtime_dir[256];
static char socket_path[300];
static char log_path[300];
static pid_t daemon_pid = -1;

typedef struct DaemonOpts {
        const char *extra;          /* one more option */
        rlim_t nofile;              /* > 0: RLIMIT_NOFILE (soft and hard) */
} DaemonOpts;

static pid_t spawn_groupd(const char *rdir, const char *sock, const char *log, const DaemonOpts *o) {
        const char *bin = getenv("GROUPD_BIN");
        pid_t pid;

        ck_assert_msg(bin, "GROUPD_BIN not set (run through make check)");
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char a1[400], a2[400], a3[400];
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                if (o && o->nofile > 0) {
                        struct rlimit rl = { o->nofile, o->nofile };
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
                snprintf(a1, sizeof a1, "--runtime-dir=%s", rdir);
                snprintf(a2, sizeof a2, "--socket=%s", sock);
                snprintf(a3, sizeof a3, "--policy=%s/policy.conf", runtime_dir);
                execl(bin, "groupd", "--host=sim", a1, a2, a3, "--release-deadline=2", "--no-bus",
                      o && o->extra ? o->extra : "-v", "-v", (char *) NULL);
                _exit(127);
        }
        return pid;
}

static void daemon_start_opts(const DaemonOpts *o) {
        daemon_pid = spawn_groupd(runtime_dir, socket_path, log_path, o);
        for (int i = 0; i < 400; i++) {
                GdClient *c = NULL;
                int status;
                if (gd_client_connect(socket_path, &c) >= 0) {
                        gd_client_free(c);
                        return;
                }
                ck_assert_msg(waitpid(daemon_pid, &status, WNOHANG) == 0, "groupd died at start-up");
                usleep(10000);
        }
        ck_abort_msg("groupd did not come up");
}

static void daemon_restart_opts(const DaemonOpts *o) {
        (void) test_daemon_stop(&daemon_pid, SIGTERM, NULL);
        daemon_start_opts(o);
}

static void setup(void) {
        char policy[300];

        snprintf(runtime_dir, sizeof runtime_dir, "/tmp/groupd-misuse.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(runtime_dir));
        chmod(runtime_dir, 0755); /* tests connect as uid 65534 */
        snprintf(socket_path, sizeof socket_path, "%s/socket", runtime_dir);
        snprintf(log_path, sizeof log_path, "%s/groupd.log", runtime_dir);
        snprintf(policy, sizeof policy, "%s/policy.conf", runtime_dir);
        test_write_file(policy, "never class=0x01\nallow uid=65534 iommu-group=2\nallow uid=65533 iommu-group=1\n");
        daemon_start_opts(NULL);
}

static void teardown(void) {
        int status = test_daemon_stop(&daemon_pid, SIGTERM, NULL);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                test_cat_to_stderr(log_path);
        test_rm_rf(runtime_dir);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "groupd did not exit cleanly on SIGTERM (%s %d)",
                      WIFEXITED(status) ? "exit status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static unsigned count_log_lines(const char *needle) {
        char line[4096];
        unsigned n = 0;
        FILE *f = fopen(log_path, "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                n += strstr(line, needle) != NULL;
        fclose(f);
        return n;
}

static int raw_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                close(fd);
                return -errno;
        }
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return fd;
}

/* Receives one packet; returns its ERROR code, 0 for another message, -1 for EOF or nothing. */
static int recv_error_code(int fd, char *msg, size_t size) {
        static uint8_t in[GD_MSG_SIZE_MAX];
        GdMsg m = {};
        ssize_t n = recv(fd, in, sizeof in, 0);
        int code = 0;

        if (n <= 0 || gd_msg_decode(in, (size_t) n, &m) < 0)
                return -1;
        if (m.type == GD_MSG_ERROR) {
                code = (int) m.error.code;
                if (msg)
                        snprintf(msg, size, "%s", m.error.message ?: "");
        }
        gd_msg_done(&m);
        return code;
}

static int pidfd_open(pid_t pid) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static pid_t fork_sleeper(uid_t uid) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (uid != 0 && (setgid(uid) < 0 || setuid(uid) < 0))
                        _exit(2);
                pause();
                _exit(0);
        }
        return pid;
}

static void reap(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* ---------------------------------------------------------------- 1: owner binding */

/* In a child running as uid: acquire group spec naming the process behind pidfd as owner; writes
 * "ret code message" to the pipe. */
static void acquire_as(uid_t uid, const char *spec, pid_t owner, bool own_child, char *out, size_t size) {
        int p[2];
        pid_t pid;
        ssize_t n;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                GdClient *c = NULL;
                GdClientLease *l = NULL;
                const char *specs[] = { spec };
                char res[600];
                int r, fd;

                if (setgid(uid) < 0 || setuid(uid) < 0)
                        _exit(2);
                if (own_child) {
                        owner = fork();
                        if (owner == 0) {
                                pause();
                                _exit(0);
                        }
                }
                fd = (int) syscall(SYS_pidfd_open, owner, 0);
                if (fd < 0 || gd_client_connect(socket_path, &c) < 0)
                        _exit(3);
                r = gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .owner_pidfd = fd }, &l);
                snprintf(res, sizeof res, "%d %d %s", r, r < 0 ? gd_client_error_code(c) : 0,
                         r < 0 ? gd_client_error_message(c) : "");
                if (r >= 0)
                        (void) gd_client_release_lease(c, l);
                (void) !write(p[1], res, strlen(res));
                if (own_child)
                        kill(owner, SIGKILL);
                _exit(0);
        }
        close(p[1]);
        n = read(p[0], out, size - 1);
        out[n > 0 ? n : 0] = 0;
        close(p[0]);
        waitpid(pid, NULL, 0);
}

START_TEST(test_owner_binding) {
        char out[600], policy[300];
        pid_t other = fork_sleeper(65532);
        GdClient *c;
        GdClientLease *l;
        int fd;

        /* uid 65534 names PID 1: refused, naming the rule. */
        acquire_as(65534, "2", 1, false, out, sizeof out);
        ck_assert_msg(strncmp(out, "-1 6 ", 5) == 0, "pid 1 as owner: %s", out);
        ck_assert_msg(strstr(out, "owner-any"), "the refusal names the rule: %s", out);
        /* ... or another uid's process. */
        acquire_as(65534, "2", other, false, out, sizeof out);
        ck_assert_msg(strncmp(out, "-1 6 ", 5) == 0, "another uid's process as owner: %s", out);
        /* Its own child: allowed. */
        acquire_as(65534, "2", 0, true, out, sizeof out);
        ck_assert_msg(strncmp(out, "0 0", 3) == 0, "own child as owner: %s", out);
        /* With an owner-any rule for uid 65533, another uid's process is allowed to it. */
        snprintf(policy, sizeof policy, "%s/policy.conf", runtime_dir);
        test_write_file(policy, "never class=0x01\nallow uid=65534 iommu-group=2\nallow uid=65533 iommu-group=1\n"
                                "owner-any uid=65533\n");
        daemon_restart_opts(NULL);
        acquire_as(65533, "1", other, false, out, sizeof out);
        ck_assert_msg(strncmp(out, "0 0", 3) == 0, "owner-any: %s", out);
        /* root may name anyone. */
        c = test_connect(socket_path);
        for (int i = 0; i < 200 && test_count_leases(c) > 0; i++)
                usleep(10000);
        fd = pidfd_open(other);
        l = test_acquire(c, "1", &(GdAcquireOptions) { .owner_pidfd = fd });
        ck_assert_int_ge(gd_client_release_lease(c, l), 0);
        gd_client_lease_free(l);
        close(fd);
        gd_client_free(c);
        reap(other);
        ck_assert_uint_ge(count_log_lines("Refused uid 65534 pid"), 2);
}
END_TEST

/* ---------------------------------------------------------------- 2, 3: one daemon, its socket */

static int run_to_exit(pid_t pid) {
        int status = 0;
        for (int i = 0; i < 500; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("a groupd that should have refused to start is still running");
        return status;
}

START_TEST(test_second_daemon) {
        GdClient *c = test_connect(socket_path);
        GdClientLease *l = test_acquire(c, "6", &(GdAcquireOptions) { .label = "first", .owner_pidfd = -1 });
        char sock2[400], log2[400], want[64];
        struct stat st;
        int status;

        snprintf(sock2, sizeof sock2, "%s/socket2", runtime_dir);
        snprintf(log2, sizeof log2, "%s/second.log", runtime_dir);
        status = run_to_exit(spawn_groupd(runtime_dir, sock2, log2, NULL));
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "the second groupd did not fail");
        snprintf(want, sizeof want, "(pid %i)", (int) daemon_pid);
        ck_assert_msg(test_file_contains(log2, want), "the refusal does not name the running daemon's pid");
        ck_assert_int_lt(stat(sock2, &st), 0);
        /* The first daemon's lease is untouched. */
        ck_assert_int_eq(test_lease_state(c, l->lease.id, NULL), GD_LEASE_ACTIVE);
        assert_reported_driver(c, "6", "0000:06:00.0", "vfio-pci");
        gd_client_lease_free(l);
        gd_client_free(c);
}
END_TEST

START_TEST(test_socket_not_a_socket) {
        char rdir[400], file[400], log2[400], buf[64] = "";
        int status, fd;

        snprintf(rdir, sizeof rdir, "%s/other", runtime_dir);
        snprintf(file, sizeof file, "%s/precious.txt", runtime_dir);
        snprintf(log2, sizeof log2, "%s/other.log", runtime_dir);
        test_write_file(file, "keep me\n");
        status = run_to_exit(spawn_groupd(rdir, file, log2, NULL));
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "groupd started on a regular file");
        fd = open(file, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_gt(read(fd, buf, sizeof buf - 1), 0);
        close(fd);
        ck_assert_str_eq(buf, "keep me\n");
        ck_assert_msg(test_file_contains(log2, file), "the refusal does not name the path");

        /* Another runtime directory, but the running daemon's live socket: refused, the socket kept. */
        status = run_to_exit(spawn_groupd(rdir, socket_path, log2, NULL));
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "groupd took a live socket");
        GdClient *c = test_connect(socket_path);
        ck_assert_uint_eq(test_count_leases(c), 0);
        gd_client_free(c);
}
END_TEST

/* ---------------------------------------------------------------- 4: fd exhaustion */

static uint64_t daemon_cpu_ticks(void) {
        char path[64], buf[1024], *p;
        unsigned long ut = 0, st = 0;
        FILE *f;
        size_t n;

        snprintf(path, sizeof path, "/proc/%i/stat", (int) daemon_pid);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
        return ut + st;
}

/* How many accept4() calls the daemon makes in about a second (strace -c): a loop that spins on a
 * listener it cannot accept from makes them by the ten thousand, whatever share of the CPU it gets; one
 * that waits, a few dozen. -1 if strace cannot run here. */
static long daemon_accepts_in_a_second(void) {
        char cmd[256], line[256];
        long calls = 0;
        FILE *f;

        snprintf(cmd, sizeof cmd, "timeout -s INT 1 strace -f -c -e trace=accept4 -p %i 2>&1", (int) daemon_pid);
        f = popen(cmd, "re");
        if (!f)
                return -1;
        bool table = false;
        while (fgets(line, sizeof line, f)) {
                long c;
                if (strstr(line, "% time"))
                        table = true;
                if (table && strstr(line, "accept4") && sscanf(line, "%*f %*f %*d %ld", &c) == 1)
                        calls = c;
        }
        (void) pclose(f);
        return table ? calls : -1;
}

START_TEST(test_fd_exhaustion) {
        enum { N = 200 };
        int fds[N], n = 0;
        uint64_t t0;
        long hz = sysconf(_SC_CLK_TCK);

        /* A daemon with 64 fds at most, and 200 connections that never speak. */
        daemon_restart_opts(&(DaemonOpts) { .nofile = 64 });
        for (int i = 0; i < N; i++) {
                int fd = raw_connect();
                if (fd >= 0)
                        fds[n++] = fd;
        }
        usleep(200000);
        t0 = daemon_cpu_ticks();
        long accepts = daemon_accepts_in_a_second();
        /* Out of fds it must wait, not spin. */
        ck_assert_msg(accepts >= 0 || daemon_cpu_ticks() - t0 < (uint64_t) hz / 2, "groupd spins: %llu ticks in 1 s",
                      (unsigned long long) (daemon_cpu_ticks() - t0));
        ck_assert_msg(accepts < 500, "groupd spins: %ld accept4() calls in a second", accepts);
        ck_assert_uint_le(count_log_lines("accept"), 5);
        for (int i = 0; i < n; i++)
                close(fds[i]);
        /* Served again once the crowd is gone. */
        usleep(300000);
        GdClient *c = test_connect(socket_path);
        ck_assert_uint_eq(test_count_leases(c), 0);
        gd_client_free(c);
}
END_TEST

/* A daemon so short of fds that accept() itself fails (EMFILE): it pauses accepting, says so once, and
 * accepts again when fds come back; it does not spin. */
START_TEST(test_accept_pauses_on_emfile) {
        enum { N = 40 };
        int fds[N], n = 0;
        uint64_t t0;
        long hz = sysconf(_SC_CLK_TCK);

        daemon_restart_opts(&(DaemonOpts) { .nofile = 21 });
        for (int i = 0; i < N; i++) {
                int fd = raw_connect();
                if (fd >= 0)
                        fds[n++] = fd;
        }
        usleep(300000);
        t0 = daemon_cpu_ticks();
        long accepts = daemon_accepts_in_a_second();
        ck_assert_msg(accepts >= 0 || daemon_cpu_ticks() - t0 < (uint64_t) hz / 2, "groupd spins: %llu ticks in 1 s",
                      (unsigned long long) (daemon_cpu_ticks() - t0));
        ck_assert_msg(accepts < 500, "groupd spins on EMFILE: %ld accept4() calls in a second", accepts);
        /* Once per episode: an episode ends when an fd comes back (a refused connection closed) and an
         * accept succeeds, so a few, not one a failed accept. */
        ck_assert_uint_ge(count_log_lines("Cannot accept connections"), 1);
        ck_assert_uint_le(count_log_lines("Cannot accept connections"), 5);
        for (int i = 0; i < n; i++)
                close(fds[i]);
        usleep(500000);
        GdClient *c = test_connect(socket_path);
        ck_assert_uint_eq(test_count_leases(c), 0);
        gd_client_free(c);
        ck_assert_uint_ge(count_log_lines("Accepting connections again"), 1);
}
END_TEST

/* ---------------------------------------------------------------- 5: connection caps, HELLO deadline */

START_TEST(test_connection_caps) {
        int p[2], go[2];
        pid_t hog;
        char res[300] = "";

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        hog = fork();
        ck_assert_int_ge(hog, 0);
        if (hog == 0) {
                char msg[256] = "", out[300];

                close(go[1]);
                close(p[0]);
                int last = -1, code = -2, ok = 0;
                struct rlimit rl = { 4096, 4096 };

                (void) setrlimit(RLIMIT_NOFILE, &rl);
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                /* Many idle connections: the ones over the per-uid cap are refused with a word. */
                for (int i = 0; i < 300; i++) {
                        last = raw_connect();
                        if (last < 0)
                                break;
                        ok++;
                }
                usleep(200000);
                code = last >= 0 ? recv_error_code(last, msg, sizeof msg) : -3;
                snprintf(out, sizeof out, "%d|%s", code, msg);
                (void) !write(p[1], out, strlen(out));
                char b;
                (void) !read(go[0], &b, 1); /* hold them until told */
                _exit(0);
        }
        close(p[1]);
        close(go[0]);
        ck_assert_int_gt(read(p[0], res, sizeof res - 1), 0);
        close(p[0]);
        ck_assert_msg(strncmp(res, "9|", 2) == 0, "the connection over the per-uid cap: %s", res);
        ck_assert_msg(strstr(res, "uid 65534"), "the refusal names the uid: %s", res);

        /* Root and other uids are still served while the hog holds its connections. */
        GdClient *c = test_connect(socket_path);
        ck_assert_uint_eq(test_count_leases(c), 0);
        gd_client_free(c);
        char out[600];
        acquire_as(65533, "1", 0, true, out, sizeof out);
        ck_assert_msg(strncmp(out, "0 0", 3) == 0, "another uid while one hoards connections: %s", out);

        close(go[1]);
        waitpid(hog, NULL, 0);
}
END_TEST

START_TEST(test_hello_deadline) {
        char b;
        int fd;

        daemon_restart_opts(&(DaemonOpts) { .extra = "--hello-timeout=0.3" });
        fd = raw_connect();
        ck_assert_int_ge(fd, 0);
        /* Says nothing: closed by the daemon (EOF), well before the 5 s receive timeout. */
        ck_assert_int_eq(recv(fd, &b, 1, 0), 0);
        close(fd);

        /* One that says HELLO stays, idle, past the deadline. */
        GdClient *c = test_connect(socket_path);
        usleep(600000);
        ck_assert_uint_eq(test_count_leases(c), 0);
        gd_client_free(c);
}
END_TEST

/* ---------------------------------------------------------------- 9: zero-length packet */

START_TEST(test_zero_length_packet) {
        char msg[256];
        int fd = raw_connect();

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(send(fd, "", 0, 0), 0);
        ck_assert_int_eq(recv_error_code(fd, msg, sizeof msg), GD_ERR_PROTOCOL);
        ck_assert_msg(strstr(msg, "empty"), "%s", msg);
        /* The connection stays. */
        ck_assert_int_eq(send(fd, "", 0, 0), 0);
        ck_assert_int_eq(recv_error_code(fd, NULL, 0), GD_ERR_PROTOCOL);
        close(fd);
}
END_TEST

/* ---------------------------------------------------------------- 7: a subscriber that never reads */

START_TEST(test_events_dropped) {
        GdClient *c = test_connect(socket_path), *lazy = test_connect(socket_path);
        bool dropped = false;
        size_t n_events = 0;

        ck_assert_int_ge(gd_client_subscribe(lazy, 0), 0);
        /* Three events an acquire and release; the lazy subscriber reads none of them. */
        ck_assert_int_ge(gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED), 0);
        for (int i = 0; i < 700; i++) {
                GdClientLease *l = test_acquire(c, "6", &(GdAcquireOptions) { .owner_pidfd = -1 });
                char id[GD_LEASE_ID_MAX + 1];
                snprintf(id, sizeof id, "%s", l->lease.id);
                ck_assert_int_ge(gd_client_release_lease(c, l), 0);
                gd_client_lease_free(l);  /* our copies of the fds, or the release would wait for them */
                (void) test_wait_ended(c, id, NULL, 0);
        }
        /* Now it reads: an events-dropped event ends what it gets, and its connection is still served. */
        for (;;) {
                GdEvent e = {};
                int r = gd_client_next_event(lazy, 2000, &e);
                if (r <= 0)
                        break;
                n_events++;
                if (e.kind == GD_EVENT_EVENTS_DROPPED) {
                        dropped = true;
                        ck_assert_int_eq(e.errno_value, ENOBUFS);
                        gd_event_done(&e);
                        break;
                }
                gd_event_done(&e);
        }
        ck_assert_msg(dropped, "no events-dropped event after %zu events", n_events);
        ck_assert_uint_le(n_events, 1024 + 1024);
        ck_assert_uint_eq(test_count_leases(lazy), 0);
        gd_client_free(lazy);
        gd_client_free(c);
}
END_TEST

/* ---------------------------------------------------------------- 10: honest restarts */

START_TEST(test_restart_without_fd_store) {
        GdClient *c = test_connect(socket_path);
        GdClientLease *l = test_acquire(c, "6", &(GdAcquireOptions) { .lease_fd = true, .owner_pidfd = -1 });
        char id[GD_LEASE_ID_MAX + 1], want[200];

        snprintf(id, sizeof id, "%s", l->lease.id);
        /* The VMM (this process) is alive and holds the lease fd; the daemon dies hard, no fd store. */
        (void) test_daemon_stop(&daemon_pid, SIGKILL, NULL);
        gd_client_free(c);
        daemon_start_opts(NULL);
        c = test_connect(socket_path);
        for (int i = 0; i < 200 && test_count_leases(c) != 0; i++)
                usleep(20000);
        ck_assert_uint_eq(test_count_leases(c), 0);
        snprintf(want, sizeof want, "Lease %s (\"\") ended: daemon-restarted", id);
        ck_assert_msg(test_file_contains(log_path, want), "no \"%s\" in the log", want);
        ck_assert_msg(count_log_lines("fd store") >= 1, "the log does not say why (no fd store)");
        snprintf(want, sizeof want, "Recovered lease %s (\"\") has no live owner", id);
        ck_assert_msg(!test_file_contains(log_path, want), "the log says the owner is dead");
        gd_client_lease_free(l);
        gd_client_free(c);
}
END_TEST

START_TEST(test_sigterm_lease_ended) {
        GdClient *c, *mon;
        GdClientLease *l;
        char id[GD_LEASE_ID_MAX + 1];
        bool ended = false;

        daemon_restart_opts(&(DaemonOpts) { .extra = "--keep-leases-on-exit" });
        c = test_connect(socket_path);
        mon = test_connect(socket_path);
        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        l = test_acquire(c, "6", &(GdAcquireOptions) { .lease_fd = true, .owner_pidfd = -1 });
        snprintf(id, sizeof id, "%s", l->lease.id);
        kill(daemon_pid, SIGTERM);
        for (;;) {
                GdEvent e = {};
                if (gd_client_next_event(mon, 5000, &e) <= 0)
                        break;
                if (e.kind == GD_EVENT_LEASE_ENDED && strcmp(e.lease.id, id) == 0) {
                        ended = true;
                        ck_assert_int_eq(e.reason, GD_REASON_SHUTDOWN);
                }
                gd_event_done(&e);
                if (ended)
                        break;
        }
        if (!ended)
                test_cat_to_stderr(log_path);
        ck_assert_msg(ended, "SIGTERM ended lease %s without LEASE_ENDED", id);
        gd_client_lease_free(l);
        gd_client_free(c);
        gd_client_free(mon);
}
END_TEST

/* ---------------------------------------------------------------- 8, 11: logs bounded, tokens */

START_TEST(test_log_rate_limited) {
        /* 100 clients, each cut off for garbage: not 100 lines. */
        for (int i = 0; i < 100; i++) {
                int fd = raw_connect();
                ck_assert_int_ge(fd, 0);
                for (int k = 0; k < 9; k++) {
                        ck_assert_int_eq(send(fd, "xxxxxxxxxxxxxxxxxxxx", 20, 0), 20);
                        (void) recv_error_code(fd, NULL, 0);
                }
                close(fd);
        }
        GdClient *c = test_connect(socket_path);
        ck_assert_uint_eq(test_count_leases(c), 0);
        gd_client_free(c);
        ck_assert_uint_ge(count_log_lines("Disconnecting client"), 1);
        ck_assert_uint_le(count_log_lines("Disconnecting client"), 25);
}
END_TEST

START_TEST(test_token_refused_audited) {
        GdClient *c = test_connect(socket_path);
        const char *token = "0123456789abcdef0123456789abcdef";

        for (int i = 0; i < 100; i++)
                ck_assert_int_lt(gd_client_release(c, token), 0);
        gd_client_free(c);
        ck_assert_uint_ge(count_log_lines("Refused a token from uid 0"), 1);
        ck_assert_uint_le(count_log_lines("Refused a token"), 10);
        ck_assert_msg(!test_file_contains(log_path, token), "the token is in the log");
}
END_TEST

static Suite *misuse_suite(void) {
        Suite *s = suite_create("misuse");
        TCase *tc = tcase_create("sim");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 90);
        tcase_add_test(tc, test_owner_binding);
        tcase_add_test(tc, test_second_daemon);
        tcase_add_test(tc, test_socket_not_a_socket);
        tcase_add_test(tc, test_fd_exhaustion);
        tcase_add_test(tc, test_accept_pauses_on_emfile);
        tcase_add_test(tc, test_connection_caps);
        tcase_add_test(tc, test_hello_deadline);
        tcase_add_test(tc, test_zero_length_packet);
        tcase_add_test(tc, test_events_dropped);
        tcase_add_test(tc, test_restart_without_fd_store);
        tcase_add_test(tc, test_sigterm_lease_ended);
        tcase_add_test(tc, test_log_rate_limited);
        tcase_add_test(tc, test_token_refused_audited);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char *argv[]) {
        if (geteuid() != 0) {
                fprintf(stderr, "test-misuse: skipped: needs root (tests switch uid)\n");
                return 77;
        }
        return test_run_suite(misuse_suite(), argc > 1 ? argv[1] : NULL);
}
