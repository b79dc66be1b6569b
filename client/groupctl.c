/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* groupctl: the command-line client of groupd. This file: the command line, errors and exit codes, and
 * the dispatch to the verbs (groupctl-groups.c, groupctl-acquire.c, groupctl-leases.c). */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupctl.h"
#include "memlock.h"
#include "log.h"

Args arg = {
        .legend = true,
};

static void help(void) {
        printf("%1$s [OPTIONS...] COMMAND ...\n"
               "\n"
               "Query and control groupd, the broker of VFIO IOMMU groups.\n"
               "\n"
               "Commands:\n"
               "  list                         List the IOMMU groups, their drivers and holders\n"
               "  show GROUP|PCI-ADDRESS       Show everything about one group\n"
               "  acquire GROUP|PCI-ADDRESS... Acquire groups and hold them until interrupted\n"
               "       [--exec -- CMD ARGS...]   ... or hand them to CMD, which owns the lease\n"
               "  release TOKEN                Release the lease with this token\n"
               "  revoke LEASE-ID [--deadline=SEC] [--force]\n"
               "                               End someone's lease (root, or as a revoke rule allows):\n"
               "                               the holder has SEC seconds to let go; with --force, its\n"
               "                               owner process is then sent SIGTERM, then SIGKILL\n"
               "  leases                       List the leases\n"
               "  monitor                      Print groupd's events as they happen\n"
               "  status                       Show the daemon's state\n"
               "  dma GROUP|PCI-ADDRESS        Show a group's DMA window: IOVA ranges, page sizes,\n"
               "                               mappings available, reserved regions\n"
               "  memlock GROUP... --guest-ram=SIZE [--viommu]\n"
               "                               How much a VMM must be allowed to lock (RLIMIT_MEMLOCK)\n"
               "\n"
               "Options:\n"
               "  -h --help                    Show this help\n"
               "     --version                 Show the version\n"
               "     --socket=PATH             Talk to groupd at PATH (default: $GROUPD_SOCKET,\n"
               "                               else " GD_SOCKET_PATH ")\n"
               "     --json                    Print JSON (list, show, leases, status: one document;\n"
               "                               monitor: one object per line)\n"
               "     --no-legend               Print no column headers and no footer\n"
               "     --no-pager                Accepted for habit's sake; groupctl never pages\n"
               "  -l --label=LABEL             acquire: label the lease (the VM's name or UUID)\n"
               "     --configure-iommu         acquire: set the container's IOMMU type (and learn the\n"
               "                               container's DMA facts)\n"
               "     --guest-ram=SIZE          memlock: the guest's RAM (8G, 512M, bytes); acquire: also\n"
               "                               have groupd raise the owner's RLIMIT_MEMLOCK for it\n"
               "     --viommu                  memlock, acquire --guest-ram: the guest has a vIOMMU\n"
               "     --delivery=MODE           acquire: how the devices are handed over: iommufd (an\n"
               "                               iommufd and a cdev fd per device), legacy (the container\n"
               "                               and group fds), node-grant (no fds: a uid may open\n"
               "                               /dev/vfio/N itself), auto (the default: iommufd where the\n"
               "                               kernel has it, else legacy); without it,\n"
               "                               $GROUPCTL_DELIVERY if set, else auto\n"
               "     --grant-uid=UID           acquire --delivery=node-grant: the uid to grant (root may\n"
               "                               name any; others only themselves; default: the caller)\n"
               "     --exec -- CMD ARGS...     acquire: run CMD as the lease's owner; everything after\n"
               "                               --exec (and an optional \"--\") is the command\n"
               "\n"
               "With --exec, the lease ends when CMD exits. CMD receives the fds and this environment:\n"
               "  GROUPD_LEASE_ID              the lease's public id\n"
               "  GROUPD_LEASE_TOKEN           the lease's token (whoever has it may release it)\n"
               "  GROUPD_DELIVERY              legacy, iommufd or node-grant\n"
               "  GROUPD_GROUPS                the group numbers, space-separated, e.g. \"1 7\"\n"
               "legacy:\n"
               "  GROUPD_CONTAINER_FD=3        the VFIO container\n"
               "  GROUPD_GROUP_FDS             GROUP=FD pairs, comma-separated, e.g. \"1=4,7=5\"\n"
               "iommufd:\n"
               "  GROUPD_IOMMUFD=3             /dev/iommu, RLIMIT_MODE per-process\n"
               "  GROUPD_DEVICE_FDS            ADDRESS=FD pairs of the unbound cdevs, e.g.\n"
               "                               \"0000:00:03.0=4,0000:00:04.0=5\"\n"
               "node-grant:\n"
               "  GROUPD_NODES                 the nodes granted, e.g. \"/dev/vfio/3\"\n"
               "  GROUPD_GRANT_UID             the uid they are granted to\n"
               "In CMD's arguments {iommufd}, {device:ADDRESS}, {container} and {group:N} become\n"
               "those fd numbers, e.g. -object iommufd,id=i0,fd={iommufd}\n"
               "-device vfio-pci,iommufd=i0,fd={device:0000:00:03.0}\n"
               "groupctl waits for CMD, reports how the lease ended, and exits with CMD's status\n"
               "(127 if CMD could not be executed, 128+N if it was killed by signal N).\n"
               "\n"
               "Exit status:\n"
               "  0 success, 1 other failure, 2 usage error, 3 not found, 4 busy, 5 denied,\n"
               "  6 not viable, 7 groupd not reachable.\n"
               "\n"
               "See groupctl(1) for details.\n",
               program_invocation_short_name);
}

