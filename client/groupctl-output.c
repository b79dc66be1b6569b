/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* groupctl's output: escaping for terminals, tables, JSON, times. */

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "groupctl.h"

/* ---------------------------------------------------------------- terminal */

bool colors_enabled(void) {
        static int cached = -1;

        if (cached < 0) {
                const char *term = getenv("TERM");
                cached = isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && !streq_ptr(term, "dumb");
        }
        return cached;
}

const char *ansi_bold(void) {
        return colors_enabled() ? "\x1b[1m" : "";
}

const char *ansi_normal(void) {
        return colors_enabled() ? "\x1b[0m" : "";
}

/* Decodes the UTF-8 sequence at s: returns its length (1..4) and the code point, or 0 if s does not
 * start a valid one (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_decode(const unsigned char *s, uint32_t *ret_cp) {
        unsigned c = s[0];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
                *ret_cp = c;
                return 1;
        }
        if (c >= 0xc2 && c <= 0xdf)
                n = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                n = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                n = 4, cp = c & 0x07;
        else
                return 0;

        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

/* C0 and C1 control characters, and DEL: what a terminal may act on. */
static bool is_control(uint32_t cp) {
        return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
}

char *text_escape(const char *s) {
        const unsigned char *p = (const unsigned char *) strempty(s);
        size_t l = strlen((const char *) p);
        char *r, *o;

        r = o = malloc(l * 4 + 1);
        if (!r)
                return NULL;

        while (*p) {
                uint32_t cp = 0;
                size_t n = utf8_decode(p, &cp);

                if (n == 0 || is_control(cp) || cp == '\\') {
                        /* Byte by byte: the first now, the rest (if any) on the next rounds. */
                        if (*p == '\\') {
                                *o++ = '\\';
                                *o++ = '\\';
                        } else
                                o += sprintf(o, "\\x%02x", *p);
                        p++;
                        continue;
                }
                memcpy(o, p, n);
                o += n;
                p += n;
        }
        *o = 0;
        return r;
}

void fputs_escaped(const char *s, FILE *f) {
        _cleanup_free_ char *e = text_escape(s);
        fputs(e ?: "?", f);
}

size_t utf8_width(const char *s) {
        size_t w = 0;

        /* Counts characters: every lead byte, no continuation byte. Good enough for labels and names. */
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        w++;
        return w;
}

/* ---------------------------------------------------------------- tables */

struct Table {
        size_t n_columns;
        char **cells;           /* row-major, the header row first */
        size_t n_cells, allocated;
};

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

Table *table_new(const char *const *headers, size_t n_columns) {
        Table *t = calloc(1, sizeof *t);

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        for (size_t i = 0; i < n_columns; i++)
                if (table_add(t, headers[i]) < 0)
                        return table_free(t);
        return t;
}

int table_add(Table *t, const char *cell) {
        char *e;

        if (t->n_cells >= t->allocated) {
                size_t n = MAX(t->allocated * 2, 64u);
                char **p = realloc(t->cells, n * sizeof *p);
                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->allocated = n;
        }

        e = text_escape(cell);
        if (!e)
                return -ENOMEM;
        t->cells[t->n_cells++] = e;
        return 0;
}

int table_addf(Table *t, const char *fmt, ...) {
        char buf[GD_TEXT_MAX + 64];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return table_add(t, buf);
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns - 1;
}

int table_print(const Table *t, FILE *f, bool header) {
        _cleanup_free_ size_t *width = NULL;
        size_t n_rows = t->n_cells / t->n_columns;

        width = calloc(t->n_columns, sizeof *width);
        if (!width)
                return -ENOMEM;

        for (size_t r = header ? 0 : 1; r < n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++)
                        width[c] = MAX(width[c], utf8_width(t->cells[r * t->n_columns + c]));

        for (size_t r = header ? 0 : 1; r < n_rows; r++) {
                if (r == 0)
                        fputs(ansi_bold(), f);
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *cell = t->cells[r * t->n_columns + c];
                        bool last = c + 1 == t->n_columns;

                        fputs(cell, f);
                        if (!last)
                                for (size_t k = utf8_width(cell); k < width[c] + 1; k++)
                                        fputc(' ', f);
                }
                if (r == 0)
                        fputs(ansi_normal(), f);
                fputc('\n', f);
        }
        return 0;
}

/* ---------------------------------------------------------------- JSON */

