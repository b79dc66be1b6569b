/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon under a service manager, without systemd: this test plays systemd's part. It owns a
 * NOTIFY_SOCKET (unix datagram) that collects READY=1, STATUS=, WATCHDOG=1 and the fd store's FDSTORE=1
 * fds with their FDNAME=s, honours FDSTOREREMOVE=1, and restarts groupd with the stored fds passed in as
 * systemd does (fds from 3 on, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID set to the daemon's own pid).
 * Also: the capabilities a running daemon keeps. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fd-util.h"
#include "groupd-client.h"
#include "test-util.h"

#define STORE_MAX 64

static char runtime_dir[64];
static char socket_path[300];
static char notify_path[100];
static int notify_fd = -1;
static pid_t daemon_pid = -1;

static struct {
        char name[256];
        int fd;
} store[STORE_MAX];
static size_t n_store;

static unsigned n_ready, n_watchdog, n_stopping;
static char last_status[512];

/* ---------------------------------------------------------------- systemd's side */

static void store_remove(const char *name) {
        for (size_t i = 0; i < n_store;)
                if (strcmp(store[i].name, name) == 0) {
                        close(store[i].fd);
                        store[i] = store[--n_store];
                } else
                        i++;
}

static size_t store_count(const char *prefix) {
        size_t n = 0;
        for (size_t i = 0; i < n_store; i++)
                if (strncmp(store[i].name, prefix, strlen(prefix)) == 0)
                        n++;
        return n;
}

static bool store_has(const char *name) {
        for (size_t i = 0; i < n_store; i++)
                if (strcmp(store[i].name, name) == 0)
                        return true;
        return false;
}

static void store_clear(void) {
        for (size_t i = 0; i < n_store; i++)
                close(store[i].fd);
        n_store = 0;
}

/* Reads one message if one comes within timeout_ms; false if none. */
static bool notify_read(int timeout_ms) {
        char buf[4096], ctl[CMSG_SPACE(sizeof(int) * 16)];
        struct iovec iov = { buf, sizeof buf - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
        struct pollfd p = { .fd = notify_fd, .events = POLLIN };
        int fds[16];
        size_t n_fds = 0;
        bool fdstore = false, fdstoreremove = false;
        char name[256] = "";
        ssize_t n;

        if (poll(&p, 1, timeout_ms) <= 0)
                return false;
        n = recvmsg(notify_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return false;
        buf[n] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        memcpy(fds + n_fds, CMSG_DATA(c), k * sizeof(int));
                        n_fds += k;
                }

        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                if (strcmp(line, "READY=1") == 0)
                        n_ready++;
                else if (strcmp(line, "WATCHDOG=1") == 0)
                        n_watchdog++;
                else if (strcmp(line, "STOPPING=1") == 0)
                        n_stopping++;
                else if (strncmp(line, "STATUS=", 7) == 0)
                        snprintf(last_status, sizeof last_status, "%s", line + 7);
                else if (strcmp(line, "FDSTORE=1") == 0)
                        fdstore = true;
                else if (strcmp(line, "FDSTOREREMOVE=1") == 0)
                        fdstoreremove = true;
                else if (strncmp(line, "FDNAME=", 7) == 0)
                        snprintf(name, sizeof name, "%s", line + 7);
        }

        if (fdstoreremove) {
                ck_assert_msg(name[0], "FDSTOREREMOVE=1 without FDNAME=");
                store_remove(name);
        }
        for (size_t i = 0; i < n_fds; i++) {
                if (fdstore && n_store < STORE_MAX) {
                        /* systemd's rules for a name: printable ASCII, no ':', 1 to 255 characters. */
                        ck_assert_msg(name[0] && strlen(name) <= 255 && !strchr(name, ':'), "bad FDNAME \"%s\"",
                                      name);
                        snprintf(store[n_store].name, sizeof store[n_store].name, "%s", name);
                        store[n_store++].fd = fds[i];
                } else
                        close(fds[i]);
        }
        ck_assert_msg(!fdstore || n_fds > 0, "FDSTORE=1 without an fd (\"%s\")", name);
        return true;
}

/* Reads messages until cond() holds, for at most timeout_ms. */
#define notify_until(cond, timeout_ms)                                                  \
        ({                                                                              \
                int _left = (timeout_ms);                                               \
                while (!(cond) && _left > 0) {                                          \
                        (void) notify_read(20);                                         \
                        _left -= 20;                                                    \
                }                                                                       \
                (cond);                                                                 \
        })

static void notify_drain(void) {
        while (notify_read(0))
                ;
}

/* ---------------------------------------------------------------- the daemon */

static void daemon_spawn(bool pass_store, const char *extra) {
        const char *bin = getenv("GROUPD_BIN");
        char log[300];

        ck_assert_msg(bin, "GROUPD_BIN not set (run through make check)");
        snprintf(log, sizeof log, "%s/groupd.log", runtime_dir);
        n_ready = n_stopping = 0;

        daemon_pid = fork();
        ck_assert_int_ge(daemon_pid, 0);
        if (daemon_pid == 0) {
                char a1[400], a2[400], a3[400], names[STORE_MAX * 257] = "", num[32];
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644), tmp[STORE_MAX];

                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                if (pass_store && n_store > 0) {
                        /* As systemd: the fds from 3 on, in order, named in LISTEN_FDNAMES. */
                        for (size_t i = 0; i < n_store; i++)
                                tmp[i] = fcntl(store[i].fd, F_DUPFD_CLOEXEC, 200);
                        for (size_t i = 0; i < n_store; i++) {
                                if (dup2(tmp[i], 3 + (int) i) < 0)
                                        _exit(126);
                                if (i > 0)
                                        strcat(names, ":");
                                strcat(names, store[i].name);
                        }
                        snprintf(num, sizeof num, "%zu", n_store);
                        setenv("LISTEN_FDS", num, 1);
                        setenv("LISTEN_FDNAMES", names, 1);
                        snprintf(num, sizeof num, "%i", (int) getpid());
                        setenv("LISTEN_PID", num, 1);
                }
                snprintf(num, sizeof num, "%i", (int) getpid());
                setenv("WATCHDOG_PID", num, 1);
                setenv("WATCHDOG_USEC", "400000", 1);
                setenv("NOTIFY_SOCKET", notify_path, 1);

                snprintf(a1, sizeof a1, "--runtime-dir=%s", runtime_dir);
                snprintf(a2, sizeof a2, "--socket=%s", socket_path);
                snprintf(a3, sizeof a3, "--policy=%s/no-such-policy.conf", runtime_dir);
                execl(bin, "groupd", "--host=sim", a1, a2, a3, "--release-deadline=2", "--keep-leases-on-exit",
                      "-v", extra, (char *) NULL);
                _exit(127);
        }

        /* Ready when it says so. */
        for (int i = 0; i < 500 && n_ready == 0; i++) {
                int status;
                ck_assert_msg(waitpid(daemon_pid, &status, WNOHANG) == 0, "groupd died at start-up");
                (void) notify_read(20);
        }
        ck_assert_msg(n_ready == 1, "no READY=1 from groupd");
}

