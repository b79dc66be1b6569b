/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one table from the core's error codes (their numbers are the wire's GdError) and from errno to
 * D-Bus error names; and the other way, from libdbus's own errors to errno. */

#include <dbus/dbus.h>

#include "groupd-proto.h"

/* The D-Bus error name for a core error code, and for an errno with no better code. The one table. */
const char *bus_error_name(int gd_error);
const char *bus_error_name_from_errno(int errno_value);

/* A libdbus error (connecting, requesting the name, adding a match) as a negative errno. */
int bus_error_to_errno(const DBusError *e);
