/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-util.h"

int test_run_suite(Suite *s, const char *tcase) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run(sr, NULL, tcase, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void test_rm_rf(const char *dir) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        (void) !system(cmd);
}

void test_write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        ck_assert_msg(f, "%s: %m", path);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
}

void test_cat_to_stderr(const char *path) {
        char buf[4096];
        size_t n;
        FILE *f = fopen(path, "re");

        if (!f)
                return;
        fprintf(stderr, "--- %s:\n", path);
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
                (void) !fwrite(buf, 1, n, stderr);
        fclose(f);
}

bool test_file_contains(const char *path, const char *text) {
        char line[4096];
        bool found = false;
        FILE *f = fopen(path, "re");

        if (!f)
                return false;
        while (!found && fgets(line, sizeof line, f))
                found = strstr(line, text) != NULL;
        fclose(f);
        return found;
}

bool test_fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

uint64_t test_status_caps(const char *path, const char *field) {
        char line[256];
        unsigned long long v = 0;
        size_t len = strlen(field);
        bool found = false;
        FILE *f = fopen(path, "re");

        ck_assert_msg(f, "%s: %m", path);
        while (fgets(line, sizeof line, f))
                if (strncmp(line, field, len) == 0 && line[len] == ':') {
                        ck_assert_int_eq(sscanf(line + len + 1, "%llx", &v), 1);
                        found = true;
                }
        fclose(f);
        ck_assert_msg(found, "no %s in %s", field, path);
        return v;
}

bool test_have_cap(int cap) {
        return test_status_caps("/proc/self/status", "CapEff") & (UINT64_C(1) << cap);
}

void test_wait_readable(int fd, int timeout_ms, const char *what) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        ck_assert_msg(r == 1, "timed out after %d ms waiting for %s", timeout_ms, what);
}
