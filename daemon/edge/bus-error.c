/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one table from the core's error codes (the wire's GdError numbers) to D-Bus error names. */
#include <dbus/dbus.h>
#include <errno.h>

#include "bus-error.h"
#include "bus.h"

static const char *const error_names[_GD_ERR_MAX] = {
        [GD_ERR_PROTOCOL] = DBUS_ERROR_INVALID_ARGS,
        [GD_ERR_VERSION] = DBUS_ERROR_NOT_SUPPORTED,
        [GD_ERR_INVALID] = BUS_NAME ".Error.Invalid",
        [GD_ERR_NOT_FOUND] = BUS_NAME ".Error.NotFound",
        [GD_ERR_BUSY] = BUS_NAME ".Error.Busy",
        [GD_ERR_DENIED] = BUS_NAME ".Error.Denied",
        [GD_ERR_NOT_VIABLE] = BUS_NAME ".Error.NotViable",
        [GD_ERR_HOST] = BUS_NAME ".Error.Host",
        [GD_ERR_LIMIT] = BUS_NAME ".Error.Limit",
        [GD_ERR_BAD_TOKEN] = BUS_NAME ".Error.BadToken",
        [GD_ERR_INTERNAL] = BUS_NAME ".Error.Internal",
        [GD_ERR_SHUTTING_DOWN] = BUS_NAME ".Error.ShuttingDown",
};

const char *bus_error_name(int gd_error) {
        if (gd_error <= 0 || gd_error >= _GD_ERR_MAX || !error_names[gd_error])
                return error_names[GD_ERR_INTERNAL];
        return error_names[gd_error];
}

const char *bus_error_name_from_errno(int errno_value) {
        return bus_error_name(gd_error_from_errno(errno_value));
}

int bus_error_to_errno(const DBusError *e) {
        if (dbus_error_has_name(e, DBUS_ERROR_NO_MEMORY))
                return -ENOMEM;
        if (dbus_error_has_name(e, DBUS_ERROR_FILE_NOT_FOUND) || dbus_error_has_name(e, DBUS_ERROR_NO_SERVER))
                return -ENOENT;
        if (dbus_error_has_name(e, DBUS_ERROR_ACCESS_DENIED))
                return -EACCES;
        return -ECONNREFUSED;
}
