/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The peer: seatd's open_device + close_device through libseat, the closest existing broker of device
 * fds. bench-seatd PATH N prints "seatd_cycle_median,us,X" etc. Run against a seatd started with
 * SEATD_VTBOUND=0 (no VT) and LIBSEAT_BACKEND=seatd, SEATD_SOCK pointing at it. */

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#include <libseat.h>

static bool enabled;

static void enable_seat(struct libseat *seat, void *userdata) {
        (void) seat;
        (void) userdata;
        enabled = true;
}

static void disable_seat(struct libseat *seat, void *userdata) {
        (void) userdata;
        enabled = false;
        libseat_disable_seat(seat);
}

int main(int argc, char **argv) {
        static const struct libseat_seat_listener listener = { enable_seat, disable_seat };
        struct libseat *seat;
        size_t n;
        uint64_t *s;

        if (argc != 3) {
                fprintf(stderr, "usage: bench-seatd DEVICE-PATH N\n");
                return 2;
        }
        n = strtoul(argv[2], NULL, 10);
        s = calloc(n ? n : 1, sizeof *s);
        libseat_set_log_level(LIBSEAT_LOG_LEVEL_ERROR);
        seat = libseat_open_seat(&listener, NULL);
        if (!seat) {
                fprintf(stderr, "bench-seatd: cannot open the seat: %s\n", strerror(errno));
                return 1;
        }
        for (int i = 0; i < 100 && !enabled; i++)
                if (libseat_dispatch(seat, 100) < 0)
                        break;
        if (!enabled) {
                fprintf(stderr, "bench-seatd: the seat was never enabled\n");
                return 1;
        }

        for (size_t i = 0; i < n / 10 + 1 + n; i++) {
                int fd = -1, id;
                uint64_t t0 = bench_now_ns();
                id = libseat_open_device(seat, argv[1], &fd);
                if (id < 0) {
                        fprintf(stderr, "bench-seatd: open_device %s: %s\n", argv[1], strerror(errno));
                        return 1;
                }
                close(fd);
                if (libseat_close_device(seat, id) < 0) {
                        fprintf(stderr, "bench-seatd: close_device: %s\n", strerror(errno));
                        return 1;
                }
                if (i >= n / 10 + 1)
                        s[i - (n / 10 + 1)] = bench_now_ns() - t0;
        }
        bench_report("seatd_cycle", s, n);
        libseat_close_seat(seat);
        free(s);
        return 0;
}
