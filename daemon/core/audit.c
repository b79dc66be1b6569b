/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/uio.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "manager-internal.h"
#include "memlock.h"

/* Message ids for the journal: grants, refusals, failures, releases, revocations. Each is explained in
 * systemd/groupd.catalog (installed to systemd's catalog directory): keep the two in step. */
#define MESSAGE_ID_LEASE_STARTED "8a1f3c5e2b7d4e0f9a6c1d2e3f405162"
#define MESSAGE_ID_LEASE_ENDED "8a1f3c5e2b7d4e0f9a6c1d2e3f405163"
#define MESSAGE_ID_ACQUIRE_REFUSED "8a1f3c5e2b7d4e0f9a6c1d2e3f405164"
#define MESSAGE_ID_ACQUIRE_FAILED "8a1f3c5e2b7d4e0f9a6c1d2e3f405165"
#define MESSAGE_ID_LEASE_REVOKED "8a1f3c5e2b7d4e0f9a6c1d2e3f405166"
#define MESSAGE_ID_TOKEN_REFUSED "8a1f3c5e2b7d4e0f9a6c1d2e3f405167"
#define MESSAGE_ID_OWNER_REFUSED "8a1f3c5e2b7d4e0f9a6c1d2e3f405168"
#define MESSAGE_ID_DEVICE_CHANGED "8a1f3c5e2b7d4e0f9a6c1d2e3f405169"

/* A journal record of up to JOURNAL_FIELDS_MAX fields, each "NAME=value" formatted into a buffer of its
 * own on the stack and sent in one sd_journal_sendv(): sd_journal_send() formats each field with
 * vasprintf, which was a fifth of a standby cycle's instructions. Fields are cut at JOURNAL_FIELD_MAX
 * bytes. Used for the records of every lease (granted, ended); the rarer ones keep sd_journal_send(). */
#define JOURNAL_FIELDS_MAX 10
#define JOURNAL_FIELD_MAX 1280

typedef struct JournalRecord {
        char fields[JOURNAL_FIELDS_MAX][JOURNAL_FIELD_MAX];
        struct iovec iov[JOURNAL_FIELDS_MAX];
        size_t n;
} JournalRecord;

_printf_(2, 3) static void jr_add(JournalRecord *r, const char *fmt, ...) {
        va_list ap;
        int k;

        if (r->n >= JOURNAL_FIELDS_MAX)
                return;
        va_start(ap, fmt);
        k = vsnprintf(r->fields[r->n], JOURNAL_FIELD_MAX, fmt, ap);
        va_end(ap);
        if (k < 0)
                return;
        r->iov[r->n] = (struct iovec) { r->fields[r->n], MIN((size_t) k, (size_t) JOURNAL_FIELD_MAX - 1) };
        r->n++;
}

static void jr_send(JournalRecord *r) {
        (void) sd_journal_sendv(r->iov, (int) r->n);
}

void audit_lease_granted(const Lease *l) {
        char groups[256], ml[32] = "";

        assert(l);
        lease_groups_to_text(l, groups, sizeof groups);
        if (l->memlock > 0)
                (void) memlock_format_size(l->memlock, ml, sizeof ml);
        char grant[64] = "";
        if (l->delivery == LEASE_DELIVERY_NODE_GRANT)
                (void) snprintf(grant, sizeof grant, " to uid %u", (unsigned) l->grant_uid);
        log_info("Lease %s (\"%s\") granted to uid %u pid %i: groups %s, delivery %s%s, owner %s%s%s%s%s.", l->id,
                 strempty(l->label), (unsigned) l->uid, (int) l->pid, groups, lease_delivery_to_string(l->delivery),
                 grant, owner_kind_to_string(l->owner_kind),
                 l->owner_kind == OWNER_PROCESS ? " (pid watched)" : "",
                 l->kvm_registered ? ", registered with its VM by the client" : "",
                 l->memlock > 0 ? ", RLIMIT_MEMLOCK raised to " : "", ml);
        JournalRecord r;
        r.n = 0;
        jr_add(&r, "MESSAGE=Lease %s granted: groups %s", l->id, groups);
        jr_add(&r, "MESSAGE_ID=" MESSAGE_ID_LEASE_STARTED);
        jr_add(&r, "LEASE=%s", l->id);
        jr_add(&r, "GROUP=%s", groups);
        jr_add(&r, "OWNER_UID=%u", (unsigned) l->uid);
        jr_add(&r, "LABEL=%s", strempty(l->label));
        jr_add(&r, "DELIVERY=%s", lease_delivery_to_string(l->delivery));
        jr_add(&r, "GRANT_UID=%i", l->delivery == LEASE_DELIVERY_NODE_GRANT ? (int) l->grant_uid : -1);
        jr_add(&r, "PRIORITY=%i", LOG_INFO);
        jr_send(&r);
}

