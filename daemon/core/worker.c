/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include "worker.h"

typedef struct WorkerShared WorkerShared;
typedef struct Job Job;
struct Job {
        WorkerShared *shared;
        WorkerFunc func;
        WorkerDone done;
        WorkerDestroy destroy;
        void *userdata;
        int result;
        Job *next;
};

/* Threads are kept for a while after their job, so that a busy daemon does not pay a thread creation
 * (stack mapping, page clearing, teardown) per job: about a third of an acquire+release cycle's CPU on
 * the simulated host. A job is only ever handed to a thread that is idle, never queued behind another
 * job, so a job the kernel holds up still blocks nothing but itself. */
#define WORKER_IDLE_SECONDS 10

struct WorkerShared {
        pthread_mutex_t lock;
        pthread_cond_t cond;     /* idle threads wait here for pending jobs */
        Job *finished;           /* LIFO of finished jobs, reversed when drained */
        Job *pending, *pending_tail; /* handed to idle threads, not yet taken */
        unsigned idle;           /* idle threads not yet promised a pending job */
        bool stopping;
        unsigned in_func;        /* jobs submitted whose func has not returned */
        pthread_cond_t func_done; /* signalled as each func returns (worker_wait_idle) */
        int efd;
        atomic_int refs;         /* the Worker and each thread */
};

struct Worker {
        sd_event_source *source;
        WorkerShared *shared;
        unsigned running;
};

static void shared_unref(WorkerShared *s) {
        if (atomic_fetch_sub(&s->refs, 1) != 1)
                return;
        /* Finished jobs the loop never took, and jobs no thread took: their done never runs. */
        for (Job *j = s->finished, *n; j; j = n) {
                n = j->next;
                if (j->destroy)
                        j->destroy(j->userdata);
                free(j);
        }
        for (Job *j = s->pending, *n; j; j = n) {
                n = j->next;
                if (j->destroy)
                        j->destroy(j->userdata);
                free(j);
        }
        safe_close(s->efd);
        pthread_cond_destroy(&s->cond);
        pthread_cond_destroy(&s->func_done);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static void *job_thread(void *p) {
        Job *j = p;
        WorkerShared *s = j->shared;
        uint64_t one = 1;

        for (;;) {
                struct timespec until;

                j->result = j->func(j->userdata);

                pthread_mutex_lock(&s->lock);
                s->in_func--;
                pthread_cond_broadcast(&s->func_done);
                /* The loop drains the whole list at each wake-up: only the first finished job of a batch
                 * needs to wake it (under load, many finish between two wake-ups). */
                if (!s->finished)
                        (void) !write(s->efd, &one, sizeof one);
                j->next = s->finished;
                s->finished = j;

                /* Wait for another job, for a while. */
                s->idle++;
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += WORKER_IDLE_SECONDS;
                while (!s->pending && !s->stopping)
                        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
                                break;
                if (!s->pending) {
                        s->idle--;
                        pthread_mutex_unlock(&s->lock);
                        break;
                }
                /* A pending job was promised to an idle thread (submit took it off s->idle): take it. */
                j = s->pending;
                s->pending = j->next;
                if (!s->pending)
                        s->pending_tail = NULL;
                j->next = NULL;
                pthread_mutex_unlock(&s->lock);
        }

        shared_unref(s);
        return NULL;
}

static int on_eventfd(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        WorkerShared *s = w->shared;
        uint64_t count;
        Job *list, *rev = NULL;

        (void) !read(fd, &count, sizeof count);

        pthread_mutex_lock(&s->lock);
        list = s->finished;
        s->finished = NULL;
        pthread_mutex_unlock(&s->lock);

        while (list) {            /* oldest first */
                Job *n = list->next;
                list->next = rev;
                rev = list;
                list = n;
        }

        while (rev) {
                Job *j = rev;
                rev = j->next;
                w->running--;
                j->done(j->result, j->userdata);
                free(j);
        }
        return 0;
}

int worker_new(sd_event *e, Worker **ret) {
        _cleanup_free_ Worker *w = NULL;
        WorkerShared *s;
        int r;

        w = calloc(1, sizeof *w);
        s = calloc(1, sizeof *s);
        if (!w || !s) {
                free(s);
                return -ENOMEM;
        }
        pthread_mutex_init(&s->lock, NULL);
        {
                pthread_condattr_t ca;
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&s->cond, &ca);
                pthread_cond_init(&s->func_done, &ca);
                pthread_condattr_destroy(&ca);
        }
        atomic_init(&s->refs, 1);
        s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        w->shared = s;
        if (s->efd < 0) {
                r = -errno;
                shared_unref(s);
                return r;
        }

        r = sd_event_add_io(e, &w->source, s->efd, EPOLLIN, on_eventfd, w);
        if (r < 0) {
                shared_unref(s);
                return r;
        }
        (void) sd_event_source_set_description(w->source, "worker");
        /* Finished jobs are delivered before new requests are read. */
        (void) sd_event_source_set_priority(w->source, SD_EVENT_PRIORITY_IMPORTANT);

        *ret = TAKE_PTR(w);
        return 0;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->source);
        /* Idle threads go; running ones finish their job and go (its done callback never runs). */
        pthread_mutex_lock(&w->shared->lock);
        w->shared->stopping = true;
        pthread_cond_broadcast(&w->shared->cond);
        pthread_mutex_unlock(&w->shared->lock);
        shared_unref(w->shared);
        free(w);
        return NULL;
}

int worker_submit(Worker *w, WorkerFunc func, WorkerDone done, void *userdata) {
        return worker_submit_full(w, func, done, NULL, userdata);
}

int worker_submit_full(Worker *w, WorkerFunc func, WorkerDone done, WorkerDestroy destroy, void *userdata) {
        pthread_attr_t attr;
        pthread_t t;
        sigset_t all, old;
        Job *j;
        int r;

        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->shared = w->shared;
        j->func = func;
        j->done = done;
        j->destroy = destroy;
        j->userdata = userdata;

        /* An idle thread takes it. */
        pthread_mutex_lock(&w->shared->lock);
        w->shared->in_func++;
        if (w->shared->idle > 0) {
                w->shared->idle--;
                if (w->shared->pending_tail)
                        w->shared->pending_tail->next = j;
                else
                        w->shared->pending = j;
                w->shared->pending_tail = j;
                pthread_cond_signal(&w->shared->cond);
                pthread_mutex_unlock(&w->shared->lock);
                w->running++;
                return 0;
        }
        pthread_mutex_unlock(&w->shared->lock);

        /* Otherwise a thread of its own. */
        atomic_fetch_add(&w->shared->refs, 1);

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);

        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&t, &attr, job_thread, j);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);

        if (r < 0) {
                pthread_mutex_lock(&w->shared->lock);
                w->shared->in_func--;
                pthread_mutex_unlock(&w->shared->lock);
                shared_unref(w->shared);
                free(j);
                return r;
        }
        w->running++;
        return 0;
}

/* Waits (blocking: for the daemon's exit only) until no job's func runs, for at most timeout_ms; true if
 * none does. What the jobs use (the host) may be freed only then. */
bool worker_wait_idle(Worker *w, unsigned timeout_ms) {
        struct timespec until;
        bool idle;

        if (!w)
                return true;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->shared->lock);
        while (w->shared->in_func > 0)
                if (pthread_cond_timedwait(&w->shared->func_done, &w->shared->lock, &until) == ETIMEDOUT)
                        break;
        idle = w->shared->in_func == 0;
        pthread_mutex_unlock(&w->shared->lock);
        return idle;
}

unsigned worker_running(Worker *w) {
        return w->running;
}
