/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include "worker.h"

typedef struct WorkerShared WorkerShared;
typedef struct Job Job;
struct Job {
        WorkerShared *shared;
        WorkerFunc func;
        WorkerDone done;
        void *userdata;
        int result;
        Job *next;
};

struct WorkerShared {
        pthread_mutex_t lock;
        Job *finished;           /* LIFO of finished jobs, reversed when drained */
        int efd;
        atomic_int refs;         /* the Worker and each running thread */
};

struct Worker {
        sd_event_source *source;
        WorkerShared *shared;
        unsigned running;
};

static void shared_unref(WorkerShared *s) {
        if (atomic_fetch_sub(&s->refs, 1) != 1)
                return;
        for (Job *j = s->finished, *n; j; j = n) {
                n = j->next;
                free(j);
        }
        safe_close(s->efd);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static void *job_thread(void *p) {
        Job *j = p;
        WorkerShared *s = j->shared;
        uint64_t one = 1;

        j->result = j->func(j->userdata);

        pthread_mutex_lock(&s->lock);
        j->next = s->finished;
        s->finished = j;
        pthread_mutex_unlock(&s->lock);
        (void) !write(s->efd, &one, sizeof one);

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
        shared_unref(w->shared);
        free(w);
        return NULL;
}

int worker_submit(Worker *w, WorkerFunc func, WorkerDone done, void *userdata) {
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
        j->userdata = userdata;
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
                shared_unref(w->shared);
                free(j);
                return r;
        }
        w->running++;
        return 0;
}

unsigned worker_running(Worker *w) {
        return w->running;
}
