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
typedef void (*WorkerDestroy)(void *userdata);              /* a job whose done never ran */

int worker_new(sd_event *e, Worker **ret);
/* Jobs still running are abandoned: their done callbacks never run. A job's destroy (if it has one) frees
 * its data once no thread can use it any more: when its thread has finished it, or at once for a job no
 * thread took. A job the kernel holds up for good keeps its data (its thread may still use it). */
Worker *worker_free(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);

int worker_submit(Worker *w, WorkerFunc func, WorkerDone done, void *userdata);
/* The same, with destroy for the data of a job whose done never runs (the worker freed first). */
int worker_submit_full(Worker *w, WorkerFunc func, WorkerDone done, WorkerDestroy destroy, void *userdata);
unsigned worker_running(Worker *w);
bool worker_wait_idle(Worker *w, unsigned timeout_ms);
