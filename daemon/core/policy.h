/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The policy for native-socket callers: which callers may acquire which groups or devices, and which
 * devices are never handed out. A text file of rules, one per line ('#' starts a comment); man
 * groupd.conf(5) is its full description:
 *
 *         never  MATCH...                 no one gets a group holding a device that matches all MATCHes
 *         allow  WHO MATCH... [host-critical]
 *                                         WHO may acquire what matches all MATCHes; with host-critical and
 *                                         an exact pci=ADDRESS, also a device the host stands on
 *         standby MATCH...                devices that match all MATCHes stay on vfio-pci while no lease
 *                                         holds them (bound at start, kept there at release): an acquire
 *                                         of them is only open and attach. Grants nothing by itself
 *         memlock WHO [max=SIZE]          WHO may ask groupd to raise its RLIMIT_MEMLOCK at acquire (up to
 *                                         SIZE, like 64G; without max= as far as the guest needs); root
 *                                         may always
 *         revoke WHO [force]              WHO may revoke anyone's lease (root may always); with force, also
 *                                         end a process owner with SIGTERM, then SIGKILL, past the deadline
 *         variant MATCH...                a device that matches is bound to its VFIO variant driver (chosen
 *                                         from modules.alias, as libvirt does) instead of vfio-pci, when a
 *                                         loaded one matches it
 *         owner-any WHO                   WHO may name any process as a lease's owner (OWNER_PROCESS), and so
 *                                         as the process whose RLIMIT_MEMLOCK is raised. Without it a
 *                                         caller may name only itself, its descendants, or a process whose
 *                                         real, effective and saved uids are all the caller's; root may
 *                                         always. (D-Bus callers: polkit action
 *                                         org.groupd1.acquire-for-other instead.)
 *
 *   WHO:   uid=N | user=NAME | gid=N | unixgroup=NAME | unit=GLOB (the caller's systemd unit, from its
 *          cgroup: "virtqemud.service") | cgroup=PATH (the caller's cgroup is PATH or below it) | anyone
 *   MATCH: iommu-group=N | pci=GLOB (fnmatch on "0000:01:00.0") | class=0xHEX (prefix of the 24-bit class:
 *          class=0x01 is every mass storage controller, class=0x0108 every NVMe one) | vendor=0xVVVV |
 *          device=0xVVVV:0xDDDD
 *
 * root may acquire anything no "never" rule forbids. Anyone else may acquire a group when one allow rule
 * for them matches the group (iommu-group=N), or when every device of the group is matched by an allow
 * rule for them. Without a policy file the built-in default applies: root only, and mass storage
 * controllers (class 0x01) never, since one is likely to hold the host's own disks.
 *
 * Whatever the file says, what the host stands on is never handed out (the core's host protection: host
 * and ISA/LPC bridges, the disks of mounted filesystems and swap, the boot VGA device, the default
 * route's NIC) unless an allow rule with host-critical names the device by its exact address. */

#include <sys/types.h>

#include "host.h"

typedef struct Policy Policy;

typedef struct PolicySubject {
        uid_t uid;
        gid_t gid;
        const gid_t *gids;     /* supplementary groups */
        size_t n_gids;
        const char *cgroup;    /* the caller's cgroup v2 path ("/system.slice/virtqemud.service"); NULL
                                * when unknown, which no unit= or cgroup= rule matches */
} PolicySubject;

/* The systemd unit a cgroup path belongs to: its first component that is not a slice
 * ("/system.slice/virtqemud.service/x" → "virtqemud.service"). 0, or -ENOENT when there is none. */
int policy_unit_of_cgroup(const char *cgroup, char *ret, size_t size);

/* A device's kind in words, from its class: "a mass storage controller", "the host bridge"... NULL when
 * the class has no name here. */
const char *pci_class_words(uint32_t class_code);

/* Parses rules; origin names the source in error messages ("policy.conf"). On a bad line returns -EINVAL
 * and a message naming the line in *ret_error (free it). */
int policy_parse(const char *text, const char *origin, Policy **ret, char **ret_error);
/* path NULL: the built-in default. A missing file is -ENOENT (the caller decides whether that means the
 * default). */
int policy_load(const char *path, Policy **ret, char **ret_error);
Policy *policy_free(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

extern const char policy_default_text[];

/* True if a never rule forbids this device; a note saying what the device is and naming the rule goes to
 * note. */
bool policy_device_never(const Policy *p, const HostDevice *d, char *note, size_t size);

/* Does a variant rule ask for a VFIO variant driver for this device? */
bool policy_device_variant(const Policy *p, const HostDevice *d);

/* Does an allow rule with host-critical, for subject (NULL: for anyone), name this device exactly? */
bool policy_lifts_host_critical(const Policy *p, const PolicySubject *s, const HostDevice *d);

/* May subject revoke a lease it does not hold (root may), and end its owner by force? 0, or -EPERM with
 * the reason in msg. */
int policy_check_revoke(const Policy *p, const PolicySubject *s, bool force, char *msg, size_t size);

/* 0 if subject may have its RLIMIT_MEMLOCK raised, with the ceiling (UINT64_MAX: none) in *ret_max; else
 * -EPERM with the reason in msg. */
int policy_check_memlock(const Policy *p, const PolicySubject *s, uint64_t *ret_max, char *msg, size_t size);

/* 0 if subject may name any process as a lease's owner (root, or an owner-any rule for it), with what
 * allowed it ("root", or the rule's text) in rule; else -EPERM and a note in rule. */
int policy_check_owner_any(const Policy *p, const PolicySubject *s, char *rule, size_t size);

/* 0 if subject may acquire group g, else -EPERM with the reason in msg. */
int policy_check_group(const Policy *p, const PolicySubject *s, const HostGroup *g, char *msg, size_t size);

/* True if a standby rule keeps this device on vfio-pci while no lease holds it; a note naming the rule
 * goes to note. */
bool policy_device_standby(const Policy *p, const HostDevice *d, char *note, size_t size);
/* Whether the policy has a standby rule at all (without one, start-up reads no group for it). */
bool policy_has_standby(const Policy *p);
