/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "fd-util.h"
#include "log.h"
#include "manager.h"
#include "memlock.h"
#include "state.h"
#include "worker.h"

#define LISTENERS_MAX 4
#define DEFAULT_RELEASE_DEADLINE_USEC (10ULL * 1000000ULL)

/* Message ids for the journal: grants, refusals, releases. */
#define MESSAGE_ID_LEASE_STARTED "8a1f3c5e2b7d4e0f9a6c1d2e3f405162"
#define MESSAGE_ID_LEASE_ENDED "8a1f3c5e2b7d4e0f9a6c1d2e3f405163"
#define MESSAGE_ID_ACQUIRE_REFUSED "8a1f3c5e2b7d4e0f9a6c1d2e3f405164"

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

        bool shutting_down;
        void (*shutdown_done)(Manager *m, void *userdata);
        void *shutdown_userdata;
        sd_event_source *shutdown_timer;
};

static void manager_error(ManagerError *err, GdError code, int errno_value, const char *fmt, ...)
        _printf_(4, 5);
static void manager_error(ManagerError *err, GdError code, int errno_value, const char *fmt, ...) {
        va_list ap;

        if (!err)
                return;
        err->code = code;
        err->errno_value = abs(errno_value);
        va_start(ap, fmt);
        (void) vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
}

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

Host *manager_get_host(Manager *m) {
        return m->host;
}

uint64_t manager_started_usec(Manager *m) {
        return m->started_usec;
}

size_t manager_n_leases(Manager *m) {
        return m->n_leases;
}

Lease *manager_first_lease(Manager *m) {
        return m->leases;
}

int manager_add_listener(Manager *m, ManagerEventFunc func, void *userdata) {
        if (m->n_listeners >= LISTENERS_MAX)
                return -E2BIG;
        m->listeners[m->n_listeners].func = func;
        m->listeners[m->n_listeners].userdata = userdata;
        m->n_listeners++;
        return 0;
}

void manager_remove_listener(Manager *m, ManagerEventFunc func, void *userdata) {
        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].func == func && m->listeners[i].userdata == userdata) {
                        memmove(m->listeners + i, m->listeners + i + 1,
                                (m->n_listeners - i - 1) * sizeof m->listeners[0]);
                        m->n_listeners--;
                        return;
                }
}

static void manager_emit(Manager *m, GdEventKind kind, const Lease *l, unsigned group, int errno_value,
                         const char *detail) {
        for (size_t i = 0; i < m->n_listeners; i++)
                m->listeners[i].func(m, kind, l, group, errno_value, detail, m->listeners[i].userdata);
}

/* ---------------------------------------------------------------- the holder index */

static Lease *manager_group_holder(Manager *m, unsigned group) {
        return group < m->n_holders ? m->holders[group] : NULL;
}

