/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of token.c: lease tokens and lease ids. */
#include <check.h>
#include <stdbool.h>

#include "token.h"
#include "test-util.h"

START_TEST(test_token_format) {
        char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1], id[LEASE_ID_LEN + 1];

        ck_assert_int_eq(token_generate(a), 0);
        ck_assert_int_eq(token_generate(b), 0);
        ck_assert_uint_eq(strlen(a), TOKEN_LEN);
        ck_assert(token_is_valid(a));
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(lease_id_generate(id), 0);
        ck_assert_uint_eq(strlen(id), LEASE_ID_LEN);
        ck_assert_uint_eq(strspn(id, "0123456789abcdef"), LEASE_ID_LEN);
}
END_TEST

START_TEST(test_token_equal) {
        char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];

        ck_assert_int_eq(token_generate(a), 0);
        memcpy(b, a, sizeof b);
        ck_assert(token_equal(a, b));
        b[TOKEN_LEN - 1] = b[TOKEN_LEN - 1] == 'a' ? 'b' : 'a';
        ck_assert(!token_equal(a, b));
        b[TOKEN_LEN - 1] = a[TOKEN_LEN - 1];
        b[0] = b[0] == 'a' ? 'b' : 'a';
        ck_assert(!token_equal(a, b));
        /* Not tokens at all. */
        ck_assert(!token_equal(a, "short"));
        ck_assert(!token_equal("", ""));
        ck_assert(!token_equal("0123456789ABCDEF0123456789ABCDEF", "0123456789ABCDEF0123456789ABCDEF"));
}
END_TEST

/* 128 bits: across many tokens every hex digit appears at every position. */
START_TEST(test_token_randomness) {
        unsigned seen[TOKEN_LEN] = {};
        char t[TOKEN_LEN + 1];

        for (int i = 0; i < 2000; i++) {
                ck_assert_int_eq(token_generate(t), 0);
                for (unsigned k = 0; k < TOKEN_LEN; k++) {
                        unsigned v = (unsigned) (t[k] <= '9' ? t[k] - '0' : t[k] - 'a' + 10);
                        seen[k] |= 1u << v;
                }
        }
        for (unsigned k = 0; k < TOKEN_LEN; k++)
                ck_assert_uint_eq(seen[k], 0xffffu);
}
END_TEST

/* The bytes behind a token are independent, not one byte spread over it: among a token's 16 bytes at
 * least 8 differ (fewer has a chance of about 1e-10 per token), and a lease id's 6 are not all one byte. */
static unsigned distinct_bytes(const char *hex, size_t len) {
        bool seen[256] = {};
        unsigned n = 0;

        for (size_t i = 0; i + 1 < len; i += 2) {
                unsigned hi = (unsigned) (hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
                unsigned lo = (unsigned) (hex[i + 1] <= '9' ? hex[i + 1] - '0' : hex[i + 1] - 'a' + 10);
                if (!seen[hi << 4 | lo]) {
                        seen[hi << 4 | lo] = true;
                        n++;
                }
        }
        return n;
}

START_TEST(test_token_bytes_independent) {
        char t[TOKEN_LEN + 1], id[LEASE_ID_LEN + 1];

        for (int i = 0; i < 200; i++) {
                ck_assert_int_eq(token_generate(t), 0);
                ck_assert_msg(distinct_bytes(t, TOKEN_LEN) >= 8, "token %s: its bytes repeat", t);
                ck_assert_int_eq(lease_id_generate(id), 0);
                ck_assert_msg(distinct_bytes(id, LEASE_ID_LEN) >= 2, "lease id %s: one byte repeated", id);
        }
}
END_TEST

static Suite *token_suite(void) {
        Suite *s = suite_create("token");
        TCase *tc = tcase_create("token");

        tcase_add_test(tc, test_token_format);
        tcase_add_test(tc, test_token_equal);
        tcase_add_test(tc, test_token_randomness);
        tcase_add_test(tc, test_token_bytes_independent);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(token_suite(), NULL);
}
