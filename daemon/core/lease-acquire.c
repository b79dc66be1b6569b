/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <fcntl.h>

#include "log.h"
#include "manager-internal.h"
#include "state.h"
#include "text-util.h"

typedef struct AcquireOp {
        Lease *lease;                  /* loop side only: the job never touches it */
        Prepare *prepare;
        AcquireDone done;
        void *userdata;
        int client_lease_fd;
} AcquireOp;

static AcquireOp *acquire_op_free(AcquireOp *op) {
        if (!op)
                return NULL;
        prepare_free(op->prepare);
        safe_close(op->client_lease_fd);
        free(op);
        return NULL;
}

/* An acquire whose done never ran (the daemon stopped first): the state file keeps the lease as acquiring,
 * and the next start puts its devices back. */
static void acquire_op_destroy(void *userdata) {
        acquire_op_free(userdata);
}

static int acquire_job_run(void *userdata) {
        AcquireOp *op = userdata;
        return prepare_acquire(op->prepare);
}

static void acquire_job_done(int result, void *userdata) {
        AcquireOp *op = userdata;
        Prepare *p = op->prepare;
        Lease *l = op->lease;
        Manager *m = l->manager;
        uint64_t t_hand;
        int r;

        if (result < 0) {
                audit_acquire_failed(l, p->error.message, p->detail);
                /* Never announced, so never ended: it simply goes. */
                (void) lease_set_state(l, LEASE_RELEASED);
                op->done(m, NULL, NULL, &p->error, op->userdata);
                manager_unlink_lease(m, l);
                if (lease_needs_record(l))
                        manager_save(m);
                lease_free(l);
                goto finish;
        }

        /* The fds (and grants) move from the job to the lease. */
        l->delivery = p->delivery;
        l->container_fd = TAKE_FD(p->container_fd);
        for (size_t i = 0; i < l->n_groups; i++)
                l->group_fds[i] = TAKE_FD(p->group_fds[i]);
        l->iommufd = TAKE_FD(p->iommufd);
        for (size_t i = 0; i < l->n_devices; i++)
                l->device_fds[i] = TAKE_FD(p->device_fds[i]);
        for (size_t i = 0; i < p->n_grants; i++)
                if (lease_add_grant(l, &p->grants[i]) < 0)
                        /* Cannot happen but for memory: the release would not know to revoke it. */
                        log_error("Lease %s: out of memory recording the grant of /dev/%s.", l->id,
                                  p->grants[i].node);
        l->iommu_type = p->iommu_type;
        l->dma = p->dma;
        l->dma_errno = p->dma_errno;
        l->memlock = p->memlock_set;
        (void) lease_set_state(l, LEASE_ACTIVE);

        r = lease_watch_owner(l);
        if (r < 0)
                log_error_errno(r, "Failed to watch the owner of lease %s: %m", l->id);
        manager_save_state_change(m, l);
        audit_lease_granted(l);

        t_hand = now_usec(CLOCK_MONOTONIC);
        r = op->done(m, l, &op->client_lease_fd, NULL, op->userdata);
        op->client_lease_fd = safe_close(op->client_lease_fd);
        log_debug("Lease %s phases: bind %.1f ms, open %.1f ms, attach %.1f ms, hand-over %.1f ms", l->id,
                  p->us_bind / 1000.0, p->us_open / 1000.0, p->us_attach / 1000.0,
                  (now_usec(CLOCK_MONOTONIC) - t_hand) / 1000.0);
        manager_emit(m, MANAGER_EVENT_LEASE_STARTED, l, 0, 0, NULL);

        if (r < 0 && !l->owner_gone) {
                log_warning("Lease %s could not be handed over; releasing it.", l->id);
                l->owner_gone = true;
                l->reason = LEASE_REASON_CONNECTION_CLOSED;
        }
        if (l->owner_gone || m->shutting_down)
                (void) manager_release_lease(m, l, m->shutting_down ? LEASE_REASON_SHUTDOWN : l->reason);
        else
                manager_store_lease_fds(m, l);

finish:
        acquire_op_free(op);
        manager_check_shutdown(m);
}