static int manager_hold_group(Manager *m, unsigned group, Lease *l) {
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

static void manager_unhold_lease(Manager *m, Lease *l) {
        for (size_t i = 0; i < l->n_groups; i++)
                if (l->groups[i] < m->n_holders && m->holders[l->groups[i]] == l)
                        m->holders[l->groups[i]] = NULL;
}

static void manager_link_lease(Manager *m, Lease *l) {
        l->prev = m->leases_tail;
        l->next = NULL;
        if (m->leases_tail)
                m->leases_tail->next = l;
        else
                m->leases = l;
        m->leases_tail = l;
        m->n_leases++;
}

static void manager_drop_lease(Manager *m, Lease *l) {
        manager_unhold_lease(m, l);
        if (l->prev)
                l->prev->next = l->next;
        else
                m->leases = l->next;
        if (l->next)
                l->next->prev = l->prev;
        else
                m->leases_tail = l->prev;
        m->n_leases--;
        lease_free(l);
}

static void manager_save(Manager *m) {
        int r = state_write(m->state_path, m->leases);
        if (r < 0)
                log_error_errno(r, "Failed to write state file %s: %m", m->state_path);
}

/* ---------------------------------------------------------------- the fd store */

static int pidfd_get_pid(int pidfd, pid_t *ret);

typedef enum LeaseFdKind {
        LEASE_FD_CONTAINER,
        LEASE_FD_GROUP,
        LEASE_FD_OWNER,
} LeaseFdKind;

/* Names keep to what systemd accepts in FDNAME= (printable ASCII, no ':', at most 255 characters). */
static void lease_fd_name(const Lease *l, LeaseFdKind kind, unsigned group, char *buf, size_t size) {
        if (kind == LEASE_FD_GROUP)
                (void) snprintf(buf, size, "lease-%s-group-%u", l->id, group);
        else
                (void) snprintf(buf, size, "lease-%s-%s", l->id, kind == LEASE_FD_CONTAINER ? "container" : "owner");
}

static bool lease_is_storable(const Lease *l) {
        return l->owner_kind == GD_OWNER_PROCESS || l->owner_kind == GD_OWNER_LEASE_FD;
}

static int lease_owner_fd(const Lease *l) {
        return l->owner_kind == GD_OWNER_PROCESS ? l->owner_pidfd : l->lease_fd;
}

void manager_set_fd_store(Manager *m, ManagerFdStoreFunc func, void *userdata) {
        m->fd_store_func = func;
        m->fd_store_userdata = userdata;
}

static void manager_store_fd(Manager *m, const Lease *l, LeaseFdKind kind, unsigned group, int fd) {
        char name[128];

        lease_fd_name(l, kind, group, name, sizeof name);
        m->fd_store_func(m, name, fd, m->fd_store_userdata);
}

static void manager_store_lease_fds(Manager *m, Lease *l) {
        if (!m->fd_store_func || !lease_is_storable(l) || l->fds_stored)
                return;
        if (l->container_fd >= 0)
                manager_store_fd(m, l, LEASE_FD_CONTAINER, 0, l->container_fd);
        for (size_t i = 0; i < l->n_groups; i++)
                if (l->group_fds[i] >= 0)
                        manager_store_fd(m, l, LEASE_FD_GROUP, l->groups[i], l->group_fds[i]);
        if (lease_owner_fd(l) >= 0)
                manager_store_fd(m, l, LEASE_FD_OWNER, 0, lease_owner_fd(l));
        l->fds_stored = true;
}

static void manager_unstore_lease_fds(Manager *m, Lease *l) {
        if (!l->fds_stored)
                return;
        l->fds_stored = false;
        if (!m->fd_store_func)
                return;
        manager_store_fd(m, l, LEASE_FD_CONTAINER, 0, -EBADF);
        for (size_t i = 0; i < l->n_groups; i++)
                manager_store_fd(m, l, LEASE_FD_GROUP, l->groups[i], -EBADF);
        manager_store_fd(m, l, LEASE_FD_OWNER, 0, -EBADF);
}

int manager_offer_stored_fd(Manager *m, const char *name, int fd_consume) {
        _cleanup_close_ int fd = fd_consume;
        void *a;

        if (isempty(name) || strlen(name) > 255)
                return -EINVAL;
        a = reallocarray(m->stored, m->n_stored + 1, sizeof *m->stored);
        if (!a)
                return -ENOMEM;
        m->stored = a;
        m->stored[m->n_stored].name = strdup(name);
        if (!m->stored[m->n_stored].name)
                return -ENOMEM;
        m->stored[m->n_stored].fd = TAKE_FD(fd);
        m->n_stored++;
        return 0;
}

/* The stored fd of that name, taken out of the offered set; -EBADF if none came back. */
static int manager_claim_stored_fd(Manager *m, const Lease *l, LeaseFdKind kind, unsigned group) {
        char name[128];

        lease_fd_name(l, kind, group, name, sizeof name);
        for (size_t i = 0; i < m->n_stored; i++) {
                int fd;

                if (m->stored[i].fd < 0 || !streq(m->stored[i].name, name))
                        continue;
                fd = TAKE_FD(m->stored[i].fd);
                return fd;
        }
        return -EBADF;
}

/* Gives a recovered lease the fds the store kept for it. Returns whether its owner is known alive from
 * them: a pidfd of the recorded pid whose process runs, or a lease fd whose write end is still open
 * somewhere. */
static bool manager_recover_lease_fds(Manager *m, Lease *l) {
        _cleanup_close_ int owner_fd = -EBADF;
        bool any = false, alive = false;

        if (!lease_is_storable(l))
                return false;

        l->container_fd = manager_claim_stored_fd(m, l, LEASE_FD_CONTAINER, 0);
        any = l->container_fd >= 0;
        for (size_t i = 0; i < l->n_groups; i++) {
                l->group_fds[i] = manager_claim_stored_fd(m, l, LEASE_FD_GROUP, l->groups[i]);
                any = any || l->group_fds[i] >= 0;
        }
        owner_fd = manager_claim_stored_fd(m, l, LEASE_FD_OWNER, 0);
        any = any || owner_fd >= 0;
        l->fds_stored = any; /* whatever came back is still in the store, until the release drops it */

        if (owner_fd < 0)
                return false;
        if (l->owner_kind == GD_OWNER_PROCESS) {
                pid_t pid;
                /* -ESRCH: the process is gone (its pidfd says pid -1). */
                if (pidfd_get_pid(owner_fd, &pid) < 0 || pid != l->owner_pid)
                        return false;
                l->owner_pidfd = TAKE_FD(owner_fd);
                alive = true;
        } else {
                struct pollfd p = { .fd = owner_fd, .events = POLLIN };
                /* POLLHUP on the read end: every write end (the owner's lease fd) is closed. */
                if (poll(&p, 1, 0) < 0 || (p.revents & (POLLHUP|POLLERR|POLLNVAL)))
                        return false;
                l->lease_fd = TAKE_FD(owner_fd);
                alive = true;
        }
        return alive;
}

/* Fds the store gave back that no lease claimed: a lease the state file does not know (any more). */
static void manager_drop_unclaimed_fds(Manager *m) {
        for (size_t i = 0; i < m->n_stored; i++) {
                if (m->stored[i].fd >= 0) {
                        log_notice("Dropping fd \"%s\" from the fd store: no lease of the state file claims it.",
                                   m->stored[i].name);
                        m->stored[i].fd = safe_close(m->stored[i].fd);
                        if (m->fd_store_func)
                                m->fd_store_func(m, m->stored[i].name, -EBADF, m->fd_store_userdata);
                }
                free(m->stored[i].name);
        }
        free(m->stored);
        m->stored = NULL;
        m->n_stored = 0;
}

/* ---------------------------------------------------------------- groups as views */

static bool group_viability(const HostGroup *g, char *reason, size_t size) {
        size_t off = 0;
        bool viable = true;

        if (reason && size > 0)
                reason[0] = 0;

        for (size_t i = 0; i < g->n_devices; i++) {
                const HostDevice *d = &g->devices[i];
                if (host_driver_is_vfio_safe(d->driver))
                        continue;
                if (reason && off < size)
                        off += (size_t) snprintf(reason + off, size - off, "%s%s is bound to %s",
                                                 viable ? "" : "; ", d->address, d->driver);
                viable = false;
        }
        return viable;
}


static char *xstrdup(const char *s) {
        return strdup(s ?: "");
}

static int group_to_gd(Manager *m, const HostGroup *hg, GdGroup *ret) {
        char reason[GD_TEXT_MAX], note[GD_TEXT_MAX] = "";
        GdGroup g = { .id = hg->id };
        Lease *holder;

        if (group_viability(hg, reason, sizeof reason))
                g.flags |= GD_GROUP_VIABLE;
        for (size_t i = 0; i < hg->n_devices; i++)
                if (policy_device_never(m->policy, &hg->devices[i], note, sizeof note)) {
                        g.flags |= GD_GROUP_NEVER;
                        break;
                }

        holder = manager_group_holder(m, hg->id);
        if (holder) {
                g.flags |= GD_GROUP_LEASED;
                g.holder_uid = (uint32_t) holder->uid;
                g.holder_pid = (uint32_t) (holder->owner_kind == GD_OWNER_PROCESS ? holder->owner_pid : holder->pid);
        }

        g.type = xstrdup(hg->type);
        g.viability = xstrdup(reason);
        g.policy_note = xstrdup(note);
        g.lease_id = xstrdup(holder ? holder->id : "");
        g.holder_label = xstrdup(holder ? holder->label : "");
        if (hg->n_devices > 0)
                g.devices = calloc(hg->n_devices, sizeof *g.devices);
        if (hg->n_regions > 0)
                g.regions = calloc(hg->n_regions, sizeof *g.regions);
        if (!g.type || !g.viability || !g.policy_note || !g.lease_id || !g.holder_label ||
            (hg->n_devices > 0 && !g.devices) || (hg->n_regions > 0 && !g.regions))
                goto oom;

        for (size_t i = 0; i < hg->n_devices && i < GD_DEVICES_PER_GROUP_MAX; i++) {
                const HostDevice *d = &hg->devices[i];
                g.devices[i] = (GdDevice) {
                        .vendor = d->vendor,
                        .device = d->device,
                        .class_code = d->class_code,
                        .address = xstrdup(d->address),
                        .driver = xstrdup(d->driver),
                        .driver_override = xstrdup(d->driver_override),
                };
                g.n_devices++;
                if (!g.devices[i].address || !g.devices[i].driver || !g.devices[i].driver_override)
                        goto oom;
        }
        for (size_t i = 0; i < hg->n_regions && i < GD_REGIONS_PER_GROUP_MAX; i++) {
                g.regions[i] = (GdRegion) {
                        .start = hg->regions[i].start,
                        .end = hg->regions[i].end,
                        .type = xstrdup(hg->regions[i].type),
                };
                g.n_regions++;
                if (!g.regions[i].type)
                        goto oom;
        }

        *ret = g;
        return 0;

oom:
        gd_group_done(&g);
        return -ENOMEM;
}

int manager_list_groups(Manager *m, GdGroup **ret, size_t *ret_n) {
        _cleanup_free_ unsigned *ids = NULL;
        GdGroup *groups = NULL;
        size_t n_ids = 0, n = 0;
        int r;

        r = host_list_groups(m->host, &ids, &n_ids);
        if (r < 0)
                return r;

        if (n_ids > 0) {
                groups = calloc(n_ids, sizeof *groups);
                if (!groups)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < n_ids; i++) {
                HostGroup hg = {};

                r = host_read_group(m->host, ids[i], &hg);
                if (r == -ENOENT)
                        continue; /* vanished while we looked */
                if (r >= 0)
                        r = group_to_gd(m, &hg, &groups[n]);
                host_group_done(&hg);
                if (r < 0) {
                        gd_groups_free(groups, n);
                        return r;
                }
                n++;
        }

        *ret = groups;
        *ret_n = n;
        return 0;
}

/* Resolves "7", "0000:01:00.0" or "01:00.0" to a group number. */
static int manager_resolve_spec(Manager *m, const char *spec, unsigned *ret, ManagerError *err) {
        char addr[HOST_ADDR_MAX];
        HostDevice d;
        int r;

        if (isempty(spec)) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "empty group or device");
                return -EINVAL;
        }

        if (strspn(spec, "0123456789") == strlen(spec)) {
                char *end;
                unsigned long v;

                errno = 0;
                v = strtoul(spec, &end, 10);
                if (errno != 0 || *end != 0 || v > UINT32_MAX || strlen(spec) > 10) {
                        manager_error(err, GD_ERR_INVALID, EINVAL, "\"%s\" is not a valid group number", spec);
                        return -EINVAL;
                }
                *ret = (unsigned) v;
                return 0;
        }

        r = host_parse_pci_address(spec, addr);
        if (r < 0) {
                manager_error(err, GD_ERR_INVALID, EINVAL,
                              "\"%s\" is neither a group number nor a PCI address (like 0000:01:00.0)", spec);
                return -EINVAL;
        }
        r = host_read_device(m->host, addr, &d);
        if (r == -ENOENT) {
                manager_error(err, GD_ERR_NOT_FOUND, ENOENT, "no PCI device %s", addr);
                return r;
        }
        if (r < 0) {
                manager_error(err, GD_ERR_HOST, r, "cannot read PCI device %s: %s", addr, strerror(-r));
                return r;
        }
        *ret = d.group;
        return 0;
}

static int manager_read_group(Manager *m, unsigned id, HostGroup *ret, ManagerError *err) {
        int r = host_read_group(m->host, id, ret);
        if (r == -ENOENT)
                manager_error(err, GD_ERR_NOT_FOUND, ENOENT, "no IOMMU group %u", id);
        else if (r < 0)
                manager_error(err, GD_ERR_HOST, r, "cannot read IOMMU group %u: %s", id, strerror(-r));
        return r;
}

