/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The policy for native-socket callers: which uids/gids may acquire which groups or devices, and which
 * devices are never handed out. A text file of rules, one per line ('#' starts a comment):
 *
 *         never  MATCH...                 no one gets a group holding a device that matches all MATCHes
 *         allow  WHO MATCH...             WHO may acquire what matches all MATCHes
 *         memlock WHO [max=SIZE]          WHO may ask groupd to raise its RLIMIT_MEMLOCK at acquire (up to
 *                                         SIZE, like 64G; without max= as far as the guest needs); root
 *                                         may always
 *         owner-any WHO                   WHO may name any process as a lease's owner (OWNER_PROCESS), and so
 *                                         as the process whose RLIMIT_MEMLOCK is raised. Without it a
 *                                         caller may name only itself, its descendants, or a process whose
 *                                         real, effective and saved uids are all the caller's; root may
 *                                         always. (D-Bus callers: polkit action
 *                                         org.groupd1.acquire-for-other instead.)
 *
 *   WHO:   uid=N | user=NAME | gid=N | unixgroup=NAME | anyone
 *   MATCH: iommu-group=N | pci=GLOB (fnmatch on "0000:01:00.0") | class=0xHEX (prefix of the 24-bit class:
 *          class=0x01 is every mass storage controller, class=0x0108 every NVMe one) | vendor=0xVVVV |
 *          device=0xVVVV:0xDDDD
 *
 * root may acquire anything no "never" rule forbids. Anyone else may acquire a group when one allow rule
 * for them matches the group (iommu-group=N), or when every device of the group is matched by an allow
 * rule for them. Without a policy file the built-in default applies: root only, and mass storage
 * controllers (class 0x01) never, since one is likely to hold the host's own disks. */

#include <sys/types.h>

#include "host.h"

typedef struct Policy Policy;

typedef struct PolicySubject {
        uid_t uid;
        gid_t gid;
        const gid_t *gids;     /* supplementary groups */
        size_t n_gids;
} PolicySubject;

/* Parses rules; origin names the source in error messages ("policy.conf"). On a bad line returns -EINVAL
 * and a message naming the line in *ret_error (free it). */
int policy_parse(const char *text, const char *origin, Policy **ret, char **ret_error);
/* path NULL: the built-in default. A missing file is -ENOENT (the caller decides whether that means the
 * default). */
int policy_load(const char *path, Policy **ret, char **ret_error);
Policy *policy_free(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

extern const char policy_default_text[];

/* True if a never rule forbids this device; a note naming the rule goes to note. */
bool policy_device_never(const Policy *p, const HostDevice *d, char *note, size_t size);

/* 0 if subject may have its RLIMIT_MEMLOCK raised, with the ceiling (UINT64_MAX: none) in *ret_max; else
 * -EPERM with the reason in msg. */
int policy_check_memlock(const Policy *p, const PolicySubject *s, uint64_t *ret_max, char *msg, size_t size);

/* 0 if subject may name any process as a lease's owner (root, or an owner-any rule for it), with what
 * allowed it ("root", or the rule's text) in rule; else -EPERM and a note in rule. */
int policy_check_owner_any(const Policy *p, const PolicySubject *s, char *rule, size_t size);

/* 0 if subject may acquire group g, else -EPERM with the reason in msg. */
int policy_check_group(const Policy *p, const PolicySubject *s, const HostGroup *g, char *msg, size_t size);