/* Who the policy file judges: the caller's uid and groups. */
static PolicySubject caller_subject(const Caller *c) {
        return (PolicySubject) { .uid = c->uid, .gid = c->gid, .gids = c->gids, .n_gids = c->n_gids,
                                 .cgroup = isempty(c->cgroup) ? NULL : c->cgroup };
}

/* The checks every acquire passes for one group: it is not held, it exists and has devices, no never rule
 * forbids a device of it (these apply to everyone); and the policy file's allow rules for c, unless an
 * edge authorized c already (c->authorized: polkit). With enforce_allow false the allow rules are only
 * consulted, and *ret_allowed says whether they cover the group. Reads the group into *hg (done by the
 * caller on success). */
static int manager_check_group(Manager *m, const Caller *c, unsigned id, bool enforce_allow, HostGroup *hg,
                               bool *ret_allowed, ManagerError *err) {
        PolicySubject subject = caller_subject(c);
        char msg[MANAGER_TEXT_MAX];
        Lease *holder;
        int r;

        holder = manager_group_holder(m, id);
        if (holder) {
                manager_error(err, MANAGER_ERROR_BUSY, EBUSY,
                              "group %u is %s lease %s (label \"%s\", uid %u, pid %i)", id,
                              holder->state == LEASE_RELEASING ? "being released by" :
                              holder->state == LEASE_ACQUIRING ? "being acquired by" : "held by",
                              holder->id, strempty(holder->label), (unsigned) holder->uid,
                              (int) lease_holder_pid(holder));
                return -EBUSY;
        }

        r = manager_read_group(m, id, hg, err);
        if (r < 0)
                return r;
        if (hg->n_devices == 0) {
                host_group_done(hg);
                manager_error(err, MANAGER_ERROR_NOT_FOUND, ENODEV, "group %u has no devices", id);
                return -ENODEV;
        }

        /* What no one gets: refused with its reason before anything is touched. */
        {
                _cleanup_free_ HostUse *uses = NULL;
                ManagerError refusal = {};
                size_t n_uses = 0;

                /* Read fresh at each acquire: mounts, swap and routes change. Not knowing them refuses
                 * nothing. */
                (void) host_list_uses(m->host, &uses, &n_uses);
                r = manager_group_refusal(m, &subject, hg, uses, n_uses, &refusal);
                if (r < 0) {
                        host_group_done(hg);
                        audit_acquire_refused(c, id, refusal.message);
                        if (err)
                                *err = refusal;
                        return r;
                }
        }
        if (!c->authorized || ret_allowed) {
                r = policy_check_group(m->policy, &subject, hg, msg, sizeof msg);
                if (ret_allowed)
                        *ret_allowed = r >= 0;
                if (c->authorized || !enforce_allow)
                        r = 0;
        }
        if (r < 0) {
                host_group_done(hg);
                manager_error(err, MANAGER_ERROR_DENIED, EPERM, "%s", msg);
                audit_acquire_refused(c, id, msg);
                return r;
        }
        return 0;
}

int manager_acquire_preview(Manager *m, const Caller *c, const char *const *specs, size_t n_specs,
                            AcquirePreview *ret, ManagerError *err) {
        AcquirePreview p = { .allowed_by_policy = true };
        int r;

        assert(m);
        assert(c);
        assert(ret);

        r = manager_check_request_size(n_specs, err);
        if (r < 0)
                return r;
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
                        text_append(p.devices, sizeof p.devices, "%s", hg.devices[k].address);
                host_group_done(&hg);
        }
        *ret = p;
        return 0;
}

