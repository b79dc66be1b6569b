/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A Lease object, /org/groupd1/lease/ID: its method table and properties (bus_lease_vtable in
 * bus-internal.h) and its signal. */

#include "bus-internal.h"

/* Whether r's sender owns the lease r names (as its bus name): it may then release it without polkit. */
bool request_is_lease_owner(Request *r);
/* PropertiesChanged of the lease's State. */
void bus_lease_emit_state(Bus *b, const Lease *l, const char *state);