/* ---------------------------------------------------------------- errors */

int groupctl_exit_code(GdClient *c, int r) {
        if (r >= 0)
                return EXIT_OK;
        if (r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN)
                return EXIT_UNREACHABLE;

        switch (gd_client_error_code(c)) {
        case GD_ERR_NOT_FOUND:
        case GD_ERR_BAD_TOKEN:
                return EXIT_NOT_FOUND;
        case GD_ERR_BUSY:
                return EXIT_BUSY;
        case GD_ERR_DENIED:
                return EXIT_DENIED;
        case GD_ERR_NOT_VIABLE:
                return EXIT_NOT_VIABLE;
        case GD_ERR_SHUTTING_DOWN:
                return EXIT_UNREACHABLE;
        default:
                return EXIT_FAIL;
        }
}

int groupctl_fail(GdClient *c, int r, const char *what_fmt, ...) {
        char what[512];
        const char *code = gd_error_to_string(gd_client_error_code(c));
        const char *msg = gd_client_error_message(c);
        va_list ap;

        va_start(ap, what_fmt);
        (void) vsnprintf(what, sizeof what, what_fmt, ap);
        va_end(ap);

        if (isempty(msg))
                msg = strerror(-r);
        _cleanup_free_ char *e = text_escape(msg);

        if (gd_client_error_code(c) > 0 && code)
                log_error("Failed to %s: %s: %s", what, code, e ?: msg);
        else
                log_error("Failed to %s: %s", what, e ?: msg);
        return groupctl_exit_code(c, r);
}

int groupctl_connect(GdClient **ret) {
        const char *path = arg.socket ?: getenv("GROUPD_SOCKET");
        int r;

        if (isempty(path))
                path = GD_SOCKET_PATH;

        r = gd_client_connect(path, ret);
        if (r < 0) {
                if (r == -ENOENT || r == -ECONNREFUSED)
                        log_error_errno(r, "Failed to connect to groupd at %s: %m (is groupd running?)", path);
                else
                        log_error_errno(r, "Failed to connect to groupd at %s: %m", path);
                return -EXIT_UNREACHABLE;
        }
        return 0;
}

/* ---------------------------------------------------------------- the command line */

