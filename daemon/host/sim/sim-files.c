/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The simulated host's open files (groups, containers, device cdevs, iommufds as socket pairs) and the responder thread that answers on them and notices their last close. (host-sim.c has the whole picture.) */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "log.h"
#include "sim-internal.h"

/* ---------------------------------------------------------------- open files */

SimFile *sim_find_file(Sim *s, int fd, SimFileKind kind) {
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                return NULL;
        for (SimFile *f = s->files; f; f = f->next)
                if (!f->closed && f->kind == kind && f->client_dev == st.st_dev && f->client_ino == st.st_ino)
                        return f;
        return NULL;
}

bool container_has_groups(Sim *s, SimFile *c) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_GROUP && !f->closed && f->container == c)
                        return true;
        return false;
}

bool iommufd_has_devices(Sim *s, SimFile *i) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_DEVICE && !f->closed && f->iommufd == i)
                        return true;
        return false;
}

/* Every copy of the client end is closed: the kernel's release(). Mutex held. */
void sim_file_release(Sim *s, SimFile *f) {
        if (f->closed)
                return;
        f->closed = true;

        if (f->kind == SIM_FILE_GROUP) {
                SimGroupState *gs = sim_group_state(s, f->group);
                SimFile *c = f->container;

                if (gs && gs->file == f)
                        gs->file = NULL;
                f->container = NULL;
                /* A container without groups loses its IOMMU type (the kernel's "deprivileged"). */
                if (c && !container_has_groups(s, c))
                        c->iommu_type = 0;
        }
        if (f->kind == SIM_FILE_DEVICE)
                f->iommufd = NULL; /* the kernel unbinds a cdev when its last fd closes */

        (void) pthread_cond_broadcast(&s->cond);
        sim_wake(s);
}

/* Has the client end of an open file been closed everywhere? Notices it at once, without waiting for the
 * responder (which may not have run yet). Mutex held. */
bool sim_file_check_closed(Sim *s, SimFile *f) {
        struct pollfd p = { .fd = f->peer_fd, .events = POLLIN };

        if (f->closed)
                return true;
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP|POLLERR|POLLNVAL))) {
                sim_file_release(s, f);
                return true;
        }
        return false;
}

bool sim_group_is_open(Sim *s, SimGroupState *gs) {
        return gs->file && !sim_file_check_closed(s, gs->file);
}

/* A cdev of the device is open (bound or not): the kernel's unbind waits for it. */
bool sim_device_is_open(Sim *s, const char *address) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_DEVICE && streq(f->address, address) && !sim_file_check_closed(s, f))
                        return true;
        return false;
}

/* A cdev of a device of the group is bound to an iommufd: the group cannot be opened (EBUSY). */
bool sim_group_has_bound_cdev(Sim *s, unsigned group) {
        for (SimFile *f = s->files; f; f = f->next)
                if (f->kind == SIM_FILE_DEVICE && f->group == group && f->iommufd && !sim_file_check_closed(s, f))
                        return true;
        return false;
}

int sim_file_new(Sim *s, SimFileKind kind, unsigned group, SimFile **ret_file, int *ret_fd) {
        _cleanup_close_ int client = -EBADF, peer = -EBADF;
        SimFile *f;
        struct stat st;
        int pair[2], r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        client = pair[0];
        peer = pair[1];
        r = fd_set_nonblock(peer, true);
        if (r < 0)
                return r;
        if (fstat(client, &st) < 0)
                return -errno;

        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *f = (SimFile) {
                .kind = kind,
                .peer_fd = TAKE_FD(peer),
                .client_dev = st.st_dev,
                .client_ino = st.st_ino,
                .group = group,
                .next = s->files,
        };
        s->files = f;
        sim_wake(s);

        if (ret_file)
                *ret_file = f;
        *ret_fd = TAKE_FD(client);
        return 0;
}

/* Closes the peer ends of released files and frees what nothing refers to. Responder thread or
 * host_free() only; mutex held. */
void sim_reap(Sim *s) {
        for (SimFile **p = &s->files; *p;) {
                SimFile *f = *p;

                if (!f->closed) {
                        p = &f->next;
                        continue;
                }
                f->peer_fd = safe_close(f->peer_fd);
                if ((f->kind == SIM_FILE_CONTAINER && container_has_groups(s, f)) ||
                    (f->kind == SIM_FILE_IOMMUFD && iommufd_has_devices(s, f))) {
                        p = &f->next;
                        continue;
                }
                *p = f->next;
                free(f);
        }
}

/* ---------------------------------------------------------------- the responder */

static const char *iommu_type_name(uint32_t type, char *buf, size_t size) {
        switch (type) {
        case 0:
                return "none";
        case VFIO_TYPE1_IOMMU:
                return "type1";
        case VFIO_TYPE1v2_IOMMU:
                return "type1v2";
        case VFIO_SPAPR_TCE_IOMMU:
                return "spapr-tce";
        case VFIO_SPAPR_TCE_v2_IOMMU:
                return "spapr-tce-v2";
        default:
                (void) snprintf(buf, size, "%" PRIu32, type);
                return buf;
        }
}

