/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

#include "fd-util.h"
#include "log.h"
#include "manager-internal.h"
#include "state.h"

#define DEFAULT_RELEASE_DEADLINE_USEC (10ULL * 1000000ULL)

void manager_error(ManagerError *err, ManagerErrorCode code, int errno_value, const char *fmt, ...) {
        va_list ap;

        if (!err)
                return;
        err->code = code;
        err->errno_value = abs(errno_value);
        va_start(ap, fmt);
        (void) vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
}

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

const char *manager_host_kind(Manager *m) {
        assert(m);
        return host_kind_to_string(host_get_kind(m->host));
}

int manager_list_group_ids(Manager *m, unsigned **ret, size_t *ret_n) {
        assert(m);
        return host_list_groups(m->host, ret, ret_n);
}

uint64_t manager_started_usec(Manager *m) {
        assert(m);
        return m->started_usec;
}

size_t manager_n_leases(Manager *m) {
        assert(m);
        return m->n_leases;
}

Lease *manager_first_lease(Manager *m) {
        assert(m);
        return m->leases;
}

Lease *manager_find_lease(Manager *m, const char *id) {
        assert(m);
        for (Lease *l = m->leases; l; l = l->next)
                if (streq(l->id, strempty(id)))
                        return l;
        return NULL;
}

/* ---------------------------------------------------------------- listeners */

int manager_add_listener(Manager *m, ManagerEventFunc func, void *userdata) {
        assert(m);
        assert(func);
        if (m->n_listeners >= LISTENERS_MAX)
                return -E2BIG;
        m->listeners[m->n_listeners].func = func;
        m->listeners[m->n_listeners].userdata = userdata;
        m->n_listeners++;
        return 0;
}

void manager_remove_listener(Manager *m, ManagerEventFunc func, void *userdata) {
        assert(m);
        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].func == func && m->listeners[i].userdata == userdata) {
                        memmove(m->listeners + i, m->listeners + i + 1,
                                (m->n_listeners - i - 1) * sizeof m->listeners[0]);
                        m->n_listeners--;
                        return;
                }
}

void manager_emit(Manager *m, ManagerEvent kind, const Lease *l, unsigned group, int errno_value,
                  const char *detail) {
        assert(m);
        assert(kind >= 0 && kind < _MANAGER_EVENT_MAX);
        for (size_t i = 0; i < m->n_listeners; i++)
                m->listeners[i].func(m, kind, l, group, errno_value, detail, m->listeners[i].userdata);
}

/* ---------------------------------------------------------------- the registry and the holder index */

Lease *manager_group_holder(Manager *m, unsigned group) {
        assert(m);
        return group < m->n_holders ? m->holders[group] : NULL;
}

int manager_hold_group(Manager *m, unsigned group, Lease *l) {
        assert(m);
        assert(l);
        if (group >= m->n_holders) {
                size_t n = MAX((size_t) group + 1, m->n_holders * 2);
                Lease **h = reallocarray(m->holders, n, sizeof *h);
                if (!h)
                        return -ENOMEM;
                memset(h + m->n_holders, 0, (n - m->n_holders) * sizeof *h);
                m->holders = h;
                m->n_holders = n;
        }
        /* The single rule: a group is never shared between two leases. */
        if (m->holders[group] && m->holders[group] != l)
                return -EBUSY;
        m->holders[group] = l;
        return 0;
}

void manager_unhold_lease(Manager *m, Lease *l) {
        assert(m);
        assert(l);
        for (size_t i = 0; i < l->n_groups; i++)
                if (l->groups[i] < m->n_holders && m->holders[l->groups[i]] == l)
                        m->holders[l->groups[i]] = NULL;
}

void manager_link_lease(Manager *m, Lease *l) {
        assert(m);
        assert(l);
        assert(!l->prev && !l->next && m->leases != l);
        l->prev = m->leases_tail;
        l->next = NULL;
        if (m->leases_tail)
                m->leases_tail->next = l;
        else
                m->leases = l;
        m->leases_tail = l;
        m->n_leases++;
}

