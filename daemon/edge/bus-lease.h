/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A Lease object, /org/groupd1/lease/ID: its method, properties and signals. */

#include "bus-internal.h"

void lease_props(const Lease *l, const char *state, PropWriter *w);
void fill_lease_state(PropWriter *w, const void *a, const void *c);
void execute_lease_release(Request *r, bool revoke);
bool request_is_lease_owner(Request *r);
