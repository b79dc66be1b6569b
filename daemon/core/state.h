/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The state file: every lease and every remembered driver, so that a restarted daemon can put things
 * back. A lease is written BEFORE its devices are touched (state "acquiring"), so a crash at any point
 * leaves a record of every device groupd moved. Written as a temporary file, fsync()ed, renamed over the
 * old one.
 *
 *         groupd-state 1
 *         lease ID TOKEN STATE OWNER uid=U gid=G pid=P owner-pid=P owner-start=T conn=C iommu=0|1 since=USEC
 *               label=ESCAPED
 *         group N
 *         device ADDRESS GROUP DRIVER|-
 *         end
 *
 * (one "lease" line; the label is percent-escaped). The token is kept because a kept lease must still be
 * releasable by its holder; the file is 0600 in a 0700 directory. */

#include "lease.h"

int state_write(const char *path, Lease *leases);
/* Reads the leases back as unregistered Lease objects (state as recorded, no fds), in file order, linked
 * through next. A missing file is 0 leases. A malformed file is -EBADMSG, with the line in *ret_line. */
int state_read(const char *path, Manager *m, Lease **ret, unsigned *ret_line);

/* /proc/PID/stat field 22, the process's start time in clock ticks since boot. -ESRCH if none. */
int process_starttime(pid_t pid, uint64_t *ret);
