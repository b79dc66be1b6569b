/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fanout.h"

/* Enough for the host calls (sysfs reads and writes, a few ioctls): the worker's threads use the same. */
#define FANOUT_STACK_SIZE (256 * 1024)

typedef struct Share {
        FanoutFunc func;
        void *userdata;
        size_t i;
} Share;

static void *share_thread(void *p) {
        Share *s = p;
        s->func(s->i, s->userdata);
        return NULL;
}

void fanout_run(size_t n, FanoutFunc func, void *userdata) {
        pthread_t *threads = NULL;
        Share *shares = NULL;
        bool *started = NULL;
        pthread_attr_t attr;
        sigset_t all, old;

        assert(func);
        if (n == 0)
                return;
        if (n > 1) {
                threads = calloc(n, sizeof *threads);
                shares = calloc(n, sizeof *shares);
                started = calloc(n, sizeof *started);
        }
        if (n == 1 || !threads || !shares || !started) {
                /* One thing, or no memory for the threads' bookkeeping: one after the other. */
                free(threads);
                free(shares);
                free(started);
                for (size_t i = 0; i < n; i++)
                        func(i, userdata);
                return;
        }

        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, FANOUT_STACK_SIZE);
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (size_t i = 1; i < n; i++) {
                shares[i] = (Share) { .func = func, .userdata = userdata, .i = i };
                started[i] = pthread_create(&threads[i], &attr, share_thread, &shares[i]) == 0;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);

        func(0, userdata);
        for (size_t i = 1; i < n; i++)
                if (!started[i])
                        func(i, userdata);
        for (size_t i = 1; i < n; i++)
                if (started[i])
                        (void) pthread_join(threads[i], NULL);
        free(threads);
        free(shares);
        free(started);
}