void audit_lease_ended(const Lease *l, int error, const char *detail) {
        const char *reason;
        char groups[256];

        assert(l);
        reason = lease_reason_to_string(l->reason);
        lease_groups_to_text(l, groups, sizeof groups);
        if (error == 0)
                log_info("Lease %s (\"%s\") ended: %s; groups %s; host drivers restored: %s", l->id,
                         strempty(l->label), reason, groups, strempty(detail));
        else
                log_error_errno(error, "Lease %s (\"%s\") ended: %s; groups %s; restoring failed: %s", l->id,
                                strempty(l->label), reason, groups, strempty(detail));

        JournalRecord r;
        r.n = 0;
        jr_add(&r, "MESSAGE=Lease %s ended: %s", l->id, reason);
        jr_add(&r, "MESSAGE_ID=%s",
               l->reason == LEASE_REASON_REVOKED ? MESSAGE_ID_LEASE_REVOKED : MESSAGE_ID_LEASE_ENDED);
        jr_add(&r, "LEASE=%s", l->id);
        jr_add(&r, "GROUP=%s", groups);
        jr_add(&r, "OWNER_UID=%u", (unsigned) l->uid);
        jr_add(&r, "REASON=%s", reason);
        jr_add(&r, "DETAIL=%s", strempty(detail));
        jr_add(&r, "PRIORITY=%i", error == 0 ? LOG_INFO : LOG_ERR);
        jr_send(&r);
}

void audit_acquire_refused(const Caller *c, unsigned group, const char *why) {
        assert(c);
        log_notice("Refused group %u to uid %u pid %i: %s", group, (unsigned) c->uid, (int) c->pid, why);
        (void) sd_journal_send("MESSAGE=Refused group %u to uid %u: %s", group, (unsigned) c->uid, why,
                               "MESSAGE_ID=" MESSAGE_ID_ACQUIRE_REFUSED, "GROUP=%u", group, "OWNER_UID=%u",
                               (unsigned) c->uid, "PRIORITY=%i", LOG_NOTICE, NULL);
}

void audit_lease_revoked(const Lease *l, const Caller *c, uint64_t deadline_usec, bool force) {
        char groups[256];

        assert(l);
        assert(c);
        lease_groups_to_text(l, groups, sizeof groups);
        log_notice("Lease %s (\"%s\", uid %u) revoked by uid %u pid %i: groups %s, deadline %" PRIu64 " ms%s.",
                   l->id, strempty(l->label), (unsigned) l->uid, (unsigned) c->uid, (int) c->pid, groups,
                   deadline_usec / 1000, force ? ", then by force" : "");
        (void) sd_journal_send("MESSAGE=Lease %s revoked by uid %u", l->id, (unsigned) c->uid,
                               "MESSAGE_ID=" MESSAGE_ID_LEASE_REVOKED, "LEASE=%s", l->id, "GROUP=%s", groups,
                               "OWNER_UID=%u", (unsigned) l->uid, "REVOKER_UID=%u", (unsigned) c->uid,
                               "REVOKER_PID=%i", (int) c->pid, "DEADLINE_USEC=%" PRIu64, deadline_usec,
                               "FORCE=%i", (int) force, "PRIORITY=%i", LOG_NOTICE, NULL);
}

