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

/* The simulated host's controls: what happens behind the daemon's back. Lines written to the fifo
 * state_dir/sim/control (echo "remove 0000:02:00.0" > DIR/sim/control) are run by the simulated host at
 * once, and reported as changes (host_watch_fd()), as the kernel's uevents report them:
 *
 *   remove ADDR           the device leaves (its driver unbound first; its group goes with its last
 *                         device), as after a write to /sys/bus/pci/devices/ADDR/remove
 *   add ADDR              a removed device comes back (a rescan), probed to its native driver
 *   unbind ADDR           its driver lets go, whatever holds the group
 *   rebind ADDR [DRIVER]  unbound and bound to DRIVER (its native driver when left out)
 *   mount ADDR [PATH]     a filesystem is mounted from a disk under ADDR; unmount ADDR undoes it
 *   swapon ADDR           active swap sits under ADDR; swapoff ADDR undoes it
 *   route ADDR [IFACE]    the default route goes out through IFACE on ADDR; noroute ADDR undoes it
 *
 * A line that fails is logged and changes nothing.
 *
 * An unbind from vfio-pci waits while the device's group or cdev is open, for ever, as the kernel's does.
 * $GROUPD_SIM_UNBIND_WAIT=SECONDS bounds that wait: then the unbind fails with ETIMEDOUT, logging what was
 * held open. The test harness sets it (make check: 15 s), so that a daemon that keeps a file open while it
 * unbinds (a rollback or a release that forgot a close: the kernel would wait for ever) fails a test in
 * seconds, naming the device, instead of hanging it until a timeout. Unset or 0: for ever. */
