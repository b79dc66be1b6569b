/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the D-Bus edge that need no bus: the one table from the core's error codes (and errno)
 * to D-Bus error names. */
#include <check.h>
#include <dbus/dbus.h>

#include "bus.h"
#include "test-util.h"

START_TEST(test_every_error_has_a_distinct_valid_name) {
        for (int e = 1; e < _GD_ERR_MAX; e++) {
                const char *name = bus_error_name(e);
                DBusError err;

                ck_assert_ptr_nonnull(name);
                /* A valid error name: libdbus refuses to set an invalid one. */
                ck_assert_msg(dbus_validate_error_name(name, NULL), "invalid error name %s for %s", name,
                              gd_error_to_string(e));
                dbus_error_init(&err);
                dbus_set_error_const(&err, name, "x");
                ck_assert(dbus_error_has_name(&err, name));
                for (int f = 1; f < e; f++)
                        ck_assert_msg(!streq(name, bus_error_name(f)), "%s and %s share the name %s",
                                      gd_error_to_string(e), gd_error_to_string(f), name);
        }
        /* Out of range falls back to Internal, never NULL. */
        ck_assert_str_eq(bus_error_name(0), "org.groupd1.Error.Internal");
        ck_assert_str_eq(bus_error_name(_GD_ERR_MAX), "org.groupd1.Error.Internal");
        ck_assert_str_eq(bus_error_name(-1), "org.groupd1.Error.Internal");
}
END_TEST

START_TEST(test_errno_names) {
        ck_assert_str_eq(bus_error_name(GD_ERR_BUSY), "org.groupd1.Error.Busy");
        ck_assert_str_eq(bus_error_name(GD_ERR_DENIED), "org.groupd1.Error.Denied");
        ck_assert_str_eq(bus_error_name(GD_ERR_NOT_FOUND), "org.groupd1.Error.NotFound");
        ck_assert_str_eq(bus_error_name(GD_ERR_INVALID), "org.groupd1.Error.Invalid");
        ck_assert_str_eq(bus_error_name(GD_ERR_NOT_VIABLE), "org.groupd1.Error.NotViable");
        ck_assert_str_eq(bus_error_name_from_errno(EBUSY), "org.groupd1.Error.Busy");
        ck_assert_str_eq(bus_error_name_from_errno(-EPERM), "org.groupd1.Error.Denied");
        ck_assert_str_eq(bus_error_name_from_errno(ENOENT), "org.groupd1.Error.NotFound");
        ck_assert_str_eq(bus_error_name_from_errno(EINVAL), "org.groupd1.Error.Invalid");
        ck_assert_str_eq(bus_error_name_from_errno(EMFILE), "org.groupd1.Error.Limit");
}
END_TEST

static Suite *bus_suite(void) {
        Suite *s = suite_create("bus");
        TCase *tc = tcase_create("errors");

        tcase_add_test(tc, test_every_error_has_a_distinct_valid_name);
        tcase_add_test(tc, test_errno_names);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(bus_suite(), NULL);
}