static void notify_pump(void) {
        (void) notify_read(20); /* systemd keeps reading while the service stops */
}

static int daemon_stop(int sig) {
        return test_daemon_stop(&daemon_pid, sig, notify_pump);
}

static char *log_path(void) {
        static char path[400];
        snprintf(path, sizeof path, "%s/groupd.log", runtime_dir);
        return path;
}

static void setup(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        snprintf(runtime_dir, sizeof runtime_dir, "/tmp/groupd-sd-test.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(runtime_dir));
        chmod(runtime_dir, 0755);
        snprintf(socket_path, sizeof socket_path, "%s/socket", runtime_dir);
        snprintf(notify_path, sizeof notify_path, "%s/notify", runtime_dir);

        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(notify_fd, 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", notify_path);
        ck_assert_int_eq(bind(notify_fd, (struct sockaddr *) &sa, sizeof sa), 0);
        n_store = 0;
        n_watchdog = 0;
        last_status[0] = 0;
}

static void teardown(void) {
        int status = daemon_stop(SIGTERM);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                test_cat_to_stderr(log_path());
        store_clear();
        close(notify_fd);
        test_rm_rf(runtime_dir);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "groupd did not exit cleanly on SIGTERM");
}

/* ---------------------------------------------------------------- client helpers */

static bool log_contains(const char *text) {
        return test_file_contains(log_path(), text);
}

/* ---------------------------------------------------------------- readiness and watchdog */

START_TEST(test_ready_status_watchdog) {
        GdClient *c;
        GdClientLease *l;

        daemon_spawn(false, NULL);
        ck_assert_msg(strstr(last_status, "0 lease(s) active"), "STATUS=%s", last_status);

        /* WATCHDOG_USEC=400 ms: sd-event pings well within it, from the loop. */
        ck_assert_msg(notify_until(n_watchdog >= 3, 3000), "%u WATCHDOG=1 in 3 s", n_watchdog);

        c = test_connect(socket_path);
        l = test_acquire(c, "2", &(GdAcquireOptions) { .owner_pidfd = -1 });
        ck_assert_msg(notify_until(strstr(last_status, "1 lease(s) active") != NULL, 3000), "STATUS=%s",
                      last_status);
        gd_client_lease_free(l);
        gd_client_free(c); /* the connection owned it */
        ck_assert_msg(notify_until(strstr(last_status, "0 lease(s) active, 0 being") != NULL, 5000), "STATUS=%s",
                      last_status);

        ck_assert_int_eq(daemon_stop(SIGTERM), 0);
        ck_assert_uint_eq(n_stopping, 1);
}
END_TEST

/* Socket activation with systemd's own tool: nothing runs until the first connection; then groupd starts
 * on the socket it was given, and says it is ready. */
START_TEST(test_socket_activation) {
        const char *bin = getenv("GROUPD_BIN");
        char a1[400], a2[400], a3[400], env[200], log[300];
        GdClient *c;
        GdGroup *g = NULL;
        size_t n = 0;

        if (access("/usr/bin/systemd-socket-activate", X_OK) < 0) {
                fprintf(stderr, "test_socket_activation: no systemd-socket-activate (package systemd); not run\n");
                return;
        }
        snprintf(log, sizeof log, "%s/groupd.log", runtime_dir);
        n_ready = 0;
        daemon_pid = fork();
        ck_assert_int_ge(daemon_pid, 0);
        if (daemon_pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                snprintf(a1, sizeof a1, "--runtime-dir=%s", runtime_dir);
                snprintf(a2, sizeof a2, "--listen=%s", socket_path);
                snprintf(a3, sizeof a3, "--policy=%s/no-such-policy.conf", runtime_dir);
                snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", notify_path);
                /* It execs groupd itself (no --accept), so LISTEN_PID is groupd's pid. */
                execl("/usr/bin/systemd-socket-activate", "systemd-socket-activate", "--seqpacket", a2,
                      "--fdname=groupd.socket", "-E", env, bin, "--host=sim", a1, a3, "-v", (char *) NULL);
                _exit(127);
        }

        /* Nothing is started before someone connects. */
        for (int i = 0; i < 100 && access(socket_path, F_OK) < 0; i++)
                usleep(10000);
        ck_assert_msg(access(socket_path, F_OK) == 0, "systemd-socket-activate did not listen");
        ck_assert(!notify_read(300));
        ck_assert_uint_eq(n_ready, 0);

        /* The first connection starts it; the request waits in the socket meanwhile. */
        c = test_connect(socket_path);
        ck_assert_int_ge(gd_client_list_groups(c, &g, &n), 0);
        ck_assert_uint_ge(n, 7);
        gd_groups_free(g, n);
        ck_assert_msg(notify_until(n_ready == 1, 3000), "no READY=1");
        ck_assert(log_contains("socket from systemd"));
        gd_client_free(c);
}
END_TEST

/* ---------------------------------------------------------------- capabilities */

/* Every thread of the daemon (main, the simulated host's responder) has exactly this CapEff and CapPrm.
 * Returns the number of threads. */
static unsigned assert_daemon_caps(uint64_t want) {
        char dir[64], path[64 + 256 + 16];
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        snprintf(dir, sizeof dir, "/proc/%i/task", (int) daemon_pid);
        d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "%s/%s/status", dir, de->d_name);
                ck_assert_msg(test_status_caps(path, "CapEff") == want, "thread %s: CapEff %016llx, want %016llx",
                              de->d_name, (unsigned long long) test_status_caps(path, "CapEff"),
                              (unsigned long long) want);
                ck_assert_msg(test_status_caps(path, "CapPrm") == want, "thread %s: CapPrm %016llx, want %016llx",
                              de->d_name, (unsigned long long) test_status_caps(path, "CapPrm"),
                              (unsigned long long) want);
                n++;
        }
        closedir(d);
        return n;
}