void manager_unlink_lease(Manager *m, Lease *l) {
        assert(m);
        assert(l);
        assert(m->n_leases > 0);
        manager_unhold_lease(m, l);
        if (l->prev)
                l->prev->next = l->next;
        else
                m->leases = l->next;
        if (l->next)
                l->next->prev = l->prev;
        else
                m->leases_tail = l->prev;
        l->prev = l->next = NULL;
        m->n_leases--;
}

void manager_save(Manager *m) {
        int r;

        assert(m);
        r = state_write(m->state_path, m->leases);
        if (r < 0) {
                log_error_errno(r, "Failed to write state file %s: %m", m->state_path);
                return;
        }
        for (Lease *l = m->leases; l; l = l->next)
                l->saved_state = l->state;
}

/* Does a restart act on what the state file says of l's state? Only where the lease can outlive the daemon
 * (fd-store.c stores exactly these): an ACTIVE process- or lease-fd-owned lease is kept when its owner is
 * still there, anything else is put back. A connection's or a bus name's lease dies with the daemon, so
 * for the restart its record only has to exist (written before a device is touched) and go (once the
 * devices are back); whether it says acquiring, active or releasing changes nothing. */
static bool lease_state_survives_restart(const Lease *l) {
        return l->owner_kind == OWNER_PROCESS || l->owner_kind == OWNER_LEASE_FD;
}

void manager_save_state_change(Manager *m, Lease *l) {
        assert(m);
        assert(l);
        if (lease_state_survives_restart(l) && l->saved_state != l->state)
                manager_save(m);
}

int manager_check_request_size(size_t n_specs, ManagerError *err) {
        if (n_specs > 0 && n_specs <= LEASE_GROUPS_MAX)
                return 0;
        manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "an acquire names 1 to %u groups, not %zu",
                      LEASE_GROUPS_MAX, n_specs);
        return -EINVAL;
}

/* ---------------------------------------------------------------- life */

int manager_start(Manager *m, ManagerError *err) {
        _cleanup_free_ char *perr = NULL;
        int r;

        assert(m);
        assert(!m->policy);

        r = policy_load(m->policy_path, &m->policy, &perr);
        if (r == -ENOENT && m->policy_path) {
                log_notice("Policy file %s does not exist; using the built-in default (root only, never a "
                           "storage controller).", m->policy_path);
                r = policy_load(NULL, &m->policy, &perr);
        }
        if (r < 0) {
                manager_error(err, MANAGER_ERROR_INVALID, r, "%s", perr ?: strerror(-r));
                return r;
        }

        r = manager_watch_host(m);
        if (r < 0)
                log_warning_errno(r, "Failed to watch the host for changes: %m");
        r = manager_reconcile(m);
        if (r < 0)
                return r;
        (void) manager_standby_start(m);
        return 0;
}

int manager_new(sd_event *e, Host *host, const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        assert(e);
        assert(host);
        assert(config);
        assert(config->runtime_dir);
        assert(ret);

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->release_deadline_usec = config->release_deadline_usec ?: DEFAULT_RELEASE_DEADLINE_USEC;
        m->keep_leases_on_exit = config->keep_leases_on_exit;
        m->token_refusals = RATELIMIT_INIT(10 * 1000000ULL, 5);
        m->started_usec = now_usec(CLOCK_REALTIME);
        m->runtime_dir = strdup(config->runtime_dir);
        if (!m->runtime_dir || asprintf(&m->state_path, "%s/state", config->runtime_dir) < 0)
                return -ENOMEM;
        if (config->policy_path) {
                m->policy_path = strdup(config->policy_path);
                if (!m->policy_path)
                        return -ENOMEM;
        }

        r = worker_new(e, &m->worker);
        if (r < 0)
                return r;

        /* The host is the manager's only once nothing can fail any more: on failure the caller keeps it. */
        m->host = host;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Leases still recorded stay in the state file for the next start. */
        while (m->leases) {
                Lease *l = m->leases;
                manager_unlink_lease(m, l);
                lease_free(l);
        }
        manager_close_stored(m);
        free(m->holders);
        sd_event_source_disable_unref(m->shutdown_timer);
        sd_event_source_disable_unref(m->host_watch_source);
        /* A release held up past the shutdown deadline still runs on a thread and goes on using the host
         * after its held-up step returns: stop the host, let the job end, and free the host only then (or
         * leave it to the job: the daemon is exiting). */
        host_stop(m->host);
        if (!worker_wait_idle(m->worker, 2000)) {
                log_warning("A driver operation is still under way at exit; leaving the host to it.");
                m->host = NULL;
        }
        worker_free(m->worker);
        policy_free(m->policy);
        host_free(m->host);
        sd_event_unref(m->event);
        free(m->runtime_dir);
        free(m->state_path);
        free(m->policy_path);
        free(m);
        return NULL;
}

