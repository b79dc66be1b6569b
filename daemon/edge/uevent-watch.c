/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "fd-util.h"
#include "log.h"
#include "uevent-watch.h"

struct UeventWatch {
        Manager *manager;
        int netlink_fd;                 /* the kernel's uevents, straight from netlink */
        sd_event_source *netlink_source;
};

/* The kernel's uevents: "ACTION@DEVPATH" then KEY=VALUE strings, each NUL-terminated. Only the kernel's
 * own (sender port 0) are believed.
 *
 * Why not sd-device's monitor: it listens to udev's re-broadcast (the "udev" netlink group), which udevd
 * sends in its own network namespace only; groupd.service runs with PrivateNetwork=yes, where only the
 * kernel's group arrives (the kernel sends untagged uevents to every network namespace of the initial
 * user namespace), and libsystemd 252 has no public way to have a monitor listen there. Nor does the
 * kernel's group need udevd (early boot, minimal systems, the real-kernel rig). For PCI add, remove,
 * bind and unbind, udev's rules add nothing groupd needs. */
static int on_kernel_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        UeventWatch *w = userdata;

        for (;;) {
                char buf[8192];
                struct sockaddr_nl sa = {};
                struct iovec iov = { buf, sizeof buf - 1 };
                struct msghdr mh = { .msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov, .msg_iovlen = 1 };
                const char *action = NULL, *subsystem = NULL, *slot = NULL, *driver = NULL;
                HostChange c;
                ssize_t n;

                n = recvmsg(fd, &mh, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(-errno, "Reading a uevent failed: %m");
                        return 0; /* ENOBUFS: some were lost; the next ones still count */
                }
                if (sa.nl_pid != 0 || (mh.msg_flags & MSG_TRUNC))
                        continue;
                buf[n] = 0;
                for (size_t off = strlen(buf) + 1; off < (size_t) n; off += strlen(buf + off) + 1) {
                        const char *kv = buf + off, *v;
                        if ((v = startswith_word(kv, "ACTION=")))
                                action = v;
                        else if ((v = startswith_word(kv, "SUBSYSTEM=")))
                                subsystem = v;
                        else if ((v = startswith_word(kv, "PCI_SLOT_NAME=")))
                                slot = v;
                        else if ((v = startswith_word(kv, "DRIVER=")))
                                driver = v;
                }
                if (!streq_ptr(subsystem, "pci") || !action || !slot)
                        continue;
                if (host_change_from_uevent(action, slot, driver, &c) < 0)
                        continue;
                log_debug("uevent (kernel): %s %s%s%s", host_change_kind_to_string(c.kind), c.address,
                          isempty(c.driver) ? "" : " ", c.driver);
                manager_host_changed(w->manager, &c);
        }
}

static int kernel_watch_start(UeventWatch *w, sd_event *e) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 /* the kernel's group */ };
        int r;

        w->netlink_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (w->netlink_fd < 0)
                return -errno;
        if (bind(w->netlink_fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        r = sd_event_add_io(e, &w->netlink_source, w->netlink_fd, EPOLLIN, on_kernel_uevent, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->netlink_source, "kernel-uevents");
        return 0;
}

UeventWatch *uevent_watch_free(UeventWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->netlink_source);
        safe_close(w->netlink_fd);
        free(w);
        return NULL;
}

int uevent_watch_new(sd_event *e, Manager *m, UeventWatch **ret) {
        _cleanup_(uevent_watch_freep) UeventWatch *w = NULL;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->netlink_fd = -EBADF;
        r = kernel_watch_start(w, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}