bool group_devices_vfio_safe(const HostGroup *g) {
        for (size_t i = 0; i < g->n_devices; i++)
                if (!host_device_is_vfio_safe(&g->devices[i]))
                        return false;
        return true;
}

void sim_count_usage(Sim *s, unsigned group) {
        SimGroupState *gs = sim_group_state(s, group);
        char name[32], text[32];

        if (!gs)
                return;
        gs->usage++;
        (void) snprintf(name, sizeof name, "usage-%u", group);
        (void) snprintf(text, sizeof text, "%" PRIu64 "\n", gs->usage);
        (void) replace_file_at(s->book_fd, "", name, text);
}

void sim_answer_group(Host *h, Sim *s, SimFile *f, const char *req, char *reply, size_t size) {
        _cleanup_(host_group_done) HostGroup g = {};
        const char *arg;

        sim_count_usage(s, f->group);

        if (streq(req, "STATUS")) {
                size_t off;

                if (sysfs_read_group(h->sysfs_fd, h->cache, NULL, f->group, &g) < 0) {
                        (void) snprintf(reply, size, "error=EIO");
                        return;
                }
                off = (size_t) snprintf(reply, size, "group=%u viable=%i container=%s devices=", f->group,
                                        f->container || group_devices_vfio_safe(&g),
                                        f->container ? "yes" : "no");
                for (size_t i = 0; i < g.n_devices && off < size; i++)
                        off += (size_t) snprintf(reply + off, size - off, "%s%s", i > 0 ? "," : "",
                                                 g.devices[i].address);
                return;
        }

        if ((arg = startswith_word(req, "DEVICE "))) {
                char address[HOST_ADDR_MAX];
                const SimTopoDevice *td;
                HostDevice d;

                if (host_parse_pci_address(arg, address) < 0 ||
                    !(td = sim_device(s, address)) || td->group != f->group ||
                    sysfs_read_device(h->sysfs_fd, NULL, address, &d) < 0) {
                        (void) snprintf(reply, size, "error=ENODEV");
                        return;
                }
                (void) snprintf(reply, size, "device=%s vendor=0x%04x device=0x%04x driver=%s", d.address,
                                d.vendor, d.device, isempty(d.driver) ? "none" : d.driver);
                return;
        }

        (void) snprintf(reply, size, "error=EINVAL");
}

void sim_answer_container(Sim *s, SimFile *c, const char *req, char *reply, size_t size) {
        char buf[16];
        size_t off;
        bool first = true;

        if (!streq(req, "STATUS")) {
                (void) snprintf(reply, size, "error=EINVAL");
                return;
        }

        off = (size_t) snprintf(reply, size, "container iommu=%s groups=",
                                iommu_type_name(c->iommu_type, buf, sizeof buf));
        /* In ascending order, as the topology keeps them. */
        for (size_t i = 0; i < s->topology->n_groups && off < size; i++) {
                SimFile *f = s->groups[i].file;
                if (!f || f->closed || f->container != c)
                        continue;
                off += (size_t) snprintf(reply + off, size - off, "%s%u", first ? "" : ",", f->group);
                first = false;
        }
}

void sim_answer_device(Host *h, Sim *s, SimFile *f, const char *req, int passed_fd, char *reply,
                              size_t size) {
        HostDevice d;

        if (streq(req, "BIND")) {
                SimGroupState *gs = sim_group_state(s, f->group);
                SimFile *i = passed_fd >= 0 ? sim_find_file(s, passed_fd, SIM_FILE_IOMMUFD) : NULL;

                if (!i || f->iommufd)
                        (void) snprintf(reply, size, "error=EINVAL");
                else if (gs && sim_group_is_open(s, gs))
                        (void) snprintf(reply, size, "error=EBUSY"); /* the group is open: a cdev cannot bind */
                else {
                        f->iommufd = i;
                        (void) snprintf(reply, size, "bound device=%s", f->address);
                }
                return;
        }
        if (!f->iommufd) {
                (void) snprintf(reply, size, "error=EINVAL"); /* an unbound cdev is good for nothing else */
                return;
        }
        sim_count_usage(s, f->group);
        if (streq(req, "STATUS") && sysfs_read_device(h->sysfs_fd, NULL, f->address, &d) >= 0)
                (void) snprintf(reply, size, "device=%s vendor=0x%04x device=0x%04x driver=%s bound=yes", d.address,
                                d.vendor, d.device, isempty(d.driver) ? "none" : d.driver);
        else
                (void) snprintf(reply, size, "error=EINVAL");
}