static int parse_argv(int *argc, char **argv) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SOCKET,
                ARG_JSON,
                ARG_NO_LEGEND,
                ARG_NO_PAGER,
                ARG_CONFIGURE_IOMMU,
                ARG_GUEST_RAM,
                ARG_VIOMMU,
                ARG_DEADLINE,
                ARG_FORCE,
                ARG_DELIVERY,
                ARG_GRANT_UID,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "label", required_argument, NULL, 'l' },
                { "configure-iommu", no_argument, NULL, ARG_CONFIGURE_IOMMU },
                { "guest-ram", required_argument, NULL, ARG_GUEST_RAM },
                { "viommu", no_argument, NULL, ARG_VIOMMU },
                { "deadline", required_argument, NULL, ARG_DEADLINE },
                { "force", no_argument, NULL, ARG_FORCE },
                { "delivery", required_argument, NULL, ARG_DELIVERY },
                { "grant-uid", required_argument, NULL, ARG_GRANT_UID },
                {}
        };
        int c;

        /* Everything after --exec (and the "--" that may follow it) is the command: cut it off before
         * getopt sees it, so that its options stay its own. */
        for (int i = 1; i < *argc; i++) {
                if (streq(argv[i], "--"))
                        break;
                if (!streq(argv[i], "--exec"))
                        continue;
                int k = i + 1;
                if (k < *argc && streq(argv[k], "--"))
                        k++;
                if (k >= *argc) {
                        log_error("--exec needs a command.");
                        return -EINVAL;
                }
                arg.exec_argv = argv + k; /* argv[argc] is NULL */
                argv[i] = NULL;
                *argc = i;
                break;
        }

        opterr = 0;
        while ((c = getopt_long(*argc, argv, ":hl:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("groupctl %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_SOCKET:
                        if (isempty(optarg)) {
                                log_error("--socket= needs a path.");
                                return -EINVAL;
                        }
                        arg.socket = optarg;
                        break;
                case ARG_JSON:
                        arg.json = true;
                        break;
                case ARG_NO_LEGEND:
                        arg.legend = false;
                        break;
                case ARG_NO_PAGER:
                        break;
                case 'l':
                        arg.label = optarg;
                        break;
                case ARG_CONFIGURE_IOMMU:
                        arg.configure_iommu = true;
                        break;
                case ARG_GUEST_RAM: {
                        int k = memlock_parse_size(optarg, &arg.guest_ram);
                        if (k < 0 || arg.guest_ram == 0) {
                                log_error("--guest-ram=\"%s\": want a size like 8G, 512M or 4096 (bytes)%s.", optarg,
                                          k == -ERANGE ? "; that one is too large" : "");
                                return -EINVAL;
                        }
                        break;
                }
                case ARG_DELIVERY:
                        if (gd_delivery_from_string(optarg) < 0) {
                                _cleanup_free_ char *e = text_escape(optarg);
                                log_error("--delivery=\"%s\": unknown delivery mode (iommufd, legacy, node-grant or "
                                          "auto).", e ?: "?");
                                return -EINVAL;
                        }
                        arg.delivery = optarg;
                        break;
                case ARG_GRANT_UID: {
                        char *end = NULL;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || !end || *end != 0 || isempty(optarg) || v >= UINT32_MAX || optarg[0] == '-') {
                                _cleanup_free_ char *e = text_escape(optarg);
                                log_error("--grant-uid=\"%s\": not a uid (a number).", e ?: "?");
                                return -EINVAL;
                        }
                        arg.grant_uid_set = true;
                        arg.grant_uid = (uint32_t) v;
                        break;
                }
                case ARG_VIOMMU:
                        arg.viommu = true;
                        break;
                case ARG_DEADLINE: {
                        char *end;
                        unsigned long v;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || *end != 0 || end == optarg || optarg[0] == '-' || v > 86400) {
                                log_error("--deadline=\"%s\": want whole seconds, 0 to 86400.", optarg);
                                return -EINVAL;
                        }
                        arg.deadline_sec = (uint32_t) v;
                        arg.deadline_set = true;
                        break;
                }
                case ARG_FORCE:
                        arg.force = true;
                        break;
                case ':':
                        log_error("Option %s needs an argument.", argv[optind - 1]);
                        return -EINVAL;
                case '?':
                default:
                        if (optopt > 0 && optopt < 0x100)
                                log_error("Unknown option -%c.", optopt);
                        else
                                log_error("Unknown option %s.", argv[optind - 1]);
                        return -EINVAL;
                }

        return 1;
}

