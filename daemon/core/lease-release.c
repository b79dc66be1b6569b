/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "manager-internal.h"
#include "text-util.h"

typedef struct ReleaseOp {
        Lease *lease;                  /* loop side only: the job never touches it */
        Prepare *prepare;              /* the job's, copies of what it needs */
} ReleaseOp;

static int release_job_run(void *userdata) {
        ReleaseOp *op = userdata;
        return prepare_restore(op->prepare);
}

/* A release whose done never ran (the daemon stopped first): the state file keeps the lease. */
static void release_op_destroy(void *userdata) {
        ReleaseOp *op = userdata;
        prepare_free(op->prepare);
        free(op);
}

void manager_finish_lease(Manager *m, Lease *l, int error, const char *detail) {
        _cleanup_free_ char *marked = NULL;

        assert(m);
        assert(l);

        /* A lease whose devices were rebound behind groupd's back says so to the end. */
        if (l->tampered && asprintf(&marked, "%s; while leased, %s", strempty(detail), strempty(l->tamper_note)) >= 0)
                detail = marked;
        l->deadline_source = sd_event_source_disable_unref(l->deadline_source);
        (void) lease_set_state(l, LEASE_RELEASED);
        audit_lease_ended(l, error, detail);

        /* Off the registry first, so that listeners see the world without it. */
        manager_unlink_lease(m, l);
        if (lease_needs_record(l))
                manager_save(m);
        manager_emit(m, MANAGER_EVENT_LEASE_ENDED, l, 0, -error, detail);
        lease_free(l);
        manager_check_shutdown(m);
}

static void release_job_done(int result, void *userdata) {
        ReleaseOp *op = userdata;
        Lease *l = op->lease;

        log_debug("Lease %s phases: unbind %.1f ms, rebind %.1f ms", l->id, op->prepare->us_unbind / 1000.0,
                  op->prepare->us_rebind / 1000.0);
        manager_finish_lease(l->manager, l, result, op->prepare->detail);
        prepare_free(op->prepare);
        free(op);
}

/* A lease of standby devices only: nothing to put back, so no job; it ends on the next turn of the loop
 * (never inside manager_release_lease(), whose callers still use the lease). */
static int on_standby_release(sd_event_source *s, void *userdata) {
        Lease *l = userdata;
        char detail[MANAGER_TEXT_MAX] = "";

        for (size_t i = 0; i < l->n_devices; i++)
                text_append(detail, sizeof detail, "%s stays on vfio-pci (standby)", l->devices[i].address);
        manager_finish_lease(l->manager, l, 0, detail);
        return 0;
}

static int on_release_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Lease *l = userdata;
        char groups[256];

        lease_groups_to_text(l, groups, sizeof groups);
        log_warning("Release of lease %s (\"%s\") is held up after %" PRIu64 " ms: a process still holds "
                    "a device of group(s) %s open, and the kernel waits for it to let go. Still waiting.",
                    l->id, strempty(l->label), l->manager->release_deadline_usec / 1000, groups);
        manager_emit(l->manager, MANAGER_EVENT_LEASE_RELEASING, l, 0, EBUSY,
                     "held up: a process still holds a device of the lease open");
        return 0;
}

/* The release proper, for a lease in RELEASING: let go of everything the daemon holds, then put the
 * devices back off the loop. */
