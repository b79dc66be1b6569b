/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* groupctl list, groupctl show. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "groupctl.h"
#include "log.h"

static int group_compare(const void *a, const void *b) {
        const GdGroup *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* "nouveau,snd_hda_intel": each driver once, in device order; "-" for none. */
static char *group_drivers(const GdGroup *g, char *buf, size_t size) {
        size_t off = 0;

        buf[0] = 0;
        for (size_t i = 0; i < g->n_devices; i++) {
                const char *d = g->devices[i].driver;
                bool seen = false;

                if (isempty(d))
                        continue;
                for (size_t k = 0; k < i && !seen; k++)
                        seen = streq_ptr(g->devices[k].driver, d);
                if (!seen && off < size)
                        off += (size_t) snprintf(buf + off, size - off, "%s%s", off > 0 ? "," : "", d);
        }
        if (off == 0)
                (void) snprintf(buf, size, "-");
        return buf;
}

static char *group_holder(const GdGroup *g, char *buf, size_t size) {
        if (!(g->flags & GD_GROUP_LEASED))
                (void) snprintf(buf, size, "-");
        else if (!isempty(g->holder_label))
                (void) snprintf(buf, size, "%s (uid %" PRIu32 ")", g->holder_label, g->holder_uid);
        else
                (void) snprintf(buf, size, "lease %s (uid %" PRIu32 ")", strna(g->lease_id), g->holder_uid);
        return buf;
}

int verb_list(int argc, char **argv) {
        static const char *const headers[] = { "GROUP", "TYPE", "VIABLE", "DEVICES", "DRIVERS", "HOLDER" };
        _cleanup_(table_freep) Table *t = NULL;
        GdClient *c = NULL;
        GdGroup *groups = NULL;
        size_t n = 0;
        int r;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_list_groups(c, &groups, &n);
        if (r < 0) {
                r = groupctl_fail(c, r, "list the IOMMU groups");
                gd_client_free(c);
                return r;
        }
        gd_client_free(c);

        if (n > 1)
                qsort(groups, n, sizeof *groups, group_compare);

        if (arg.json) {
                fputs("[", stdout);
                for (size_t i = 0; i < n; i++) {
                        fputs(i > 0 ? ",\n" : "\n", stdout);
                        json_group(stdout, &groups[i]);
                }
                fputs(n > 0 ? "\n]\n" : "]\n", stdout);
                gd_groups_free(groups, n);
                return EXIT_OK;
        }

        t = table_new(headers, ELEMENTSOF(headers));
        if (!t) {
                gd_groups_free(groups, n);
                return log_oom(), EXIT_FAIL;
        }
        for (size_t i = 0; i < n; i++) {
                const GdGroup *g = &groups[i];
                char drivers[GD_TEXT_MAX], holder[GD_LABEL_MAX + 64];

                if (table_addf(t, "%" PRIu32, g->id) < 0 ||
                    table_add(t, isempty(g->type) ? "-" : g->type) < 0 ||
                    table_add(t, g->flags & GD_GROUP_VIABLE ? "yes" : "no") < 0 ||
                    table_addf(t, "%u", (unsigned) g->n_devices) < 0 ||
                    table_add(t, group_drivers(g, drivers, sizeof drivers)) < 0 ||
                    table_add(t, group_holder(g, holder, sizeof holder)) < 0) {
                        gd_groups_free(groups, n);
                        return log_oom(), EXIT_FAIL;
                }
        }
        gd_groups_free(groups, n);

        (void) table_print(t, stdout, arg.legend);
        if (arg.legend)
                printf("\n%zu group%s listed.\n", table_rows(t), table_rows(t) == 1 ? "" : "s");
        return EXIT_OK;
}

static void print_field(const char *name) {
        printf("%s%12s:%s ", ansi_bold(), name, ansi_normal());
}

static void show_group(const GdGroup *g) {
        printf("%sGroup %" PRIu32 "%s\n", ansi_bold(), g->id, ansi_normal());

        print_field("Type");
        fputs_escaped(isempty(g->type) ? "unknown" : g->type, stdout);
        putchar('\n');

        print_field("Viable");
        if (g->flags & GD_GROUP_VIABLE)
                puts("yes");
        else {
                fputs("no", stdout);
                if (!isempty(g->viability)) {
                        fputs(": ", stdout);
                        fputs_escaped(g->viability, stdout);
                }
                putchar('\n');
        }

        print_field("Devices");
        if (g->n_devices == 0)
                puts("none");
        for (size_t i = 0; i < g->n_devices; i++) {
                const GdDevice *d = &g->devices[i];

                if (i > 0)
                        printf("%14s", "");
                fputs_escaped(d->address, stdout);
                printf(" %04x:%04x class 0x%06" PRIx32 " ", d->vendor, d->device, d->class_code);
                fputs_escaped(isempty(d->driver) ? "(none)" : d->driver, stdout);
                if (!isempty(d->driver_override)) {
                        fputs(" (driver_override ", stdout);
                        fputs_escaped(d->driver_override, stdout);
                        putchar(')');
                }
                putchar('\n');
        }

        print_field("Regions");
        if (g->n_regions == 0)
                puts("none");
        for (size_t i = 0; i < g->n_regions; i++) {
                if (i > 0)
                        printf("%14s", "");
                printf("0x%016" PRIx64 "-0x%016" PRIx64 " ", g->regions[i].start, g->regions[i].end);
                fputs_escaped(g->regions[i].type, stdout);
                putchar('\n');
        }

        print_field("Holder");
        if (g->flags & GD_GROUP_LEASED) {
                fputs("lease ", stdout);
                fputs_escaped(g->lease_id, stdout);
                if (!isempty(g->holder_label)) {
                        fputs(", label \"", stdout);
                        fputs_escaped(g->holder_label, stdout);
                        putchar('"');
                }
                printf(", uid %" PRIu32 ", pid %" PRIu32 "\n", g->holder_uid, g->holder_pid);
        } else
                puts("none");

        print_field("Policy");
        if (g->flags & GD_GROUP_NEVER) {
                fputs("never handed out", stdout);
                if (!isempty(g->policy_note)) {
                        fputs(": ", stdout);
                        fputs_escaped(g->policy_note, stdout);
                }
                putchar('\n');
        } else if (!isempty(g->policy_note)) {
                fputs_escaped(g->policy_note, stdout);
                putchar('\n');
        } else
                puts("may be handed out (as the policy allows each caller)");
}

int verb_show(int argc, char **argv) {
        GdClient *c = NULL;
        GdGroup *g = NULL;
        int r;

        r = groupctl_connect(&c);
        if (r < 0)
                return -r;
        r = gd_client_show_group(c, argv[0], &g);
        if (r < 0) {
                _cleanup_free_ char *e = text_escape(argv[0]);
                r = groupctl_fail(c, r, "show group %s", e ?: "?");
                gd_client_free(c);
                return r;
        }
        /* The DMA facts too; a daemon that cannot give them does not fail the show. */
        GdDmaInfo *d = NULL;
        if (gd_client_dma_info(c, argv[0], &d) < 0)
                d = NULL;
        gd_client_free(c);

        if (arg.json) {
                json_group_dma(stdout, g, d);
                putchar('\n');
        } else {
                show_group(g);
                if (d)
                        print_dma_info(d);
        }
        gd_dma_info_free(d);
        gd_groups_free(g, 1);
        return EXIT_OK;
}
