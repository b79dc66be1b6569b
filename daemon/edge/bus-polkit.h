/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* All authorization of the D-Bus edge: which polkit action a method needs, the root shortcut, the
 * details passed to the rules, and the asynchronous CheckAuthorization. */

#include "bus-internal.h"

/* The caller is known: check what needs no authority, then ask polkit; executes r when allowed. */
void request_continue(Request *r);
