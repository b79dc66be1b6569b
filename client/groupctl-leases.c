/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* groupctl release, leases, monitor, status. */

#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "groupctl.h"
#include "log.h"

int verb_release(int argc, char **argv) {
        GdClient *c = NULL;
        int r;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_release(c, argv[0]);
        if (r < 0)
                r = groupctl_fail(c, r, "release the lease");
        gd_client_free(c);
        return r;
}

int verb_revoke(int argc, char **argv) {
        GdClient *c = NULL;
        int r;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_revoke(c, argv[0], arg.deadline_sec, arg.force ? GD_REVOKE_FORCE : 0);
        if (r < 0)
                r = groupctl_fail(c, r, "revoke lease %s", argv[0]);
        else
                printf("Revoking lease %s: its release has started%s.\n", argv[0],
                       arg.force ? "; past the deadline its owner is ended" : "");
        gd_client_free(c);
        return r;
}

static int lease_compare(const void *a, const void *b) {
        const GdLease *x = a, *y = b;
        if (x->since_usec != y->since_usec)
                return x->since_usec < y->since_usec ? -1 : 1;
        return strcmp(strempty(x->id), strempty(y->id));
}

int verb_leases(int argc, char **argv) {
        static const char *const headers[] = { "LEASE", "LABEL", "OWNER", "UID", "PID", "STATE", "GROUPS",
                                               "SINCE" };
        _cleanup_(table_freep) Table *t = NULL;
        GdClient *c = NULL;
        GdLease *leases = NULL;
        size_t n = 0;
        int r;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_list_leases(c, &leases, &n);
        if (r < 0) {
                r = groupctl_fail(c, r, "list the leases");
                gd_client_free(c);
                return r;
        }
        gd_client_free(c);

        if (n > 1)
                qsort(leases, n, sizeof *leases, lease_compare);

        if (arg.json) {
                fputs("[", stdout);
                for (size_t i = 0; i < n; i++) {
                        fputs(i > 0 ? ",\n" : "\n", stdout);
                        json_lease(stdout, &leases[i]);
                }
                fputs(n > 0 ? "\n]\n" : "]\n", stdout);
                gd_leases_free(leases, n);
                return EXIT_OK;
        }

        t = table_new(headers, ELEMENTSOF(headers));
        if (!t) {
                gd_leases_free(leases, n);
                return log_oom(), EXIT_FAIL;
        }
        for (size_t i = 0; i < n; i++) {
                const GdLease *l = &leases[i];
                char owner[GD_NAME_MAX + 32], groups[GD_GROUPS_PER_ACQUIRE_MAX * 11 + 1], since[64];

                if (table_add(t, l->id) < 0 ||
                    table_add(t, isempty(l->label) ? "-" : l->label) < 0 ||
                    table_add(t, format_owner(owner, sizeof owner, l)) < 0 ||
                    table_addf(t, "%" PRIu32, l->uid) < 0 ||
                    table_addf(t, "%" PRIu32, l->pid) < 0 ||
                    table_add(t, strna(gd_lease_state_to_string((int) l->state))) < 0 ||
                    table_add(t, format_groups(groups, sizeof groups, l)) < 0 ||
                    table_add(t, l->since_usec > 0 ? format_timestamp(since, sizeof since, l->since_usec)
                                                   : "-") < 0) {
                        gd_leases_free(leases, n);
                        return log_oom(), EXIT_FAIL;
                }
        }
        gd_leases_free(leases, n);

        (void) table_print(t, stdout, arg.legend);
        if (arg.legend)
                printf("\n%zu lease%s listed.\n", table_rows(t), table_rows(t) == 1 ? "" : "s");
        return EXIT_OK;
}

