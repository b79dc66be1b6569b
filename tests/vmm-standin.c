/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vmm-standin: a stand-in VMM for `groupctl acquire ... --exec -- vmm-standin [--hold S] [--exit CODE]`.
 *
 * It takes the fds the way groupctl hands them over (GROUPD_CONTAINER_FD, GROUPD_GROUP_FDS, ...) and
 * really uses them:
 *   - on a real kernel, the VFIO ioctls: the container's API version and Type1v2 support (setting the
 *     IOMMU type if nobody did), each group's status, and for each device of the group (from
 *     /sys/kernel/iommu_groups/N/devices) a device fd whose config space gives the vendor and device IDs;
 *   - on groupd's simulated host, where a group or container fd is a SOCK_SEQPACKET socket end (the VFIO
 *     ioctls fail with ENOTTY there), the simulator's text requests: "STATUS" and "DEVICE ADDR".
 * It prints what it learned, holds the fds for --hold seconds, and exits with --exit CODE; with 1 (saying
 * why) if any fd could not be used. With --keep-device-fds it also keeps the device fds it opened (as a
 * VMM running a guest does); SIGUSR1 makes it let go of every fd of the lease (device, group and
 * container) and go on holding nothing, as a VMM that hot-unplugs its devices stays alive.
 *
 * "vmm-standin kvm ..." is another mode: a VMM that makes a VM and a kvm-vfio device and acquires with it
 * over libgroupd (tests/vmm-standin-kvm.c). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "macro.h"

#define SIM_REPLY_MAX 4096
#define GROUPS_MAX 64

static double arg_hold = 0;
static int arg_exit = 0;
static bool arg_strict_fds = false;
static bool arg_keep_device_fds = false;
static bool arg_device_requests = false;

#define DEVICE_FDS_MAX 256
static int device_fds[DEVICE_FDS_MAX];
static size_t n_device_fds = 0;
/* With --device-requests: the eventfd registered for each kept device's VFIO_PCI_REQ_IRQ_INDEX, through
 * which the kernel asks for the device back (an unbind of vfio-pci waits for it). */
static int req_fds[DEVICE_FDS_MAX];
static char req_addrs[DEVICE_FDS_MAX][32];
static size_t n_req_fds = 0;
static volatile sig_atomic_t let_go = 0;

static void on_sigusr1(int sig) {
        let_go = 1;
}

static int failures = 0;

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

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

/* Logs a failure to use an fd; the exit status will say so. */
#define fail(...)                                 \
        ({                                        \
                failures++;                       \
                log_error(__VA_ARGS__);           \
        })

static int parse_int_env(const char *name, int *ret) {
        const char *s = getenv(name);
        char *end;
        long v;

        if (!s || !*s)
                return -ENOENT;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || *end || v < 0 || v > INT32_MAX)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

/* ---------------------------------------------------------------- the simulated host */

/* One text request, one reply, with a 5 s receive timeout so that nothing hangs. */
static int sim_request(int fd, const char *req, char *reply, size_t size) {
        struct timeval tv = { .tv_sec = 5 };
        ssize_t n;

        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
                return -errno;
        if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
                return -errno;
        do
                n = recv(fd, reply, size - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        if (n == 0)
                return -ECONNRESET;
        reply[n] = 0;
        if (startswith_word(reply, "error="))
                return -EIO;
        return 0;
}

/* The value of "key=" in a space-separated reply, copied into buf. */
static const char *reply_field(const char *reply, const char *key, char *buf, size_t size) {
        size_t kl = strlen(key);

        for (const char *p = reply; p && *p; p = strchr(p, ' '), p = p ? p + 1 : NULL)
                if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
                        const char *v = p + kl + 1;
                        size_t l = strcspn(v, " ");
                        (void) snprintf(buf, size, "%.*s", (int) MIN(l, size - 1), v);
                        return buf;
                }
        return NULL;
}

