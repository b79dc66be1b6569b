/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* groupctl acquire: hold groups until interrupted, or (--exec) hand them to a command that owns the lease.
 *
 * With --exec the order matters:
 *   1. fork the child first: it runs groupctl's code and waits on a socket pair, holding nothing else;
 *   2. open a pidfd for it and acquire with GD_ACQUIRE_OWNER_PROCESS: the lease is the child's from the
 *      start, whatever happens to groupctl;
 *   3. hand the delivery's fds (the container and the groups, or the iommufd and the device cdevs, or none
 *      for node-grant) and nothing else to the child, and close groupctl's copies: the daemon's release
 *      waits for every copy to be closed;
 *   4. the child puts them at fds 3, 4, 5, ..., sets GROUPD_*, replaces the placeholders ({iommufd},
 *      {device:ADDR}, {container}, {group:N}) in the command's arguments, and execs it;
 *   5. groupctl waits for the child, then for the lease's LEASE_ENDED event, says how it ended, and exits
 *      with the child's status. */

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "fd-util.h"
#include "groupctl.h"
#include "log.h"

#define LEASE_END_TIMEOUT_MS (30 * 1000)

/* "group 1", "groups 1, 0000:03:00.0" */
static char *describe_specs(char *buf, size_t size, int n, char **specs) {
        size_t off;

        off = (size_t) snprintf(buf, size, "group%s ", n == 1 ? "" : "s");
        for (int i = 0; i < n && off < size; i++) {
                _cleanup_free_ char *e = text_escape(specs[i]);
                off += (size_t) snprintf(buf + off, size - off, "%s%s", i > 0 ? ", " : "", e ?: "?");
        }
        return buf;
}

static int acquire(GdClient *c, int argc, char **argv, int owner_pidfd, GdClientLease **ret) {
        char what[512];
        int r;

        r = gd_client_acquire(c, (const char *const *) argv, (size_t) argc,
                              &(GdAcquireOptions) {
                                      .label = arg.label,
                                      .configure_iommu = arg.configure_iommu,
                                      .owner_pidfd = owner_pidfd,
                                      .memlock_guest_ram = arg.guest_ram,
                                      .viommu = arg.viommu,
                                      .delivery = arg.delivery,
                                      .grant_uid_set = arg.grant_uid_set,
                                      .grant_uid = arg.grant_uid,
                              },
                              ret);
        if (r < 0)
                return -groupctl_fail(c, r, "acquire %s", describe_specs(what, sizeof what, argc, argv));
        return 0;
}

static void print_acquired(const GdClientLease *l, const char *how) {
        char groups[GD_GROUPS_PER_ACQUIRE_MAX * 11 + 1];

        if (arg.json) {
                bool first = true;

                putchar('{');
                json_key(stdout, &first, "lease");
                json_lease(stdout, &l->lease);
                json_key(stdout, &first, "token");
                json_string(stdout, l->token);
                json_key(stdout, &first, "iommu_type");
                printf("%" PRIu32, l->iommu_type);
                json_key(stdout, &first, "delivery");
                json_string(stdout, strna(gd_delivery_to_string((int) l->delivery)));
                if (l->delivery == GD_DELIVERY_IOMMUFD) {
                        json_key(stdout, &first, "devices");
                        putchar('[');
                        for (size_t i = 0; i < l->n_device_fds; i++) {
                                if (i > 0)
                                        putchar(',');
                                json_string(stdout, l->device_addresses[i]);
                        }
                        putchar(']');
                }
                if (l->delivery == GD_DELIVERY_NODE_GRANT) {
                        json_key(stdout, &first, "grant_uid");
                        printf("%" PRIu32, l->grant_uid);
                        json_key(stdout, &first, "nodes");
                        putchar('[');
                        for (size_t i = 0; i < l->n_nodes; i++) {
                                if (i > 0)
                                        putchar(',');
                                json_string(stdout, l->nodes[i]);
                        }
                        putchar(']');
                }
                puts("}");
        } else {
                fputs("Acquired lease ", stdout);
                fputs_escaped(l->lease.id, stdout);
                printf(" for group%s %s", l->lease.n_groups == 1 ? "" : "s",
                       format_groups(groups, sizeof groups, &l->lease));
                if (!isempty(l->lease.label)) {
                        fputs(" (label \"", stdout);
                        fputs_escaped(l->lease.label, stdout);
                        fputs("\")", stdout);
                }
                printf(".\nToken: %s\nDelivery: %s", l->token, strna(gd_delivery_to_string((int) l->delivery)));
                if (l->delivery == GD_DELIVERY_IOMMUFD) {
                        fputs(" (an iommufd and the cdevs of", stdout);
                        for (size_t i = 0; i < l->n_device_fds; i++)
                                printf("%s %s", i > 0 ? "," : "", l->device_addresses[i]);
                        putchar(')');
                }
                if (l->delivery == GD_DELIVERY_NODE_GRANT) {
                        printf(" (uid %" PRIu32 " may open", l->grant_uid);
                        for (size_t i = 0; i < l->n_nodes; i++)
                                printf("%s %s", i > 0 ? "," : "", l->nodes[i]);
                        putchar(')');
                }
                printf("\n%s\n", how);
        }
        fflush(stdout);
}