int manager_get_group(Manager *m, const char *spec, GdGroup **ret, ManagerError *err) {
        HostGroup hg = {};
        GdGroup *g;
        unsigned id;
        int r;

        r = manager_resolve_spec(m, spec, &id, err);
        if (r < 0)
                return r;
        r = manager_read_group(m, id, &hg, err);
        if (r < 0)
                return r;

        g = calloc(1, sizeof *g);
        if (!g) {
                host_group_done(&hg);
                return -ENOMEM;
        }
        r = group_to_gd(m, &hg, g);
        host_group_done(&hg);
        if (r < 0) {
                free(g);
                manager_error(err, GD_ERR_INTERNAL, r, "out of memory");
                return r;
        }
        *ret = g;
        return 0;
}

/* ---------------------------------------------------------------- host work, off the loop */

typedef struct HostJob {
        Manager *manager;
        Host *host;
        Lease *lease;                  /* loop-side only: the job thread never touches it */
        LeaseDevice *devices;          /* copies, so the thread reads nothing the loop owns */
        size_t n_devices;
        unsigned *groups;
        size_t n_groups;
        bool configure_iommu;
        bool memlock;                  /* acquire: raise memlock_pid's RLIMIT_MEMLOCK */
        bool viommu;
        uint64_t guest_ram;
        uint64_t memlock_max;
        pid_t memlock_pid;

        /* acquire results */
        int container_fd;
        int *group_fds;
        uint32_t iommu_type;
        HostIommuInfo dma;
        int dma_errno;
        uint64_t memlock_set;
        ManagerError error;

        /* release results */
        char detail[GD_TEXT_MAX];
        int release_errno;

        /* How long each phase took (µs), for the debug log and the real-kernel benchmark. */
        uint64_t us_bind, us_open, us_attach;       /* acquire */
        uint64_t us_unbind, us_rebind;              /* release */
} HostJob;

static HostJob *host_job_free(HostJob *j) {
        if (!j)
                return NULL;
        safe_close(j->container_fd);
        if (j->group_fds)
                close_many(j->group_fds, j->n_groups);
        free(j->group_fds);
        free(j->devices);
        free(j->groups);
        free(j);
        return NULL;
}

static int host_job_new(Manager *m, Lease *l, HostJob **ret) {
        HostJob *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->host = m->host;
        j->lease = l;
        j->container_fd = -EBADF;
        j->configure_iommu = l->configure_iommu;
        j->memlock = l->memlock_asked;
        j->viommu = l->viommu;
        j->guest_ram = l->guest_ram;
        j->memlock_max = l->memlock_max;
        j->memlock_pid = l->memlock_pid;
        j->n_devices = l->n_devices;
        j->n_groups = l->n_groups;
        j->devices = l->n_devices ? calloc(l->n_devices, sizeof *j->devices) : NULL;
        j->groups = calloc(MAX(l->n_groups, 1u), sizeof *j->groups);
        j->group_fds = calloc(MAX(l->n_groups, 1u), sizeof *j->group_fds);
        if ((l->n_devices && !j->devices) || !j->groups || !j->group_fds) {
                host_job_free(j);
                return -ENOMEM;
        }
        if (l->n_devices)
                memcpy(j->devices, l->devices, l->n_devices * sizeof *j->devices);
        memcpy(j->groups, l->groups, l->n_groups * sizeof *j->groups);
        for (size_t i = 0; i < l->n_groups; i++)
                j->group_fds[i] = -EBADF;
        *ret = j;
        return 0;
}

static void detail_append(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void detail_append(char *buf, size_t size, const char *fmt, ...) {
        size_t off = strlen(buf);
        va_list ap;

        if (off >= size - 1)
                return;
        if (off > 0 && off < size - 2) {
                buf[off++] = ',';
                buf[off++] = ' ';
                buf[off] = 0;
        }
        va_start(ap, fmt);
        (void) vsnprintf(buf + off, size - off, fmt, ap);
        va_end(ap);
}

/* Puts devices back as the lease found them: off vfio-pci, override cleared, the remembered host driver
 * reprobed. Idempotent: each step looks at the device first, so it also finishes a half-done acquire or
 * release found after a crash. First every device leaves vfio-pci (the kernel holds an unbind up while
 * a VMM still has the device open), then host drivers come back, since a host driver cannot bind while
 * another device of the group is still in use through VFIO. Returns 0 or the first error; a line per
 * device goes to detail. */
/* us_unbind, us_rebind (may be NULL): how long the two passes took. */
static int host_restore_devices(Host *h, const LeaseDevice *devices, size_t n, char *detail, size_t size,
                                uint64_t *us_unbind, uint64_t *us_rebind) {
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), t1;
        int first_error = 0;

        for (size_t i = 0; i < n; i++) {
                HostDevice d;
                int r;

                r = host_read_device(h, devices[i].address, &d);
                if (r < 0)
                        continue; /* gone: reported below */
                if (streq(d.driver, VFIO_PCI_DRIVER)) {
                        r = host_device_unbind(h, d.address);
                        if (r < 0 && first_error == 0)
                                first_error = r;
                }
                if (streq(d.driver_override, VFIO_PCI_DRIVER)) {
                        r = host_device_set_override(h, d.address, NULL);
                        if (r < 0 && first_error == 0)
                                first_error = r;
                }
        }

        t1 = now_usec(CLOCK_MONOTONIC);
        if (us_unbind)
                *us_unbind = t1 - t0;

        for (size_t i = 0; i < n; i++) {
                const LeaseDevice *ld = &devices[i];
                HostDevice d;
                int r;

                r = host_read_device(h, ld->address, &d);
                if (r < 0) {
                        detail_append(detail, size, "%s vanished", ld->address);
                        if (first_error == 0)
                                first_error = r;
                        continue;
                }
                if (isempty(ld->driver)) {
                        if (isempty(d.driver))
                                detail_append(detail, size, "%s → (no driver)", ld->address);
                        else
                                detail_append(detail, size, "%s → %s (had no driver)", ld->address, d.driver);
                        continue;
                }
                if (streq(d.driver, ld->driver)) {
                        detail_append(detail, size, "%s → %s", ld->address, d.driver);
                        continue;
                }
                if (isempty(d.driver)) {
                        r = host_device_probe(h, ld->address);
                        if (r >= 0)
                                r = host_read_device(h, ld->address, &d);
                        if (r >= 0 && !streq(d.driver, ld->driver) && isempty(d.driver))
                                /* The kernel picked nothing on its own: name the driver. */
                                r = host_device_bind(h, ld->address, ld->driver);
                        if (r >= 0)
                                r = host_read_device(h, ld->address, &d);
                }
                if (r >= 0 && streq(d.driver, ld->driver))
                        detail_append(detail, size, "%s → %s", ld->address, d.driver);
                else {
                        if (r >= 0)
                                r = -ENXIO;
                        detail_append(detail, size, "%s: %s did not come back (%s%s%s)", ld->address,
                                      ld->driver, strerror(-r), isempty(d.driver) ? "" : ", now on ",
                                      d.driver);
                        if (first_error == 0)
                                first_error = r;
                }
        }
        if (us_rebind)
                *us_rebind = now_usec(CLOCK_MONOTONIC) - t1;
        return first_error;
}

typedef struct AcquireOp {
        HostJob *job;
        AcquireDone done;
        void *userdata;
        int client_lease_fd;
} AcquireOp;

