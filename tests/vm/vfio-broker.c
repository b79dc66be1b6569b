/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfio-broker: the broker's part of handing a PCI device to an unmodified VMM, done by hand, without
 * groupd. It is the real-kernel rig's raw proof that the delivery modes work on the kernel and with a
 * real QEMU; groupd's delivery modes are measured against it.
 *
 *   vfio-broker iommufd    [OPTIONS] PCI-ADDRESS -- VMM ARGS...
 *   vfio-broker node-grant [OPTIONS] PCI-ADDRESS -- VMM ARGS...
 *   vfio-broker run-as     [OPTIONS] -- COMMAND ARGS...
 *
 * iommufd: binds every device of the address's IOMMU group to vfio-pci (driver_override, unbind,
 * drivers_probe), opens /dev/iommu, sets IOMMU_OPTION_RLIMIT_MODE to per-process accounting (needs
 * CAP_SYS_RESOURCE) and reads it back, opens the device's VFIO cdev (/dev/vfio/devices/vfioN, named by
 * /sys/bus/pci/devices/ADDR/vfio-dev/), and runs the VMM with both fds (unbound: the VMM binds the cdev
 * to the iommufd itself). Never opens /dev/vfio/N: a group open and a cdev bind exclude each other.
 *
 * node-grant: binds the group to vfio-pci, opens nothing, and grants --uid the group node /dev/vfio/N
 * (owner uid, mode 0600) for the VMM's lifetime (QEMU -device vfio-pci,host=ADDR opens it itself).
 *
 * In both, the VMM runs in a child (as --uid/--gid/--groups with RLIMIT_MEMLOCK --memlock when given);
 * the broker closes its own copies of every fd (an unbind waits for every copy of a device fd), waits
 * for the child (SIGTERM and SIGINT are passed on to it), then puts back the node's owner and mode,
 * driver_override and the host drivers exactly as they were.
 *
 * run-as: only the dropping of privileges and the memlock limit, then exec (for negative checks).
 *
 * rlimit-option: the rules of IOMMU_OPTION_RLIMIT_MODE, the reason an unprivileged VMM needs a broker:
 * on a fresh /dev/iommu fd opened as root, after dropping to --uid (and with it every capability) GET
 * works and SET fails (EPERM, it needs CAP_SYS_RESOURCE); as root, SET works on a fresh fd and fails
 * (EBUSY) once the fd holds an object (an IOAS). Facts: option-get, option-set-unprivileged,
 * option-set-busy.
 *
 * In the VMM's arguments these placeholders are replaced: {iommufd} and {device} (fd numbers, iommufd
 * mode), {group} (the group number) and {addr} (the PCI address).
 *
 * OPTIONS: --uid UID --gid GID --groups GID[,GID...] --memlock BYTES[K|M|G]
 *
 * Output, one fact a line, for the scenarios: "BROKER KEY VALUE...": group, was, bound, iommufd,
 * rlimit-mode, cdev, granted, pid, exit, ungranted, restored; errors on stderr as "vfio-broker: ...".
 * Exit status: the VMM's exit status (128+N for a signal) when everything around it worked, else 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The uapi of kernels with iommufd (6.2 and later); the build host's headers may be older. */
#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#endif