static int lease_release_run(Manager *m, Lease *l) {
        ReleaseOp *op;
        int r;

        assert(l->state == LEASE_RELEASING);

        /* Stop watching the owner, and let go of everything we hold: our copies of the fds must be closed
         * before the unbind, or the kernel would wait for us. */
        manager_unstore_lease_fds(m, l);
        l->owner_source = sd_event_source_disable_unref(l->owner_source);
        l->owner_pidfd = safe_close(l->owner_pidfd);
        l->lease_fd = safe_close(l->lease_fd);
        lease_close_fds(l);

        manager_save_state_change(m, l);
        log_info("Releasing lease %s (\"%s\"): %s", l->id, strempty(l->label), lease_reason_to_string(l->reason));
        manager_emit(m, MANAGER_EVENT_LEASE_RELEASING, l, 0, 0, lease_reason_to_string(l->reason));

        if (lease_all_standby(l) && l->n_grants == 0) { /* node grants are revoked by the job */
                r = sd_event_add_defer(m->event, &l->deadline_source, on_standby_release, l);
                if (r >= 0)
                        return 0;
                /* No event source: the job below does the same (it leaves standby devices alone). */
        }

        op = calloc(1, sizeof *op);
        if (!op)
                r = -ENOMEM;
        else
                r = prepare_new(m->host, l->devices, l->n_devices, l->groups, l->n_groups, &op->prepare);
        if (r >= 0)
                r = prepare_set_grants(op->prepare, l->grants, l->n_grants);
        if (r >= 0) {
                op->lease = l;
                r = worker_submit_full(m->worker, release_job_run, release_job_done, release_op_destroy, op);
        }
        if (r < 0) {
                if (op)
                        prepare_free(op->prepare);
                free(op);
                /* The state file still names the devices: the next start puts them back. */
                return log_error_errno(r, "Failed to start releasing lease %s: %m", l->id);
        }

        (void) sd_event_add_time_relative(m->event, &l->deadline_source, CLOCK_MONOTONIC,
                                          m->release_deadline_usec, 0, on_release_deadline, l);
        return 0;
}

int manager_release_lease(Manager *m, Lease *l, LeaseReason reason) {
        int r;

        assert(m);
        assert(l);
        assert(reason >= 0 && reason < _LEASE_REASON_MAX);

        if (l->state == LEASE_ACQUIRING && !l->recovered) {
                /* Its devices are being prepared: it ends as soon as they are. */
                if (!l->owner_gone)
                        l->reason = reason;
                l->owner_gone = true;
                return 0;
        }
        /* A recovered lease may have been half acquired or half released: restoring is idempotent, so
         * its release simply runs (again). */
        if (!(l->recovered && l->state == LEASE_RELEASING)) {
                r = lease_set_state(l, LEASE_RELEASING);
                if (r < 0)
                        return r;
        }
        l->reason = reason;
        return lease_release_run(m, l);
}

int manager_release_token(Manager *m, const Caller *c, const char *token, ManagerError *err) {
        assert(m);
        assert(c);

        if (!token_is_valid(token)) {
                audit_token_refused(m, c, "a malformed token");
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "malformed token (want %u hex characters)",
                              TOKEN_LEN);
                return -EINVAL;
        }
        for (Lease *l = m->leases; l; l = l->next) {
                if (!token_equal(l->token, token))
                        continue;
                if (!lease_is_live(l)) {
                        manager_error(err, MANAGER_ERROR_BUSY, EALREADY, "lease %s is being released already",
                                      l->id);
                        return -EALREADY;
                }
                log_info("Lease %s released by its holder (uid %u, pid %i).", l->id, (unsigned) c->uid,
                         (int) c->pid);
                return manager_release_lease(m, l, LEASE_REASON_RELEASED);
        }
        audit_token_refused(m, c, "no lease has this token");
        manager_error(err, MANAGER_ERROR_BAD_TOKEN, ENOENT, "no lease has this token");
        return -ENOENT;
}

/* How long a SIGTERMed owner has before SIGKILL. */
#define REVOKE_KILL_GRACE_USEC (3ULL * 1000000ULL)