static int acquire_job_run(void *userdata) {
        HostJob *j = ((AcquireOp *) userdata)->job;
        _cleanup_free_ LeaseDevice *touched = NULL;
        Host *h = j->host;
        size_t n_touched = 0;
        int r;

        /* What this acquire changed, and only that, is undone when it fails: a device of the request that
         * was on vfio-pci already (bound by hand, say, for a group that turns out to be busy) stays. */
        touched = calloc(MAX(j->n_devices, (size_t) 1), sizeof *touched);
        if (!touched) {
                manager_error(&j->error, GD_ERR_INTERNAL, ENOMEM, "out of memory");
                return -ENOMEM;
        }

        uint64_t t = now_usec(CLOCK_MONOTONIC);

        /* 1. Every device of every group onto vfio-pci; bridges on a VFIO-safe driver stay. */
        for (size_t i = 0; i < j->n_devices; i++) {
                const LeaseDevice *ld = &j->devices[i];
                HostDevice d;

                r = host_read_device(h, ld->address, &d);
                if (r < 0) {
                        manager_error(&j->error, GD_ERR_HOST, r, "cannot read device %s: %s", ld->address,
                                      strerror(-r));
                        goto rollback;
                }
                if (streq(d.driver, VFIO_PCI_DRIVER))
                        continue;
                touched[n_touched++] = *ld;
                r = host_device_set_override(h, ld->address, VFIO_PCI_DRIVER);
                if (r < 0) {
                        manager_error(&j->error, GD_ERR_HOST, r, "cannot set driver_override of %s: %s",
                                      ld->address, strerror(-r));
                        goto rollback;
                }
                if (!isempty(d.driver)) {
                        r = host_device_unbind(h, ld->address);
                        if (r < 0) {
                                manager_error(&j->error, GD_ERR_HOST, r, "cannot unbind %s from %s: %s",
                                              ld->address, d.driver, strerror(-r));
                                goto rollback;
                        }
                }
                r = host_device_bind(h, ld->address, VFIO_PCI_DRIVER);
                if (r < 0) {
                        manager_error(&j->error, GD_ERR_HOST, r, "cannot bind %s to vfio-pci: %s%s",
                                      ld->address, strerror(-r),
                                      r == -ENOENT ? " (is the vfio-pci module loaded?)" : "");
                        goto rollback;
                }
        }

        j->us_bind = now_usec(CLOCK_MONOTONIC) - t;
        t = now_usec(CLOCK_MONOTONIC);

        /* 2. The container and the groups, opened by us, as root. */
        r = host_open_container(h, &j->container_fd);
        if (r < 0) {
                manager_error(&j->error, GD_ERR_HOST, r, "cannot open the VFIO container: %s", strerror(-r));
                goto rollback;
        }
        for (size_t i = 0; i < j->n_groups; i++) {
                bool viable = false;

                r = host_open_group(h, j->groups[i], &j->group_fds[i]);
                if (r == -EBUSY) {
                        manager_error(&j->error, GD_ERR_BUSY, r,
                                      "group %u is open already, by a process outside groupd", j->groups[i]);
                        goto rollback;
                }
                if (r < 0) {
                        manager_error(&j->error, GD_ERR_HOST, r, "cannot open group %u: %s", j->groups[i],
                                      strerror(-r));
                        goto rollback;
                }
                r = host_group_is_viable(h, j->group_fds[i], &viable);
                if (r >= 0 && !viable)
                        r = -EPERM;
                if (r < 0) {
                        HostGroup hg = {};
                        char reason[GD_TEXT_MAX] = "";
                        if (host_read_group(h, j->groups[i], &hg) >= 0) {
                                group_viability(&hg, reason, sizeof reason);
                                host_group_done(&hg);
                        }
                        manager_error(&j->error, GD_ERR_NOT_VIABLE, r, "group %u is not viable%s%s",
                                      j->groups[i], isempty(reason) ? "" : ": ", reason);
                        goto rollback;
                }
                j->us_open += now_usec(CLOCK_MONOTONIC) - t;
                t = now_usec(CLOCK_MONOTONIC);
                r = host_group_set_container(h, j->group_fds[i], j->container_fd);
                if (r < 0) {
                        manager_error(&j->error, r == -EPERM ? GD_ERR_NOT_VIABLE : GD_ERR_HOST, r,
                                      "cannot attach group %u to the container: %s", j->groups[i], strerror(-r));
                        goto rollback;
                }
                j->us_attach += now_usec(CLOCK_MONOTONIC) - t;
                t = now_usec(CLOCK_MONOTONIC);
        }
        if (j->configure_iommu) {
                r = host_container_set_iommu(h, j->container_fd, &j->iommu_type);
                if (r < 0) {
                        manager_error(&j->error, GD_ERR_HOST, r, "cannot set the container's IOMMU type: %s",
                                      strerror(-r));
                        goto rollback;
                }
                j->us_attach += now_usec(CLOCK_MONOTONIC) - t;
                /* 3. The DMA facts; not having them fails nothing. */
                r = host_container_get_info(h, j->container_fd, j->iommu_type, &j->dma);
                if (r < 0) {
                        j->dma = (HostIommuInfo) {};
                        j->dma_errno = -r;
                }
        }

        /* 4. The owner's locked-memory limit, when asked. */
        if (j->memlock) {
                MemlockInput in = {
                        .guest_ram = j->guest_ram,
                        .n_devices = (unsigned) j->n_devices,
                        .viommu = j->viommu,
                        .spapr_dma32_window = (j->dma.flags & HOST_IOMMU_SPAPR) ? j->dma.spapr_dma32_size : 0,
                };
                uint64_t want = 0;
                char a[32], b[32];

                r = memlock_limit(&in, &want);
                if (r < 0) {
                        manager_error(&j->error, GD_ERR_INVALID, r, "cannot compute the memlock limit: %s",
                                      strerror(-r));
                        goto rollback;
                }
                if (want > j->memlock_max) {
                        manager_error(&j->error, GD_ERR_DENIED, EPERM,
                                      "the guest needs RLIMIT_MEMLOCK %s, above the policy's max=%s for this caller",
                                      memlock_format_size(want, a, sizeof a),
                                      memlock_format_size(j->memlock_max, b, sizeof b));
                        r = -EPERM;
                        goto rollback;
                }
                r = host_raise_memlock(h, j->memlock_pid, want, NULL, NULL);
                if (r < 0) {
                        manager_error(&j->error, r == -ESRCH ? GD_ERR_INVALID : GD_ERR_HOST, r,
                                      "cannot raise RLIMIT_MEMLOCK of pid %i to %s: %s%s", (int) j->memlock_pid,
                                      memlock_format_size(want, a, sizeof a), strerror(-r),
                                      r == -EPERM ? " (groupd needs CAP_SYS_RESOURCE for this)" : "");
                        goto rollback;
                }
                j->memlock_set = want;
        }
        return 0;

rollback:
        j->container_fd = safe_close(j->container_fd);
        close_many(j->group_fds, j->n_groups);
        (void) host_restore_devices(h, touched, n_touched, j->detail, sizeof j->detail, NULL, NULL);
        return -abs(j->error.errno_value ?: EIO);
}

static int release_job_run(void *userdata) {
        HostJob *j = userdata;

        j->release_errno = host_restore_devices(j->host, j->devices, j->n_devices, j->detail, sizeof j->detail,
                                               &j->us_unbind, &j->us_rebind);
        return j->release_errno;
}

/* ---------------------------------------------------------------- release */

static void manager_check_shutdown(Manager *m);

static void log_lease_end(Lease *l, int error, const char *detail) {
        char groups[256] = "";
        for (size_t i = 0; i < l->n_groups; i++)
                detail_append(groups, sizeof groups, "%u", l->groups[i]);

        if (error == 0)
                log_info("Lease %s (\"%s\") ended: %s; groups %s; host drivers restored: %s", l->id,
                         strempty(l->label), gd_reason_to_string(l->reason), groups, detail);
        else
                log_error_errno(error, "Lease %s (\"%s\") ended: %s; groups %s; restoring failed: %s", l->id,
                                strempty(l->label), gd_reason_to_string(l->reason), groups, detail);

        (void) sd_journal_send("MESSAGE=Lease %s ended: %s", l->id, gd_reason_to_string(l->reason),
                               "MESSAGE_ID=" MESSAGE_ID_LEASE_ENDED, "LEASE=%s", l->id, "GROUP=%s", groups,
                               "OWNER_UID=%u", (unsigned) l->uid, "REASON=%s", gd_reason_to_string(l->reason),
                               "DETAIL=%s", detail, "PRIORITY=%i", error == 0 ? LOG_INFO : LOG_ERR, NULL);
}

static void release_job_done(int result, void *userdata) {
        HostJob *j = userdata;
        Manager *m = j->manager;
        Lease *l = j->lease;

        l->deadline_source = sd_event_source_disable_unref(l->deadline_source);
        (void) lease_set_state(l, GD_LEASE_RELEASED);
        log_lease_end(l, result, j->detail);
        log_debug("Lease %s phases: unbind %.1f ms, rebind %.1f ms", l->id, j->us_unbind / 1000.0,
                  j->us_rebind / 1000.0);
        manager_emit(m, GD_EVENT_LEASE_ENDED, l, 0, -result, j->detail);

        manager_drop_lease(m, l);
        manager_save(m);
        host_job_free(j);
        manager_check_shutdown(m);
}

static int on_release_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Lease *l = userdata;
        char groups[256] = "";

        for (size_t i = 0; i < l->n_groups; i++)
                detail_append(groups, sizeof groups, "%u", l->groups[i]);
        log_warning("Release of lease %s (\"%s\") is held up after %" PRIu64 " ms: a process still holds "
                    "a device of group(s) %s open, and the kernel waits for it to let go. Still waiting.",
                    l->id, strempty(l->label), l->manager->release_deadline_usec / 1000, groups);
        manager_emit(l->manager, GD_EVENT_LEASE_RELEASING, l, 0, EBUSY,
                     "held up: a process still holds a device of the lease open");
        return 0;
}

