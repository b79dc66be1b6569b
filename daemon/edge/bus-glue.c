/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-glue.h"
#include "log.h"
#include "macro.h"

typedef struct GlueIo GlueIo;
struct GlueIo {
        BusGlue *glue;
        int fd;
        sd_event_source *source;
        DBusWatch *watches[2];        /* at most one for reading and one for writing, libdbus says */
        GlueIo *next;
};

typedef struct GlueTimeout {
        BusGlue *glue;
        DBusTimeout *timeout;
        sd_event_source *source;
} GlueTimeout;

struct BusGlue {
        DBusConnection *connection;
        sd_event *event;
        sd_event_source *dispatch_source;
        GlueIo *ios;
};

/* ---------------------------------------------------------------- watches */

static uint32_t watch_events(DBusWatch *w) {
        unsigned flags;
        uint32_t events = 0;

        if (!w || !dbus_watch_get_enabled(w))
                return 0;
        flags = dbus_watch_get_flags(w);
        if (flags & DBUS_WATCH_READABLE)
                events |= EPOLLIN;
        if (flags & DBUS_WATCH_WRITABLE)
                events |= EPOLLOUT;
        return events;
}

static int io_update(GlueIo *io) {
        uint32_t events = watch_events(io->watches[0]) | watch_events(io->watches[1]);

        if (events == 0)
                return sd_event_source_set_enabled(io->source, SD_EVENT_OFF);
        int r = sd_event_source_set_io_events(io->source, events);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(io->source, SD_EVENT_ON);
}

static void glue_update_dispatch(BusGlue *g) {
        (void) sd_event_source_set_enabled(g->dispatch_source,
                                           dbus_connection_get_dispatch_status(g->connection) ==
                                                           DBUS_DISPATCH_DATA_REMAINS
                                                   ? SD_EVENT_ON
                                                   : SD_EVENT_OFF);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        GlueIo *io = userdata;
        BusGlue *g = io->glue;
        DBusWatch *ws[2] = { io->watches[0], io->watches[1] };

        /* Hand each enabled watch the conditions it asked for; errors and hang-ups go to every one. Take
         * copies first: dbus_watch_handle() may remove watches (and free io). */
        dbus_connection_ref(g->connection);
        for (size_t i = 0; i < 2; i++) {
                unsigned flags = 0, want;

                if (!ws[i] || !dbus_watch_get_enabled(ws[i]))
                        continue;
                want = dbus_watch_get_flags(ws[i]);
                if ((revents & EPOLLIN) && (want & DBUS_WATCH_READABLE))
                        flags |= DBUS_WATCH_READABLE;
                if ((revents & EPOLLOUT) && (want & DBUS_WATCH_WRITABLE))
                        flags |= DBUS_WATCH_WRITABLE;
                if (revents & EPOLLHUP)
                        flags |= DBUS_WATCH_HANGUP;
                if (revents & EPOLLERR)
                        flags |= DBUS_WATCH_ERROR;
                if (flags)
                        (void) dbus_watch_handle(ws[i], flags);
                /* The first handle may have dropped the second watch. */
                if (i == 0) {
                        GlueIo *still = NULL;
                        for (GlueIo *x = g->ios; x; x = x->next)
                                if (x->fd == fd)
                                        still = x;
                        if (!still || (still->watches[0] != ws[1] && still->watches[1] != ws[1]))
                                ws[1] = NULL;
                }
        }
        glue_update_dispatch(g);
        dbus_connection_unref(g->connection);
        return 0;
}

static GlueIo *glue_find_io(BusGlue *g, int fd) {
        for (GlueIo *io = g->ios; io; io = io->next)
                if (io->fd == fd)
                        return io;
        return NULL;
}

static dbus_bool_t add_watch(DBusWatch *w, void *data) {
        BusGlue *g = data;
        int fd = dbus_watch_get_unix_fd(w);
        GlueIo *io = glue_find_io(g, fd);
        int r;

        if (!io) {
                io = calloc(1, sizeof *io);
                if (!io)
                        return FALSE;
                io->glue = g;
                io->fd = fd;
                r = sd_event_add_io(g->event, &io->source, fd, 0, on_io, io);
                if (r < 0) {
                        log_error_errno(r, "Failed to watch the bus connection: %m");
                        free(io);
                        return FALSE;
                }
                (void) sd_event_source_set_description(io->source, "dbus-io");
                io->next = g->ios;
                g->ios = io;
        }
        if (!io->watches[0])
                io->watches[0] = w;
        else if (!io->watches[1]) {
                io->watches[1] = w;
                log_debug("D-Bus: a second watch on fd %i; one epoll source serves both.", fd);
        } else
                return FALSE; /* a third watch on one fd: libdbus never does this */
        dbus_watch_set_data(w, io, NULL);
        return io_update(io) >= 0;
}

static void remove_watch(DBusWatch *w, void *data) {
        BusGlue *g = data;
        GlueIo *io = dbus_watch_get_data(w);

        if (!io)
                return;
        dbus_watch_set_data(w, NULL, NULL);
        for (size_t i = 0; i < 2; i++)
                if (io->watches[i] == w)
                        io->watches[i] = NULL;
        if (io->watches[0] || io->watches[1]) {
                (void) io_update(io);
                return;
        }
        for (GlueIo **p = &g->ios; *p; p = &(*p)->next)
                if (*p == io) {
                        *p = io->next;
                        break;
                }
        sd_event_source_disable_unref(io->source);
        free(io);
}

