/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The simulated host's settings and constructor: only main.c and the tests choose a backend, so only they
 * include this; everything else sees a Host (host.h) and cannot tell which it has. */

#include "host.h"

typedef struct HostSimConfig {
        const char *topology_path;  /* NULL: the built-in default */
        const char *state_dir;      /* where the simulated sysfs lives; reused if it exists already */
} HostSimConfig;

int host_new_sim(const HostSimConfig *cfg, Host **ret);
