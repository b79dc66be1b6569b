/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Runs slow host operations off the event loop. Each job runs on a thread of its own (an unbind the
 * kernel holds up blocks only its job, never the loop or another lease's job) and reports back on the
 * loop: the done callback runs from an sd-event io source on an eventfd. Threads stay idle for a while
 * after a job and take the next one; a job is never queued behind another.
 *
 * A job's function must touch nothing but its own data and the (thread-safe) Host: the loop owns
 * everything else. Threads start with every signal blocked. The daemon never holds a device fd, so no
 * job thread can hold a copy of a device it unbinds. */

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Worker Worker;

typedef int (*WorkerFunc)(void *userdata);                  /* off the loop */
typedef void (*WorkerDone)(int result, void *userdata);     /* on the loop, with WorkerFunc's result */

int worker_new(sd_event *e, Worker **ret);
/* Jobs still running are abandoned: their done callbacks never run (their data leaks deliberately, the
 * thread may still use it). */
Worker *worker_free(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);

int worker_submit(Worker *w, WorkerFunc func, WorkerDone done, void *userdata);
unsigned worker_running(Worker *w);
