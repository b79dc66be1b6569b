/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A Group object, /org/groupd1/group/N: its properties (bus_group_vtable in bus-internal.h) and signals. */

#include "bus-internal.h"

/* PropertiesChanged of the group's object; signal: the Manager's GroupChanged too (a holder or the
 * devices changed). */
void bus_group_emit_changed(Bus *b, unsigned group, bool signal);