START_TEST(test_capabilities_dropped) {
        /* The documented set (groupd(8), daemon/edge/caps.h): CAP_SYS_RESOURCE, if we have it to give. */
        uint64_t mine = test_status_caps("/proc/self/status", "CapEff");
        uint64_t want = mine & (1ULL << CAP_SYS_RESOURCE);
        GdClient *c, *mon;
        GdClientLease *l;
        char token[GD_TOKEN_LEN + 1], id[GD_LEASE_ID_MAX + 1];

        ck_assert_msg(mine != want, "this test runs with no capability to drop (CapEff %016llx)",
                      (unsigned long long) mine);

        daemon_spawn(false, NULL);
        ck_assert_uint_ge(assert_daemon_caps(want), 2);

        /* ...and it still does its job: acquire and release move drivers on the (simulated) host. */
        c = test_connect(socket_path);
        mon = test_connect(socket_path);
        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        l = test_acquire(c, "6", &(GdAcquireOptions) { .owner_pidfd = -1 });
        assert_reported_driver(c, "6", "0000:06:00.0", "vfio-pci");
        snprintf(token, sizeof token, "%s", l->token);
        snprintf(id, sizeof id, "%s", l->lease.id);
        gd_client_lease_free(l); /* closes our copies of the fds, or the (simulated) kernel holds the unbind up */
        ck_assert_int_ge(gd_client_release(c, token), 0);
        ck_assert_int_eq(test_wait_ended(mon, id, NULL, 0), GD_REASON_RELEASED);
        assert_reported_driver(c, "6", "0000:06:00.0", "xhci_hcd");
        assert_daemon_caps(want);
        gd_client_free(c);
        gd_client_free(mon);
        ck_assert_int_eq(daemon_stop(SIGTERM), 0);

        /* The debugging switch keeps them all. */
        daemon_spawn(false, "--keep-capabilities");
        assert_daemon_caps(mine);
}
END_TEST