static void print_ended(const GdEvent *e) {
        if (arg.json) {
                json_event(stdout, e);
                putchar('\n');
                fflush(stdout);
                return;
        }

        fputs("Lease ", stdout);
        fputs_escaped(e->lease.id, stdout);
        printf(" ended: %s", strna(gd_reason_to_string((int) e->reason)));
        if (!isempty(e->detail)) {
                /* The detail lists the devices and the drivers they went back to (or what failed). */
                fputs("; ", stdout);
                if (!startswith_word(e->detail, "host drivers"))
                        fputs(e->errno_value == 0 ? "host drivers restored: " : "host drivers not all restored: ",
                              stdout);
                fputs_escaped(e->detail, stdout);
        }
        putchar('\n');
        fflush(stdout);

        if (e->errno_value != 0)
                log_warning("Lease %s: the host drivers were not all restored: %s", e->lease.id,
                            strerror(abs(e->errno_value)));
}

static bool is_our_end(const GdEvent *e, const char *id) {
        return e->kind == GD_EVENT_LEASE_ENDED && streq_ptr(e->lease.id, id);
}

static uint64_t now_msec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* Waits up to timeout_ms for the LEASE_ENDED event of lease id, or for a signal on sfd. Returns 1 with
 * *ret filled, 0 on timeout, -EINTR on a signal, or the library's error. */
static int wait_lease_ended(GdClient *c, const char *id, int sfd, int timeout_ms, GdEvent *ret) {
        uint64_t deadline = now_msec() + (uint64_t) timeout_ms;

        for (;;) {
                GdEvent e = {};
                uint64_t now;
                int r;

                r = gd_client_next_event(c, 0, &e);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (is_our_end(&e, id)) {
                                *ret = e;
                                return 1;
                        }
                        gd_event_done(&e);
                        continue;
                }

                now = now_msec();
                if (now >= deadline)
                        return 0;

                struct pollfd p[] = {
                        { .fd = gd_client_get_fd(c), .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };
                r = poll(p, ELEMENTSOF(p), (int) (deadline - now));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0 && (p[1].revents & POLLIN))
                        return -EINTR;
        }
}

/* ---------------------------------------------------------------- acquire and hold */