typedef struct Verb {
        const char *name;
        int min_args, max_args; /* positional arguments after the verb; -1: any number */
        int (*func)(int argc, char **argv);
        bool takes_exec;
        bool takes_label;
        bool takes_revoke;
} Verb;

static const Verb verbs[] = {
        { "list", 0, 0, verb_list },
        { "show", 1, 1, verb_show },
        { "acquire", 1, (int) GD_GROUPS_PER_ACQUIRE_MAX, verb_acquire, true, true },
        { "release", 1, 1, verb_release },
        { "revoke", 1, 1, verb_revoke, .takes_revoke = true },
        { "leases", 0, 0, verb_leases },
        { "monitor", 0, 0, verb_monitor },
        { "status", 0, 0, verb_status },
        { "dma", 1, 1, verb_dma },
        { "memlock", 1, (int) GD_GROUPS_PER_ACQUIRE_MAX, verb_memlock },
};

int main(int argc, char **argv) {
        const Verb *v = NULL;
        int r, n;

        log_set_show_priority(false);
        log_set_prefix("groupctl");

        r = parse_argv(&argc, argv);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return EXIT_OK;

        if (optind >= argc) {
                log_error("A command is needed; see --help.");
                return EXIT_USAGE;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind]))
                        v = &verbs[i];
        if (!v) {
                _cleanup_free_ char *e = text_escape(argv[optind]);
                log_error("Unknown command \"%s\"; see --help.", e ?: "?");
                return EXIT_USAGE;
        }

        n = argc - optind - 1;
        if (n < v->min_args || (v->max_args >= 0 && n > v->max_args)) {
                if (v->max_args == 0)
                        log_error("\"%s\" takes no arguments.", v->name);
                else if (v->min_args == v->max_args)
                        log_error("\"%s\" takes %i argument%s.", v->name, v->min_args,
                                  v->min_args == 1 ? "" : "s");
                else
                        log_error("\"%s\" takes %i to %i arguments.", v->name, v->min_args, v->max_args);
                return EXIT_USAGE;
        }
        if (arg.exec_argv && !v->takes_exec) {
                log_error("--exec goes with \"acquire\" only.");
                return EXIT_USAGE;
        }
        if ((arg.label || arg.configure_iommu || arg.delivery || arg.grant_uid_set) && !v->takes_label) {
                log_error("--label, --configure-iommu, --delivery and --grant-uid go with \"acquire\" only.");
                return EXIT_USAGE;
        }
        /* An acquire that names no mode takes $GROUPCTL_DELIVERY's (a site's or a test rig's default). */
        if (v->takes_label && !arg.delivery && !isempty(getenv("GROUPCTL_DELIVERY"))) {
                arg.delivery = getenv("GROUPCTL_DELIVERY");
                if (gd_delivery_from_string(arg.delivery) < 0) {
                        log_error("$GROUPCTL_DELIVERY=\"%s\": unknown delivery mode (iommufd, legacy, node-grant or "
                                  "auto).", arg.delivery);
                        return EXIT_USAGE;
                }
        }
        if (arg.grant_uid_set && !streq_ptr(arg.delivery, "node-grant")) {
                log_error("--grant-uid goes with --delivery=node-grant only.");
                return EXIT_USAGE;
        }

        if ((arg.deadline_set || arg.force) && !v->takes_revoke) {
                log_error("--deadline and --force go with \"revoke\" only.");
                return EXIT_USAGE;
        }

        r = v->func(n, argv + optind + 1);
        fflush(stdout);
        if (ferror(stdout) && r == EXIT_OK) {
                log_error("Failed to write to standard output.");
                return EXIT_FAIL;
        }
        return r;
}