/* The request's own sense, before anything is looked up. */
static int acquire_request_check(const AcquireRequest *req, ManagerError *err) {
        int r;

        r = manager_check_request_size(req->n_specs, err);
        if (r < 0)
                return r;
        if (req->owner != OWNER_CONNECTION && req->owner != OWNER_PROCESS && req->owner != OWNER_LEASE_FD) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "a lease's owner is its caller, a process or "
                              "a lease fd");
                return -EINVAL;
        }
        if (req->label && strlen(req->label) >= LEASE_LABEL_MAX) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "label longer than %u bytes",
                              LEASE_LABEL_MAX - 1);
                return -EINVAL;
        }
        if (req->memlock && req->guest_ram == 0) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "memlock asked without the guest's RAM size");
                return -EINVAL;
        }
        if (req->viommu && !req->memlock) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL,
                              "VIOMMU only says how to count memlock: it needs MEMLOCK");
                return -EINVAL;
        }
        if (req->delivery < 0 || req->delivery >= _LEASE_DELIVERY_MAX) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL,
                              "unknown delivery mode %i (iommufd, legacy, node-grant or auto)", (int) req->delivery);
                return -EINVAL;
        }
        if (req->grant_uid_set && req->delivery != LEASE_DELIVERY_NODE_GRANT) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "a grant uid goes with node-grant delivery only");
                return -EINVAL;
        }
        if (req->grant_uid_set && req->grant_uid == (uid_t) -1) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "uid %u cannot be granted anything",
                              (unsigned) req->grant_uid);
                return -EINVAL;
        }
        if (req->delivery == LEASE_DELIVERY_NODE_GRANT && req->configure_iommu) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL,
                              "node-grant opens no container, so it cannot set its IOMMU type (CONFIGURE_IOMMU)");
                return -EINVAL;
        }
        return 0;
}

/* What the caller may have delivered, and how, before anything is looked up or touched. */
static int acquire_check_delivery(Manager *m, Lease *l, const Caller *c, const AcquireRequest *req,
                                  ManagerError *err) {
        l->delivery = req->delivery;
        if (req->delivery == LEASE_DELIVERY_NODE_GRANT) {
                l->grant_uid = req->grant_uid_set ? req->grant_uid : c->uid;
                if (c->uid != 0 && l->grant_uid != c->uid) {
                        manager_error(err, MANAGER_ERROR_DENIED, EPERM,
                                      "only root may grant node access to another uid (uid %u asked for uid %u)",
                                      (unsigned) c->uid, (unsigned) l->grant_uid);
                        return -EPERM;
                }
        }
        if (req->delivery == LEASE_DELIVERY_IOMMUFD && !host_has_iommufd(m->host)) {
                manager_error(err, MANAGER_ERROR_HOST, EOPNOTSUPP,
                              "delivery iommufd: groupd sees no /dev/iommu (a kernel without CONFIG_IOMMUFD, "
                              "or a unit whose DeviceAllow= leaves it out); ask for legacy or auto");
                return -EOPNOTSUPP;
        }
        return 0;
}

/* An iommufd lease's fds must fit in one message. */
static int acquire_check_device_count(Lease *l, ManagerError *err) {
        if (l->n_devices <= LEASE_DEVICE_FDS_MAX)
                return 0;
        if (l->delivery == LEASE_DELIVERY_AUTO) {
                l->delivery = LEASE_DELIVERY_LEGACY;
                return 0;
        }
        if (l->delivery != LEASE_DELIVERY_IOMMUFD)
                return 0;
        manager_error(err, MANAGER_ERROR_LIMIT, E2BIG, "delivery iommufd hands one fd per device, at most %u; "
                      "this lease has %zu devices", LEASE_DEVICE_FDS_MAX, l->n_devices);
        return -E2BIG;
}

