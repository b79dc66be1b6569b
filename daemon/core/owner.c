/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdio.h>
#include <systemd/sd-login.h>

#include "log.h"
#include "manager-internal.h"
#include "state.h"

/* The one path by which an owner's end ends its leases, whatever the owner was. A lease still being
 * acquired ends as soon as its devices are prepared (manager_release_lease() defers it). */
static void lease_owner_gone(Lease *l, LeaseReason reason, const char *what) {
        if (!lease_is_live(l))
                return;
        log_info("Owner of lease %s (\"%s\") is gone: %s.", l->id, strempty(l->label), what);
        (void) manager_release_lease(l->manager, l, reason);
}

static int on_owner_exited(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Lease *l = userdata;
        char what[64];

        (void) snprintf(what, sizeof what, "pid %i exited", (int) l->owner_pid);
        lease_owner_gone(l, LEASE_REASON_OWNER_EXITED, what);
        return 0;
}

static int on_lease_fd_closed(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        lease_owner_gone(userdata, LEASE_REASON_LEASE_FD_CLOSED, "every copy of its lease fd was closed");
        return 0;
}

void manager_connection_closed(Manager *m, uint64_t connection_id) {
        Lease *next;

        assert(m);
        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->owner_kind == OWNER_CONNECTION && l->connection_id == connection_id)
                        lease_owner_gone(l, LEASE_REASON_CONNECTION_CLOSED, "its connection closed");
        }
}

void manager_bus_name_vanished(Manager *m, const char *name) {
        Lease *next;

        assert(m);
        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->owner_kind == OWNER_BUS_NAME && (!name || streq_ptr(l->bus_name, name)))
                        lease_owner_gone(l, LEASE_REASON_CONNECTION_CLOSED,
                                         name ? "its D-Bus name left the bus" : "groupd lost the bus");
        }
}

int pidfd_get_pid(int pidfd, pid_t *ret) {
        char path[64], line[128];
        FILE *f;
        int r = -ENOENT;

        assert(ret);
        if (pidfd < 0)
                return -EBADF;
        (void) snprintf(path, sizeof path, "/proc/self/fdinfo/%i", pidfd);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                int pid;
                if (sscanf(line, "Pid: %i", &pid) == 1) {
                        r = pid > 0 ? 0 : -ESRCH; /* -1: the process is gone already */
                        if (r == 0)
                                *ret = pid;
                        break;
                }
        }
        fclose(f);
        return r == -ENOENT ? -EBADF : r;  /* no Pid: line: not a pidfd */
}