static int acquire_hold(int argc, char **argv) {
        _cleanup_close_ int sfd = -EBADF;
        char id[GD_LEASE_ID_MAX + 1], token[GD_TOKEN_LEN + 1];
        GdClientLease *l = NULL;
        GdClient *c = NULL;
        GdEvent e = {};
        int r, ret = EXIT_OK;

        sfd = signalfd_block((const int[]) { SIGINT, SIGTERM, SIGHUP }, 3);
        if (sfd < 0)
                return log_error_errno(sfd, "Failed to set up signal handling: %m"), EXIT_FAIL;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
        if (r < 0) {
                r = groupctl_fail(c, r, "subscribe to events");
                gd_client_free(c);
                return r;
        }

        r = acquire(c, argc, argv, -EBADF, &l);
        if (r < 0) {
                gd_client_free(c);
                return -r;
        }
        (void) snprintf(id, sizeof id, "%s", l->lease.id);
        memcpy(token, l->token, sizeof token);
        print_acquired(l, "Holding it until interrupted (SIGINT or SIGTERM).");

        /* Until a signal, or until the lease ends on its own (revoked, a device vanished). */
        for (;;) {
                r = gd_client_next_event(c, 0, &e);
                if (r > 0) {
                        if (is_our_end(&e, id))
                                break;
                        gd_event_done(&e);
                        continue;
                }
                if (r < 0) {
                        l = gd_client_lease_free(l);
                        r = groupctl_fail(c, r, "hold lease %s (it ends with this connection)", id);
                        gd_client_free(c);
                        return r;
                }

                struct pollfd p[] = {
                        { .fd = gd_client_get_fd(c), .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };
                if (poll(p, ELEMENTSOF(p), -1) < 0 && errno != EINTR) {
                        r = log_error_errno(-errno, "Failed to wait: %m");
                        break;
                }
                if (!(p[1].revents & POLLIN))
                        continue;

                /* Interrupted: give the groups back. Our copies of the fds first: the release waits for
                 * every copy to be closed. */
                l = gd_client_lease_free(l);
                r = gd_client_release(c, token);
                if (r < 0 && gd_client_error_code(c) != GD_ERR_BAD_TOKEN) {
                        r = groupctl_fail(c, r, "release lease %s", id);
                        gd_client_free(c);
                        return r;
                }

                /* A signal from here on aborts the wait, not the release. */
                struct signalfd_siginfo si;
                (void) !read(sfd, &si, sizeof si);
                r = wait_lease_ended(c, id, sfd, LEASE_END_TIMEOUT_MS, &e);
                if (r == 0)
                        log_warning("Lease %s: groupd did not say within %i s how the release went.", id,
                                    LEASE_END_TIMEOUT_MS / 1000);
                else if (r < 0 && r != -EINTR)
                        (void) groupctl_fail(c, r, "wait for the end of lease %s", id);
                break;
        }

        if (e.lease.id) {
                print_ended(&e);
                if (e.reason != GD_REASON_RELEASED)
                        ret = EXIT_FAIL;
                gd_event_done(&e);
        } else if (r != 0)
                ret = EXIT_FAIL;

        gd_client_lease_free(l);
        gd_client_free(c);
        return ret;
}

/* ---------------------------------------------------------------- acquire --exec */

/* What the child learns from groupctl with the fds, and the fd numbers they get (3, 4, ...). */
typedef struct Handed {
        char *id, *token, *groups, *delivery, *labels, *grant_uid;
        char *group_names[GD_GROUPS_PER_ACQUIRE_MAX];   /* legacy: fd 4 + i */
        size_t n_groups;
        char *labels_v[GD_DEVICES_PER_ACQUIRE_MAX];     /* iommufd: device addresses (fd 4 + i); node-grant: nodes */
        size_t n_labels;
} Handed;

static bool address_matches(const char *full, const char *asked) {
        /* "0000:00:03.0" is also "00:03.0" (domain 0). */
        return streq(full, asked) || (strlen(asked) == 7 && strncmp(full, "0000:", 5) == 0 && streq(full + 5, asked));
}

/* The fd a placeholder stands for ("iommufd", "device:0000:00:03.0", "container", "group:3"), or -ENOENT
 * with a message. */
static int placeholder_fd(const Handed *h, const char *name) {
        const char *v;
        bool legacy = streq(h->delivery, "legacy"), iommufd = streq(h->delivery, "iommufd");

        if (streq(name, "iommufd") && iommufd)
                return 3;
        if (streq(name, "container") && legacy)
                return 3;
        if ((v = startswith_word(name, "device:")) && iommufd)
                for (size_t i = 0; i < h->n_labels; i++)
                        if (address_matches(h->labels_v[i], v))
                                return 4 + (int) i;
        if ((v = startswith_word(name, "group:")) && legacy)
                for (size_t i = 0; i < h->n_groups; i++)
                        if (streq(h->group_names[i], v))
                                return 4 + (int) i;
        return -ENOENT;
}

static bool placeholder_known(const char *name) {
        return streq(name, "iommufd") || streq(name, "container") || startswith_word(name, "device:") ||
                startswith_word(name, "group:");
}

/* Replaces {iommufd}, {device:ADDR}, {container} and {group:N} in word with fd numbers; other braces stay as
 * they are (QEMU's JSON device syntax has plenty). A placeholder this lease cannot fill is an error. */
static int substitute(const Handed *h, const char *word, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        f = open_memstream(&out, &size);
        if (!f)
                return -ENOMEM;
        for (const char *p = word; *p; ) {
                const char *close = *p == '{' ? strchr(p, '}') : NULL;
                char name[96];
                int fd;

                if (!close || (size_t) (close - p - 1) >= sizeof name) {
                        fputc(*p++, f);
                        continue;
                }
                memcpy(name, p + 1, (size_t) (close - p - 1));
                name[close - p - 1] = 0;
                if (!placeholder_known(name)) {
                        fputc(*p++, f);
                        continue;
                }
                fd = placeholder_fd(h, name);
                if (fd < 0) {
                        log_error("Placeholder {%s}: this lease (delivery %s, %s %s) has no such fd.", name,
                                  h->delivery, streq(h->delivery, "iommufd") ? "devices" : "groups",
                                  streq(h->delivery, "iommufd") ? h->labels : h->groups);
                        r = -ENOENT;
                        break;
                }
                fprintf(f, "%i", fd);
                p = close + 1;
        }
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}

static size_t split_words(char *s, char **v, size_t max) {
        char *save = NULL;
        size_t n = 0;

        for (char *w = strtok_r(s, " ", &save); w && n < max; w = strtok_r(NULL, " ", &save))
                v[n++] = w;
        return n;
}

/* The child: waits for the lease, puts its fds in place, execs the command. Never returns. */
_noreturn_ static void child_run(int sock, char **cmd) {
        char buf[GD_LEASE_ID_MAX + GD_TOKEN_LEN + GD_GROUPS_PER_ACQUIRE_MAX * 11 +
                 GD_DEVICES_PER_ACQUIRE_MAX * (GD_NODE_PATH_MAX + 1) + 64];
        char groups_copy[GD_GROUPS_PER_ACQUIRE_MAX * 11 + 1], labels_copy[sizeof buf];
        char fd_list[GD_DEVICES_PER_ACQUIRE_MAX * (GD_PCI_ADDR_MAX + 12) + 1] = "";
        int fds[FD_MSG_MAX], high[FD_MSG_MAX];
        Handed h = {};
        char *save = NULL, **argv2;
        size_t n_fds = 0, off = 0, n_cmd = 0;
        sigset_t empty;
        ssize_t n;

        sigemptyset(&empty);
        (void) sigprocmask(SIG_SETMASK, &empty, NULL);

        /* "ID\nTOKEN\nG1 G2 ...\nDELIVERY\nLABELS\nGRANT-UID", with the delivery's fds. Nothing (EOF):
         * groupctl gave up, and said why. */
        n = fd_recv_msg(sock, buf, sizeof buf - 1, fds, ELEMENTSOF(fds), &n_fds);
        if (n <= 0)
                _exit(EXIT_FAIL);
        sock = safe_close(sock);
        buf[n] = 0;

        h.id = strtok_r(buf, "\n", &save);
        h.token = strtok_r(NULL, "\n", &save);
        h.groups = strtok_r(NULL, "\n", &save);
        h.delivery = strtok_r(NULL, "\n", &save);
        h.labels = strtok_r(NULL, "\n", &save);
        h.grant_uid = strtok_r(NULL, "\n", &save);
        if (!h.id || !h.token || !h.groups || !h.delivery || !h.labels || !h.grant_uid)
                goto fail;
        (void) snprintf(groups_copy, sizeof groups_copy, "%s", h.groups);
        h.n_groups = split_words(groups_copy, h.group_names, ELEMENTSOF(h.group_names));
        (void) snprintf(labels_copy, sizeof labels_copy, "%s", h.labels);
        h.n_labels = streq(h.labels, "-") ? 0 : split_words(labels_copy, h.labels_v, ELEMENTSOF(h.labels_v));
        if (streq(h.delivery, "legacy") ? n_fds != 1 + h.n_groups :
            streq(h.delivery, "iommufd") ? n_fds != 1 + h.n_labels : n_fds != 0)
                goto fail;

        /* Move every fd above the target range first, so that placing one never clobbers another. */
        for (size_t i = 0; i < n_fds; i++) {
                high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + (int) n_fds);
                if (high[i] < 0)
                        goto fail;
                fds[i] = safe_close(fds[i]);
        }
        for (size_t i = 0; i < n_fds; i++) {
                int target = 3 + (int) i;

                while (dup2(high[i], target) < 0)
                        if (errno != EINTR)
                                goto fail;
                /* dup2() leaves the copy inheritable; say so anyway: exactly these cross the exec. */
                if (fd_set_cloexec(target, false) < 0)
                        goto fail;
                high[i] = safe_close(high[i]);
        }

        if (setenv("GROUPD_LEASE_ID", h.id, 1) < 0 || setenv("GROUPD_LEASE_TOKEN", h.token, 1) < 0 ||
            setenv("GROUPD_GROUPS", h.groups, 1) < 0 || setenv("GROUPD_DELIVERY", h.delivery, 1) < 0)
                goto fail;
        if (streq(h.delivery, "legacy")) {
                /* GROUPD_GROUP_FDS="1=4,7=5" */
                for (size_t i = 0; i < h.n_groups; i++)
                        off += (size_t) snprintf(fd_list + off, sizeof fd_list - off, "%s%s=%zu", i > 0 ? "," : "",
                                                 h.group_names[i], 4 + i);
                if (setenv("GROUPD_CONTAINER_FD", "3", 1) < 0 || setenv("GROUPD_GROUP_FDS", fd_list, 1) < 0)
                        goto fail;
        } else if (streq(h.delivery, "iommufd")) {
                /* GROUPD_DEVICE_FDS="0000:00:03.0=4,0000:00:04.0=5" */
                for (size_t i = 0; i < h.n_labels; i++)
                        off += (size_t) snprintf(fd_list + off, sizeof fd_list - off, "%s%s=%zu", i > 0 ? "," : "",
                                                 h.labels_v[i], 4 + i);
                if (setenv("GROUPD_IOMMUFD", "3", 1) < 0 || setenv("GROUPD_DEVICE_FDS", fd_list, 1) < 0)
                        goto fail;
        } else if (setenv("GROUPD_NODES", streq(h.labels, "-") ? "" : h.labels, 1) < 0 ||
                   setenv("GROUPD_GRANT_UID", h.grant_uid, 1) < 0)
                goto fail;

        for (char **c = cmd; *c; c++)
                n_cmd++;
        argv2 = calloc(n_cmd + 1, sizeof *argv2);
        if (!argv2)
                goto fail;
        for (size_t i = 0; i < n_cmd; i++)
                if (substitute(&h, cmd[i], &argv2[i]) < 0)
                        _exit(127);

        execvp(argv2[0], argv2);
        {
                _cleanup_free_ char *e = text_escape(argv2[0]);
                log_error_errno(-errno, "Failed to execute \"%s\": %m", e ?: "?");
        }
        _exit(127);

fail:
        log_error_errno(errno > 0 ? -errno : -EBADMSG, "Failed to set up the lease's fds for the command: %m");
        _exit(127);
}