/* Ties the new lease to its owner; *client_lease_fd gets the client's end of a lease fd. */
static int acquire_set_owner(Lease *l, const Caller *c, const AcquireRequest *req, int *client_lease_fd,
                             ManagerError *err) {
        int r;

        switch (req->owner) {
        case OWNER_PROCESS:
                l->owner_kind = OWNER_PROCESS;
                r = owner_pidfd_get_pid(req->owner_pidfd, &l->owner_pid, err);
                if (r < 0)
                        return r;
                /* The owner is the process whose memlock is raised too (memlock_pid below). */
                r = owner_check_process(l->manager, c, l->owner_pid, req->owner_pidfd, true, NULL, err);
                if (r < 0)
                        return r;
                l->owner_pidfd = fcntl(req->owner_pidfd, F_DUPFD_CLOEXEC, 3);
                if (l->owner_pidfd < 0) {
                        r = -errno;
                        manager_error(err, MANAGER_ERROR_INTERNAL, r, "cannot keep the pidfd: %s", strerror(-r));
                        return r;
                }
                (void) process_starttime(l->owner_pid, &l->owner_starttime);
                break;
        case OWNER_LEASE_FD: {
                int p[2];

                l->owner_kind = OWNER_LEASE_FD;
                if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
                        r = -errno;
                        manager_error(err, MANAGER_ERROR_INTERNAL, r, "cannot make a lease fd: %s", strerror(-r));
                        return r;
                }
                l->lease_fd = p[0];
                *client_lease_fd = p[1];
                break;
        }
        default:
                if (c->bus_name) {
                        l->owner_kind = OWNER_BUS_NAME;
                        l->bus_name = strdup(c->bus_name);
                        if (!l->bus_name)
                                return -ENOMEM;
                } else
                        l->owner_kind = OWNER_CONNECTION;
        }
        l->memlock_pid = lease_holder_pid(l);
        return 0;
}

/* Resolves, reads and checks each group, and records the devices the acquire will move. */
static int acquire_add_groups(Manager *m, Lease *l, const Caller *c, const AcquireRequest *req,
                              ManagerError *err) {
        int r;

        for (size_t i = 0; i < req->n_specs; i++) {
                unsigned id;

                r = manager_resolve_spec(m, req->specs[i], &id, err);
                if (r < 0)
                        return r;
                r = lease_add_group(l, id);
                if (r == -EEXIST)
                        continue; /* two addresses in one group */
                if (r < 0) {
                        manager_error(err, MANAGER_ERROR_INTERNAL, r, "out of memory");
                        return r;
                }
        }

        for (size_t i = 0; i < l->n_groups; i++) {
                _cleanup_(host_group_done) HostGroup hg = {};

                r = manager_check_group(m, c, l->groups[i], true, &hg, NULL, err);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < hg.n_devices; k++) {
                        const HostDevice *d = &hg.devices[k];
                        if (!lease_device_is_assigned(d))
                                continue;
                        /* Exactly as found, whatever it was: restore puts back both. */
                        r = lease_add_device(l, d->address, l->groups[i], d->driver, d->driver_override);
                        if (r < 0) {
                                manager_error(err, MANAGER_ERROR_INTERNAL, r, "cannot record device %s: %s",
                                              d->address, strerror(-r));
                                return r;
                        }
                        /* A variant driver instead of vfio-pci, when a rule asks and one is there. */
                        if (!d->vfio_driver && policy_device_variant(m->policy, d)) {
                                LeaseDevice *ld = &l->devices[l->n_devices - 1];
                                r = host_vfio_variant_for(m->host, d, ld->vfio_driver);
                                if (r < 0 || isempty(ld->vfio_driver))
                                        log_info("No loaded VFIO variant driver matches %s%s%s; using vfio-pci.",
                                                 d->address, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
                                else
                                        log_info("%s goes to its VFIO variant driver %s.", d->address,
                                                 ld->vfio_driver);
                        }
                        l->devices[l->n_devices - 1].standby = policy_device_standby(m->policy, d, NULL, 0);
                }
        }
        return 0;
}

/* Records the lease (state file first: the intent is written down before a device is touched) and hands
 * its kernel work to the worker. On failure nothing is recorded; the caller still owns l. */