static void sim_group(int fd, int group) {
        char reply[SIM_REPLY_MAX], viable[8], container[8], devices[SIM_REPLY_MAX], gid[16];
        char line[SIM_REPLY_MAX * 2];
        size_t off;
        int r;

        r = sim_request(fd, "STATUS", reply, sizeof reply);
        if (r < 0) {
                fail("group %i (fd %i): STATUS failed: %s%s%s", group, fd, strerror(-r), r == -EIO ? ": " : "",
                     r == -EIO ? reply : "");
                return;
        }
        if (!reply_field(reply, "group", gid, sizeof gid) ||
            !reply_field(reply, "viable", viable, sizeof viable) ||
            !reply_field(reply, "container", container, sizeof container) ||
            !reply_field(reply, "devices", devices, sizeof devices)) {
                fail("group %i (fd %i): cannot parse the status \"%s\"", group, fd, reply);
                return;
        }
        if (atoi(gid) != group) {
                fail("fd %i is group %s, not group %i", fd, gid, group);
                return;
        }

        off = (size_t) snprintf(line, sizeof line, "group %i: %s, %s", group,
                                streq(viable, "1") ? "viable" : "NOT viable",
                                streq(container, "yes") ? "in container" : "in no container");
        if (!streq(viable, "1"))
                fail("group %i is not viable", group);
        if (!streq(container, "yes"))
                fail("group %i is in no container", group);

        for (char *d = devices, *save = NULL, *tok; (tok = strtok_r(d, ",", &save)); d = NULL) {
                char req[128], vendor[16], device[16], driver[64];

                (void) snprintf(req, sizeof req, "DEVICE %s", tok);
                r = sim_request(fd, req, reply, sizeof reply);
                if (r < 0) {
                        fail("group %i: DEVICE %s failed: %s", group, tok, r == -EIO ? reply : strerror(-r));
                        continue;
                }
                /* "device=ADDR vendor=0x10de device=0x1eb8 driver=vfio-pci": the IDs follow the address. */
                const char *ids = strstr(reply, " vendor=");
                if (!ids || !reply_field(ids + 1, "vendor", vendor, sizeof vendor) ||
                    !reply_field(ids + 1, "device", device, sizeof device) ||
                    !reply_field(ids + 1, "driver", driver, sizeof driver)) {
                        fail("group %i: cannot parse \"%s\"", group, reply);
                        continue;
                }
                if (off < sizeof line)
                        off += (size_t) snprintf(line + off, sizeof line - off, "; device %s %04lx:%04lx on %s",
                                                 tok, strtoul(vendor, NULL, 16), strtoul(device, NULL, 16),
                                                 driver);
                if (!streq(driver, "vfio-pci"))
                        fail("group %i: device %s is on %s, not vfio-pci", group, tok, driver);
        }
        say("%s", line);
}

static void sim_container(int fd) {
        char reply[SIM_REPLY_MAX], iommu[32], groups[SIM_REPLY_MAX];
        int r;

        r = sim_request(fd, "STATUS", reply, sizeof reply);
        if (r < 0) {
                fail("container (fd %i): STATUS failed: %s", fd, r == -EIO ? reply : strerror(-r));
                return;
        }
        if (!startswith_word(reply, "container ") || !reply_field(reply, "iommu", iommu, sizeof iommu) ||
            !reply_field(reply, "groups", groups, sizeof groups)) {
                fail("container (fd %i): cannot parse the status \"%s\"", fd, reply);
                return;
        }
        say("container: IOMMU %s, groups %s", iommu, isempty(groups) ? "none" : groups);
}

/* ---------------------------------------------------------------- a real kernel */

static void vfio_container(int fd) {
        int version, r;

        version = ioctl(fd, VFIO_GET_API_VERSION);
        if (version < 0) {
                fail("container (fd %i): VFIO_GET_API_VERSION: %m", fd);
                return;
        }
        r = ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
        if (r < 0) {
                fail("container (fd %i): VFIO_CHECK_EXTENSION: %m", fd);
                return;
        }
        say("container: VFIO API version %i, Type1v2 IOMMU %s", version, r > 0 ? "supported" : "not supported");
}

/* A VMM sets the IOMMU type once a group is in the container, unless groupd did (--configure-iommu). */
static void vfio_container_set_iommu(int fd) {
        static bool done = false;

        if (done)
                return;
        done = true;
        if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
                return;
        if (ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) >= 0)
                say("container: IOMMU type set to Type1v2");
        else if (errno == EINVAL)
                say("container: IOMMU type already set");
        else
                fail("container (fd %i): VFIO_SET_IOMMU: %m", fd);
}

