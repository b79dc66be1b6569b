/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A Group object, /org/groupd1/group/N: its properties and signals. */

#include "bus-internal.h"

void group_props(Manager *m, const GroupView *g, PropWriter *w);
/* signal: GroupChanged too (a holder or the devices changed), not only PropertiesChanged. */
void emit_group_changed(Bus *b, unsigned group, bool signal);