/* ---------------------------------------------------------------- the fd store across a restart */

/* _i: 0 restart by SIGTERM (systemctl restart), 1 crash (SIGKILL), 2 crash with the store NOT passed
 * back (no FileDescriptorStoreMax=): the lease-fd lease is then lost, as before the fd store. */
START_TEST(test_fd_store_restart) {
        const bool pass_store = _i != 2;
        GdClient *c, *c2, *mon;
        GdClientLease *la, *lb, *lc;
        char ida[GD_LEASE_ID_MAX + 1], idb[GD_LEASE_ID_MAX + 1], idc[GD_LEASE_ID_MAX + 1], name[GD_LEASE_ID_MAX + 64];
        const char *specs[] = { "6" };
        GdClientLease *busy = NULL;
        int pidfd, lease_fd;
        pid_t vmm;

        daemon_spawn(false, NULL);

        /* A: owned by a process. B: owned by a lease fd. C: owned by its connection. */
        vmm = fork();
        ck_assert_int_ge(vmm, 0);
        if (vmm == 0) {
                pause();
                _exit(0);
        }
        pidfd = (int) syscall(SYS_pidfd_open, vmm, 0);
        ck_assert_int_ge(pidfd, 0);
        c = test_connect(socket_path);
        c2 = test_connect(socket_path);
        la = test_acquire(c, "1", &(GdAcquireOptions) { .label = "by-process", .owner_pidfd = pidfd });
        lb = test_acquire(c, "6", &(GdAcquireOptions) { .label = "by-lease-fd", .lease_fd = true, .owner_pidfd = -1 });
        lc = test_acquire(c2, "2", &(GdAcquireOptions) { .label = "by-connection", .owner_pidfd = -1 });
        snprintf(ida, sizeof ida, "%s", la->lease.id);
        snprintf(idb, sizeof idb, "%s", lb->lease.id);
        snprintf(idc, sizeof idc, "%s", lc->lease.id);
        lease_fd = TAKE_FD(lb->lease_fd);
        close(pidfd);
        gd_client_lease_free(la);
        gd_client_lease_free(lb);
        gd_client_lease_free(lc);

        /* What the store holds: container, group and owner of A and B; nothing of C. */
        snprintf(name, sizeof name, "lease-%s-owner", idb);
        ck_assert_msg(notify_until(store_has(name), 3000), "no %s in the fd store", name);
        notify_drain();
        snprintf(name, sizeof name, "lease-%s-", ida);
        ck_assert_uint_eq(store_count(name), 3);
        snprintf(name, sizeof name, "lease-%s-group-1", ida);
        ck_assert(store_has(name));
        snprintf(name, sizeof name, "lease-%s-container", idb);
        ck_assert(store_has(name));
        snprintf(name, sizeof name, "lease-%s-group-6", idb);
        ck_assert(store_has(name));
        snprintf(name, sizeof name, "lease-%s-", idc);
        ck_assert_uint_eq(store_count(name), 0);
        ck_assert_uint_eq(n_store, 6);

        /* The restart. The old daemon's connections die with it. */
        if (_i == 0) {
                int status = daemon_stop(SIGTERM);
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                /* C ended on the way out (its connection cannot outlive the daemon); A and B stay stored. */
                ck_assert_uint_eq(n_store, 6);
        } else
                daemon_stop(SIGKILL);
        gd_client_free(c);
        gd_client_free(c2);
        if (!pass_store)
                store_clear(); /* what systemd does without FileDescriptorStoreMax= */
        daemon_spawn(pass_store, NULL);

        mon = test_connect(socket_path);
        ck_assert_int_ge(gd_client_subscribe(mon, 0), 0);
        for (int i = 0; i < 200 && test_count_leases(mon) != (pass_store ? 2u : 1u); i++)
                usleep(20000);
        ck_assert_int_eq(test_lease_state(mon, idc, NULL), -1);
        assert_reported_driver(mon, "2", "0000:02:00.0", "e1000e");
        ck_assert_int_eq(test_lease_state(mon, ida, NULL), GD_LEASE_ACTIVE);
        assert_reported_driver(mon, "1", "0000:01:00.0", "vfio-pci");

        if (!pass_store) {
                /* B's lease fd died with the old daemon: B ended and its device went home, although its
                 * holder still has its end. */
                ck_assert_int_eq(test_lease_state(mon, idb, NULL), -1);
                assert_reported_driver(mon, "6", "0000:06:00.0", "xhci_hcd");
                ck_assert_uint_eq(test_count_leases(mon), 1);
                close(lease_fd);
        } else {
                ck_assert_int_eq(test_lease_state(mon, idb, NULL), GD_LEASE_ACTIVE);
                assert_reported_driver(mon, "6", "0000:06:00.0", "vfio-pci");
                ck_assert(log_contains("with its fds from the fd store"));
                ck_assert_uint_eq(n_store, 6);

                /* Still held: a new acquire of group 6 is refused. */
                c = test_connect(socket_path);
                ck_assert_int_lt(gd_client_acquire(c, specs, 1, &(GdAcquireOptions) { .owner_pidfd = -1 }, &busy), 0);
                ck_assert_int_eq(gd_client_error_code(c), GD_ERR_BUSY);
                ck_assert_ptr_null(busy);
                gd_client_free(c);

                /* The holder lets go of its lease fd: the restarted daemon sees it, releases B, puts the
                 * driver back and drops B's fds from the store. */
                close(lease_fd);
                ck_assert_int_eq(test_wait_ended(mon, idb, NULL, 0), GD_REASON_LEASE_FD_CLOSED);
                assert_reported_driver(mon, "6", "0000:06:00.0", "xhci_hcd");
                snprintf(name, sizeof name, "lease-%s-", idb);
                ck_assert_msg(notify_until(store_count(name) == 0, 3000), "B's fds are still stored");
                ck_assert_uint_eq(n_store, 3);
        }

        /* A's owner exits: watched again after the restart (its pidfd from the store, or reopened). */
        kill(vmm, SIGKILL);
        waitpid(vmm, NULL, 0);
        ck_assert_int_eq(test_wait_ended(mon, ida, NULL, 0), GD_REASON_OWNER_EXITED);
        assert_reported_driver(mon, "1", "0000:01:00.0", "nouveau");
        ck_assert_msg(notify_until(n_store == 0, 3000), "%zu fd(s) still stored", n_store);
        ck_assert_uint_eq(test_count_leases(mon), 0);
        gd_client_free(mon);
}
END_TEST

