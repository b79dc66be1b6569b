/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "fd-util.h"
#include "log.h"
#include "service.h"

static bool fd_store_wanted(void) {
        const char *e = getenv("NOTIFY_SOCKET"), *max = getenv("FDSTORE");

        /* systemd 254 and later say how many fds the store takes; 252 says nothing. */
        return !isempty(e) && !streq_ptr(max, "0");
}

int service_take_fds(Manager *m, int *ret_listen_fd) {
        char **names = NULL;
        int listen_fd = -EBADF, n, r = 0, stored = 0;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to take the fds passed in: %m");

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names ? names[i] : "unknown";

                (void) fd_set_cloexec(fd, true);
                if (startswith_word(name, "lease-")) {
                        int k = manager_offer_stored_fd(m, name, fd);
                        if (k < 0 && r == 0)
                                r = log_error_errno(k, "Failed to take stored fd \"%s\": %m", name);
                        stored++;
                        continue;
                }
                if (listen_fd < 0 && sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0) {
                        listen_fd = fd;
                        continue;
                }
                log_warning("Closing fd %i (\"%s\") passed in: neither the listening socket nor a lease's.", fd,
                            name);
                safe_close(fd);
        }
        for (int i = 0; names && names[i]; i++)
                free(names[i]);
        free(names);

        if (stored > 0)
                log_info("The fd store gave back %i fd(s).", stored);
        if (r < 0) {
                safe_close(listen_fd);
                return r;
        }
        *ret_listen_fd = listen_fd;
        return 0;
}

static void fd_store(Manager *m, const char *name, int fd, void *userdata) {
        char msg[64 + 256];
        int r;

        if (fd >= 0) {
                (void) snprintf(msg, sizeof msg, "FDSTORE=1\nFDNAME=%s", name);
                r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
        } else {
                (void) snprintf(msg, sizeof msg, "FDSTOREREMOVE=1\nFDNAME=%s", name);
                r = sd_notify(false, msg);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to %s fd \"%s\" %s the fd store: %m", fd >= 0 ? "push" : "remove",
                                  name, fd >= 0 ? "to" : "from");
        else
                log_debug("%s fd store: %s", fd >= 0 ? "→" : "✗", name);
}

static void notify_status(Manager *m, bool ready) {
        size_t active = 0, busy = 0;

        for (Lease *l = manager_first_lease(m); l; l = l->next) {
                if (l->state == LEASE_ACTIVE)
                        active++;
                else if (l->state != LEASE_RELEASED)
                        busy++;
        }
        (void) sd_notifyf(false, "%sSTATUS=Serving: %zu lease(s) active, %zu being acquired or released.",
                          ready ? "READY=1\n" : "", active, busy);
}

/* STATUS= is for people (systemctl status): at most one line per STATUS_INTERVAL_USEC, the last one
 * always sent. Each sd_notify() is a socket of its own (about a dozen syscalls); at one per lease event
 * it was three per acquire+release cycle, a tenth of a cycle's syscalls on the simulated host. */
#define STATUS_INTERVAL_USEC (100 * 1000ULL)

static struct {
        Manager *manager;
        sd_event_source *timer;        /* armed while a line is owed */
        uint64_t last_usec;
} status;

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        status.timer = sd_event_source_disable_unref(status.timer);
        status.last_usec = usec;
        notify_status(status.manager, false);
        return 0;
}

static void on_event(Manager *m, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                     const char *detail, void *userdata) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        uint64_t now;

        if (kind == MANAGER_EVENT_GROUP_CHANGED || status.timer)
                return;
        status.manager = m;
        if (sd_event_default(&e) < 0 || sd_event_now(e, CLOCK_MONOTONIC, &now) < 0 ||
            now >= status.last_usec + STATUS_INTERVAL_USEC ||
            sd_event_add_time(e, &status.timer, CLOCK_MONOTONIC, status.last_usec + STATUS_INTERVAL_USEC, 0,
                              on_status_timer, NULL) < 0) {
                if (e && sd_event_now(e, CLOCK_MONOTONIC, &now) >= 0)
                        status.last_usec = now;
                notify_status(m, false);
        }
}

int service_attach(Manager *m) {
        if (isempty(getenv("NOTIFY_SOCKET")))
                return 0;
        if (fd_store_wanted())
                manager_set_fd_store(m, fd_store, NULL);
        return manager_add_listener(m, on_event, NULL);
}

void service_notify_ready(Manager *m) {
        notify_status(m, true);
}

void service_detach(void) {
        status.timer = sd_event_source_disable_unref(status.timer);
        status.manager = NULL;
}