void json_string(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) strempty(s);

        fputc('"', f);
        while (*p) {
                uint32_t cp = 0;
                size_t n = utf8_decode(p, &cp);

                if (n == 0) {
                        fputs("\\ufffd", f); /* invalid UTF-8: one replacement per byte */
                        p++;
                        continue;
                }
                if (cp == '"' || cp == '\\')
                        fprintf(f, "\\%c", (char) cp);
                else if (cp == '\n')
                        fputs("\\n", f);
                else if (cp == '\t')
                        fputs("\\t", f);
                else if (is_control(cp))
                        fprintf(f, "\\u%04" PRIx32, cp);
                else
                        fwrite(p, 1, n, f);
                p += n;
        }
        fputc('"', f);
}

void json_string_or_null(FILE *f, const char *s) {
        if (isempty(s))
                fputs("null", f);
        else
                json_string(f, s);
}

void json_key(FILE *f, bool *first, const char *key) {
        if (!*first)
                fputc(',', f);
        *first = false;
        json_string(f, key);
        fputc(':', f);
}

static void json_u32_array(FILE *f, const uint32_t *v, size_t n) {
        fputc('[', f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%" PRIu32, i > 0 ? "," : "", v[i]);
        fputc(']', f);
}

void json_lease(FILE *f, const GdLease *l) {
        char ts[64];
        bool first = true;

        fputc('{', f);
        json_key(f, &first, "id");
        json_string(f, l->id);
        json_key(f, &first, "label");
        json_string_or_null(f, l->label);
        json_key(f, &first, "uid");
        fprintf(f, "%" PRIu32, l->uid);
        json_key(f, &first, "pid");
        fprintf(f, "%" PRIu32, l->pid);
        json_key(f, &first, "owner");
        json_string_or_null(f, gd_owner_kind_to_string((int) l->owner_kind));
        json_key(f, &first, "owner_pid");
        if (l->owner_pid > 0)
                fprintf(f, "%" PRIu32, l->owner_pid);
        else
                fputs("null", f);
        json_key(f, &first, "state");
        json_string_or_null(f, gd_lease_state_to_string((int) l->state));
        json_key(f, &first, "since_usec");
        fprintf(f, "%" PRIu64, l->since_usec);
        json_key(f, &first, "since");
        json_string_or_null(f, l->since_usec > 0 ? format_timestamp(ts, sizeof ts, l->since_usec) : NULL);
        json_key(f, &first, "groups");
        json_u32_array(f, l->groups, l->n_groups);
        fputc('}', f);
}

void json_group(FILE *f, const GdGroup *g) {
        json_group_dma(f, g, NULL);
}

void json_group_dma(FILE *f, const GdGroup *g, const GdDmaInfo *dma) {
        char hex[32];
        bool first = true;

        fputc('{', f);
        json_key(f, &first, "group");
        fprintf(f, "%" PRIu32, g->id);
        json_key(f, &first, "type");
        json_string_or_null(f, g->type);
        json_key(f, &first, "viable");
        fputs(g->flags & GD_GROUP_VIABLE ? "true" : "false", f);
        json_key(f, &first, "viability");
        json_string_or_null(f, g->viability);
        json_key(f, &first, "leased");
        fputs(g->flags & GD_GROUP_LEASED ? "true" : "false", f);
        json_key(f, &first, "never");
        fputs(g->flags & GD_GROUP_NEVER ? "true" : "false", f);
        json_key(f, &first, "flags");
        fprintf(f, "%" PRIu32, g->flags);

        json_key(f, &first, "devices");
        fputc('[', f);
        for (size_t i = 0; i < g->n_devices; i++) {
                const GdDevice *d = &g->devices[i];
                bool df = true;

                if (i > 0)
                        fputc(',', f);
                fputc('{', f);
                json_key(f, &df, "address");
                json_string(f, d->address);
                json_key(f, &df, "vendor");
                snprintf(hex, sizeof hex, "0x%04x", d->vendor);
                json_string(f, hex);
                json_key(f, &df, "device");
                snprintf(hex, sizeof hex, "0x%04x", d->device);
                json_string(f, hex);
                json_key(f, &df, "class");
                snprintf(hex, sizeof hex, "0x%06" PRIx32, d->class_code);
                json_string(f, hex);
                json_key(f, &df, "driver");
                json_string_or_null(f, d->driver);
                json_key(f, &df, "driver_override");
                json_string_or_null(f, d->driver_override);
                fputc('}', f);
        }
        fputc(']', f);

        json_key(f, &first, "reserved_regions");
        fputc('[', f);
        for (size_t i = 0; i < g->n_regions; i++) {
                const GdRegion *r = &g->regions[i];
                bool rf = true;

                if (i > 0)
                        fputc(',', f);
                fputc('{', f);
                json_key(f, &rf, "start");
                snprintf(hex, sizeof hex, "0x%016" PRIx64, r->start);
                json_string(f, hex);
                json_key(f, &rf, "end");
                snprintf(hex, sizeof hex, "0x%016" PRIx64, r->end);
                json_string(f, hex);
                json_key(f, &rf, "type");
                json_string(f, r->type);
                fputc('}', f);
        }
        fputc(']', f);

        json_key(f, &first, "holder");
        if (g->flags & GD_GROUP_LEASED) {
                bool hf = true;

                fputc('{', f);
                json_key(f, &hf, "lease");
                json_string(f, g->lease_id);
                json_key(f, &hf, "label");
                json_string_or_null(f, g->holder_label);
                json_key(f, &hf, "uid");
                fprintf(f, "%" PRIu32, g->holder_uid);
                json_key(f, &hf, "pid");
                fprintf(f, "%" PRIu32, g->holder_pid);
                fputc('}', f);
        } else
                fputs("null", f);

        json_key(f, &first, "policy_note");
        json_string_or_null(f, g->policy_note);
        if (dma) {
                json_key(f, &first, "dma");
                json_dma_info(f, dma);
        }
        fputc('}', f);
}

void json_event(FILE *f, const GdEvent *e) {
        char ts[64];
        bool first = true;

        fputc('{', f);
        json_key(f, &first, "time");
        json_string(f, format_timestamp(ts, sizeof ts, now_realtime_usec()));
        json_key(f, &first, "event");
        json_string_or_null(f, gd_event_kind_to_string((int) e->kind));
        if (e->kind == GD_EVENT_GROUP_CHANGED) {
                json_key(f, &first, "group");
                if (e->lease.n_groups > 0)
                        fprintf(f, "%" PRIu32, e->lease.groups[0]);
                else
                        fputs("null", f);
        } else {
                json_key(f, &first, "lease");
                json_lease(f, &e->lease);
        }
        if (e->kind == GD_EVENT_LEASE_RELEASING || e->kind == GD_EVENT_LEASE_ENDED) {
                json_key(f, &first, "reason");
                json_string_or_null(f, gd_reason_to_string((int) e->reason));
        }
        if (e->kind == GD_EVENT_LEASE_ENDED) {
                json_key(f, &first, "errno");
                fprintf(f, "%" PRIi32, e->errno_value);
                json_key(f, &first, "error");
                json_string_or_null(f, e->errno_value != 0 ? strerror(abs(e->errno_value)) : NULL);
        }
        json_key(f, &first, "detail");
        json_string_or_null(f, e->detail);
        fputc('}', f);
}

/* ---------------------------------------------------------------- times and small formats */

uint64_t now_realtime_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

char *format_timestamp(char *buf, size_t size, uint64_t usec) {
        time_t t = (time_t) (usec / 1000000u);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                (void) snprintf(buf, size, "@%" PRIu64, usec / 1000000u);
        return buf;
}

char *format_timespan(char *buf, size_t size, uint64_t usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d", 86400u * 1000000u },
                { "h", 3600u * 1000000u },
                { "min", 60u * 1000000u },
                { "s", 1000000u },
        };
        size_t off = 0, shown = 0;

        if (usec < 1000000u) {
                (void) snprintf(buf, size, "%" PRIu64 "ms", usec / 1000u);
                return buf;
        }

        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(units) && shown < 2; i++) {
                uint64_t k = usec / units[i].usec;

                if (k == 0 && shown == 0)
                        continue;
                usec -= k * units[i].usec;
                if (k > 0 && off < size)
                        off += (size_t) snprintf(buf + off, size - off, "%s%" PRIu64 "%s", off > 0 ? " " : "", k,
                                                 units[i].suffix);
                shown++;
        }
        return buf;
}

char *format_owner(char *buf, size_t size, const GdLease *l) {
        const char *kind = gd_owner_kind_to_string((int) l->owner_kind);

        if (l->owner_pid > 0)
                (void) snprintf(buf, size, "%s %" PRIu32, kind ?: "?", l->owner_pid);
        else
                (void) snprintf(buf, size, "%s", kind ?: "?");
        return buf;
}

char *format_groups(char *buf, size_t size, const GdLease *l) {
        size_t off = 0;

        buf[0] = 0;
        for (size_t i = 0; i < l->n_groups && off < size; i++)
                off += (size_t) snprintf(buf + off, size - off, "%s%" PRIu32, i > 0 ? "," : "", l->groups[i]);
        return buf;
}

/* ---------------------------------------------------------------- signals */

int signalfd_block(const int *sigs, size_t n) {
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        for (size_t i = 0; i < n; i++)
                sigaddset(&mask, sigs[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        fd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fd;
}
