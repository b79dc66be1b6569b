/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of worker.c: the threads that run the kernel sequences off the loop. */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "worker.h"
#include "test-util.h"

typedef struct TestJob {
        int wait_fd;          /* >= 0: block reading it (a held-up unbind) */
        int result;
        bool done;
        pthread_t thread;
} TestJob;

static int test_job_run(void *userdata) {
        TestJob *t = userdata;
        char c;
        t->thread = pthread_self();
        if (t->wait_fd >= 0)
                return read(t->wait_fd, &c, 1) == 1 ? 7 : -EIO;
        return 42;
}

static void test_job_done(int result, void *userdata) {
        TestJob *t = userdata;
        t->result = result;
        t->done = true;
}

static void run_until(sd_event *e, const bool *flag) {
        for (int i = 0; i < 500 && !*flag; i++)
                ck_assert_int_ge(sd_event_run(e, 10 * 1000), 0);
        ck_assert_msg(*flag, "job did not finish");
}

/* Threads are reused, but a job is never queued behind one that is held up. */
START_TEST(test_worker_never_queues) {
        sd_event *e = NULL;
        Worker *w = NULL;
        TestJob quick = { .wait_fd = -1 }, held, after = { .wait_fd = -1 };
        int p[2];

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_ge(worker_new(e, &w), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        held = (TestJob) { .wait_fd = p[0] };

        ck_assert_int_ge(worker_submit(w, test_job_run, test_job_done, &quick), 0);
        run_until(e, &quick.done);
        ck_assert_int_eq(quick.result, 42);

        /* The idle thread takes the held-up job; the next one must still run at once. */
        ck_assert_int_ge(worker_submit(w, test_job_run, test_job_done, &held), 0);
        ck_assert_int_ge(worker_submit(w, test_job_run, test_job_done, &after), 0);
        ck_assert_uint_eq(worker_running(w), 2);
        run_until(e, &after.done);
        ck_assert_int_eq(after.result, 42);
        ck_assert(!held.done);

        ck_assert_int_eq(write(p[1], "x", 1), 1);
        run_until(e, &held.done);
        ck_assert_int_eq(held.result, 7);
        ck_assert_uint_eq(worker_running(w), 0);
        /* A thread was kept and used again: two threads ran the three jobs. (Which one took the held-up
         * job depends on who woke first: any idle thread takes a pending job.) */
        ck_assert(pthread_equal(quick.thread, held.thread) || pthread_equal(quick.thread, after.thread) ||
                  pthread_equal(held.thread, after.thread));

        close(p[0]);
        close(p[1]);
        worker_free(w);
        sd_event_unref(e);
}
END_TEST

static Suite *worker_suite(void) {
        Suite *s = suite_create("worker");
        TCase *tc = tcase_create("worker");

        tcase_add_test(tc, test_worker_never_queues);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(worker_suite(), NULL);
}
