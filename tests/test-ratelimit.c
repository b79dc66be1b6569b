/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of common/ratelimit.c: N lines an interval, then a count of what was held back. */
#include <check.h>

#include "ratelimit.h"
#include "test-util.h"

START_TEST(test_ratelimit) {
        RateLimit rl = RATELIMIT_INIT(1000, 3);
        unsigned held = 99;

        for (int i = 0; i < 3; i++) {
                ck_assert(ratelimit_below(&rl, 100 + i, &held));
                ck_assert_uint_eq(held, 0);
        }
        for (int i = 0; i < 5; i++)
                ck_assert(!ratelimit_below(&rl, 200 + i, &held));
        /* The next interval lets one through, and it learns how many were held back. */
        ck_assert(ratelimit_below(&rl, 1200, &held));
        ck_assert_uint_eq(held, 5);
        ck_assert(ratelimit_below(&rl, 1201, NULL));
        ck_assert(ratelimit_below(&rl, 1202, &held));
        ck_assert_uint_eq(held, 0);
        ck_assert(!ratelimit_below(&rl, 1203, NULL));
        ck_assert_uint_eq(ratelimit_take_suppressed(&rl), 1);
        ck_assert_uint_eq(ratelimit_take_suppressed(&rl), 0);
}
END_TEST

static Suite *ratelimit_suite(void) {
        Suite *s = suite_create("ratelimit");
        TCase *tc = tcase_create("ratelimit");

        tcase_add_test(tc, test_ratelimit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(ratelimit_suite(), NULL);
}
