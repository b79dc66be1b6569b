/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vmm-standin's other deliveries:
 *
 *   iommufd     what QEMU does with `-object iommufd,fd=N -device vfio-pci,iommufd=…,fd=M`: takes the iommufd
 *               and the unbound cdev fds (from --iommufd=FD and --device=ADDR=FD, as a command line with
 *               groupctl's placeholders gives them, else from GROUPD_IOMMUFD and GROUPD_DEVICE_FDS), checks
 *               the iommufd's memlock accounting is per-process, binds each cdev to the iommufd and reads
 *               the device's IDs. On a real kernel: IOMMU_OPTION (get), VFIO_DEVICE_BIND_IOMMUFD,
 *               IOMMU_IOAS_ALLOC, VFIO_DEVICE_ATTACH_IOMMUFD_PT, the config space, and with --map=SIZE one
 *               mapping of that much anonymous memory (IOMMU_IOAS_MAP: charged to this process's
 *               RLIMIT_MEMLOCK). On the simulated host (the fds are socket ends): "STATUS" on the iommufd,
 *               "STATUS" on each cdev before the bind (which must fail: an unbound cdev is good for
 *               nothing), "BIND" with the iommufd attached, then "STATUS".
 *   node-grant  opens each node of GROUPD_NODES read-write itself, as QEMU -device vfio-pci,host= does, and
 *               says whether it may.
 *   acquire-iommufd SPEC [--map=SIZE] [--hold=S]
 *               a VMM that links libgroupd: acquires SPEC itself with delivery iommufd and does what the
 *               iommufd mode does with the fds the library hands it (each labelled with its address), then
 *               releases.
 *   as-uid UID [--groups=GID,...] [--memlock=SIZE] CMD ARGS...
 *               runs CMD as UID with those groups and that RLIMIT_MEMLOCK (the tier's busybox setpriv
 *               cannot change uids).
 *   node-state PATH
 *               prints a node's "UID:GID MODE acl=HEX" (or acl=-): what a node grant changes and must put
 *               back, for the real-kernel tier, whose shell has no getfattr.
 *
 * Prints one line per fact ("vmm-standin: ..."), holds the fds for --hold seconds, exits with --exit CODE,
 * or 1 (saying why) when an fd could not be used. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "groupd-client.h"
#include "iommufd-uapi.h"
#include "log.h"
#include "macro.h"
#include "memlock.h"

#define DEVICES_MAX 64
#define REPLY_MAX 4096

static int failures;

_printf_(1, 2)
static void say(const char *fmt, ...) {
        va_list ap;

        fputs("vmm-standin: ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

#define fail(...)                       \
        ({                              \
                failures++;             \
                log_error(__VA_ARGS__); \
        })

/* One text request (with an fd attached, or none), one reply; 5 s at most. 0, or -EIO for "error=...". */
static int sim_call(int fd, const char *req, int pass_fd, char *reply, size_t size) {
        struct timeval tv = { .tv_sec = 5 };
        ssize_t n;
        int r;

        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
                return -errno;
        r = fd_send_msg(fd, req, strlen(req), pass_fd >= 0 ? &pass_fd : NULL, pass_fd >= 0 ? 1 : 0);
        if (r < 0)
                return r;
        do
                n = recv(fd, reply, size - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (n == 0)
                return -ECONNRESET;
        reply[n] = 0;
        return startswith_word(reply, "error=") ? -EIO : 0;
}

static volatile sig_atomic_t let_go;

static void on_sigusr1(int sig) {
        let_go = 1;
}

/* Holds the fds for seconds; SIGUSR1 makes it let go of them and hold nothing, as the legacy mode does.
 * The words are the legacy mode's too ("holding the groups"), so the real-kernel tier's scenarios wait for
 * either the same way. */
static void hold(double seconds, int *fds, size_t n) {
        struct timespec ts = { .tv_sec = (time_t) seconds,
                               .tv_nsec = (long) ((seconds - (double) (time_t) seconds) * 1e9) };
        struct sigaction sa = { .sa_handler = on_sigusr1 };

        if (seconds <= 0)
                return;
        (void) sigaction(SIGUSR1, &sa, NULL);
        say("holding the groups (%zu fd(s) of the lease) for %g s", n, seconds);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                if (let_go == 1) {
                        let_go = 2;
                        close_many(fds, n);
                        say("let go of %zu fd(s) of the lease", n);
                }
}

/* ---------------------------------------------------------------- iommufd */

static void sim_iommufd(int iommufd, const char **addrs, const int *fds, size_t n) {
        char reply[REPLY_MAX];
        int r;

        r = sim_call(iommufd, "STATUS", -EBADF, reply, sizeof reply);
        if (r < 0 || !startswith_word(reply, "iommufd ")) {
                fail("iommufd (fd %i): STATUS: %s", iommufd, r == -EIO ? reply : strerror(r < 0 ? -r : EPROTO));
                return;
        }
        say("iommufd: %s", reply);
        if (!strstr(reply, "rlimit-mode=process"))
                fail("iommufd: memlock accounting is not per-process");

        for (size_t i = 0; i < n; i++) {
                r = sim_call(fds[i], "STATUS", -EBADF, reply, sizeof reply);
                if (r != -EIO || !streq(reply, "error=EINVAL"))
                        fail("device %s (fd %i): an unbound cdev answered \"%s\"", addrs[i], fds[i], reply);
                r = sim_call(fds[i], "BIND", iommufd, reply, sizeof reply);
                if (r < 0) {
                        fail("device %s (fd %i): BIND: %s", addrs[i], fds[i], r == -EIO ? reply : strerror(-r));
                        continue;
                }
                r = sim_call(fds[i], "STATUS", -EBADF, reply, sizeof reply);
                if (r < 0) {
                        fail("device %s (fd %i): STATUS: %s", addrs[i], fds[i], r == -EIO ? reply : strerror(-r));
                        continue;
                }
                /* The address as given, or its short form "03:00.1" (domain 0000). */
                if (!startswith_word(reply, "device=") ||
                    (strncmp(reply + 7, addrs[i], strlen(addrs[i])) != 0 &&
                     !(strlen(addrs[i]) == 7 && strncmp(reply + 7, "0000:", 5) == 0 &&
                       strncmp(reply + 12, addrs[i], 7) == 0)))
                        fail("fd %i is not the cdev of %s: \"%s\"", fds[i], addrs[i], reply);
                say("device %s (fd %i): bound to the iommufd: %s", addrs[i], fds[i], reply);
        }
        r = sim_call(iommufd, "STATUS", -EBADF, reply, sizeof reply);
        if (r >= 0)
                say("iommufd: %s", reply);
}

static void real_iommufd(int iommufd, const char **addrs, const int *fds, size_t n, uint64_t map_bytes) {
        struct iommu_option opt = { .size = sizeof opt, .option_id = IOMMU_OPTION_RLIMIT_MODE,
                                    .op = IOMMU_OPTION_OP_GET };
        struct iommu_ioas_alloc alloc = { .size = sizeof alloc };

        if (ioctl(iommufd, IOMMU_OPTION, &opt) < 0)
                fail("iommufd (fd %i): IOMMU_OPTION_RLIMIT_MODE get: %m", iommufd);
        else {
                say("iommufd: rlimit-mode=%s", opt.val64 == 1 ? "process" : "user");
                if (opt.val64 != 1)
                        fail("iommufd: memlock accounting is not per-process");
        }
        if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0) {
                fail("iommufd: IOMMU_IOAS_ALLOC: %m");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct vfio_device_bind_iommufd bind = { .argsz = sizeof bind, .iommufd = iommufd };
                struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof attach, .pt_id = alloc.out_ioas_id };
                struct vfio_region_info info = { .argsz = sizeof info, .index = VFIO_PCI_CONFIG_REGION_INDEX };
                uint8_t id[4];

                if (ioctl(fds[i], VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0) {
                        fail("device %s (fd %i): VFIO_DEVICE_BIND_IOMMUFD: %m", addrs[i], fds[i]);
                        continue;
                }
                if (ioctl(fds[i], VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0) {
                        fail("device %s: VFIO_DEVICE_ATTACH_IOMMUFD_PT: %m", addrs[i]);
                        continue;
                }
                if (ioctl(fds[i], VFIO_DEVICE_GET_REGION_INFO, &info) < 0 ||
                    pread(fds[i], id, sizeof id, (off_t) info.offset) != (ssize_t) sizeof id) {
                        fail("device %s: cannot read its config space: %m", addrs[i]);
                        continue;
                }
                say("device %s (fd %i): bound, attached to IOAS %u, %02x%02x:%02x%02x (config space)", addrs[i],
                    fds[i], alloc.out_ioas_id, id[1], id[0], id[3], id[2]);
        }
        if (map_bytes > 0) {
                void *p = mmap(NULL, map_bytes, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
                struct iommu_ioas_map map = {
                        .size = sizeof map,
                        .flags = IOMMU_IOAS_MAP_READABLE|IOMMU_IOAS_MAP_WRITEABLE,
                        .ioas_id = alloc.out_ioas_id,
                        .user_va = (uintptr_t) p,
                        .length = map_bytes,
                };
                if (p == MAP_FAILED)
                        fail("cannot mmap %" PRIu64 " bytes: %m", map_bytes);
                else if (ioctl(iommufd, IOMMU_IOAS_MAP, &map) < 0)
                        say("map of %" PRIu64 " bytes: failed: %s", map_bytes, strerror(errno));
                else
                        say("map of %" PRIu64 " bytes: ok at iova 0x%" PRIx64, map_bytes, (uint64_t) map.iova);
        }
}

static void use_iommufd(int iommufd, const char **addrs, const int *fds, size_t n, uint64_t map_bytes);

int iommufd_main(int argc, char **argv);
int iommufd_main(int argc, char **argv) {
        static const struct option options[] = {
                { "iommufd", required_argument, NULL, 'i' },
                { "device", required_argument, NULL, 'd' },
                { "hold", required_argument, NULL, 'H' },
                { "exit", required_argument, NULL, 'e' },
                { "map", required_argument, NULL, 'm' },
                { "keep-device-fds", no_argument, NULL, 'k' }, /* the cdevs are the device fds: kept anyway */
                { "strict-fds", no_argument, NULL, 's' },
                {}
        };
        char *addr_store[DEVICES_MAX] = {}, env_copy[4096];
        const char *addrs[DEVICES_MAX];
        int fds[DEVICES_MAX], iommufd = -1, arg_exit = 0, c;
        uint64_t map_bytes = 0;
        double arg_hold = 0;
        size_t n = 0;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'i':
                        iommufd = atoi(optarg);
                        break;
                case 'd': {
                        char *eq = strrchr(optarg, '=');
                        if (!eq || n >= DEVICES_MAX) {
                                log_error("--device=\"%s\": want ADDRESS=FD.", optarg);
                                return 2;
                        }
                        addr_store[n] = strndup(optarg, (size_t) (eq - optarg));
                        addrs[n] = addr_store[n];
                        fds[n++] = atoi(eq + 1);
                        break;
                }
                case 'H':
                        arg_hold = strtod(optarg, NULL);
                        break;
                case 'e':
                        arg_exit = atoi(optarg);
                        break;
                case 'k':
                case 's':
                        break;
                case 'm':
                        if (memlock_parse_size(optarg, &map_bytes) < 0) {
                                log_error("--map=\"%s\": want a size.", optarg);
                                return 2;
                        }
                        break;
                default:
                        return 2;
                }

        if (iommufd < 0 && getenv("GROUPD_IOMMUFD"))
                iommufd = atoi(getenv("GROUPD_IOMMUFD"));
        if (n == 0 && getenv("GROUPD_DEVICE_FDS")) {
                /* "0000:00:03.0=4,0000:00:04.0=5" */
                char *save = NULL;
                (void) snprintf(env_copy, sizeof env_copy, "%s", getenv("GROUPD_DEVICE_FDS"));
                for (char *tok = strtok_r(env_copy, ",", &save); tok && n < DEVICES_MAX;
                     tok = strtok_r(NULL, ",", &save)) {
                        char *eq = strrchr(tok, '=');
                        if (!eq) {
                                log_error("Cannot parse GROUPD_DEVICE_FDS=\"%s\".", getenv("GROUPD_DEVICE_FDS"));
                                return 1;
                        }
                        *eq = 0;
                        addrs[n] = tok;
                        fds[n++] = atoi(eq + 1);
                }
        }
        if (iommufd < 3 || n == 0) {
                log_error("No iommufd or no device fds: give --iommufd=FD --device=ADDR=FD, or run me with "
                          "groupctl acquire --delivery=iommufd --exec.");
                return 1;
        }
        for (size_t i = 0; i < n; i++)
                if (fds[i] < 3 || fcntl(fds[i], F_GETFD) < 0) {
                        fail("device %s: fd %i is not open", addrs[i], fds[i]);
                        return 1;
                }
        say("iommufd fd %i, %zu device fd(s)", iommufd, n);

        /* The simulated host's fds are socket ends, which know no ioctl. */
        use_iommufd(iommufd, addrs, fds, n, map_bytes);

        for (size_t i = 0; i < DEVICES_MAX; i++)
                free(addr_store[i]);
        if (failures > 0) {
                log_error("%i of the lease's fds could not be used as they should.", failures);
                return 1;
        }
        {
                int all[DEVICES_MAX + 1];
                all[0] = iommufd;
                memcpy(all + 1, fds, n * sizeof *fds);
                hold(arg_hold, all, n + 1);
        }
        say("exiting with status %i", arg_exit);
        return arg_exit;
}

/* Which the fds are: the sim's socket ends answer "STATUS"; a real iommufd does not. */
static void use_iommufd(int iommufd, const char **addrs, const int *fds, size_t n, uint64_t map_bytes) {
        char reply[REPLY_MAX];

        if (sim_call(iommufd, "STATUS", -EBADF, reply, sizeof reply) != -ENOTSOCK &&
            startswith_word(reply, "iommufd "))
                sim_iommufd(iommufd, addrs, fds, n);
        else
                real_iommufd(iommufd, addrs, fds, n, map_bytes);
}

int acquire_iommufd_main(int argc, char **argv);
int acquire_iommufd_main(int argc, char **argv) {
        uint64_t map_bytes = 0;
        double arg_hold = 0;
        const char *spec = NULL;
        GdClientLease *l = NULL;
        GdClient *c = NULL;
        int r;

        for (int i = 1; i < argc; i++) {
                const char *v;
                if ((v = startswith_word(argv[i], "--map="))) {
                        if (memlock_parse_size(v, &map_bytes) < 0) {
                                log_error("--map=\"%s\": want a size.", v);
                                return 2;
                        }
                } else if ((v = startswith_word(argv[i], "--hold=")))
                        arg_hold = strtod(v, NULL);
                else if (!spec)
                        spec = argv[i];
                else {
                        log_error("Unexpected argument \"%s\".", argv[i]);
                        return 2;
                }
        }
        if (!spec) {
                log_error("acquire-iommufd: which group (or PCI address)?");
                return 2;
        }
        r = gd_client_connect(NULL, &c);
        if (r < 0) {
                log_error("Cannot connect to groupd: %s", strerror(-r));
                return 1;
        }
        r = gd_client_acquire(c, &spec, 1, &(GdAcquireOptions) { .owner_pidfd = -1, .delivery = "iommufd",
                                                                 .label = "vmm-standin" }, &l);
        if (r < 0) {
                log_error("Acquire of %s failed: %s", spec, gd_client_error_message(c));
                gd_client_free(c);
                return 1;
        }
        say("libgroupd: lease %s, delivery %s, iommufd fd %i, %zu device fd(s)", l->lease.id,
            gd_delivery_to_string((int) l->delivery), l->iommufd, l->n_device_fds);
        if (l->delivery != GD_DELIVERY_IOMMUFD || l->n_device_fds == 0 || l->container_fd >= 0 || l->n_group_fds != 0)
                fail("libgroupd handed delivery %s: container fd %i, %zu group fd(s)",
                     gd_delivery_to_string((int) l->delivery), l->container_fd, l->n_group_fds);
        else
                use_iommufd(l->iommufd, (const char **) l->device_addresses, l->device_fds, l->n_device_fds,
                            map_bytes);
        if (arg_hold > 0) {
                say("holding the groups for %g s", arg_hold);
                (void) usleep((useconds_t) (arg_hold * 1e6));
        }
        {
                char token[GD_TOKEN_LEN + 1];
                memcpy(token, l->token, sizeof token);
                l = gd_client_lease_free(l);   /* our copies first: the release waits for every copy */
                r = gd_client_release(c, token);
        }
        if (r < 0)
                fail("release: %s", gd_client_error_message(c));
        else
                say("released");
        gd_client_free(c);
        return failures > 0 ? 1 : 0;
}

/* "as-uid UID [--groups=GID,...] [--memlock=SIZE] CMD ARGS...": drops to UID (gid UID, and only the
 * supplementary groups named), with RLIMIT_MEMLOCK set to SIZE if given, and execs CMD: for the real-kernel
 * tier, whose busybox setpriv cannot change uids. The fds of the lease cross the exec. */
int as_uid_main(int argc, char **argv);
int as_uid_main(int argc, char **argv) {
        gid_t groups[16];
        size_t n_groups = 0;
        uint64_t memlock = 0;
        unsigned long uid;
        char *end = NULL;
        int i = 2;

        if (argc < 3) {
                log_error("as-uid UID [--groups=GID,...] [--memlock=SIZE] CMD ARGS...");
                return 2;
        }
        errno = 0;
        uid = strtoul(argv[1], &end, 10);
        if (errno != 0 || !end || *end || uid >= UINT32_MAX) {
                log_error("as-uid: \"%s\" is no uid", argv[1]);
                return 2;
        }
        for (; i < argc; i++) {
                const char *v;
                if ((v = startswith_word(argv[i], "--groups="))) {
                        char copy[256], *save = NULL;
                        (void) snprintf(copy, sizeof copy, "%s", v);
                        for (char *g = strtok_r(copy, ",", &save); g && n_groups < ELEMENTSOF(groups);
                             g = strtok_r(NULL, ",", &save))
                                groups[n_groups++] = (gid_t) strtoul(g, NULL, 10);
                } else if ((v = startswith_word(argv[i], "--memlock="))) {
                        if (memlock_parse_size(v, &memlock) < 0) {
                                log_error("as-uid: --memlock=\"%s\": want a size", v);
                                return 2;
                        }
                } else if (streq(argv[i], "--")) {
                        i++;
                        break;
                } else
                        break;
        }
        if (i >= argc) {
                log_error("as-uid: which command?");
                return 2;
        }
        if (memlock > 0) {
                struct rlimit rl = { .rlim_cur = memlock, .rlim_max = memlock };
                if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0) {
                        log_error("as-uid: cannot set RLIMIT_MEMLOCK: %m");
                        return 1;
                }
        }
        if (setgroups(n_groups, groups) < 0 || setresgid((gid_t) uid, (gid_t) uid, (gid_t) uid) < 0 ||
            setresuid((uid_t) uid, (uid_t) uid, (uid_t) uid) < 0) {
                log_error("as-uid: cannot become uid %lu: %m", uid);
                return 1;
        }
        execvp(argv[i], argv + i);
        log_error("as-uid: cannot execute \"%s\": %m", argv[i]);
        return 127;
}

int node_state_main(int argc, char **argv);
int node_state_main(int argc, char **argv) {
        uint8_t acl[1024];
        struct stat st;
        ssize_t n;

        if (argc != 2) {
                log_error("node-state PATH");
                return 2;
        }
        if (stat(argv[1], &st) < 0) {
                log_error("%s: %m", argv[1]);
                return 1;
        }
        printf("%u:%u %04o acl=", (unsigned) st.st_uid, (unsigned) st.st_gid, (unsigned) (st.st_mode & 07777));
        n = getxattr(argv[1], "system.posix_acl_access", acl, sizeof acl);
        if (n <= 0)
                putchar('-');
        for (ssize_t i = 0; i < n; i++)
                printf("%02x", acl[i]);
        putchar('\n');
        return 0;
}

/* ---------------------------------------------------------------- node-grant */

int node_grant_main(int argc, char **argv);
int node_grant_main(int argc, char **argv) {
        const char *nodes = getenv("GROUPD_NODES");
        char copy[4096], *save = NULL;
        double arg_hold = argc > 2 && streq(argv[1], "--hold") ? strtod(argv[2], NULL) : 0;
        int opened[64];
        size_t n = 0;

        if (isempty(nodes)) {
                log_error("GROUPD_NODES is not set (run me with groupctl acquire --delivery=node-grant --exec).");
                return 1;
        }
        (void) snprintf(copy, sizeof copy, "%s", nodes);
        for (char *node = strtok_r(copy, " ", &save); node && n < ELEMENTSOF(opened); node = strtok_r(NULL, " ", &save)) {
                /* GROUPD_NODE_ROOT: where the nodes are (the simulated host's dev tree stands in for /dev). */
                char path[512];
                const char *root = getenv("GROUPD_NODE_ROOT");
                if (root && startswith_word(node, "/dev/"))
                        (void) snprintf(path, sizeof path, "%s/%s", root, node + 5);
                else
                        (void) snprintf(path, sizeof path, "%s", node);
                opened[n] = open(path, O_RDWR|O_CLOEXEC|O_NOCTTY);
                if (opened[n] < 0)
                        fail("uid %u cannot open %s: %m", (unsigned) getuid(), path);
                else
                        say("uid %u opened %s", (unsigned) getuid(), path);
                n++;
        }
        if (failures > 0)
                return 1;
        hold(arg_hold, opened, n);
        for (size_t i = 0; i < n; i++)
                safe_close(opened[i]);
        return 0;
}
