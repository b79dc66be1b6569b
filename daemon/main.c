/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* groupd: brokers ownership of IOMMU groups. Start-up, options, signals, readiness. */
#include <getopt.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "caps.h"
#include "fd-util.h"
#include "bus.h"
#include "host-sim.h"
#include "uevent-watch.h"
#include "log.h"
#include "manager.h"
#include "server.h"
#include "service.h"

static const char *arg_host = "linux";
static const char *arg_runtime_dir = GD_RUNDIR;
static const char *arg_socket = NULL;
static const char *arg_policy = "/etc/groupd/policy.conf";
static const char *arg_sysfs_root = NULL;
static const char *arg_dev_root = NULL;
static uint64_t arg_release_deadline_usec = 0;
static uint64_t arg_hello_timeout_usec = 0;
static bool arg_keep_leases = false;
static bool arg_bus = true;
static bool arg_keep_caps = false;

static void help(void) {
        printf("Usage: groupd [OPTIONS]\n\n"
               "Brokers ownership of IOMMU groups: binds a group's devices to vfio-pci, hands the VFIO\n"
               "container and group fds to the VMM that asked, and puts the host drivers back when the\n"
               "lease ends.\n\n"
               "  --host=linux|sim|sim:FILE  the host: the real kernel (default), or a simulated host\n"
               "                             (built-in default topology, or one read from FILE)\n"
               "  --runtime-dir=DIR          state file and default socket (default " GD_RUNDIR ")\n"
               "  --socket=PATH              native socket (default RUNTIME-DIR/socket), unless socket-activated\n"
               "  --policy=FILE              policy file (default /etc/groupd/policy.conf; built-in default\n"
               "                             if it does not exist)\n"
               "  --sysfs-root=DIR           linux host: read sysfs here (default /sys)\n"
               "  --dev-root=DIR             linux host: /dev here (default /dev)\n"
               "  --release-deadline=SEC     report a held-up release after SEC seconds (default 10)\n"
               "  --hello-timeout=SEC        close a connection that sends no message within SEC seconds\n"
               "                             of connecting (default 5)\n"
               "  --keep-leases-on-exit      on SIGTERM, keep leases of live owner processes, and\n"
               "                             lease-fd leases kept in the fd store (for restarts)\n"
               "  --keep-capabilities        do not drop capabilities (debugging; see groupd(8))\n"
               "  --no-bus                   do not offer the D-Bus API (org.groupd1 on the system bus; without\n"
               "                             a system bus groupd goes on with the native socket only)\n"
               "  -v, --verbose              debug logging\n"
               "  -h, --help                 this text\n"
               "      --version              the version\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_HOST = 0x100, ARG_RUNTIME_DIR, ARG_SOCKET, ARG_POLICY, ARG_SYSFS_ROOT, ARG_DEV_ROOT,
                ARG_RELEASE_DEADLINE, ARG_HELLO_TIMEOUT, ARG_KEEP_LEASES, ARG_KEEP_CAPS, ARG_VERSION, ARG_NO_BUS,
        };
        static const struct option options[] = {
                { "host", required_argument, NULL, ARG_HOST },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "sysfs-root", required_argument, NULL, ARG_SYSFS_ROOT },
                { "dev-root", required_argument, NULL, ARG_DEV_ROOT },
                { "release-deadline", required_argument, NULL, ARG_RELEASE_DEADLINE },
                { "hello-timeout", required_argument, NULL, ARG_HELLO_TIMEOUT },
                { "keep-leases-on-exit", no_argument, NULL, ARG_KEEP_LEASES },
                { "no-bus", no_argument, NULL, ARG_NO_BUS },
                { "keep-capabilities", no_argument, NULL, ARG_KEEP_CAPS },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case ARG_HOST:
                        arg_host = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        arg_runtime_dir = optarg;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_POLICY:
                        arg_policy = optarg;
                        break;
                case ARG_SYSFS_ROOT:
                        arg_sysfs_root = optarg;
                        break;
                case ARG_DEV_ROOT:
                        arg_dev_root = optarg;
                        break;
                case ARG_RELEASE_DEADLINE: {
                        char *end;
                        double d = strtod(optarg, &end);
                        if (*end != 0 || !(d > 0) || d > 86400) {
                                log_error("Invalid --release-deadline \"%s\": want seconds, 0 < SEC <= 86400.", optarg);
                                return -EINVAL;
                        }
                        arg_release_deadline_usec = (uint64_t) (d * 1e6);
                        break;
                }
                case ARG_HELLO_TIMEOUT: {
                        char *end;
                        double d = strtod(optarg, &end);
                        if (*end != 0 || !(d >= 0.01) || d > 3600) {
                                log_error("Invalid --hello-timeout \"%s\": want seconds, 0.01 <= SEC <= 3600.", optarg);
                                return -EINVAL;
                        }
                        arg_hello_timeout_usec = (uint64_t) (d * 1e6);
                        break;
                }
                case ARG_KEEP_LEASES:
                        arg_keep_leases = true;
                        break;
                case ARG_NO_BUS:
                        arg_bus = false;
                        break;
                case ARG_KEEP_CAPS:
                        arg_keep_caps = true;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("groupd %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                log_error("Unexpected argument \"%s\".", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int make_host(const char *runtime_dir, Host **ret) {
        if (streq(arg_host, "linux")) {
                HostLinuxConfig cfg = { .sysfs_root = arg_sysfs_root, .dev_root = arg_dev_root };
                return host_new_linux(&cfg, ret);
        }
        if (streq(arg_host, "sim") || startswith_word(arg_host, "sim:")) {
                _cleanup_free_ char *dir = NULL;
                HostSimConfig cfg = {};
                if (asprintf(&dir, "%s/sim", runtime_dir) < 0)
                        return -ENOMEM;
                cfg.state_dir = dir;
                cfg.topology_path = startswith_word(arg_host, "sim:");
                return host_new_sim(&cfg, ret);
        }
        log_error("Unknown --host=\"%s\": want linux, sim or sim:FILE.", arg_host);
        return -EINVAL;
}

/* One daemon per runtime directory: the state file, the sim tree and the default socket live there, and a
 * second daemon reconciling the first one's state file would end its live leases. flock() on RUNTIME/lock,
 * held for the daemon's life (the fd is close-on-exec, so no child keeps it); the file holds the holder's
 * pid for the refusal message. The lock is on the inode, so two spellings of one directory (a symlink, a
 * bind mount) still meet. Returns the fd (kept open), or < 0 after logging. */
static int runtime_dir_lock(const char *dir) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        char buf[32] = "";
        ssize_t n;

        if (asprintf(&path, "%s/lock", dir) < 0)
                return log_oom();
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to open the lock file %s: %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;

                n = pread(fd, buf, sizeof buf - 1, 0);
                buf[n > 0 ? n : 0] = 0;
                buf[strcspn(buf, "\n")] = 0;
                if (e == EWOULDBLOCK)
                        log_error("Another groupd (pid %s) is running on runtime directory %s (it holds %s); "
                                  "not starting a second one: it would take the first one's leases for dead. "
                                  "Touched nothing.", isempty(buf) ? "unknown" : buf, dir, path);
                else
                        log_error_errno(-e, "Failed to lock %s: %m", path);
                return -(e == EWOULDBLOCK ? EBUSY : e);
        }
        n = snprintf(buf, sizeof buf, "%i\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) n, 0) != n)
                log_warning_errno(-errno, "Failed to write our pid to %s: %m", path);
        return TAKE_FD(fd);
}

/* A daemon that holds one fd per connection, plus a few per lease: the soft limit of 1024 is far too low
 * and the hard limit is what the administrator (or the unit's LimitNOFILE=) allows. groupd never calls
 * select(), so a high soft limit is harmless. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning_errno(-errno, "Failed to raise the soft fd limit to %llu: %m",
                                  (unsigned long long) rl.rlim_max);
        else
                log_debug("Raised the soft fd limit to %llu.", (unsigned long long) rl.rlim_max);
}

static int socket_path_refused(const char *path, int r) {
        if (r == -EEXIST)
                log_error("Refusing to listen on \"%s\": it exists and is not a socket; groupd removes only a "
                          "stale socket of its own. Move it away, or pick another --socket=.", path);
        else
                log_error("Refusing to listen on \"%s\": a live server answers there (another groupd?); not "
                          "taking its socket away.", path);
        return 1;
}

/* Test only: the systemd tier's watchdog scenario (tests/vm/systemd/scenario-50-watchdog.sh) makes the
 * event loop hang, so that the service manager's watchdog fires. Armed only when all of these hold:
 * GROUPD_TEST_HANG_ON_SIGUSR2=1 in the environment (the shipped unit never sets it; the tier does through
 * a drop-in), uid 0, and a watchdog expected ($WATCHDOG_USEC for this pid). Otherwise SIGUSR2 keeps its
 * default action, as before. Armed, SIGUSR2 runs a callback that never returns: the loop stops pinging,
 * and the watchdog's SIGABRT (not blocked) ends the process. */
static int on_test_hang(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_warning("SIGUSR2 with GROUPD_TEST_HANG_ON_SIGUSR2=1: hanging the event loop (a test of the watchdog).");
        for (;;)
                (void) pause();
        return 0;
}

static void test_hang_arm(sd_event *e) {
        sigset_t mask;

        if (!streq_ptr(getenv("GROUPD_TEST_HANG_ON_SIGUSR2"), "1") || getuid() != 0 ||
            sd_watchdog_enabled(false, NULL) <= 0)
                return;
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR2);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (sd_event_add_signal(e, NULL, SIGUSR2, on_test_hang, NULL) >= 0)
                log_notice("GROUPD_TEST_HANG_ON_SIGUSR2=1: SIGUSR2 will hang the event loop (a test of the watchdog).");
}

