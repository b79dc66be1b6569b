/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the core's files share about the Manager, and nobody else sees. One file per concern:
 *
 *   manager.c        the registry (leases, the holder index), listeners, new/free/start, shutdown
 *   lease-acquire.c  requests: checks, the reservation, the prepare job, the hand-over
 *   lease-release.c  the one release path, its job and deadline; release by token
 *   owner.c          watching owners (pidfd, lease fd) and the one "the owner is gone" path
 *   fd-store.c       naming the fds a restart needs, and claiming them back
 *   reconcile.c      start-up: the state file's leases taken back or ended; orphans reported
 *   group-view.c     groups and DMA facts as the core's views; specs resolved
 *   host-change.c    what the host reports changed (uevents): vanished and rebound devices, new groups
 *   audit.c          journal records of a lease's life
 *   prepare.c        the kernel sequences (host only) */

#include <time.h>

#include "manager.h"
#include "ratelimit.h"
#include "policy.h"
#include "worker.h"

#define LISTENERS_MAX 4

struct Manager {
        sd_event *event;
        Host *host;
        Policy *policy;
        Worker *worker;
        char *runtime_dir;
        char *state_path;
        char *policy_path;
        uint64_t release_deadline_usec;
        bool keep_leases_on_exit;
        uint64_t started_usec;

        Lease *leases, *leases_tail;
        size_t n_leases;

        /* Which lease holds each group (any state but RELEASED): the one place that says a group is
         * taken, indexed by group number. */
        Lease **holders;
        size_t n_holders;

        struct {
                ManagerEventFunc func;
                void *userdata;
        } listeners[LISTENERS_MAX];
        size_t n_listeners;

        ManagerFdStoreFunc fd_store_func;
        void *fd_store_userdata;
        struct {
                char *name;
                int fd;
        } *stored;                     /* offered back by the store, until the reconcile claims them */
        size_t n_stored;

        RateLimit token_refusals;      /* audit lines for refused tokens */

        bool shutting_down;
        void (*shutdown_done)(Manager *m, void *userdata);
        void *shutdown_userdata;
        sd_event_source *shutdown_timer;
        sd_event_source *host_watch_source;   /* a host that reports its own changes (the sim) */
};

uint64_t now_usec(clockid_t clock);

/* manager.c */
void manager_emit(Manager *m, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                  const char *detail);
Lease *manager_group_holder(Manager *m, unsigned group);
int manager_hold_group(Manager *m, unsigned group, Lease *l);
void manager_unhold_lease(Manager *m, Lease *l);
void manager_link_lease(Manager *m, Lease *l);
/* Unlinks l from the registry (its groups are free again); the caller frees it. */
void manager_unlink_lease(Manager *m, Lease *l);
/* Writes the state file (write, fsync, rename): at a lease's coming and going, and at start-up. */
void manager_save(Manager *m);
/* After l changed state: writes the state file only if a restart would act differently on the new state
 * (a state file write, fsync'ed, is the dearest step of a cycle on a fast host). */
void manager_save_state_change(Manager *m, Lease *l);
void manager_check_shutdown(Manager *m);

/* standby.c: moves the standby rules' devices no lease holds to vfio-pci, off the loop. */
int manager_standby_start(Manager *m);

/* group-view.c */
int manager_resolve_spec(Manager *m, const char *spec, unsigned *ret, ManagerError *err);
int manager_read_group(Manager *m, unsigned id, HostGroup *ret, ManagerError *err);
/* Host protection: is d something the host stands on (host or ISA/LPC bridge, a disk of a mounted
 * filesystem or of swap, the boot VGA device, the default route's NIC)? Says what, in words, in why. */
bool device_host_critical(const HostDevice *d, const HostUse *uses, size_t n_uses, char *why, size_t size);
/* Why the group cannot be handed out to s (NULL: to anyone), before anything is touched: group_refusal()'s
 * reasons (code NOT_VIABLE), never rules and host protection (DENIED), with uses what the host stands on
 * (host_list_uses(), read by the caller: once per list). Returns 0, or -EPERM with *err. */
int manager_group_refusal(Manager *m, const PolicySubject *s, const HostGroup *g, const HostUse *uses,
                          size_t n_uses, ManagerError *err);

/* lease-release.c: ends a lease that is over, once its devices are back (or the acquire failed). Emits
 * LEASE_ENDED after the lease left the registry, then frees it. */
void manager_finish_lease(Manager *m, Lease *l, int error, const char *detail);

/* owner.c */
int pidfd_get_pid(int pidfd, pid_t *ret);
/* The pid behind a would-be owner's pidfd; -ESRCH (exited) or -EBADF (no pidfd) with *err saying so. */
int owner_pidfd_get_pid(int owner_pidfd, pid_t *ret, ManagerError *err);
/* May caller c name the process behind pidfd (pid) as a lease's owner, and so as the process whose
 * RLIMIT_MEMLOCK groupd raises? Yes for the caller itself, its descendants, a process whose real,
 * effective and saved uids are all the caller's, and for root, an owner-any policy rule or an edge's
 * authorization (c->owner_any_authorized); else -EPERM with *err naming the rule. */
int owner_check_process(Manager *m, const Caller *c, pid_t pid, int pidfd, bool audit, uid_t *ret_uid,
                        ManagerError *err);
int lease_watch_owner(Lease *l);
/* The owner's process runs still (by pid and start time): for leases recovered without their pidfd. */
bool lease_owner_alive(const Lease *l);

/* fd-store.c */
void manager_store_lease_fds(Manager *m, Lease *l);
void manager_store_owner_fd(Manager *m, Lease *l);
void manager_unstore_lease_fds(Manager *m, Lease *l);
int manager_recover_lease_fds(Manager *m, Lease *l);
void manager_drop_unclaimed_fds(Manager *m);
void manager_close_stored(Manager *m);

/* host-change.c: watches a host that reports its own changes. */
int manager_watch_host(Manager *m);

/* reconcile.c */
int manager_reconcile(Manager *m);

/* audit.c: the journal's records of a lease's life (MESSAGE_ID=), and the info lines that go with them. */
void audit_lease_granted(const Lease *l);
void audit_lease_ended(const Lease *l, int error, const char *detail);
void audit_acquire_refused(const Caller *c, unsigned group, const char *why);
void audit_lease_revoked(const Lease *l, const Caller *c, uint64_t deadline_usec, bool force);
void audit_revoke_signal(const Lease *l, int sig);
void audit_device_changed(const Lease *l, const char *address, const char *what);
/* An acquire that was accepted but failed while its devices were prepared, and was rolled back. */
void audit_acquire_failed(const Lease *l, const char *why, const char *detail);
void audit_owner_refused(const Caller *c, pid_t owner_pid, uid_t owner_uid);
/* A RELEASE (or other request) with a token no lease has, or a malformed one: rate-limited with
 * m->token_refusals, and never the token itself. */
void audit_token_refused(Manager *m, const Caller *c, const char *what);