static int acquire_submit(Manager *m, Lease *l, AcquireDone done, void *userdata, int *client_lease_fd,
                          ManagerError *err) {
        AcquireOp *op;
        Prepare *p;
        int r;

        op = calloc(1, sizeof *op);
        if (!op) {
                manager_error(err, MANAGER_ERROR_INTERNAL, ENOMEM, "out of memory");
                return -ENOMEM;
        }
        op->client_lease_fd = -EBADF;
        r = prepare_new(m->host, l->devices, l->n_devices, l->groups, l->n_groups, &op->prepare);
        if (r < 0) {
                acquire_op_free(op);
                manager_error(err, MANAGER_ERROR_INTERNAL, r, "out of memory");
                return r;
        }
        p = op->prepare;
        p->configure_iommu = l->configure_iommu;
        p->delivery = l->delivery;
        p->grant_uid = l->grant_uid;
        p->memlock = l->memlock_asked;
        p->viommu = l->viommu;
        p->guest_ram = l->guest_ram;
        p->memlock_max = l->memlock_max;
        p->memlock_pid = l->memlock_pid;
        op->lease = l;
        op->done = done;
        op->userdata = userdata;
        op->client_lease_fd = TAKE_FD(*client_lease_fd);

        manager_link_lease(m, l);
        if (lease_needs_record(l))
                manager_save(m);

        r = worker_submit_full(m->worker, acquire_job_run, acquire_job_done, acquire_op_destroy, op);
        if (r < 0) {
                acquire_op_free(op);
                manager_unlink_lease(m, l);
                if (lease_needs_record(l))
                        manager_save(m);
                manager_error(err, MANAGER_ERROR_INTERNAL, r, "cannot start the acquire: %s", strerror(-r));
                return r;
        }
        return 0;
}

int manager_acquire(Manager *m, const Caller *c, const AcquireRequest *req, AcquireDone done, void *userdata,
                    ManagerError *err) {
        _cleanup_(lease_freep) Lease *l = NULL;
        _cleanup_close_ int client_lease_fd = -EBADF;
        int r;

        assert(m);
        assert(c);
        assert(req);
        assert(done);

        if (m->shutting_down) {
                manager_error(err, MANAGER_ERROR_SHUTTING_DOWN, ESHUTDOWN, "groupd is shutting down");
                return -ESHUTDOWN;
        }
        r = acquire_request_check(req, err);
        if (r < 0)
                return r;

        r = lease_new(m, &l);
        if (r < 0)
                goto oom;
        l->uid = c->uid;
        l->gid = c->gid;
        l->pid = c->pid;
        l->connection_id = c->connection_id;
        l->configure_iommu = req->configure_iommu;
        l->since_usec = now_usec(CLOCK_REALTIME);
        l->kvm_registered = req->kvm;
        if (req->memlock) {
                PolicySubject subject = caller_subject(c);
                char msg[MANAGER_TEXT_MAX];

                r = policy_check_memlock(m->policy, &subject, &l->memlock_max, msg, sizeof msg);
                if (r < 0) {
                        manager_error(err, MANAGER_ERROR_DENIED, EPERM, "%s", msg);
                        return r;
                }
                l->memlock_asked = true;
                l->viommu = req->viommu;
                l->guest_ram = req->guest_ram;
        }
        if (req->label) {
                l->label = strdup(req->label);
                if (!l->label)
                        goto oom;
        }

        r = acquire_set_owner(l, c, req, &client_lease_fd, err);
        if (r == -ENOMEM)
                goto oom;
        if (r < 0)
                return r;

        r = acquire_check_delivery(m, l, c, req, err);
        if (r < 0)
                return r;
        r = acquire_add_groups(m, l, c, req, err);
        if (r < 0)
                return r;
        r = acquire_check_device_count(l, err);
        if (r < 0)
                return r;

        /* Reserve the groups and write the intent down before touching a device. */
        for (size_t i = 0; i < l->n_groups; i++) {
                r = manager_hold_group(m, l->groups[i], l);
                if (r < 0) {
                        manager_unhold_lease(m, l);
                        goto oom;
                }
        }

        r = acquire_submit(m, l, done, userdata, &client_lease_fd, err);
        if (r < 0) {
                manager_unhold_lease(m, l);
                return r;
        }
        TAKE_PTR(l);
        return 0;

oom:
        manager_error(err, MANAGER_ERROR_INTERNAL, ENOMEM, "out of memory");
        return -ENOMEM;
}