/* Real, effective and saved uid of pid, from /proc/PID/status. */
static int process_uids(pid_t pid, uid_t ret[3]) {
        char path[64], line[256];
        FILE *f;
        int r = -EIO;

        (void) snprintf(path, sizeof path, "/proc/%i/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : -errno;
        while (fgets(line, sizeof line, f)) {
                unsigned u[3];
                if (sscanf(line, "Uid: %u %u %u", &u[0], &u[1], &u[2]) == 3) {
                        for (int i = 0; i < 3; i++)
                                ret[i] = (uid_t) u[i];
                        r = 0;
                        break;
                }
        }
        fclose(f);
        return r;
}

static int process_ppid(pid_t pid, pid_t *ret) {
        char path[64], buf[1024], *p;
        FILE *f;
        size_t n;
        int ppid;

        (void) snprintf(path, sizeof path, "/proc/%i/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : -errno;
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        /* "PID (comm) S PPID ...": comm may hold anything, ')' included; the last ')' ends it. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %i", &ppid) != 1)
                return -EIO;
        *ret = ppid;
        return 0;
}

static bool process_descends_from(pid_t pid, pid_t ancestor) {
        if (ancestor <= 0)
                return false;
        for (unsigned depth = 0; pid > 1 && depth < 4096; depth++) {
                if (pid == ancestor)
                        return true;
                if (process_ppid(pid, &pid) < 0)
                        return false;
        }
        return false;
}

int owner_check_process(Manager *m, const Caller *c, pid_t pid, int pidfd, bool audit, uid_t *ret_uid,
                        ManagerError *err) {
        PolicySubject subject = { .uid = c->uid, .gid = c->gid, .gids = c->gids, .n_gids = c->n_gids };
        char rule[MANAGER_TEXT_MAX] = "";
        uid_t uids[3] = { (uid_t) -1, (uid_t) -1, (uid_t) -1 };
        const char *why = NULL;
        pid_t again;
        int r;

        assert(m);
        assert(c);

        if (c->owner_any_authorized)
                why = "authorized by the edge (polkit)";
        else if (pid == c->pid && c->pid > 0)
                why = "the caller itself";
        else if (process_uids(pid, uids) >= 0 && uids[0] == c->uid && uids[1] == c->uid && uids[2] == c->uid)
                why = "runs under the caller's uid";
        else if (process_descends_from(pid, c->pid))
                why = "a descendant of the caller";
        else if (policy_check_owner_any(m->policy, &subject, rule, sizeof rule) >= 0)
                why = rule;

        if (uids[0] == (uid_t) -1)
                (void) process_uids(pid, uids);
        if (ret_uid)
                *ret_uid = uids[0];
        /* What was read of /proc/PID was the pidfd's process only if it still is (a pid is reused only
         * once its process is gone, and then the pidfd says so). */
        r = pidfd_get_pid(pidfd, &again);
        if (r < 0 || again != pid) {
                manager_error(err, MANAGER_ERROR_INVALID, ESRCH, "the owner process has exited already");
                return -ESRCH;
        }
        if (why) {
                log_debug("Owner pid %i allowed for uid %u pid %i: %s.", (int) pid, (unsigned) c->uid, (int) c->pid,
                          why);
                return 0;
        }
        manager_error(err, MANAGER_ERROR_DENIED, EPERM,
                      "owner process pid %i (uid %i) is not the caller (pid %i), nor its descendant, nor run by its "
                      "uid %u: naming another's process as owner (and so having its RLIMIT_MEMLOCK raised) needs "
                      "root or an \"owner-any\" rule for uid %u in the policy file (%s); D-Bus callers, the polkit "
                      "action org.groupd1.acquire-for-other", (int) pid, (int) uids[0], (int) c->pid,
                      (unsigned) c->uid, (unsigned) c->uid, rule);
        if (audit)
                audit_owner_refused(c, pid, uids[0]);
        return -EPERM;
}

/* The pid of a would-be owner's pidfd, or an error saying why there is none. */
int owner_pidfd_get_pid(int owner_pidfd, pid_t *ret, ManagerError *err) {
        int r;

        assert(ret);
        r = pidfd_get_pid(owner_pidfd, ret);
        if (r == -ESRCH) {
                manager_error(err, MANAGER_ERROR_INVALID, ESRCH, "the owner process has exited already");
                return r;
        }
        if (r < 0) {
                manager_error(err, MANAGER_ERROR_INVALID, EBADF, "the owner fd is not a pidfd");
                return -EBADF;
        }
        return 0;
}

int manager_check_owner(Manager *m, const Caller *c, int owner_pidfd, pid_t *ret_pid, uid_t *ret_uid,
                        ManagerError *err) {
        pid_t pid;
        int r;

        assert(m);
        assert(c);
        r = owner_pidfd_get_pid(owner_pidfd, &pid, err);
        if (r < 0)
                return r;
        if (ret_pid)
                *ret_pid = pid;
        /* A question, not a refusal yet: the edge may authorize it. */
        return owner_check_process(m, c, pid, owner_pidfd, false, ret_uid, err);
}

int lease_watch_owner(Lease *l) {
        Manager *m;

        assert(l);
        assert(!l->owner_source);
        m = l->manager;

        switch (l->owner_kind) {
        case OWNER_PROCESS:
                return sd_event_add_io(m->event, &l->owner_source, l->owner_pidfd, EPOLLIN, on_owner_exited, l);
        case OWNER_LEASE_FD:
                return sd_event_add_io(m->event, &l->owner_source, l->lease_fd, EPOLLIN, on_lease_fd_closed, l);
        default:
                return 0;
        }
}

bool lease_owner_alive(const Lease *l) {
        uint64_t t;

        assert(l);
        if (l->owner_kind != OWNER_PROCESS || l->owner_pid <= 0)
                return false;
        if (process_starttime(l->owner_pid, &t) < 0)
                return false;
        return l->owner_starttime == 0 || t == l->owner_starttime;
}

void caller_read_cgroup(Caller *c) {
        _cleanup_free_ char *cg = NULL;

        assert(c);
        c->cgroup[0] = 0;
        if (c->pid > 0 && sd_pid_get_cgroup(c->pid, &cg) >= 0 && strlen(cg) < sizeof c->cgroup)
                strcpy(c->cgroup, cg);
}
