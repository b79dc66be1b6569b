/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Manager object, /org/groupd1: its method table and properties (bus_manager_vtable in
 * bus-internal.h) and its signals. */

#include "bus-internal.h"

void bus_manager_emit_lease_started(Bus *b, const Lease *l);
void bus_manager_emit_lease_ended(Bus *b, const Lease *l, const char *detail);
/* PropertiesChanged of NLeases. */
void bus_manager_emit_n_leases(Bus *b);