int manager_release_lease(Manager *m, Lease *l, GdReason reason) {
        HostJob *j = NULL;
        int r;

        if (l->state == GD_LEASE_ACQUIRING) {
                /* Ends as soon as the host is prepared. */
                l->owner_gone = true;
                if (!l->reason)
                        l->reason = reason;
                return 0;
        }
        r = lease_set_state(l, GD_LEASE_RELEASING);
        if (r < 0)
                return r;
        l->reason = reason;

        /* Stop watching the owner, and let go of everything we hold: our copies of the fds must be closed
         * before the unbind, or the kernel would wait for us. */
        manager_unstore_lease_fds(m, l);
        l->owner_source = sd_event_source_disable_unref(l->owner_source);
        l->owner_pidfd = safe_close(l->owner_pidfd);
        l->lease_fd = safe_close(l->lease_fd);
        lease_close_fds(l);

        manager_save(m);
        log_info("Releasing lease %s (\"%s\"): %s", l->id, strempty(l->label), gd_reason_to_string(reason));
        manager_emit(m, GD_EVENT_LEASE_RELEASING, l, 0, 0, gd_reason_to_string(reason));

        r = host_job_new(m, l, &j);
        if (r >= 0)
                r = worker_submit(m->worker, release_job_run, release_job_done, j);
        if (r < 0) {
                host_job_free(j);
                log_error_errno(r, "Failed to start releasing lease %s: %m", l->id);
                /* The state file still names the devices: the next start puts them back. */
                return r;
        }

        (void) sd_event_add_time_relative(m->event, &l->deadline_source, CLOCK_MONOTONIC,
                                          m->release_deadline_usec, 0, on_release_deadline, l);
        return 0;
}

int manager_release_token(Manager *m, const Caller *c, const char *token, ManagerError *err) {
        if (!gd_token_is_valid(token)) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "malformed token (want %u hex characters)",
                              GD_TOKEN_LEN);
                return -EINVAL;
        }
        for (Lease *l = m->leases; l; l = l->next) {
                if (!token_equal(l->token, token))
                        continue;
                if (l->state == GD_LEASE_RELEASING || l->state == GD_LEASE_RELEASED) {
                        manager_error(err, GD_ERR_BUSY, EALREADY, "lease %s is being released already", l->id);
                        return -EALREADY;
                }
                log_info("Lease %s released by its holder (uid %u, pid %i).", l->id, (unsigned) c->uid,
                         (int) c->pid);
                return manager_release_lease(m, l, GD_REASON_RELEASED);
        }
        manager_error(err, GD_ERR_BAD_TOKEN, ENOENT, "no lease has this token");
        return -ENOENT;
}

void manager_connection_closed(Manager *m, uint64_t connection_id) {
        Lease *next;

        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->owner_kind == GD_OWNER_CONNECTION && l->connection_id == connection_id &&
                    (l->state == GD_LEASE_ACTIVE || l->state == GD_LEASE_ACQUIRING))
                        (void) manager_release_lease(m, l, GD_REASON_CONNECTION_CLOSED);
        }
}

void manager_bus_name_vanished(Manager *m, const char *name) {
        Lease *next;

        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->owner_kind == GD_OWNER_BUS_NAME && streq_ptr(l->bus_name, name) &&
                    (l->state == GD_LEASE_ACTIVE || l->state == GD_LEASE_ACQUIRING)) {
                        log_info("Owner of lease %s (D-Bus name %s) left the bus.", l->id, name);
                        (void) manager_release_lease(m, l, GD_REASON_CONNECTION_CLOSED);
                }
        }
}

Lease *manager_find_lease(Manager *m, const char *id) {
        for (Lease *l = m->leases; l; l = l->next)
                if (streq(l->id, id))
                        return l;
        return NULL;
}

/* ---------------------------------------------------------------- owners */

static int on_owner_exited(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Lease *l = userdata;
        log_info("Owner of lease %s (pid %i) exited.", l->id, (int) l->owner_pid);
        (void) manager_release_lease(l->manager, l, GD_REASON_OWNER_EXITED);
        return 0;
}

static int on_lease_fd_closed(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Lease *l = userdata;
        log_info("Every copy of the lease fd of lease %s was closed.", l->id);
        (void) manager_release_lease(l->manager, l, GD_REASON_LEASE_FD_CLOSED);
        return 0;
}