/* The owners go away while the daemon is down, and the store holds an fd of a lease nobody knows: the
 * restarted daemon ends both leases (their devices go home) and empties the store. */
START_TEST(test_fd_store_owner_gone_while_down) {
        GdClient *c, *mon;
        GdClientLease *la, *lb;
        char ida[GD_LEASE_ID_MAX + 1], idb[GD_LEASE_ID_MAX + 1], name[GD_LEASE_ID_MAX + 64];
        int pidfd, lease_fd, p[2];
        pid_t vmm;

        daemon_spawn(false, NULL);
        vmm = fork();
        ck_assert_int_ge(vmm, 0);
        if (vmm == 0) {
                pause();
                _exit(0);
        }
        pidfd = (int) syscall(SYS_pidfd_open, vmm, 0);
        ck_assert_int_ge(pidfd, 0);
        c = test_connect(socket_path);
        la = test_acquire(c, "1", &(GdAcquireOptions) { .owner_pidfd = pidfd });
        lb = test_acquire(c, "6", &(GdAcquireOptions) { .lease_fd = true, .owner_pidfd = -1 });
        snprintf(ida, sizeof ida, "%s", la->lease.id);
        snprintf(idb, sizeof idb, "%s", lb->lease.id);
        lease_fd = TAKE_FD(lb->lease_fd);
        close(pidfd);
        gd_client_lease_free(la);
        gd_client_lease_free(lb);
        snprintf(name, sizeof name, "lease-%s-owner", idb);
        ck_assert_msg(notify_until(store_has(name) && n_store == 6, 3000), "%zu fd(s) stored", n_store);

        daemon_stop(SIGKILL);
        gd_client_free(c);
        close(lease_fd);
        kill(vmm, SIGKILL);
        waitpid(vmm, NULL, 0);
        /* A stray: some lease the state file does not know. */
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        close(p[1]);
        snprintf(store[n_store].name, sizeof store[n_store].name, "lease-0123456789ab-container");
        store[n_store++].fd = p[0];

        daemon_spawn(true, NULL);
        mon = test_connect(socket_path);
        for (int i = 0; i < 200 && test_count_leases(mon) != 0; i++)
                usleep(20000);
        ck_assert_uint_eq(test_count_leases(mon), 0);
        assert_reported_driver(mon, "1", "0000:01:00.0", "nouveau");
        assert_reported_driver(mon, "6", "0000:06:00.0", "xhci_hcd");
        ck_assert_msg(notify_until(n_store == 0, 3000), "%zu fd(s) still stored (first: %s)", n_store,
                      n_store ? store[0].name : "");
        ck_assert(log_contains("Dropping fd \"lease-0123456789ab-container\""));
        gd_client_free(mon);
}
END_TEST

static Suite *systemd_suite(void) {
        Suite *s = suite_create("systemd");
        TCase *tc = tcase_create("service");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_ready_status_watchdog);
        tcase_add_test(tc, test_socket_activation);
        tcase_add_test(tc, test_capabilities_dropped);
        tcase_add_loop_test(tc, test_fd_store_restart, 0, 3);
        tcase_add_test(tc, test_fd_store_owner_gone_while_down);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        if (geteuid() != 0) {
                fprintf(stderr, "test-systemd: skipped: needs root (the daemon drops capabilities it must have)\n");
                return 77;
        }
        return test_run_suite(systemd_suite(), NULL);
}
