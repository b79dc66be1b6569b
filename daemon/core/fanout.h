/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One step done for n things at once, off the loop: the kernel work of a lease's devices (an unbind of
 * e1000e takes 30–70 ms, a rebind 100–150 ms) waits for the slowest device instead of the sum.
 *
 * fanout_run() calls func(i, userdata) for every i in [0, n), each on a thread of its own (the caller's
 * thread takes i = 0, so n = 1 costs nothing), and returns once every call has returned: a barrier, so
 * that a sequence of steps stays a sequence. Threads start with every signal blocked. A thread that
 * cannot be started is no failure: its call runs on the caller's thread after the others started.
 *
 * func must touch nothing but the (thread-safe) Host and slot i of its own data. */

#include <stddef.h>

typedef void (*FanoutFunc)(size_t i, void *userdata);

void fanout_run(size_t n, FanoutFunc func, void *userdata);