static void vfio_device(int group_fd, int group, const char *addr, char *line, size_t size, size_t *off) {
        struct vfio_region_info info = { .argsz = sizeof info, .index = VFIO_PCI_CONFIG_REGION_INDEX };
        _cleanup_close_ int dfd = -EBADF;
        uint8_t id[4];
        ssize_t n;

        dfd = ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, addr);
        if (dfd < 0) {
                fail("group %i: VFIO_GROUP_GET_DEVICE_FD %s: %m", group, addr);
                return;
        }
        if (ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &info) < 0) {
                fail("group %i: device %s: VFIO_DEVICE_GET_REGION_INFO: %m", group, addr);
                return;
        }
        n = pread(dfd, id, sizeof id, (off_t) info.offset);
        if (n != (ssize_t) sizeof id) {
                fail("group %i: device %s: cannot read config space: %s", group, addr,
                     n < 0 ? strerror(errno) : "short read");
                return;
        }
        if (*off < size)
                *off += (size_t) snprintf(line + *off, size - *off,
                                          "; device %s %02x%02x:%02x%02x (config space)", addr, id[1], id[0],
                                          id[3], id[2]);
        if (arg_device_requests && n_req_fds < DEVICE_FDS_MAX) {
                struct vfio_irq_info irq = { .argsz = sizeof irq, .index = VFIO_PCI_REQ_IRQ_INDEX };
                uint8_t buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
                struct vfio_irq_set *set = (struct vfio_irq_set *) buf;
                int32_t efd;

                if (ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &irq) < 0 || irq.count < 1) {
                        fail("group %i: device %s: no device request IRQ (VFIO_PCI_REQ_IRQ_INDEX): %m", group, addr);
                        return;
                }
                efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (efd < 0) {
                        fail("eventfd: %m");
                        return;
                }
                *set = (struct vfio_irq_set) { .argsz = sizeof buf, .index = VFIO_PCI_REQ_IRQ_INDEX, .start = 0,
                                               .count = 1,
                                               .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER };
                memcpy(set->data, &efd, sizeof efd);
                if (ioctl(dfd, VFIO_DEVICE_SET_IRQS, set) < 0) {
                        fail("group %i: device %s: VFIO_DEVICE_SET_IRQS (device request eventfd): %m", group, addr);
                        safe_close(efd);
                        return;
                }
                req_fds[n_req_fds] = efd;
                (void) snprintf(req_addrs[n_req_fds], sizeof req_addrs[n_req_fds], "%.31s", addr);
                n_req_fds++;
                if (*off < size)
                        *off += (size_t) snprintf(line + *off, size - *off, ", device request eventfd registered");
        }
        if (arg_keep_device_fds && n_device_fds < DEVICE_FDS_MAX)
                device_fds[n_device_fds++] = TAKE_FD(dfd);
}

/* Reports each device request the kernel sent since the last look. The VMM keeps the device: a guest
 * would be asked to unplug it, and may take its time. */
static void check_device_requests(void) {
        for (size_t i = 0; i < n_req_fds; i++) {
                uint64_t v;
                if (req_fds[i] >= 0 && read(req_fds[i], &v, sizeof v) == (ssize_t) sizeof v)
                        say("device request for %s: the kernel asks for the device back (%" PRIu64 " so far)",
                            req_addrs[i], v);
        }
}

