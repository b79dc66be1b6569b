/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Manager object, /org/groupd1: its methods, properties and signals. */

#include "bus-internal.h"

void manager_props(Bus *b, PropWriter *w);
void fill_manager_nleases(PropWriter *w, const void *a, const void *c);
void execute_list_groups(Request *r);
void execute_get_group(Request *r);
void execute_list_leases(Request *r);
void execute_acquire(Request *r);
void execute_release_token(Request *r);
void execute_memlock_limit(Request *r);
/* Parse the arguments into r; on a bad argument they reply and return false. */
bool parse_acquire(Bus *b, DBusMessage *m, Request *r);
bool parse_memlock_limit(Bus *b, DBusMessage *m, Request *r);