void sim_answer_iommufd(Sim *s, SimFile *i, const char *req, char *reply, size_t size) {
        size_t off;
        bool first = true;

        if (!streq(req, "STATUS")) {
                (void) snprintf(reply, size, "error=EINVAL");
                return;
        }
        off = (size_t) snprintf(reply, size, "iommufd rlimit-mode=%s devices=", i->rlimit_process ? "process" : "user");
        for (SimFile *f = s->files; f && off < size; f = f->next) {
                if (f->kind != SIM_FILE_DEVICE || f->closed || f->iommufd != i)
                        continue;
                off += (size_t) snprintf(reply + off, size - off, "%s%s", first ? "" : ",", f->address);
                first = false;
        }
}

/* One request waits on f's peer end (or the client went away). Mutex held. */
void sim_serve(Host *h, Sim *s, SimFile *f, short revents) {
        char req[SIM_REQUEST_MAX + 1], reply[SIM_REPLY_MAX];
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = req, .iov_len = SIM_REQUEST_MAX };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof control };
        int passed[4], n_passed = 0;
        ssize_t n;

        if (!(revents & POLLIN)) {
                if (revents & (POLLHUP|POLLERR|POLLNVAL))
                        sim_file_release(s, f);
                return;
        }

        n = recvmsg(f->peer_fd, &mh, MSG_DONTWAIT|MSG_CMSG_CLOEXEC);
        if (n >= 0)
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t j = 0; j < k && n_passed < 4; j++)
                                        memcpy(&passed[n_passed++], CMSG_DATA(c) + j * sizeof(int), sizeof(int));
                        }
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return;
                sim_file_release(s, f);
                return;
        }
        if (n == 0 && (revents & POLLHUP)) {
                close_many(passed, (size_t) n_passed);
                sim_file_release(s, f);
                return;
        }
        req[n] = 0;
        while (n > 0 && (req[n - 1] == '\n' || req[n - 1] == '\r' || req[n - 1] == ' '))
                req[--n] = 0;

        if (f->kind == SIM_FILE_GROUP)
                sim_answer_group(h, s, f, req, reply, sizeof reply);
        else if (f->kind == SIM_FILE_CONTAINER)
                sim_answer_container(s, f, req, reply, sizeof reply);
        else if (f->kind == SIM_FILE_DEVICE)
                sim_answer_device(h, s, f, req, n_passed > 0 ? passed[0] : -EBADF, reply, sizeof reply);
        else
                sim_answer_iommufd(s, f, req, reply, sizeof reply);
        close_many(passed, (size_t) n_passed);

        (void) send(f->peer_fd, reply, strnlen(reply, sizeof reply), MSG_DONTWAIT|MSG_NOSIGNAL);
}

void *sim_responder(void *userdata) {
        Host *h = userdata;
        Sim *s = sim_of(h);
        _cleanup_free_ struct pollfd *pfds = NULL;
        _cleanup_free_ SimFile **polled = NULL;
        size_t allocated = 0;

        (void) pthread_mutex_lock(&s->mutex);
        while (!s->stopping) {
                size_t n = 0;
                int k;

                sim_reap(s);
                for (SimFile *f = s->files; f; f = f->next)
                        n++;
                if (n + 2 > allocated) {
                        size_t a = MAX(2 * allocated, n + 16);
                        struct pollfd *p = reallocarray(pfds, a, sizeof *pfds);
                        SimFile **q;
                        if (p)
                                pfds = p;
                        q = p ? reallocarray(polled, a, sizeof *polled) : NULL;
                        if (!q) {
                                /* Cannot watch them all now: try again in a moment. */
                                (void) pthread_mutex_unlock(&s->mutex);
                                (void) poll(NULL, 0, 10);
                                (void) pthread_mutex_lock(&s->mutex);
                                continue;
                        }
                        polled = q;
                        allocated = a;
                }

                pfds[0] = (struct pollfd) { .fd = s->wake_fd, .events = POLLIN };
                pfds[1] = (struct pollfd) { .fd = s->control_fd, .events = POLLIN };
                n = 0;
                for (SimFile *f = s->files; f; f = f->next) {
                        if (f->closed || f->peer_fd < 0)
                                continue;
                        polled[n] = f;
                        pfds[2 + n++] = (struct pollfd) { .fd = f->peer_fd, .events = POLLIN };
                }
                (void) pthread_mutex_unlock(&s->mutex);

                k = poll(pfds, n + 2, -1);

                (void) pthread_mutex_lock(&s->mutex);
                if (k < 0)
                        continue; /* EINTR; nothing else is expected with valid fds */
                if (pfds[0].revents & POLLIN) {
                        uint64_t v;
                        (void) !read(s->wake_fd, &v, sizeof v);
                }
                if (pfds[1].revents & POLLIN)
                        sim_read_control(h, s);
                for (size_t i = 0; i < n; i++) {
                        /* Files are freed by this thread only, so polled[] is valid; skip what another
                         * thread released meanwhile. */
                        if (pfds[i + 2].revents == 0 || polled[i]->closed)
                                continue;
                        sim_serve(h, s, polled[i], pfds[i + 2].revents);
                }
        }
        (void) pthread_mutex_unlock(&s->mutex);
        return NULL;
}