static int pidfd_get_pid(int pidfd, pid_t *ret) {
        char path[64], line[128];
        FILE *f;
        int r = -ENOENT;

        snprintf(path, sizeof path, "/proc/self/fdinfo/%i", pidfd);
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

static int lease_watch_owner(Lease *l) {
        Manager *m = l->manager;

        switch (l->owner_kind) {
        case GD_OWNER_PROCESS:
                return sd_event_add_io(m->event, &l->owner_source, l->owner_pidfd, EPOLLIN, on_owner_exited, l);
        case GD_OWNER_LEASE_FD:
                return sd_event_add_io(m->event, &l->owner_source, l->lease_fd, EPOLLIN, on_lease_fd_closed, l);
        default:
                return 0;
        }
}

/* ---------------------------------------------------------------- acquire */

static void acquire_job_done(int result, void *userdata) {
        AcquireOp *op = userdata;
        HostJob *j = op->job;
        Manager *m = j->manager;
        Lease *l = j->lease;
        int r;

        if (result < 0) {
                log_warning("Acquire of lease %s (\"%s\") failed and was rolled back: %s%s%s", l->id,
                            strempty(l->label), j->error.message, isempty(j->detail) ? "" : "; devices: ",
                            j->detail);
                (void) lease_set_state(l, GD_LEASE_RELEASED);
                op->done(m, NULL, NULL, &j->error, op->userdata);
                manager_drop_lease(m, l);
                manager_save(m);
                goto finish;
        }

        /* The fds move from the job to the lease. */
        l->container_fd = TAKE_FD(j->container_fd);
        for (size_t i = 0; i < l->n_groups; i++)
                l->group_fds[i] = TAKE_FD(j->group_fds[i]);
        l->iommu_type = j->iommu_type;
        l->dma = j->dma;
        l->dma_errno = j->dma_errno;
        l->memlock = j->memlock_set;
        (void) lease_set_state(l, GD_LEASE_ACTIVE);

        r = lease_watch_owner(l);
        if (r < 0)
                log_error_errno(r, "Failed to watch the owner of lease %s: %m", l->id);
        manager_save(m);

        {
                char groups[256] = "";
                for (size_t i = 0; i < l->n_groups; i++)
                        detail_append(groups, sizeof groups, "%u", l->groups[i]);
                char ml[32] = "";
                if (l->memlock > 0)
                        (void) memlock_format_size(l->memlock, ml, sizeof ml);
                log_info("Lease %s (\"%s\") granted to uid %u pid %i: groups %s, owner %s%s%s%s%s.", l->id,
                         strempty(l->label), (unsigned) l->uid, (int) l->pid, groups,
                         gd_owner_kind_to_string(l->owner_kind),
                         l->owner_kind == GD_OWNER_PROCESS ? " (pid watched)" : "",
                         l->kvm_registered ? ", registered with its VM by the client" : "",
                         l->memlock > 0 ? ", RLIMIT_MEMLOCK raised to " : "", ml);
                (void) sd_journal_send("MESSAGE=Lease %s granted: groups %s", l->id, groups,
                                       "MESSAGE_ID=" MESSAGE_ID_LEASE_STARTED, "LEASE=%s", l->id, "GROUP=%s",
                                       groups, "OWNER_UID=%u", (unsigned) l->uid, "LABEL=%s",
                                       strempty(l->label), "PRIORITY=%i", LOG_INFO, NULL);
        }

        uint64_t t_hand = now_usec(CLOCK_MONOTONIC);
        r = op->done(m, l, &op->client_lease_fd, NULL, op->userdata);
        op->client_lease_fd = safe_close(op->client_lease_fd);
        log_debug("Lease %s phases: bind %.1f ms, open %.1f ms, attach %.1f ms, hand-over %.1f ms", l->id,
                  j->us_bind / 1000.0, j->us_open / 1000.0, j->us_attach / 1000.0,
                  (now_usec(CLOCK_MONOTONIC) - t_hand) / 1000.0);
        manager_emit(m, GD_EVENT_LEASE_STARTED, l, 0, 0, NULL);

        if (r < 0 && !l->owner_gone) {
                log_warning("Lease %s could not be handed over; releasing it.", l->id);
                l->owner_gone = true;
                if (!l->reason)
                        l->reason = GD_REASON_CONNECTION_CLOSED;
        }
        if (l->owner_gone || m->shutting_down)
                (void) manager_release_lease(m, l, m->shutting_down ? GD_REASON_SHUTDOWN : l->reason);
        else
                manager_store_lease_fds(m, l);

finish:
        safe_close(op->client_lease_fd);
        host_job_free(j);
        free(op);
        manager_check_shutdown(m);
}

/* The checks every acquire passes for one group: it is not held, it exists and has devices, no never rule
 * forbids a device of it (these apply to everyone); and the policy file's allow rules for c, unless an
 * edge authorized c already (c->authorized: polkit). With enforce_allow false the allow rules are only
 * consulted, and *ret_allowed says whether they cover the group. Reads the group into *hg (done by the
 * caller on success). */
/* Who the policy file judges: the caller's uid and groups. */
static PolicySubject caller_subject(const Caller *c) {
        return (PolicySubject) { .uid = c->uid, .gid = c->gid, .gids = c->gids, .n_gids = c->n_gids };
}

static int manager_check_group(Manager *m, const Caller *c, unsigned id, bool enforce_allow, HostGroup *hg,
                               bool *ret_allowed, ManagerError *err) {
        PolicySubject subject = caller_subject(c);
        char msg[GD_TEXT_MAX];
        Lease *holder;
        int r;

        holder = manager_group_holder(m, id);
        if (holder) {
                manager_error(err, GD_ERR_BUSY, EBUSY,
                              "group %u is %s lease %s (label \"%s\", uid %u, pid %i)", id,
                              holder->state == GD_LEASE_RELEASING ? "being released by" :
                              holder->state == GD_LEASE_ACQUIRING ? "being acquired by" : "held by",
                              holder->id, strempty(holder->label), (unsigned) holder->uid,
                              (int) (holder->owner_kind == GD_OWNER_PROCESS ? holder->owner_pid : holder->pid));
                return -EBUSY;
        }

        r = manager_read_group(m, id, hg, err);
        if (r < 0)
                return r;
        if (hg->n_devices == 0) {
                host_group_done(hg);
                manager_error(err, GD_ERR_NOT_FOUND, ENODEV, "group %u has no devices", id);
                return -ENODEV;
        }

        r = 0;
        for (size_t k = 0; k < hg->n_devices && r == 0; k++)
                if (policy_device_never(m->policy, &hg->devices[k], msg, sizeof msg))
                        r = -EPERM;
        if (r == 0 && (!c->authorized || ret_allowed)) {
                r = policy_check_group(m->policy, &subject, hg, msg, sizeof msg);
                if (ret_allowed)
                        *ret_allowed = r >= 0;
                if (c->authorized || !enforce_allow)
                        r = 0;
        }
        if (r < 0) {
                host_group_done(hg);
                manager_error(err, GD_ERR_DENIED, EPERM, "%s", msg);
                log_notice("Refused group %u to uid %u pid %i: %s", id, (unsigned) c->uid, (int) c->pid, msg);
                (void) sd_journal_send("MESSAGE=Refused group %u to uid %u: %s", id, (unsigned) c->uid, msg,
                                       "MESSAGE_ID=" MESSAGE_ID_ACQUIRE_REFUSED, "GROUP=%u", id, "OWNER_UID=%u",
                                       (unsigned) c->uid, "PRIORITY=%i", LOG_NOTICE, NULL);
                return r;
        }
        return 0;
}

int manager_acquire_preview(Manager *m, const Caller *c, const char *const *specs, size_t n_specs,
                            AcquirePreview *ret, ManagerError *err) {
        AcquirePreview p = { .allowed_by_policy = true };
        int r;

        if (n_specs == 0 || n_specs > GD_GROUPS_PER_ACQUIRE_MAX) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "an acquire names 1 to %u groups, not %zu",
                              GD_GROUPS_PER_ACQUIRE_MAX, n_specs);
                return -EINVAL;
        }
        for (size_t i = 0; i < n_specs; i++) {
                bool dup = false, allowed = false;
                HostGroup hg = {};
                unsigned id;

                r = manager_resolve_spec(m, specs[i], &id, err);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < p.n_groups; k++)
                        dup = dup || p.groups[k] == id;
                if (dup)
                        continue;
                r = manager_check_group(m, c, id, false, &hg, &allowed, err);
                if (r < 0)
                        return r;
                p.groups[p.n_groups++] = id;
                p.allowed_by_policy = p.allowed_by_policy && allowed;
                for (size_t k = 0; k < hg.n_devices; k++)
                        detail_append(p.devices, sizeof p.devices, "%s", hg.devices[k].address);
                host_group_done(&hg);
        }
        *ret = p;
        return 0;
}

int manager_acquire(Manager *m, const Caller *c, const AcquireRequest *req, AcquireDone done, void *userdata,
                    ManagerError *err) {
        _cleanup_(lease_freep) Lease *l = NULL;
        _cleanup_close_ int client_lease_fd = -EBADF;
        HostJob *j = NULL;
        AcquireOp *op;
        int r;

        if (m->shutting_down) {
                manager_error(err, GD_ERR_SHUTTING_DOWN, ESHUTDOWN, "groupd is shutting down");
                return -ESHUTDOWN;
        }
        if (req->n_specs == 0 || req->n_specs > GD_GROUPS_PER_ACQUIRE_MAX) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "an acquire names 1 to %u groups, not %zu",
                              GD_GROUPS_PER_ACQUIRE_MAX, req->n_specs);
                return -EINVAL;
        }
        if (req->flags & ~(uint32_t) _GD_ACQUIRE_ALL) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "unknown acquire flags 0x%x",
                              req->flags & ~(uint32_t) _GD_ACQUIRE_ALL);
                return -EINVAL;
        }
        if ((req->flags & GD_ACQUIRE_OWNER_PROCESS) && (req->flags & GD_ACQUIRE_LEASE_FD)) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "a lease has one owner: a process or a lease fd");
                return -EINVAL;
        }
        if (req->label && strlen(req->label) >= GD_LABEL_MAX) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "label longer than %u bytes", GD_LABEL_MAX - 1);
                return -EINVAL;
        }
        if ((req->flags & GD_ACQUIRE_MEMLOCK) && req->guest_ram == 0) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "memlock asked without the guest's RAM size");
                return -EINVAL;
        }
        if ((req->flags & GD_ACQUIRE_VIOMMU) && !(req->flags & GD_ACQUIRE_MEMLOCK)) {
                manager_error(err, GD_ERR_INVALID, EINVAL, "VIOMMU only says how to count memlock: it needs MEMLOCK");
                return -EINVAL;
        }

        r = lease_new(m, &l);
        if (r < 0)
                goto oom;
        l->uid = c->uid;
        l->gid = c->gid;
        l->pid = c->pid;
        l->connection_id = c->connection_id;
        l->configure_iommu = req->flags & GD_ACQUIRE_CONFIGURE_IOMMU;
        l->since_usec = now_usec(CLOCK_REALTIME);
        l->kvm_registered = req->flags & GD_ACQUIRE_KVM;
        if (req->flags & GD_ACQUIRE_MEMLOCK) {
                PolicySubject subject = caller_subject(c);
                char msg[GD_TEXT_MAX];

                r = policy_check_memlock(m->policy, &subject, &l->memlock_max, msg, sizeof msg);
                if (r < 0) {
                        manager_error(err, GD_ERR_DENIED, EPERM, "%s", msg);
                        return r;
                }
                l->memlock_asked = true;
                l->viommu = req->flags & GD_ACQUIRE_VIOMMU;
                l->guest_ram = req->guest_ram;
        }
        if (req->label) {
                l->label = strdup(req->label);
                if (!l->label)
                        goto oom;
        }

        if (req->flags & GD_ACQUIRE_OWNER_PROCESS) {
                l->owner_kind = GD_OWNER_PROCESS;
                r = req->owner_pidfd >= 0 ? pidfd_get_pid(req->owner_pidfd, &l->owner_pid) : -EBADF;
                if (r == -ESRCH) {
                        manager_error(err, GD_ERR_INVALID, ESRCH, "the owner process has exited already");
                        return r;
                }
                if (r < 0) {
                        manager_error(err, GD_ERR_INVALID, EBADF, "the owner fd is not a pidfd");
                        return -EBADF;
                }
                l->owner_pidfd = fcntl(req->owner_pidfd, F_DUPFD_CLOEXEC, 3);
                if (l->owner_pidfd < 0) {
                        manager_error(err, GD_ERR_INTERNAL, errno, "cannot keep the pidfd: %m");
                        return -errno;
                }
                (void) process_starttime(l->owner_pid, &l->owner_starttime);
        } else if (req->flags & GD_ACQUIRE_LEASE_FD) {
                int p[2];

                l->owner_kind = GD_OWNER_LEASE_FD;
                if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
                        manager_error(err, GD_ERR_INTERNAL, errno, "cannot make a lease fd: %m");
                        return -errno;
                }
                l->lease_fd = p[0];
                client_lease_fd = p[1];
        } else if (c->bus_name) {
                l->owner_kind = GD_OWNER_BUS_NAME;
                l->bus_name = strdup(c->bus_name);
                if (!l->bus_name)
                        goto oom;
        } else
                l->owner_kind = GD_OWNER_CONNECTION;
        l->memlock_pid = l->owner_kind == GD_OWNER_PROCESS ? l->owner_pid : l->pid;

        /* Resolve, read, check each group. */
        for (size_t i = 0; i < req->n_specs; i++) {
                unsigned id;

                r = manager_resolve_spec(m, req->specs[i], &id, err);
                if (r < 0)
                        return r;
                r = lease_add_group(l, id);
                if (r == -EEXIST)
                        continue; /* two addresses in one group */
                if (r < 0)
                        goto oom;
        }

        for (size_t i = 0; i < l->n_groups; i++) {
                unsigned id = l->groups[i];
                HostGroup hg = {};

                r = manager_check_group(m, c, id, true, &hg, NULL, err);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < hg.n_devices; k++) {
                        const HostDevice *d = &hg.devices[k];
                        /* Bridges on a VFIO-safe driver other than vfio-pci stay where they are. */
                        if (!isempty(d->driver) && !streq(d->driver, VFIO_PCI_DRIVER) &&
                            host_driver_is_vfio_safe(d->driver))
                                continue;
                        r = lease_add_device(l, d->address, id, streq(d->driver, VFIO_PCI_DRIVER) ? "" : d->driver);
                        if (r < 0) {
                                host_group_done(&hg);
                                goto oom;
                        }
                }
                host_group_done(&hg);
        }

        /* Reserve the groups and write the intent down before touching a device. */
        for (size_t i = 0; i < l->n_groups; i++) {
                r = manager_hold_group(m, l->groups[i], l);
                if (r < 0) {
                        manager_unhold_lease(m, l);
                        goto oom;
                }
        }

        op = calloc(1, sizeof *op);
        r = op ? host_job_new(m, l, &j) : -ENOMEM;
        if (r < 0) {
                free(op);
                manager_unhold_lease(m, l);
                goto oom;
        }
        op->job = j;
        op->done = done;
        op->userdata = userdata;
        op->client_lease_fd = TAKE_FD(client_lease_fd);

        manager_link_lease(m, l);
        manager_save(m);

        r = worker_submit(m->worker, acquire_job_run, acquire_job_done, op);
        if (r < 0) {
                safe_close(op->client_lease_fd);
                free(op);
                host_job_free(j);
                manager_drop_lease(m, TAKE_PTR(l));
                manager_save(m);
                manager_error(err, GD_ERR_INTERNAL, r, "cannot start the acquire: %s", strerror(-r));
                return r;
        }
        TAKE_PTR(l);
        return 0;