static void print_event(const GdEvent *e) {
        char ts[64], owner[GD_NAME_MAX + 32], groups[GD_GROUPS_PER_ACQUIRE_MAX * 11 + 1];

        if (arg.json) {
                json_event(stdout, e);
                putchar('\n');
                fflush(stdout);
                return;
        }

        printf("%s %s", format_timestamp(ts, sizeof ts, now_realtime_usec()),
               strna(gd_event_kind_to_string((int) e->kind)));

        if (e->kind == GD_EVENT_GROUP_CHANGED) {
                if (e->lease.n_groups > 0)
                        printf(" group %" PRIu32, e->lease.groups[0]);
        } else {
                fputs(" lease ", stdout);
                fputs_escaped(e->lease.id, stdout);
                if (!isempty(e->lease.label)) {
                        fputs(" label \"", stdout);
                        fputs_escaped(e->lease.label, stdout);
                        putchar('"');
                }
                printf(" groups %s owner %s uid %" PRIu32, format_groups(groups, sizeof groups, &e->lease),
                       format_owner(owner, sizeof owner, &e->lease), e->lease.uid);
        }

        if (e->kind == GD_EVENT_LEASE_RELEASING || e->kind == GD_EVENT_LEASE_ENDED)
                printf(" reason %s", strna(gd_reason_to_string((int) e->reason)));
        if (e->kind == GD_EVENT_LEASE_ENDED && e->errno_value != 0)
                printf(" error \"%s\"", strerror(abs(e->errno_value)));
        if (!isempty(e->detail)) {
                fputs(": ", stdout);
                fputs_escaped(e->detail, stdout);
        }
        putchar('\n');
        fflush(stdout);
}

int verb_monitor(int argc, char **argv) {
        _cleanup_close_ int sfd = -EBADF;
        GdClient *c = NULL;
        int r;

        sfd = signalfd_block((const int[]) { SIGINT, SIGTERM }, 2);
        if (sfd < 0)
                return log_error_errno(sfd, "Failed to set up signal handling: %m"), EXIT_FAIL;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_subscribe(c, 0);
        if (r < 0) {
                r = groupctl_fail(c, r, "subscribe to events");
                gd_client_free(c);
                return r;
        }

        for (;;) {
                GdEvent e = {};

                /* Drain what the library queued before polling its socket. */
                r = gd_client_next_event(c, 0, &e);
                if (r > 0) {
                        print_event(&e);
                        gd_event_done(&e);
                        continue;
                }
                if (r < 0)
                        break;

                struct pollfd p[] = {
                        { .fd = gd_client_get_fd(c), .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };
                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        log_error_errno(r, "Failed to wait for events: %m");
                        gd_client_free(c);
                        return EXIT_FAIL;
                }
                if (p[1].revents & POLLIN) {
                        gd_client_free(c);
                        return EXIT_OK;
                }
        }

        r = groupctl_fail(c, r, "receive events");
        gd_client_free(c);
        return r;
}

int verb_status(int argc, char **argv) {
        GdClient *c = NULL;
        GdStatus s = {};
        char ts[64], span[64];
        uint64_t now = now_realtime_usec();
        int r;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_status(c, &s);
        if (r < 0) {
                r = groupctl_fail(c, r, "query the status");
                gd_client_free(c);
                return r;
        }
        gd_client_free(c);

        if (arg.json) {
                bool first = true;

                putchar('{');
                json_key(stdout, &first, "version");
                json_string(stdout, s.version);
                json_key(stdout, &first, "host");
                json_string(stdout, s.host);
                json_key(stdout, &first, "groups");
                printf("%" PRIu32, s.n_groups);
                json_key(stdout, &first, "leases");
                printf("%" PRIu32, s.n_leases);
                json_key(stdout, &first, "clients");
                printf("%" PRIu32, s.n_clients);
                json_key(stdout, &first, "started_usec");
                printf("%" PRIu64, s.started_usec);
                json_key(stdout, &first, "uptime_usec");
                printf("%" PRIu64, now > s.started_usec ? now - s.started_usec : 0);
                puts("}");
        } else {
                printf("%s%10s:%s ", ansi_bold(), "Version", ansi_normal());
                fputs_escaped(s.version, stdout);
                printf("\n%s%10s:%s ", ansi_bold(), "Host", ansi_normal());
                fputs_escaped(s.host, stdout);
                printf("\n%s%10s:%s %" PRIu32 "\n", ansi_bold(), "Groups", ansi_normal(), s.n_groups);
                printf("%s%10s:%s %" PRIu32 "\n", ansi_bold(), "Leases", ansi_normal(), s.n_leases);
                printf("%s%10s:%s %" PRIu32 "\n", ansi_bold(), "Clients", ansi_normal(), s.n_clients);
                if (s.started_usec > 0)
                        printf("%s%10s:%s %s (up %s)\n", ansi_bold(), "Started", ansi_normal(),
                               format_timestamp(ts, sizeof ts, s.started_usec),
                               format_timespan(span, sizeof span,
                                               now > s.started_usec ? now - s.started_usec : 0));
        }
        gd_status_done(&s);
        return EXIT_OK;
}