/* ---------------------------------------------------------------- shutdown */

static void manager_finish_shutdown(Manager *m) {
        void (*done)(Manager *, void *) = m->shutdown_done;

        m->shutdown_done = NULL;
        m->shutdown_timer = sd_event_source_disable_unref(m->shutdown_timer);
        if (done)
                done(m, m->shutdown_userdata);
}

void manager_check_shutdown(Manager *m) {
        assert(m);
        if (!m->shutting_down || !m->shutdown_done)
                return;
        for (Lease *l = m->leases; l; l = l->next)
                if (l->state == LEASE_RELEASING || l->state == LEASE_ACQUIRING)
                        return;
        manager_finish_shutdown(m);
}

static int on_shutdown_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        size_t n = 0;

        for (Lease *l = m->leases; l; l = l->next)
                if (l->state != LEASE_ACTIVE)
                        n++;
        log_warning("Shutting down with %zu release(s) unfinished; the state file keeps them, and the next "
                    "start finishes them.", n);
        /* The lease ends as far as this daemon goes: subscribers hear so, with what is left to do. */
        for (Lease *l = m->leases; l; l = l->next)
                if (l->state == LEASE_RELEASING)
                        manager_emit(m, MANAGER_EVENT_LEASE_ENDED, l, 0, ETIMEDOUT,
                                     "groupd shut down before the host drivers came back (a process still "
                                     "holds a device open); the next start of groupd finishes the release");
        manager_finish_shutdown(m);
        return 0;
}

int manager_shutdown(Manager *m, void (*done)(Manager *m, void *userdata), void *userdata) {
        Lease *next;

        assert(m);
        m->shutting_down = true;
        m->shutdown_done = done;
        m->shutdown_userdata = userdata;

        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->state != LEASE_ACTIVE)
                        continue;
                if (m->keep_leases_on_exit && l->owner_kind == OWNER_PROCESS) {
                        log_info("Keeping lease %s across the restart: owner pid %i.", l->id, (int) l->owner_pid);
                        continue;
                }
                /* A lease fd outlives the daemon only in the fd store. */
                if (m->keep_leases_on_exit && l->owner_kind == OWNER_LEASE_FD && l->fds_stored) {
                        log_info("Keeping lease %s across the restart: its lease fd is in the fd store.", l->id);
                        continue;
                }
                if (m->keep_leases_on_exit)
                        log_notice("Not keeping lease %s across the restart: %s; releasing it.", l->id,
                                   l->owner_kind == OWNER_LEASE_FD ?
                                   "its lease fd is not in systemd's fd store, so a restarted groupd could not "
                                   "tell when its holder lets go" :
                                   "its owner (a connection or D-Bus name) ends with this daemon");
                (void) manager_release_lease(m, l, LEASE_REASON_SHUTDOWN);
        }

        (void) sd_event_add_time_relative(m->event, &m->shutdown_timer, CLOCK_MONOTONIC,
                                          m->release_deadline_usec, 0, on_shutdown_deadline, m);
        manager_check_shutdown(m);
        return 0;
}