static int on_revoke_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Lease *l = userdata;
        Manager *m = l->manager;
        int sig;

        if (l->state != LEASE_RELEASING)
                return 0;
        if (!l->revoke_force || l->revoke_pidfd < 0) {
                log_warning("Revoked lease %s (\"%s\") is held up past its deadline: its holder still has a "
                            "device open. Revoke it with force to end the owner process.", l->id,
                            strempty(l->label));
                manager_emit(m, MANAGER_EVENT_LEASE_RELEASING, l, 0, EBUSY,
                             "revoked, held up past the deadline: the holder still has a device open");
                return 0;
        }
        sig = l->revoke_stage == 0 ? SIGTERM : SIGKILL;
        if (syscall(SYS_pidfd_send_signal, l->revoke_pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
                log_warning_errno(-errno, "Failed to signal the owner of lease %s: %m", l->id);
        else
                audit_revoke_signal(l, sig);
        manager_emit(m, MANAGER_EVENT_LEASE_RELEASING, l, 0, EBUSY,
                     sig == SIGTERM ? "revoked, held up past the deadline: SIGTERM sent to the owner"
                                    : "revoked, still held up: SIGKILL sent to the owner");
        l->revoke_stage++;
        if (l->revoke_stage < 2) {
                (void) sd_event_source_set_time_relative(s, REVOKE_KILL_GRACE_USEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}

int manager_revoke(Manager *m, const Caller *c, const char *id, uint64_t deadline_usec, bool force,
                   ManagerError *err) {
        PolicySubject subject;
        char msg[MANAGER_TEXT_MAX];
        Lease *l;
        int r;

        assert(m);
        assert(c);

        if (isempty(id) || strlen(id) != LEASE_ID_LEN) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "malformed lease id (want %u hex characters, "
                              "as groupctl leases shows them)", LEASE_ID_LEN);
                return -EINVAL;
        }
        subject = (PolicySubject) { .uid = c->uid, .gid = c->gid, .gids = c->gids, .n_gids = c->n_gids,
                                    .cgroup = isempty(c->cgroup) ? NULL : c->cgroup };
        /* An edge that authorized the caller already (polkit's release-other) has decided; the policy
         * file's revoke rules are for native callers. */
        r = c->authorized ? 0 : policy_check_revoke(m->policy, &subject, force, msg, sizeof msg);
        if (r < 0) {
                manager_error(err, MANAGER_ERROR_DENIED, EPERM, "%s", msg);
                return r;
        }
        l = manager_find_lease(m, id);
        if (!l || l->state == LEASE_RELEASED) {
                manager_error(err, MANAGER_ERROR_NOT_FOUND, ENOENT, "no lease %s", id);
                return -ENOENT;
        }
        if (force && l->owner_kind != OWNER_PROCESS) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "lease %s is owned by %s, not a process: only a "
                              "process owner can be ended by force", l->id, owner_kind_to_string(l->owner_kind));
                return -EINVAL;
        }
        if (l->state == LEASE_ACQUIRING) {
                manager_error(err, MANAGER_ERROR_BUSY, EBUSY, "lease %s is being acquired; revoke it once it is "
                              "active", l->id);
                return -EBUSY;
        }
        if (l->state == LEASE_RELEASING && (!force || l->revoke_force)) {
                manager_error(err, MANAGER_ERROR_BUSY, EALREADY, "lease %s is being released already%s", l->id,
                              force ? " and revoked by force" : "; revoke it with force to end its owner");
                return -EALREADY;
        }
        /* A revoke without force, made forceful: a new deadline. */
        l->revoke_source = sd_event_source_disable_unref(l->revoke_source);

        if (l->owner_kind == OWNER_PROCESS && l->revoke_pidfd < 0) {
                /* The release lets go of the owner's pidfd: keep a copy to signal it with (also without
                 * force, so that a later revoke can add it). A release under way has let go already:
                 * open the owner again, if it is the same process still. */
                if (l->owner_pidfd >= 0)
                        l->revoke_pidfd = fcntl(l->owner_pidfd, F_DUPFD_CLOEXEC, 3);
                else if (lease_owner_alive(l)) {
                        l->revoke_pidfd = (int) syscall(SYS_pidfd_open, l->owner_pid, 0);
                        if (l->revoke_pidfd >= 0 && !lease_owner_alive(l))
                                l->revoke_pidfd = safe_close(l->revoke_pidfd);
                }
                if (l->revoke_pidfd < 0 && force) {
                        r = l->owner_pidfd >= 0 ? -errno : -ESRCH;
                        manager_error(err, MANAGER_ERROR_INTERNAL, r, "cannot keep the owner's pidfd: %s",
                                      strerror(-r));
                        return r;
                }
        }
        l->revoke_force = force;
        l->revoke_stage = 0;
        if (deadline_usec == 0)
                deadline_usec = m->release_deadline_usec;
        r = sd_event_add_time_relative(m->event, &l->revoke_source, CLOCK_MONOTONIC, deadline_usec, 0,
                                       on_revoke_deadline, l);
        if (r < 0) {
                l->revoke_pidfd = safe_close(l->revoke_pidfd);
                manager_error(err, MANAGER_ERROR_INTERNAL, r, "cannot set the deadline: %s", strerror(-r));
                return r;
        }
        audit_lease_revoked(l, c, deadline_usec, force);
        if (l->state == LEASE_RELEASING)
                return 0; /* its release runs already; now with a deadline */
        return manager_release_lease(m, l, LEASE_REASON_REVOKED);
}