void audit_revoke_signal(const Lease *l, int sig) {
        assert(l);
        log_warning("Revoked lease %s is held up past its deadline: sent %s to its owner, pid %i.", l->id,
                    sig == SIGKILL ? "SIGKILL" : "SIGTERM", (int) l->owner_pid);
        (void) sd_journal_send("MESSAGE=Revoked lease %s held up: %s sent to pid %i", l->id,
                               sig == SIGKILL ? "SIGKILL" : "SIGTERM", (int) l->owner_pid,
                               "MESSAGE_ID=" MESSAGE_ID_LEASE_REVOKED, "LEASE=%s", l->id, "SIGNAL=%i", sig,
                               "OWNER_PID=%i", (int) l->owner_pid, "PRIORITY=%i", LOG_WARNING, NULL);
}

void audit_device_changed(const Lease *l, const char *address, const char *what) {
        assert(address);
        assert(what);
        if (l)
                log_warning("Lease %s (\"%s\"): %s %s.", l->id, strempty(l->label), address, what);
        else
                log_info("%s %s.", address, what);
        (void) sd_journal_send("MESSAGE=%s %s", address, what, "MESSAGE_ID=" MESSAGE_ID_DEVICE_CHANGED,
                               "DEVICE=%s", address, "LEASE=%s", l ? l->id : "", "PRIORITY=%i",
                               l ? LOG_WARNING : LOG_INFO, NULL);
}

void audit_acquire_failed(const Lease *l, const char *why, const char *detail) {
        char groups[256];

        assert(l);
        lease_groups_to_text(l, groups, sizeof groups);
        log_warning("Acquire of lease %s (\"%s\") failed and was rolled back: %s%s%s", l->id, strempty(l->label),
                    strempty(why), isempty(detail) ? "" : "; devices: ", strempty(detail));
        (void) sd_journal_send("MESSAGE=Acquire of groups %s by uid %u failed and was rolled back: %s", groups,
                               (unsigned) l->uid, strempty(why), "MESSAGE_ID=" MESSAGE_ID_ACQUIRE_FAILED,
                               "LEASE=%s", l->id, "GROUP=%s", groups, "OWNER_UID=%u", (unsigned) l->uid,
                               "DETAIL=%s", strempty(detail), "PRIORITY=%i", LOG_WARNING, NULL);
}

void audit_owner_refused(const Caller *c, pid_t owner_pid, uid_t owner_uid) {
        assert(c);
        log_notice("Refused uid %u pid %i an owner process it may not name: pid %i (uid %i).", (unsigned) c->uid,
                   (int) c->pid, (int) owner_pid, (int) owner_uid);
        (void) sd_journal_send("MESSAGE=Refused uid %u an owner process it may not name (pid %i)", (unsigned) c->uid,
                               (int) owner_pid, "MESSAGE_ID=" MESSAGE_ID_OWNER_REFUSED, "OWNER_UID=%u",
                               (unsigned) c->uid, "CALLER_PID=%i", (int) c->pid, "NAMED_PID=%i", (int) owner_pid,
                               "NAMED_UID=%i", (int) owner_uid, "PRIORITY=%i", LOG_NOTICE, NULL);
}

void audit_token_refused(Manager *m, const Caller *c, const char *what) {
        unsigned held = 0;

        assert(m);
        assert(c);
        if (!ratelimit_below(&m->token_refusals, now_usec(CLOCK_MONOTONIC), &held))
                return;
        log_notice("Refused a token from uid %u pid %i: %s%s.", (unsigned) c->uid, (int) c->pid, what,
                   held > 0 ? " (and more refusals, not logged)" : "");
        (void) sd_journal_send("MESSAGE=Refused a token from uid %u: %s", (unsigned) c->uid, what,
                               "MESSAGE_ID=" MESSAGE_ID_TOKEN_REFUSED, "OWNER_UID=%u", (unsigned) c->uid,
                               "CALLER_PID=%i", (int) c->pid, "SUPPRESSED=%u", held, "PRIORITY=%i", LOG_NOTICE,
                               NULL);
}