oom:
        manager_error(err, GD_ERR_INTERNAL, ENOMEM, "out of memory");
        return -ENOMEM;
}

/* ---------------------------------------------------------------- start-up and reconcile */

static bool lease_owner_alive(Lease *l) {
        uint64_t t;

        if (l->owner_kind != GD_OWNER_PROCESS || l->owner_pid <= 0)
                return false;
        if (process_starttime(l->owner_pid, &t) < 0)
                return false;
        return l->owner_starttime == 0 || t == l->owner_starttime;
}

/* A device on vfio-pci through a vfio-pci override, in a group no lease holds: groupd binds devices only
 * after recording the lease, so this was done by hand or by another tool (libvirt's managed='no', say),
 * or a state file was lost. It may be in use by a VM we do not know of, and we do not know its host
 * driver: touching it could hang on an unbind or take a device from under a guest. Say so, loudly, and
 * leave it. */
static void manager_scan_orphans(Manager *m) {
        _cleanup_free_ HostDevice *devices = NULL;
        size_t n = 0, orphans = 0;

        if (host_list_driver_devices(m->host, VFIO_PCI_DRIVER, &devices, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const HostDevice *d = &devices[i];

                if (!streq(d->driver_override, VFIO_PCI_DRIVER))
                        continue;
                if (d->group != UINT_MAX && manager_group_holder(m, d->group))
                        continue;
                log_warning("Device %s (group %u) is on vfio-pci with a vfio-pci driver_override, but no "
                            "lease holds it. It was not bound by this groupd (or its state file was "
                            "lost); leaving it alone. To give it back to its host driver: echo > "
                            "/sys/bus/pci/devices/%s/driver_override; echo %s > "
                            "/sys/bus/pci/drivers/vfio-pci/unbind; echo %s > /sys/bus/pci/drivers_probe",
                            d->address, d->group, d->address, d->address, d->address);
                orphans++;
        }
        if (orphans > 0)
                log_warning("%zu device(s) on vfio-pci without a lease (see above).", orphans);
}

static int manager_reconcile(Manager *m) {
        Lease *recovered = NULL, *next;
        unsigned line = 0;
        size_t kept = 0, ended = 0;
        int r;

        r = state_read(m->state_path, m, &recovered, &line);
        if (r < 0) {
                log_error_errno(r, "State file %s is unreadable (line %u): %m. Moving it aside; devices it "
                                "named must be checked by hand.", m->state_path, line);
                _cleanup_free_ char *aside = NULL;
                if (asprintf(&aside, "%s.broken", m->state_path) >= 0)
                        (void) rename(m->state_path, aside);
                manager_drop_unclaimed_fds(m);
                return 0;
        }

        for (Lease *l = recovered; l; l = next) {
                bool conflict = false;

                next = l->next;
                l->prev = l->next = NULL;
                l->manager = m;
                for (size_t i = 0; i < l->n_groups; i++)
                        if (manager_hold_group(m, l->groups[i], l) < 0)
                                conflict = true;
                if (conflict) {
                        log_error("State file names group(s) of lease %s twice; dropping that lease's record.",
                                  l->id);
                        manager_unhold_lease(m, l);
                        lease_free(l);
                        continue;
                }
                manager_link_lease(m, l);

                if (l->state == GD_LEASE_ACTIVE && manager_recover_lease_fds(m, l)) {
                        if (lease_watch_owner(l) >= 0) {
                                log_notice("Recovered lease %s (\"%s\") with its fds from the fd store: its owner "
                                           "(%s%s) is still there, so it is kept.", l->id, strempty(l->label),
                                           gd_owner_kind_to_string(l->owner_kind),
                                           l->owner_kind == GD_OWNER_PROCESS ? ", pidfd" : ", lease fd");
                                kept++;
                                continue;
                        }
                }
                if (l->state == GD_LEASE_ACTIVE && l->owner_pidfd < 0 && lease_owner_alive(l)) {
                        l->owner_pidfd = (int) syscall(SYS_pidfd_open, l->owner_pid, 0);
                        if (l->owner_pidfd >= 0 && lease_watch_owner(l) >= 0) {
                                log_notice("Recovered lease %s (\"%s\"): its owner pid %i is alive, so it is kept. "
                                           "Its fds were not recoverable (the old daemon's copies are gone; the "
                                           "owner still has its own).",
                                           l->id, strempty(l->label), (int) l->owner_pid);
                                /* What it has (the pidfd) goes to the store for the next restart. */
                                if (!l->fds_stored)
                                        manager_store_lease_fds(m, l);
                                else if (m->fd_store_func)
                                        manager_store_fd(m, l, LEASE_FD_OWNER, 0, l->owner_pidfd);
                                kept++;
                                continue;
                        }
                        l->owner_pidfd = safe_close(l->owner_pidfd);
                }

                /* The owner is gone (connections and lease fds die with the daemon), or the lease was half
                 * acquired or half released: put the devices back. */
                if (l->state == GD_LEASE_ACQUIRING)
                        (void) lease_set_state(l, GD_LEASE_ACTIVE);
                if (l->state == GD_LEASE_RELEASING)
                        l->state = GD_LEASE_ACTIVE; /* run the release again: restoring is idempotent */
                log_notice("Recovered lease %s (\"%s\") has no live owner (%s); restoring its devices.", l->id,
                           strempty(l->label), gd_owner_kind_to_string(l->owner_kind));
                (void) manager_release_lease(m, l, GD_REASON_RECOVERED_DEAD);
                ended++;
        }

        manager_drop_unclaimed_fds(m);
        if (kept + ended > 0)
                log_info("Reconciled the state file: %zu lease(s) kept, %zu ended.", kept, ended);
        manager_save(m);
        manager_scan_orphans(m);
        return 0;
}

int manager_start(Manager *m, ManagerError *err) {
        _cleanup_free_ char *perr = NULL;
        int r;

        r = policy_load(m->policy_path, &m->policy, &perr);
        if (r == -ENOENT && m->policy_path) {
                log_notice("Policy file %s does not exist; using the built-in default (root only, never a "
                           "storage controller).", m->policy_path);
                r = policy_load(NULL, &m->policy, &perr);
        }
        if (r < 0) {
                manager_error(err, GD_ERR_INVALID, r, "%s", perr ?: strerror(-r));
                return r;
        }

        return manager_reconcile(m);
}

int manager_new(sd_event *e, Host *host, const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->host = host;
        m->release_deadline_usec = config->release_deadline_usec ?: DEFAULT_RELEASE_DEADLINE_USEC;
        m->keep_leases_on_exit = config->keep_leases_on_exit;
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

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Leases still recorded stay in the state file for the next start. */
        while (m->leases) {
                Lease *l = m->leases;
                m->leases = l->next;
                lease_free(l);
        }
        for (size_t i = 0; i < m->n_stored; i++) {
                safe_close(m->stored[i].fd);
                free(m->stored[i].name);
        }
        free(m->stored);
        free(m->holders);
        sd_event_source_disable_unref(m->shutdown_timer);
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

static void manager_check_shutdown(Manager *m) {
        if (!m->shutting_down || !m->shutdown_done)
                return;
        for (Lease *l = m->leases; l; l = l->next)
                if (l->state == GD_LEASE_RELEASING || l->state == GD_LEASE_ACQUIRING)
                        return;
        manager_finish_shutdown(m);
}

static int on_shutdown_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        size_t n = 0;

        for (Lease *l = m->leases; l; l = l->next)
                if (l->state != GD_LEASE_ACTIVE)
                        n++;
        log_warning("Shutting down with %zu release(s) unfinished; the state file keeps them, and the next "
                    "start finishes them.", n);
        manager_finish_shutdown(m);
        return 0;
}

int manager_shutdown(Manager *m, void (*done)(Manager *m, void *userdata), void *userdata) {
        Lease *next;

        m->shutting_down = true;
        m->shutdown_done = done;
        m->shutdown_userdata = userdata;

        for (Lease *l = m->leases; l; l = next) {
                next = l->next;
                if (l->state != GD_LEASE_ACTIVE)
                        continue;
                if (m->keep_leases_on_exit && l->owner_kind == GD_OWNER_PROCESS) {
                        log_info("Keeping lease %s across the restart: owner pid %i.", l->id, (int) l->owner_pid);
                        continue;
                }
                /* A lease fd outlives the daemon only in the fd store. */
                if (m->keep_leases_on_exit && l->owner_kind == GD_OWNER_LEASE_FD && l->fds_stored) {
                        log_info("Keeping lease %s across the restart: its lease fd is in the fd store.", l->id);
                        continue;
                }
                (void) manager_release_lease(m, l, GD_REASON_SHUTDOWN);
        }

        (void) sd_event_add_time_relative(m->event, &m->shutdown_timer, CLOCK_MONOTONIC,
                                          m->release_deadline_usec, 0, on_shutdown_deadline, m);
        manager_check_shutdown(m);
        return 0;
}

/* ---------------------------------------------------------------- DMA facts */

void manager_dma_to_gd(const HostIommuInfo *i, GdDma *ret) {
        *ret = (GdDma) {
                .flags = i->flags & _GD_DMA_ALL,
                .iommu_type = i->iommu_type,
                .pgsizes = i->pgsizes,
                .n_iova = (uint16_t) MIN(i->n_iova, GD_IOVA_RANGES_MAX),
                .dma_avail = i->dma_avail,
                .migration_flags = i->migration_flags,
                .migration_pgsizes = i->migration_pgsizes,
                .migration_max_dirty_bitmap_size = i->migration_max_dirty_bitmap_size,
                .spapr_dma32_start = i->spapr_dma32_start,
                .spapr_dma32_size = i->spapr_dma32_size,
                .spapr_ddw_pgsizes = i->spapr_ddw_pgsizes,
                .spapr_ddw_max_windows = i->spapr_ddw_max_windows,
                .spapr_ddw_levels = i->spapr_ddw_levels,
        };
        for (size_t k = 0; k < ret->n_iova; k++)
                ret->iova[k] = (GdRange) { i->iova[k].start, i->iova[k].end };
}

int manager_dma_info(Manager *m, const char *spec, GdDmaInfo **ret, ManagerError *err) {
        _cleanup_(host_group_done) HostGroup hg = {};
        GdDmaInfo *d;
        char note[GD_TEXT_MAX] = "";
        Lease *holder;
        unsigned id;
        int r;

        r = manager_resolve_spec(m, spec, &id, err);
        if (r < 0)
                return r;
        r = manager_read_group(m, id, &hg, err);
        if (r < 0)
                return r;

        d = calloc(1, sizeof *d);
        if (!d)
                goto oom;
        d->group = id;
        d->source = GD_DMA_SOURCE_SYSFS;
        for (size_t k = 0; k < hg.n_devices; k++) {
                const HostDevice *dev = &hg.devices[k];
                /* As acquire counts them: bridges on a VFIO-safe driver other than vfio-pci stay behind. */
                if (!isempty(dev->driver) && !streq(dev->driver, VFIO_PCI_DRIVER) &&
                    host_driver_is_vfio_safe(dev->driver))
                        continue;
                d->n_devices++;
        }
        if (hg.n_regions > 0) {
                d->regions = calloc(MIN(hg.n_regions, GD_REGIONS_PER_GROUP_MAX), sizeof *d->regions);
                if (!d->regions)
                        goto oom;
                for (size_t k = 0; k < hg.n_regions && k < GD_REGIONS_PER_GROUP_MAX; k++) {
                        d->regions[k] = (GdRegion) { .start = hg.regions[k].start, .end = hg.regions[k].end,
                                                     .type = xstrdup(hg.regions[k].type) };
                        d->n_regions++;
                        if (!d->regions[k].type)
                                goto oom;
                }
        }

        holder = manager_group_holder(m, id);
        if (holder && holder->state == GD_LEASE_ACTIVE && holder->dma.flags != 0) {
                d->source = GD_DMA_SOURCE_CONTAINER;
                manager_dma_to_gd(&holder->dma, &d->dma);
        } else if (holder && holder->state == GD_LEASE_ACTIVE && holder->dma_errno != 0)
                snprintf(note, sizeof note, "VFIO_IOMMU_GET_INFO on lease %s's container failed: %s", holder->id,
                         strerror(holder->dma_errno));
        else if (holder && holder->state == GD_LEASE_ACTIVE && holder->recovered)
                snprintf(note, sizeof note, "lease %s was taken back after a restart: groupd has no container fd "
                         "to ask", holder->id);
        else if (holder && holder->state == GD_LEASE_ACTIVE)
                snprintf(note, sizeof note, "lease %s's container has no IOMMU type from groupd (acquire with "
                         "--configure-iommu for the facts); only the reserved regions are known", holder->id);
        else if (holder)
                snprintf(note, sizeof note, "group %u is being %s", id,
                         holder->state == GD_LEASE_ACQUIRING ? "acquired" : "released");
        else
                snprintf(note, sizeof note, "group %u is not leased: the IOMMU facts need a container, and groupd "
                         "does not open a free group just to look; only the reserved regions are known", id);
        d->kvm = holder && holder->kvm_registered;
        d->note = strdup(note);
        if (!d->note)
                goto oom;
        *ret = d;
        return 0;

oom:
        gd_dma_info_free(d);
        manager_error(err, GD_ERR_INTERNAL, ENOMEM, "out of memory");
        return -ENOMEM;
}
