/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of lease.c: the lease state machine, its groups and devices (and its wire view). */
#include <check.h>

#include "lease.h"
#include "wire-view.h"
#include "test-util.h"

START_TEST(test_lease_states) {
        Lease *l = NULL;

        ck_assert_int_eq(lease_new(NULL, &l), 0);
        ck_assert_int_eq(l->state, LEASE_ACQUIRING);
        ck_assert_int_eq(l->container_fd, -EBADF);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACQUIRING), -EALREADY);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACTIVE), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACQUIRING), -EBUSY);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASED), -EBUSY); /* must pass through RELEASING */
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASING), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_ACTIVE), -EBUSY);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASED), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASING), -EBUSY);
        ck_assert_int_eq(lease_set_state(l, _LEASE_STATE_MAX), -EINVAL);
        lease_free(l);

        /* A failed acquire ends without ever being active. */
        ck_assert_int_eq(lease_new(NULL, &l), 0);
        ck_assert_int_eq(lease_set_state(l, LEASE_RELEASED), 0);
        lease_free(l);
}
END_TEST

START_TEST(test_lease_groups_devices) {
        Lease *l = NULL;
        GdLease v;

        ck_assert_int_eq(lease_new(NULL, &l), 0);
        ck_assert_int_eq(lease_add_group(l, 7), 0);
        ck_assert_int_eq(lease_add_group(l, 3), 0);
        ck_assert_int_eq(lease_add_group(l, 7), -EEXIST);
        ck_assert(lease_has_group(l, 3));
        ck_assert(!lease_has_group(l, 4));
        ck_assert_int_eq(l->group_fds[0], -EBADF);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.0", 7, "nouveau", NULL), 0);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.1", 7, NULL, NULL), 0);
        ck_assert_int_eq(lease_add_device(l, "0000:01:00.1000000000000000000000000000", 7, NULL, NULL), -EINVAL);
        ck_assert_str_eq(l->devices[1].driver, "");

        wire_lease(l, &v);
        ck_assert_str_eq(v.id, l->id);
        ck_assert_uint_eq(v.n_groups, 2);
        ck_assert_uint_eq(v.groups[1], 3);
        ck_assert_str_eq(v.label, "");
        lease_free(l);
}
END_TEST

static Suite *lease_suite(void) {
        Suite *s = suite_create("lease");
        TCase *tc = tcase_create("lease");

        tcase_add_test(tc, test_lease_states);
        tcase_add_test(tc, test_lease_groups_devices);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(lease_suite(), NULL);
}
