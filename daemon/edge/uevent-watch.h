/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The kernel's word on PCI devices coming, going and changing driver: its uevents (NETLINK_KOBJECT_UEVENT,
 * the kernel's group: see uevent-watch.c for why not sd-device's monitor), turned into the host's
 * HostChange and handed to the core (manager_host_changed()), which decides. For hosts that do not report
 * their own changes (linux; the simulated host reports its own). */

#include <systemd/sd-event.h>

#include "manager.h"

typedef struct UeventWatch UeventWatch;

int uevent_watch_new(sd_event *e, Manager *m, UeventWatch **ret);
UeventWatch *uevent_watch_free(UeventWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(UeventWatch *, uevent_watch_free);