#include "rig-sysfs.h"
#ifndef IOMMU_OPTION
struct iommu_option {
        uint32_t size;
        uint32_t option_id;
        uint16_t op;
        uint16_t __reserved;
        uint32_t object_id;
        uint64_t val64 __attribute__((aligned(8)));
};
#define IOMMU_OPTION _IO(';', 0x87)
#define IOMMU_OPTION_RLIMIT_MODE 0
#define IOMMU_OPTION_OP_SET 0
#define IOMMU_OPTION_OP_GET 1
struct iommu_ioas_alloc {
        uint32_t size;
        uint32_t flags;
        uint32_t out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(';', 0x81)
#endif

struct opts {
        uid_t uid;
        gid_t gid;
        bool have_uid, have_gid;
        gid_t groups[16];
        size_t n_groups;
        rlim_t memlock;
        bool have_memlock;
};

static pid_t child = -1;

static void fact(const char *f, ...) __attribute__((format(printf, 1, 2)));
static void fact(const char *f, ...)
{
        va_list ap;

        fputs("BROKER ", stdout);
        va_start(ap, f);
        vprintf(f, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

static int restore_all(struct rig_dev *devs, size_t n)
{
        uint64_t t0 = rig_now_us();
        int ret = 0;

        for (size_t i = 0; i < n; i++)
                if (rig_restore(&devs[i]) < 0)
                        ret = -1;
        for (size_t i = 0; i < n; i++)
                fact("restored %s %s %.1f ms", devs[i].addr, devs[i].driver[0] ? devs[i].driver : "(none)",
                     (double)(rig_now_us() - t0) / 1000.0);
        return ret;
}

/* /dev/iommu with per-process memlock accounting, read back. */
static int open_iommufd(void)
{
        struct iommu_option opt = {
                .size = sizeof(opt),
                .option_id = IOMMU_OPTION_RLIMIT_MODE,
                .op = IOMMU_OPTION_OP_SET,
                .val64 = 1,
        };
        int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);

        if (fd < 0)
                return rig_err("open /dev/iommu: %m (a kernel without CONFIG_IOMMUFD?)");
        if (ioctl(fd, IOMMU_OPTION, &opt) < 0) {
                rig_err("IOMMU_OPTION_RLIMIT_MODE set 1: %m");
                close(fd);
                return -1;
        }
        opt.op = IOMMU_OPTION_OP_GET;
        opt.val64 = UINT64_MAX;
        if (ioctl(fd, IOMMU_OPTION, &opt) < 0) {
                rig_err("IOMMU_OPTION_RLIMIT_MODE get: %m");
                close(fd);
                return -1;
        }
        fact("rlimit-mode %" PRIu64 " (%s)", (uint64_t)opt.val64,
             opt.val64 == 1 ? "per-process" : "per-user");
        if (opt.val64 != 1) {
                close(fd);
                return rig_err("IOMMU_OPTION_RLIMIT_MODE reads back %" PRIu64 ", not 1", (uint64_t)opt.val64);
        }
        return fd;
}

/* The device's VFIO cdev: /sys/bus/pci/devices/ADDR/vfio-dev/vfioN names /dev/vfio/devices/vfioN. */
static int open_cdev(const char *addr)
{
        char path[PATH_MAX], node[PATH_MAX];
        struct dirent *e;
        DIR *dir;
        int fd;

        rig_fmt(path, sizeof(path), RIG_SYS_PCI "/devices/%s/vfio-dev", addr);
        dir = opendir(path);
        if (!dir)
                return rig_err("no %s: %m (a kernel without CONFIG_VFIO_DEVICE_CDEV?)", path);
        node[0] = 0;
        while ((e = readdir(dir)))
                if (!strncmp(e->d_name, "vfio", 4)) {
                        rig_fmt(node, sizeof(node), "/dev/vfio/devices/%s", e->d_name);
                        break;
                }
        closedir(dir);
        if (!node[0])
                return rig_err("%s is empty", path);
        fd = open(node, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return rig_err("open %s: %m", node);
        fact("cdev %s fd %d", node, fd);
        return fd;
}

/* An fd the child inherits, at a number of its own (above stdio), without close-on-exec. */
static int inheritable(int fd)
{
        int flags = fcntl(fd, F_GETFD);

        if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
                return rig_err("fcntl: %m");
        return fd;
}

/* ARG with every {NAME} of the table replaced by its value. */
static char *substitute(const char *arg, const char *const *names, const char *const *values, size_t n)
{
        size_t cap = strlen(arg) + 1, len = 0;
        char *out = malloc(cap);

        if (!out)
                return NULL;
        while (*arg) {
                size_t i;

                for (i = 0; i < n; i++) {
                        size_t l = strlen(names[i]);

                        if (!strncmp(arg, names[i], l)) {
                                size_t vl = strlen(values[i]);
                                char *bigger = realloc(out, cap + vl);

                                if (!bigger) {
                                        free(out);
                                        return NULL;
                                }
                                out = bigger;
                                cap += vl;
                                memcpy(out + len, values[i], vl);
                                len += vl;
                                arg += l;
                                break;
                        }
                }
                if (i == n)
                        out[len++] = *arg++;
        }
        out[len] = 0;
        return out;
}

static int drop_privileges(const struct opts *o)
{
        if (o->have_memlock) {
                struct rlimit rl = { o->memlock, o->memlock };

                if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
                        return rig_err("setrlimit(RLIMIT_MEMLOCK, %llu): %m", (unsigned long long)o->memlock);
        }
        if (o->have_uid || o->have_gid || o->n_groups) {
                gid_t gid = o->have_gid ? o->gid : (o->have_uid ? (gid_t)o->uid : getgid());

                if (setgroups(o->n_groups, o->groups) < 0)
                        return rig_err("setgroups: %m");
                if (setresgid(gid, gid, gid) < 0)
                        return rig_err("setresgid(%u): %m", (unsigned)gid);
        }
        if (o->have_uid && setresuid(o->uid, o->uid, o->uid) < 0)
                return rig_err("setresuid(%u): %m", (unsigned)o->uid);
        return 0;
}

static void pass_on(int sig)
{
        if (child > 0)
                kill(child, sig);
}

/* Runs ARGV (placeholders replaced) in a child with O's identity; closes CLOSE_FDS in the parent once
 * the child has them; returns the child's exit status as a shell would (128+N for a signal), or -1. */
static int run_vmm(const struct opts *o, char **argv, const char *const *names, const char *const *values,
                   size_t n_subst, const int *close_fds, size_t n_close)
{
        struct sigaction sa = { .sa_handler = pass_on };
        size_t argc = 0;
        char **args;
        int status;
        pid_t pid;

        while (argv[argc])
                argc++;
        if (!argc)
                return rig_err("no VMM command after --");
        args = calloc(argc + 1, sizeof(*args));
        if (!args)
                return rig_err("out of memory");
        for (size_t i = 0; i < argc; i++) {
                args[i] = substitute(argv[i], names, values, n_subst);
                if (!args[i])
                        return rig_err("out of memory");
        }
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        pid = fork();
        if (pid < 0)
                return rig_err("fork: %m");
        if (pid == 0) {
                if (drop_privileges(o) < 0)
                        _exit(126);
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                execvp(args[0], args);
                rig_err("exec %s: %m", args[0]);
                _exit(127);
        }
        child = pid;
        /* The broker keeps no copy: a copy of the device fd here would hold up the unbind forever. */
        for (size_t i = 0; i < n_close; i++)
                close(close_fds[i]);
        fact("pid %d uid %u memlock %llu", (int)pid, o->have_uid ? (unsigned)o->uid : (unsigned)getuid(),
             o->have_memlock ? (unsigned long long)o->memlock : 0ULL);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return rig_err("waitpid: %m");
        child = -1;
        for (size_t i = 0; i < argc; i++)
                free(args[i]);
        free(args);
        if (WIFSIGNALED(status)) {
                fact("exit signal %d", WTERMSIG(status));
                return 128 + WTERMSIG(status);
        }
        fact("exit %d", WEXITSTATUS(status));
        return WEXITSTATUS(status);
}

static int parse_size(const char *s, rlim_t *ret)
{
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -1;
        switch (*end) {
        case 'G': case 'g': v <<= 10; /* fall through */
        case 'M': case 'm': v <<= 10; /* fall through */
        case 'K': case 'k': v <<= 10; end++; break;
        case 0: break;
        default: return -1;
        }
        if (*end)
                return -1;
        *ret = (rlim_t)v;
        return 0;
}

static const char *errno_name(int e)
{
        switch (e) {
        case 0: return "ok";
        case EPERM: return "EPERM";
        case EBUSY: return "EBUSY";
        case EINVAL: return "EINVAL";
        case ENOTTY: return "ENOTTY";
        case EOPNOTSUPP: return "EOPNOTSUPP";
        default: return strerror(e);
        }
}

static int option_ioctl(int fd, uint16_t op, uint64_t val, uint64_t *ret_val)
{
        struct iommu_option opt = {
                .size = sizeof(opt),
                .option_id = IOMMU_OPTION_RLIMIT_MODE,
                .op = op,
                .val64 = val,
        };

        if (ioctl(fd, IOMMU_OPTION, &opt) < 0)
                return errno;
        if (ret_val)
                *ret_val = opt.val64;
        return 0;
}

static int rlimit_option(const struct opts *o)
{
        struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
        int root_fd, fd, e, ok = 1;
        uint64_t v = UINT64_MAX;
        pid_t pid;

        /* Root: a fresh fd takes the mode; one with an IOAS refuses it. */
        root_fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (root_fd < 0)
                return rig_err("open /dev/iommu: %m");
        if (ioctl(root_fd, IOMMU_IOAS_ALLOC, &alloc) < 0)
                return rig_err("IOMMU_IOAS_ALLOC: %m");
        e = option_ioctl(root_fd, IOMMU_OPTION_OP_SET, 1, NULL);
        fact("option-set-busy %s (as root, with IOAS %u on the fd)", errno_name(e), alloc.out_ioas_id);
        ok &= e == EBUSY;
        close(root_fd);

        /* Opened as root, used after dropping to the uid: what a VMM handed a plain iommufd can do. */
        fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return rig_err("open /dev/iommu: %m");
        pid = fork();
        if (pid < 0)
                return rig_err("fork: %m");
        if (pid == 0) {
                if (drop_privileges(o) < 0)
                        _exit(2);
                e = option_ioctl(fd, IOMMU_OPTION_OP_GET, 0, &v);
                fact("option-get %s %" PRIu64 " (uid %u)", errno_name(e), v, (unsigned)getuid());
                e = option_ioctl(fd, IOMMU_OPTION_OP_SET, 1, NULL);
                fact("option-set-unprivileged %s (uid %u)", errno_name(e), (unsigned)getuid());
                _exit(e == EPERM && v == 0 ? 0 : 1);
        }
        close(fd);
        if (waitpid(pid, &e, 0) < 0 || !WIFEXITED(e) || WEXITSTATUS(e) != 0)
                ok = 0;
        return ok ? 0 : 1;
}

static int usage(void)
{
        fprintf(stderr, "usage: vfio-broker iommufd|node-grant [OPTIONS] PCI-ADDRESS -- VMM ARGS...\n"
                        "       vfio-broker run-as [OPTIONS] -- COMMAND ARGS...\n"
                        "       vfio-broker rlimit-option --uid UID\n"
                        "OPTIONS: --uid UID --gid GID --groups GID[,GID...] --memlock BYTES[K|M|G]\n");
        return 2;
}

int main(int argc, char **argv)
{
        struct rig_dev devs[RIG_MAX_DEVICES];
        struct opts o = { 0 };
        const char *mode, *addr = NULL;
        size_t n_devs = 0;
        unsigned group = 0;
        int i, rc = 1;

        rig_prog = "vfio-broker";
        if (argc < 2)
                return usage();
        mode = argv[1];
        if (strcmp(mode, "iommufd") && strcmp(mode, "node-grant") && strcmp(mode, "run-as") &&
            strcmp(mode, "rlimit-option"))
                return usage();
        for (i = 2; i < argc && strcmp(argv[i], "--"); i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (!strcmp(a, "--uid") && v) {
                        o.uid = (uid_t)strtoul(v, NULL, 10), o.have_uid = true, i++;
                } else if (!strcmp(a, "--gid") && v) {
                        o.gid = (gid_t)strtoul(v, NULL, 10), o.have_gid = true, i++;
                } else if (!strcmp(a, "--groups") && v) {
                        char *copy = strdup(v), *save = NULL;

                        for (char *t = strtok_r(copy, ",", &save); t && o.n_groups < 16;
                             t = strtok_r(NULL, ",", &save))
                                o.groups[o.n_groups++] = (gid_t)strtoul(t, NULL, 10);
                        free(copy);
                        i++;
                } else if (!strcmp(a, "--memlock") && v) {
                        if (parse_size(v, &o.memlock) < 0)
                                return usage();
                        o.have_memlock = true, i++;
                } else if (a[0] != '-' && !addr &&
                           (!strcmp(mode, "iommufd") || !strcmp(mode, "node-grant"))) {
                        addr = a;
                } else {
                        return usage();
                }
        }
        if (!strcmp(mode, "rlimit-option"))
                return o.have_uid ? (rlimit_option(&o) == 0 ? 0 : 1) : usage();
        if (i >= argc || (strcmp(mode, "run-as") && !addr))
                return usage();
        argv += i + 1;

        if (!strcmp(mode, "run-as")) {
                if (drop_privileges(&o) < 0)
                        return 126;
                execvp(argv[0], argv);
                rig_err("exec %s: %m", argv[0]);
                return 127;
        }

        if (rig_load_group(addr, &group, devs, &n_devs) < 0)
                return 1;
        fact("group %u %s", group, addr);
        for (size_t k = 0; k < n_devs; k++)
                fact("was %s %s override %s", devs[k].addr, devs[k].driver[0] ? devs[k].driver : "(none)",
                     devs[k].override[0] ? devs[k].override : "(none)");
        {
                uint64_t t0 = rig_now_us();

                for (size_t k = 0; k < n_devs; k++)
                        if (rig_to_vfio(&devs[k]) < 0)
                                goto out;
                fact("bound group %u vfio-pci %.1f ms", group, (double)(rig_now_us() - t0) / 1000.0);
        }

        if (!strcmp(mode, "iommufd")) {
                int iommufd, cdev, fds[2];
                char s_iommufd[16], s_device[16], s_group[16];
                const char *names[] = { "{iommufd}", "{device}", "{group}", "{addr}" };
                const char *values[] = { s_iommufd, s_device, s_group, addr };

                iommufd = open_iommufd();
                if (iommufd < 0)
                        goto out;
                fact("iommufd /dev/iommu fd %d", iommufd);
                cdev = open_cdev(addr);
                if (cdev < 0) {
                        close(iommufd);
                        goto out;
                }
                if (inheritable(iommufd) < 0 || inheritable(cdev) < 0) {
                        close(iommufd);
                        close(cdev);
                        goto out;
                }
                rig_fmt(s_iommufd, sizeof(s_iommufd), "%d", iommufd);
                rig_fmt(s_device, sizeof(s_device), "%d", cdev);
                rig_fmt(s_group, sizeof(s_group), "%u", group);
                fds[0] = iommufd, fds[1] = cdev;
                rc = run_vmm(&o, argv, names, values, 4, fds, 2);
        } else {
                char node[64], s_group[16];
                const char *names[] = { "{group}", "{addr}" };
                const char *values[] = { s_group, addr };
                struct stat st;
                int r;

                rig_fmt(node, sizeof(node), "/dev/vfio/%u", group);
                rig_fmt(s_group, sizeof(s_group), "%u", group);
                if (stat(node, &st) < 0) {
                        rig_err("stat %s: %m", node);
                        goto out;
                }
                if (chown(node, o.have_uid ? o.uid : st.st_uid, o.have_gid ? o.gid : st.st_gid) < 0 ||
                    chmod(node, 0600) < 0) {
                        rig_err("grant %s: %m", node);
                        goto out;
                }
                fact("granted %s uid %u (was %u:%u mode %04o)", node,
                     o.have_uid ? (unsigned)o.uid : (unsigned)st.st_uid,
                     (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
                rc = run_vmm(&o, argv, names, values, 2, NULL, 0);
                /* Put the node back exactly (it goes anyway when the last device leaves vfio-pci). */
                r = chown(node, st.st_uid, st.st_gid) < 0 ? -errno : 0;
                if (!r && chmod(node, st.st_mode & 07777) < 0)
                        r = -errno;
                if (r < 0) {
                        rig_err("ungrant %s: %s", node, strerror(-r));
                        rc = rc ? rc : 1;
                } else {
                        fact("ungranted %s %u:%u mode %04o", node, (unsigned)st.st_uid, (unsigned)st.st_gid,
                             (unsigned)(st.st_mode & 07777));
                }
        }
out:
        if (restore_all(devs, n_devs) < 0 && rc == 0)
                rc = 1;
        return rc < 0 ? 1 : rc;
}
