/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A Group object, /org/groupd1/group/N: its properties (bus_group_vtable in bus-internal.h) and signals. */

#include "bus-internal.h"

/* PropertiesChanged of the group's object; signal: the Manager's GroupChanged too (a holder or the
 * devices changed). */
/* What changed of a group, so that PropertiesChanged carries only that (issue 16: emit only what changed).
 * ANY and HOLDER come with the Manager's GroupChanged too. */
typedef enum GroupChange {
        GROUP_CHANGE_ANY,      /* the host changed it (uevent): every changeable property */
        GROUP_CHANGE_HOLDER,   /* a lease took or let go of it: holder, devices' drivers, viability, DMA */
        GROUP_CHANGE_DMA,      /* its lease began releasing: the DMA facts only */
} GroupChange;
void bus_group_emit_changed(Bus *b, unsigned group, GroupChange what);
