/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* All authorization of the D-Bus edge: which polkit action a request needs, the root shortcut, the
 * details passed to the rules, and the asynchronous CheckAuthorization. */

#include "bus-internal.h"

/* The caller is known (request_start()): checks what needs no authority, then asks polkit, and executes
 * r when it is allowed; else answers with the refusal. Either way r is freed in the end. */
void request_authorize(Request *r);
/* Every polkit action r needed is granted: hands what was granted to the core's Caller and executes r. */
void request_authorized(Request *r);