static int pidfd_open_(pid_t pid) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0); /* close-on-exec implied */
        return fd < 0 ? -errno : fd;
}

static int pidfd_send_signal_(int pidfd, int sig) {
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

static int exit_status_of(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return EXIT_FAIL;
}

static void child_abort(pid_t pid, int pidfd) {
        if (pidfd >= 0)
                (void) pidfd_send_signal_(pidfd, SIGKILL);
        else
                (void) kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* Sends "ID\nTOKEN\nG1 G2 ...\nDELIVERY\nLABELS\nGRANT-UID" and the delivery's fds to the child. */
static int hand_over(int sock, const GdClientLease *l) {
        char buf[GD_LEASE_ID_MAX + GD_TOKEN_LEN + GD_GROUPS_PER_ACQUIRE_MAX * 11 +
                 GD_DEVICES_PER_ACQUIRE_MAX * (GD_NODE_PATH_MAX + 1) + 64];
        int fds[1 + GD_DEVICES_PER_ACQUIRE_MAX];
        size_t off, n_fds = 0, n_labels = 0;
        char *const *labels = NULL;

        off = (size_t) snprintf(buf, sizeof buf, "%s\n%s\n", l->lease.id, l->token);
        for (size_t i = 0; i < l->lease.n_groups && off < sizeof buf; i++)
                off += (size_t) snprintf(buf + off, sizeof buf - off, "%s%" PRIu32, i > 0 ? " " : "",
                                         l->lease.groups[i]);
        if (off < sizeof buf)
                off += (size_t) snprintf(buf + off, sizeof buf - off, "\n%s\n",
                                         strna(gd_delivery_to_string((int) l->delivery)));
        if (l->delivery == GD_DELIVERY_IOMMUFD) {
                labels = l->device_addresses;
                n_labels = l->n_device_fds;
        } else if (l->delivery == GD_DELIVERY_NODE_GRANT) {
                labels = l->nodes;
                n_labels = l->n_nodes;
        }
        for (size_t i = 0; i < n_labels && off < sizeof buf; i++)
                off += (size_t) snprintf(buf + off, sizeof buf - off, "%s%s", i > 0 ? " " : "", labels[i]);
        if (off < sizeof buf)
                off += (size_t) snprintf(buf + off, sizeof buf - off, "%s\n%" PRIu32, n_labels == 0 ? "-" : "",
                                         l->grant_uid);
        if (off >= sizeof buf || l->n_group_fds > GD_GROUPS_PER_ACQUIRE_MAX ||
            l->n_device_fds > GD_DEVICES_PER_ACQUIRE_MAX)
                return -E2BIG;

        if (l->delivery == GD_DELIVERY_LEGACY) {
                fds[n_fds++] = l->container_fd;
                for (size_t i = 0; i < l->n_group_fds; i++)
                        fds[n_fds++] = l->group_fds[i];
        } else if (l->delivery == GD_DELIVERY_IOMMUFD) {
                fds[n_fds++] = l->iommufd;
                for (size_t i = 0; i < l->n_device_fds; i++)
                        fds[n_fds++] = l->device_fds[i];
        }
        return fd_send_msg(sock, buf, off, fds, n_fds);
}

static int acquire_exec(int argc, char **argv) {
        _cleanup_close_ int pidfd = -EBADF, sfd = -EBADF;
        char id[GD_LEASE_ID_MAX + 1];
        GdClientLease *l = NULL;
        GdClient *c = NULL;
        bool ended = false, connected = true;
        int sp[2], r, status = 0;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return log_error_errno(-errno, "Failed to make a socket pair: %m"), EXIT_FAIL;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(sp[0]);
                safe_close(sp[1]);
                return log_error_errno(r, "Failed to fork: %m"), EXIT_FAIL;
        }
        if (pid == 0) {
                safe_close(sp[0]);
                child_run(sp[1], arg.exec_argv);
        }
        sp[1] = safe_close(sp[1]);

        pidfd = pidfd_open_(pid);
        if (pidfd < 0) {
                r = pidfd;
                safe_close(sp[0]);
                child_abort(pid, -EBADF);
                return log_error_errno(r, "Failed to open a pidfd for the command: %m"), EXIT_FAIL;
        }

        /* The terminal's SIGINT reaches the command too; groupctl stays to report the lease's end. */
        sfd = signalfd_block((const int[]) { SIGINT, SIGTERM, SIGHUP, SIGQUIT }, 4);
        if (sfd < 0) {
                r = sfd;
                safe_close(sp[0]);
                child_abort(pid, pidfd);
                return log_error_errno(r, "Failed to set up signal handling: %m"), EXIT_FAIL;
        }

        r = groupctl_connect(&c);
        if (r < 0) {
                safe_close(sp[0]);
                child_abort(pid, pidfd);
                return -r;
        }
        r = gd_client_subscribe(c, 1u << GD_EVENT_LEASE_ENDED);
        if (r < 0) {
                r = groupctl_fail(c, r, "subscribe to events");
                safe_close(sp[0]);
                child_abort(pid, pidfd);
                gd_client_free(c);
                return r;
        }

        r = acquire(c, argc, argv, pidfd, &l);
        if (r < 0) {
                safe_close(sp[0]);
                child_abort(pid, pidfd);
                gd_client_free(c);
                return -r;
        }
        (void) snprintf(id, sizeof id, "%s", l->lease.id);

        {
                _cleanup_free_ char *e = text_escape(arg.exec_argv[0]);
                char how[256];
                (void) snprintf(how, sizeof how, "Handed to \"%s\" (pid %i); the lease ends when it exits.",
                                e ?: "?", (int) pid);
                print_acquired(l, how);
        }

        r = hand_over(sp[0], l);
        /* Our copies go now, whatever happened: the release waits for every copy to be closed. */
        l = gd_client_lease_free(l);
        sp[0] = safe_close(sp[0]);
        if (r < 0) {
                log_error_errno(r, "Failed to hand the lease's fds to the command: %m");
                child_abort(pid, pidfd); /* the lease ends with it */
                gd_client_free(c);
                return EXIT_FAIL;
        }

        /* Wait for the command; keep reading events meanwhile, so that none pile up in the socket. */
        for (;;) {
                struct pollfd p[] = {
                        { .fd = pidfd, .events = POLLIN },
                        { .fd = connected ? gd_client_get_fd(c) : -1, .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };

                if (connected && !ended) {
                        GdEvent e = {};

                        r = gd_client_next_event(c, 0, &e);
                        if (r > 0) {
                                if (is_our_end(&e, id)) {
                                        print_ended(&e);
                                        ended = true;
                                }
                                gd_event_done(&e);
                                continue;
                        }
                        if (r < 0) {
                                log_warning("Lost the connection to groupd: %s. The lease stays with the command.",
                                            gd_client_error_message(c));
                                connected = false;
                                continue;
                        }
                } else
                        p[1].fd = -1;

                if (poll(p, ELEMENTSOF(p), -1) < 0 && errno != EINTR) {
                        r = -errno;
                        log_error_errno(r, "Failed to wait for the command: %m");
                        break;
                }

                if (p[2].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(sfd, &si, sizeof si) == (ssize_t) sizeof si &&
                            si.ssi_code != SI_KERNEL) /* the terminal signalled the command itself */
                                (void) pidfd_send_signal_(pidfd, (int) si.ssi_signo);
                }

                if (p[0].revents & POLLIN)
                        break;
        }

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        log_error_errno(-errno, "Failed to reap the command: %m");
                        status = 0;
                        break;
                }

        if (!ended && connected) {
                GdEvent e = {};

                r = wait_lease_ended(c, id, sfd, LEASE_END_TIMEOUT_MS, &e);
                if (r > 0) {
                        print_ended(&e);
                        gd_event_done(&e);
                } else if (r == 0)
                        log_warning("Lease %s: groupd did not say within %i s how it ended.", id,
                                    LEASE_END_TIMEOUT_MS / 1000);
                else if (r != -EINTR)
                        log_warning("Lease %s: cannot learn how it ended: %s", id, gd_client_error_message(c));
        }

        gd_client_free(c);
        return exit_status_of(status);
}

int verb_acquire(int argc, char **argv) {
        return arg.exec_argv ? acquire_exec(argc, argv) : acquire_hold(argc, argv);
}