static void toggle_watch(DBusWatch *w, void *data) {
        GlueIo *io = dbus_watch_get_data(w);
        if (io)
                (void) io_update(io);
}

/* ---------------------------------------------------------------- timeouts */

static int timeout_arm(GlueTimeout *t) {
        uint64_t usec = (uint64_t) dbus_timeout_get_interval(t->timeout) * 1000ULL;
        int r;

        if (!dbus_timeout_get_enabled(t->timeout))
                return sd_event_source_set_enabled(t->source, SD_EVENT_OFF);
        r = sd_event_source_set_time_relative(t->source, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(t->source, SD_EVENT_ONESHOT);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        GlueTimeout *t = userdata;
        BusGlue *g = t->glue;
        DBusTimeout *timeout = t->timeout;

        /* Re-arm first: handling may remove the timeout (and free t). */
        (void) timeout_arm(t);
        dbus_connection_ref(g->connection);
        (void) dbus_timeout_handle(timeout);
        glue_update_dispatch(g);
        dbus_connection_unref(g->connection);
        return 0;
}

static void timeout_free(void *p) {
        GlueTimeout *t = p;
        if (!t)
                return;
        sd_event_source_disable_unref(t->source);
        free(t);
}

static dbus_bool_t add_timeout(DBusTimeout *timeout, void *data) {
        BusGlue *g = data;
        GlueTimeout *t;
        int r;

        t = calloc(1, sizeof *t);
        if (!t)
                return FALSE;
        t->glue = g;
        t->timeout = timeout;
        r = sd_event_add_time_relative(g->event, &t->source, CLOCK_MONOTONIC, 0, 0, on_timeout, t);
        if (r >= 0)
                r = timeout_arm(t);
        if (r < 0) {
                timeout_free(t);
                return FALSE;
        }
        (void) sd_event_source_set_description(t->source, "dbus-timeout");
        dbus_timeout_set_data(timeout, t, timeout_free);
        return TRUE;
}

static void remove_timeout(DBusTimeout *timeout, void *data) {
        /* Frees t through the data's free function. */
        dbus_timeout_set_data(timeout, NULL, NULL);
}

static void toggle_timeout(DBusTimeout *timeout, void *data) {
        GlueTimeout *t = dbus_timeout_get_data(timeout);
        if (t)
                (void) timeout_arm(t);
}

/* ---------------------------------------------------------------- dispatch */

static int on_dispatch(sd_event_source *s, void *userdata) {
        BusGlue *g = userdata;

        dbus_connection_ref(g->connection);
        /* One message per turn of the loop, so the bus cannot starve the native socket. */
        (void) dbus_connection_dispatch(g->connection);
        glue_update_dispatch(g);
        dbus_connection_unref(g->connection);
        return 0;
}

static void on_dispatch_status(DBusConnection *c, DBusDispatchStatus status, void *data) {
        BusGlue *g = data;
        (void) sd_event_source_set_enabled(g->dispatch_source,
                                           status == DBUS_DISPATCH_DATA_REMAINS ? SD_EVENT_ON : SD_EVENT_OFF);
}

/* libdbus wakes the main loop when a message is queued from outside a dispatch (a reply sent from a
 * worker's completion, say): the outgoing queue is flushed by the write watch, which toggle_watch enabled,
 * so there is nothing to do here but make sure dispatch runs if messages arrived meanwhile. */
static void on_wakeup(void *data) {
        glue_update_dispatch(data);
}

int bus_glue_attach(DBusConnection *c, sd_event *e, BusGlue **ret) {
        BusGlue *g;
        int r;

        g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        g->connection = c;
        g->event = sd_event_ref(e);

        r = sd_event_add_defer(e, &g->dispatch_source, on_dispatch, g);
        if (r < 0) {
                bus_glue_free(g);
                return r;
        }
        (void) sd_event_source_set_enabled(g->dispatch_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(g->dispatch_source, "dbus-dispatch");

        if (!dbus_connection_set_watch_functions(c, add_watch, remove_watch, toggle_watch, g, NULL) ||
            !dbus_connection_set_timeout_functions(c, add_timeout, remove_timeout, toggle_timeout, g, NULL)) {
                bus_glue_free(g);
                return -ENOMEM;
        }
        dbus_connection_set_dispatch_status_function(c, on_dispatch_status, g, NULL);
        dbus_connection_set_wakeup_main_function(c, on_wakeup, g, NULL);
        glue_update_dispatch(g);

        *ret = g;
        return 0;
}

BusGlue *bus_glue_free(BusGlue *g) {
        if (!g)
                return NULL;
        if (g->connection) {
                /* Removes every watch and timeout through our callbacks. */
                (void) dbus_connection_set_watch_functions(g->connection, NULL, NULL, NULL, NULL, NULL);
                (void) dbus_connection_set_timeout_functions(g->connection, NULL, NULL, NULL, NULL, NULL);
                dbus_connection_set_dispatch_status_function(g->connection, NULL, NULL, NULL);
                dbus_connection_set_wakeup_main_function(g->connection, NULL, NULL, NULL);
        }
        while (g->ios) {
                GlueIo *io = g->ios;
                g->ios = io->next;
                sd_event_source_disable_unref(io->source);
                free(io);
        }
        sd_event_source_disable_unref(g->dispatch_source);
        sd_event_unref(g->event);
        free(g);
        return NULL;
}
