/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* groupctl: shared pieces of the command-line tool (options, errors and exit codes, output helpers).
 * groupctl.c parses the command line and dispatches; groupctl-*.c implement the verbs. */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "groupd-client.h"
#include "macro.h"

/* Exit codes, documented in --help and groupctl(1). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,          /* any other failure */
        EXIT_USAGE = 2,         /* bad command line */
        EXIT_NOT_FOUND = 3,     /* no such group, device or lease */
        EXIT_BUSY = 4,          /* the group is leased (or being acquired or released) */
        EXIT_DENIED = 5,        /* the policy refuses it */
        EXIT_NOT_VIABLE = 6,    /* the group cannot be made viable */
        EXIT_UNREACHABLE = 7,   /* groupd is not running, or went away */
};

/* The command line, parsed once by groupctl.c. */
typedef struct Args {
        const char *socket;             /* --socket, NULL: libgroupd's default */
        bool json;
        bool legend;                    /* false with --no-legend */
        const char *label;              /* acquire --label */
        bool configure_iommu;           /* acquire --configure-iommu */
        uint32_t deadline_sec;          /* revoke --deadline */
        bool deadline_set;
        bool force;                     /* revoke --force */
        char **exec_argv;               /* acquire --exec -- CMD ARGS..., NULL-terminated; NULL if none */
        uint64_t guest_ram;             /* memlock, acquire --guest-ram: bytes; 0 none */
        bool viommu;                    /* memlock, acquire --viommu */
        const char *delivery;           /* acquire --delivery: NULL is auto */
        bool grant_uid_set;             /* acquire --grant-uid */
        uint32_t grant_uid;
} Args;

extern Args arg;

/* Connects to groupd; on failure logs it and returns a negative exit code (-EXIT_UNREACHABLE). */
int groupctl_connect(GdClient **ret);

/* Logs "Failed to WHAT: CODE: MESSAGE" for a failed call on c (r its return value) and returns the exit
 * code that goes with it. */
int groupctl_fail(GdClient *c, int r, const char *what_fmt, ...) _printf_(3, 4);
int groupctl_exit_code(GdClient *c, int r);

/* Verbs: each returns the process's exit code. */
int verb_list(int argc, char **argv);
int verb_show(int argc, char **argv);
int verb_acquire(int argc, char **argv);
int verb_release(int argc, char **argv);
int verb_revoke(int argc, char **argv);
int verb_leases(int argc, char **argv);
int verb_monitor(int argc, char **argv);
int verb_status(int argc, char **argv);
int verb_dma(int argc, char **argv);
int verb_memlock(int argc, char **argv);

/* groupctl-dma.c */
void print_dma_info(const GdDmaInfo *d);
void json_dma_info(FILE *f, const GdDmaInfo *d);

/* ---------------------------------------------------------------- output (groupctl-output.c) */

bool colors_enabled(void);
const char *ansi_bold(void);    /* "" when stdout is no terminal */
const char *ansi_normal(void);

/* s made safe for a terminal: control characters and invalid UTF-8 as \xNN. NULL on OOM. */
char *text_escape(const char *s);
/* Prints s escaped as text_escape() does. */
void fputs_escaped(const char *s, FILE *f);

/* Display width of an (escaped, hence printable) UTF-8 string. */
size_t utf8_width(const char *s);

/* A table in systemd's manner: a header row (bold on a terminal), aligned columns, the last column not
 * padded. Cells are copied and escaped. */
typedef struct Table Table;
Table *table_new(const char *const *headers, size_t n_columns);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);
int table_add(Table *t, const char *cell);
int table_addf(Table *t, const char *fmt, ...) _printf_(2, 3);
size_t table_rows(const Table *t);
int table_print(const Table *t, FILE *f, bool header);

/* JSON output: strings escaped (invalid UTF-8 replaced by U+FFFD). */
void json_string(FILE *f, const char *s);
void json_string_or_null(FILE *f, const char *s); /* null for NULL or "" */
void json_key(FILE *f, bool *first, const char *key);  /* ,"key": */
void json_lease(FILE *f, const GdLease *l);
void json_group(FILE *f, const GdGroup *g);
/* The same, with a "dma" key holding json_dma_info() when dma is given. */
void json_group_dma(FILE *f, const GdGroup *g, const GdDmaInfo *dma);
void json_event(FILE *f, const GdEvent *e);

/* "2024-11-24 10:00:00" in local time, from CLOCK_REALTIME µs. */
char *format_timestamp(char *buf, size_t size, uint64_t usec);
/* "3min 5s", "2h 10min", "4d 3h". */
char *format_timespan(char *buf, size_t size, uint64_t usec);
uint64_t now_realtime_usec(void);

/* "process 1234", "connection", "lease-fd". */
char *format_owner(char *buf, size_t size, const GdLease *l);
/* "1,7" */
char *format_groups(char *buf, size_t size, const GdLease *l);

/* Blocks the signals and returns a signalfd (close-on-exec) for them, or negative errno. */
int signalfd_block(const int *sigs, size_t n);