static void vfio_group(int fd, int group, int container_fd, struct vfio_group_status *status) {
        char path[64], line[4096];
        _cleanup_(closedirp) DIR *d = NULL;
        size_t off;

        off = (size_t) snprintf(line, sizeof line, "group %i: %s, %s", group,
                                status->flags & VFIO_GROUP_FLAGS_VIABLE ? "viable" : "NOT viable",
                                status->flags & VFIO_GROUP_FLAGS_CONTAINER_SET ? "in container"
                                                                               : "in no container");
        if (!(status->flags & VFIO_GROUP_FLAGS_VIABLE))
                fail("group %i is not viable", group);
        if (!(status->flags & VFIO_GROUP_FLAGS_CONTAINER_SET)) {
                fail("group %i is in no container", group);
                say("%s", line);
                return;
        }
        if (container_fd >= 0)
                vfio_container_set_iommu(container_fd);

        (void) snprintf(path, sizeof path, "/sys/kernel/iommu_groups/%i/devices", group);
        d = opendir(path);
        if (!d) {
                fail("group %i: cannot list %s: %m", group, path);
                say("%s", line);
                return;
        }
        for (struct dirent *de; (de = readdir(d));) {
                char link[600], target[256] = "";
                const char *drv;
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                /* A VMM uses the group's assigned devices: those on a VFIO driver (vfio-dev/). A bridge
                 * left driverless or on pcieport is the kernel's, not the VMM's. */
                (void) snprintf(link, sizeof link, "%.64s/%.255s/driver", path, de->d_name);
                k = readlink(link, target, sizeof target - 1);
                target[k > 0 ? k : 0] = 0;
                drv = strrchr(target, '/');
                (void) snprintf(link, sizeof link, "%.64s/%.255s/vfio-dev", path, de->d_name);
                if (!(drv && streq(drv + 1, "vfio-pci")) && access(link, F_OK) < 0) {
                        if (off < sizeof line)
                                off += (size_t) snprintf(line + off, sizeof line - off, "; %s left to the kernel (%s)",
                                                         de->d_name, drv ? drv + 1 : "no driver");
                        continue;
                }
                vfio_device(fd, group, de->d_name, line, sizeof line, &off);
        }
        say("%s", line);
}

/* ---------------------------------------------------------------- main */

static void help(void) {
        printf("%s [--hold SECONDS] [--exit CODE] [--strict-fds] [--keep-device-fds] [--device-requests]\n"
               "\n"
               "A stand-in VMM, run by `groupctl acquire GROUP... --exec -- vmm-standin`: uses the container\n"
               "and group fds it is handed (GROUPD_CONTAINER_FD, GROUPD_GROUP_FDS, GROUPD_GROUPS,\n"
               "GROUPD_LEASE_ID), prints what it learns, holds them for --hold seconds (default 0) and exits\n"
               "with --exit CODE (default 0); with 1 if an fd could not be used. --strict-fds: fail if any\n"
               "fd other than 0-2 and the lease's is open. --keep-device-fds: keep the device fds open while\n"
               "holding (a real kernel only); SIGUSR1 closes every fd of the lease, and the hold goes on.\n"
               "--device-requests also registers an eventfd for each device's VFIO_PCI_REQ_IRQ_INDEX and says\n"
               "\"device request for ADDR\" each time the kernel asks for the device back; it keeps the device.\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "hold", required_argument, NULL, 'H' },
                { "exit", required_argument, NULL, 'e' },
                { "strict-fds", no_argument, NULL, 's' },
                { "keep-device-fds", no_argument, NULL, 'k' },
                { "device-requests", no_argument, NULL, 'r' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'H': {
                        char *end;
                        errno = 0;
                        arg_hold = strtod(optarg, &end);
                        if (errno != 0 || *end || arg_hold < 0 || arg_hold > 86400.0 * 365) {
                                log_error("Bad --hold \"%s\".", optarg);
                                return -EINVAL;
                        }
                        break;
                }
                case 'e': {
                        char *end;
                        long v;
                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno != 0 || *end || v < 0 || v > 255) {
                                log_error("Bad --exit \"%s\" (0..255).", optarg);
                                return -EINVAL;
                        }
                        arg_exit = (int) v;
                        break;
                }
                case 's':
                        arg_strict_fds = true;
                        break;
                case 'k':
                        arg_keep_device_fds = true;
                        break;
                case 'r':
                        arg_device_requests = arg_keep_device_fds = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                log_error("No arguments expected.");
                return -EINVAL;
        }
        return 1;
}