static void on_shutdown_done(Manager *m, void *userdata) {
        sd_event_exit(userdata, 0);
}

typedef struct Daemon {
        sd_event *event;
        Manager *manager;
        Server *server;
        Bus *bus;
        bool stopping;
} Daemon;

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;

        if (d->stopping)
                return 0;
        d->stopping = true;
        log_info("Received %s, shutting down.", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Releasing leases…");
        server_stop_accepting(d->server);
        bus_stop_accepting(d->bus);
        return manager_shutdown(d->manager, on_shutdown_done, d->event);
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(server_freep) Server *server = NULL;
        _cleanup_(bus_freep) Bus *bus = NULL;
        _cleanup_(uevent_watch_freep) UeventWatch *watch = NULL;
        _cleanup_free_ char *socket_path = NULL;
        Host *host = NULL;
        ManagerError err = {};
        _cleanup_close_ int lock_fd = -EBADF;
        int listen_fd = -EBADF, r, n;
        sigset_t mask;
        Daemon d = {};

        log_set_prefix(NULL);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        if (mkdir(arg_runtime_dir, 0755) < 0 && errno != EEXIST) {
                log_error_errno(-errno, "Failed to create runtime directory %s: %m", arg_runtime_dir);
                return 1;
        }
        /* Before anything else touches the runtime directory (the sim tree, the socket, the state). */
        lock_fd = runtime_dir_lock(arg_runtime_dir);
        if (lock_fd < 0)
                return 1;
        raise_fd_limit();
        /* Our own socket path, before anything is changed (unless systemd passes the socket). */
        if (!getenv("LISTEN_FDS")) {
                _cleanup_free_ char *path = NULL;

                if (!arg_socket && asprintf(&path, "%s/socket", arg_runtime_dir) < 0)
                        return log_oom(), 1;
                r = server_check_path(arg_socket ?: path);
                if (r == -EEXIST || r == -EADDRINUSE)
                        return socket_path_refused(arg_socket ?: path, r);
        }

        /* Before the first thread: capabilities are per thread, and threads inherit them. */
        if (!arg_keep_caps) {
                r = caps_drop();
                if (r < 0) {
                        log_error_errno(r, "Failed to drop capabilities (is capset() filtered? see groupd(8)): %m");
                        return 1;
                }
                if (r > 0)
                        log_debug("Dropped every capability but CAP_SYS_RESOURCE.");
        } else
                log_notice("Keeping every capability (--keep-capabilities).");
        if (!caps_have_sys_resource())
                log_notice("No CAP_SYS_RESOURCE: memlock raises and iommufd accounting fail, and the fds groupd "
                           "hands over count against uid %u's in-flight fd limit, shared with every process of "
                           "that uid: one that floods fds can hold hand-overs up (groupd retries them for 30 s).",
                           (unsigned) getuid());

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&e);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate the event loop: %m");
                return 1;
        }
        (void) sd_event_set_watchdog(e, true);

        r = make_host(arg_runtime_dir, &host);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the %s host: %m", arg_host);
                return 1;
        }

        ManagerConfig cfg = {
                .runtime_dir = arg_runtime_dir,
                .policy_path = arg_policy,
                .release_deadline_usec = arg_release_deadline_usec,
                .keep_leases_on_exit = arg_keep_leases,
        };
        r = manager_new(e, host, &cfg, &m);
        if (r < 0) {
                host_free(host);
                log_error_errno(r, "Failed to set up: %m");
                return 1;
        }

        /* The listening socket and the fd store's fds, before the reconcile that uses the latter. */
        r = service_take_fds(m, &listen_fd);
        if (r < 0)
                return 1;
        n = listen_fd >= 0;
        r = service_attach(m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the service manager's side: %m");
                return 1;
        }

        r = manager_start(m, &err);
        if (r < 0) {
                log_error_errno(r, "Failed to start: %s", err.message);
                return 1;
        }

        if (listen_fd < 0) {
                if (!arg_socket && asprintf(&socket_path, "%s/socket", arg_runtime_dir) < 0)
                        return log_oom(), 1;
                r = server_listen_path(arg_socket ?: socket_path, &listen_fd);
                if (r == -EEXIST || r == -EADDRINUSE)
                        return socket_path_refused(arg_socket ?: socket_path, r);
                if (r < 0) {
                        log_error_errno(r, "Failed to listen on %s: %m", arg_socket ?: socket_path);
                        return 1;
                }
        }

        r = server_new(e, m, listen_fd, &server);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the server: %m");
                return 1;
        }
        if (arg_hello_timeout_usec > 0)
                server_set_hello_timeout(server, arg_hello_timeout_usec);

        if (arg_bus) {
                r = bus_new(e, m, &bus);
                if (r < 0)
                        log_notice_errno(r, "No D-Bus API: cannot serve %s on the system bus (%m); going on with "
                                         "the native socket only.", BUS_NAME);
        }

        /* The host's changes: a host that reports its own is watched by the manager; the kernel's come as
         * uevents. */
        if (host_watch_fd(host) == -EOPNOTSUPP) {
                r = uevent_watch_new(e, m, &watch);
                if (r < 0)
                        log_notice_errno(r, "Not watching uevents (%m): vanished or rebound devices are noticed "
                                         "only when their lease ends.");
        }

        d = (Daemon) { .event = e, .manager = m, .server = server, .bus = bus };
        (void) sd_event_add_signal(e, NULL, SIGTERM, on_signal, &d);
        (void) sd_event_add_signal(e, NULL, SIGINT, on_signal, &d);
        test_hang_arm(e);

        log_info("groupd %s ready on the %s host, socket %s%s.", PACKAGE_VERSION, arg_host,
                 n == 1 ? "from systemd" : (arg_socket ?: socket_path), bus ? ", D-Bus " BUS_NAME : "");
        service_notify_ready(m);

        r = sd_event_loop(e);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return 1;
        }
        watch = uevent_watch_free(watch);
        service_detach();
        bus = bus_free(bus);
        server = server_free(server);
        return 0;
}