/* Fails for every open fd that is neither stdio nor one of the lease's. */
static void check_no_other_fds(const int *mine, size_t n) {
        _cleanup_(closedirp) DIR *d = opendir("/proc/self/fd");

        if (!d) {
                fail("cannot list /proc/self/fd: %m");
                return;
        }
        for (struct dirent *de; (de = readdir(d));) {
                int fd = atoi(de->d_name);
                bool ok = de->d_name[0] == '.' || fd <= 2 || fd == dirfd(d);

                for (size_t i = 0; i < n && !ok; i++)
                        ok = fd == mine[i];
                if (!ok)
                        fail("fd %i is open, but is none of the lease's", fd);
        }
}

int kvm_main(int argc, char **argv);
int iommufd_main(int argc, char **argv);
int node_grant_main(int argc, char **argv);
int acquire_iommufd_main(int argc, char **argv);
int node_state_main(int argc, char **argv);
int as_uid_main(int argc, char **argv);

int main(int argc, char **argv) {
        int container_fd, groups[GROUPS_MAX], group_fds[GROUPS_MAX], all[GROUPS_MAX + 1];
        const char *id = getenv("GROUPD_LEASE_ID"), *spec = getenv("GROUPD_GROUP_FDS");
        const char *list = getenv("GROUPD_GROUPS");
        size_t n = 0, n_list = 0;
        bool sim = false;
        int r;

        log_set_show_priority(false);
        log_set_prefix("vmm-standin");
        {
                struct sigaction sa = { .sa_handler = on_sigusr1 };
                (void) sigaction(SIGUSR1, &sa, NULL);
        }

        /* "vmm-standin kvm ...": the KVM registration mode (vmm-standin-kvm.c). */
        if (argc > 1 && streq(argv[1], "kvm"))
                return kvm_main(argc - 1, argv + 1);
        if (argc > 1 && streq(argv[1], "acquire-iommufd"))
                return acquire_iommufd_main(argc - 1, argv + 1);
        if (argc > 1 && streq(argv[1], "node-state"))
                return node_state_main(argc - 1, argv + 1);
        if (argc > 1 && streq(argv[1], "as-uid"))
                return as_uid_main(argc - 1, argv + 1);
        /* The other deliveries (vmm-standin-iommufd.c): "vmm-standin iommufd [--iommufd=FD --device=ADDR=FD]
         * ...", or whatever groupctl says it handed over. */
        if ((argc > 1 && streq(argv[1], "iommufd")) || streq_ptr(getenv("GROUPD_DELIVERY"), "iommufd"))
                return iommufd_main(argc > 1 && streq(argv[1], "iommufd") ? argc - 1 : argc,
                                    argc > 1 && streq(argv[1], "iommufd") ? argv + 1 : argv);
        if ((argc > 1 && streq(argv[1], "node-grant")) || streq_ptr(getenv("GROUPD_DELIVERY"), "node-grant"))
                return node_grant_main(argc > 1 && streq(argv[1], "node-grant") ? argc - 1 : argc,
                                       argc > 1 && streq(argv[1], "node-grant") ? argv + 1 : argv);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        if (!id || !spec || !list || parse_int_env("GROUPD_CONTAINER_FD", &container_fd) < 0 ||
            isempty(getenv("GROUPD_LEASE_TOKEN"))) {
                log_error("GROUPD_LEASE_ID, GROUPD_LEASE_TOKEN, GROUPD_CONTAINER_FD, GROUPD_GROUP_FDS and "
                          "GROUPD_GROUPS must be set (run me with groupctl acquire --exec).");
                return 1;
        }

        /* GROUPD_GROUP_FDS="1=4,7=5" */
        {
                char buf[1024], *save = NULL;
                (void) snprintf(buf, sizeof buf, "%s", spec);
                for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                        int g, fd, k = 0;
                        if (n >= GROUPS_MAX || sscanf(tok, "%i=%i%n", &g, &fd, &k) != 2 || tok[k] || g < 0 ||
                            fd < 3) {
                                log_error("Cannot parse GROUPD_GROUP_FDS=\"%s\".", spec);
                                return 1;
                        }
                        groups[n] = g;
                        group_fds[n++] = fd;
                }
        }
        /* GROUPD_GROUPS="1 7" names the same groups, in the same order. */
        {
                char buf[1024], *save = NULL;
                (void) snprintf(buf, sizeof buf, "%s", list);
                for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save), n_list++)
                        if (n_list >= n || atoi(tok) != groups[n_list])
                                break;
                if (n_list != n || n == 0) {
                        log_error("GROUPD_GROUPS=\"%s\" does not match GROUPD_GROUP_FDS=\"%s\".", list, spec);
                        return 1;
                }
        }

        say("lease %s: container fd %i, %zu group%s (%s)", id, container_fd, n, n == 1 ? "" : "s", spec);

        all[0] = container_fd;
        for (size_t i = 0; i < n; i++)
                all[i + 1] = group_fds[i];
        for (size_t i = 0; i < n + 1; i++)
                if (fcntl(all[i], F_GETFD) < 0) {
                        fail("fd %i is not open: %m", all[i]);
                        return 1;
                } else if (fcntl(all[i], F_GETFD) & FD_CLOEXEC)
                        fail("fd %i is close-on-exec (it should not have crossed the exec)", all[i]);
        if (arg_strict_fds)
                check_no_other_fds(all, n + 1);

        /* The container first: a real one answers VFIO_GET_API_VERSION, the simulator's is a socket. */
        if (ioctl(container_fd, VFIO_GET_API_VERSION) < 0 && errno == ENOTTY)
                sim = true;
        else
                vfio_container(container_fd);

        for (size_t i = 0; i < n; i++) {
                struct vfio_group_status status = { .argsz = sizeof status };

                if (ioctl(group_fds[i], VFIO_GROUP_GET_STATUS, &status) >= 0) {
                        if (sim)
                                fail("group %i (fd %i) is a VFIO group, but the container is not", groups[i],
                                     group_fds[i]);
                        vfio_group(group_fds[i], groups[i], sim ? -EBADF : container_fd, &status);
                } else if (errno == ENOTTY)
                        sim_group(group_fds[i], groups[i]);
                else
                        fail("group %i (fd %i): VFIO_GROUP_GET_STATUS: %m", groups[i], group_fds[i]);
        }
        if (sim)
                sim_container(container_fd);

        if (failures > 0) {
                log_error("%i of the lease's fds could not be used as they should.", failures);
                return 1;
        }

        if (arg_hold > 0) {
                struct timespec ts = { .tv_sec = (time_t) arg_hold,
                                       .tv_nsec = (long) ((arg_hold - (double) (time_t) arg_hold) * 1e9) };
                say("holding the groups for %g s%s", arg_hold,
                    n_device_fds > 0 ? " and the device fds" : "");
                struct timespec end;
                clock_gettime(CLOCK_MONOTONIC, &end);
                end.tv_sec += ts.tv_sec;
                end.tv_nsec += ts.tv_nsec;
                if (end.tv_nsec >= 1000000000L) {
                        end.tv_sec++;
                        end.tv_nsec -= 1000000000L;
                }
                for (;;) {
                        struct pollfd pfds[DEVICE_FDS_MAX];
                        struct timespec now, left;
                        int k;

                        clock_gettime(CLOCK_MONOTONIC, &now);
                        left.tv_sec = end.tv_sec - now.tv_sec;
                        left.tv_nsec = end.tv_nsec - now.tv_nsec;
                        if (left.tv_nsec < 0) {
                                left.tv_sec--;
                                left.tv_nsec += 1000000000L;
                        }
                        if (left.tv_sec < 0)
                                break;
                        for (size_t i = 0; i < n_req_fds; i++)
                                pfds[i] = (struct pollfd) { .fd = req_fds[i], .events = POLLIN };
                        k = ppoll(pfds, n_req_fds, &left, NULL);
                        if (k > 0) {
                                check_device_requests();
                                continue;
                        }
                        if (k == 0)
                                break;
                        if (errno != EINTR)
                                break;
                        if (let_go == 1) {
                                let_go = 2;
                                close_many(device_fds, n_device_fds);
                                close_many(all, n + 1);
                                say("let go of %zu device fd(s), %zu group fd(s) and the container", n_device_fds,
                                    n);
                                n_device_fds = 0;
                                for (size_t i = 0; i < n_req_fds; i++)
                                        req_fds[i] = safe_close(req_fds[i]);
                                n_req_fds = 0;
                        }
                }
        }

        say("exiting with status %i", arg_exit);
        return arg_exit;
}
