/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The core in-process: a Manager on the simulated host with a real sd-event loop, no sockets. What a
 * user of groupd would notice, asserted on the (simulated) kernel's state: drivers moved and put back,
 * groups refused while held, leases ended when their owner goes, a state file taken back. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host-sim.h"
#include "manager.h"
#include "state.h"
#include "test-manager-util.h"
#include "test-util.h"
#include "worker.h"

/* worker_new() fails on demand (linked with -Wl,--wrap=worker_new): manager_new() must then leave the
 * host to its caller. */
int __real_worker_new(sd_event *e, Worker **ret);
int __wrap_worker_new(sd_event *e, Worker **ret);
static bool fail_worker_new;
int __wrap_worker_new(sd_event *e, Worker **ret) {
        if (fail_worker_new)
                return -EMFILE;
        return __real_worker_new(e, ret);
}

/* host_raise_memlock() records whose limit it would raise (never the real prlimit: raising a hard limit
 * needs CAP_SYS_RESOURCE, which a test may lack). */
static pid_t memlock_raised_pid;
static uint64_t memlock_raised_bytes;
int __wrap_host_raise_memlock(Host *h, pid_t pid, uint64_t bytes, uint64_t *ret_old_soft, uint64_t *ret_old_hard);
int __wrap_host_raise_memlock(Host *h, pid_t pid, uint64_t bytes, uint64_t *ret_old_soft, uint64_t *ret_old_hard) {
        memlock_raised_pid = pid;
        memlock_raised_bytes = bytes;
        return 0;
}

/* host_device_bind() fails for one address on demand: a failure half-way through an acquire. */
static const char *fail_bind_address;
int __real_host_device_bind(Host *h, const char *address, const char *driver);
int __wrap_host_device_bind(Host *h, const char *address, const char *driver);
int __wrap_host_device_bind(Host *h, const char *address, const char *driver) {
        if (fail_bind_address && streq(address, fail_bind_address) && streq(driver, "vfio-pci"))
                return -EIO;
        return __real_host_device_bind(h, address, driver);
}

static char dir[PATH_MAX], runtime[PATH_MAX + 16], simdir[PATH_MAX + 16];
static sd_event *event;


static Host *new_host(void) {
        HostSimConfig cfg = { .state_dir = simdir };
        Host *h = NULL;

        ck_assert_int_eq(host_new_sim(&cfg, &h), 0);
        return h;
}

static Manager *new_manager(Heard *heard) {
        ManagerConfig cfg = { .runtime_dir = runtime, .release_deadline_usec = 5 * 1000000ULL };
        ManagerError err = {};
        Manager *m = NULL;
        Host *h = new_host();

        ck_assert_int_eq(manager_new(event, h, &cfg, &m), 0);
        if (heard)
                ck_assert_int_eq(manager_add_listener(m, test_heard_event, heard), 0);
        ck_assert_msg(manager_start(m, &err) >= 0, "%s", err.message);
        return m;
}

static void read_driver(Manager *m, const char *spec, const char *address, char *buf, size_t size) {
        GroupView v = {};
        ManagerError err = {};

        buf[0] = 0;
        ck_assert_msg(manager_get_group(m, spec, &v, &err) >= 0, "%s", err.message);
        for (size_t i = 0; i < v.group.n_devices; i++)
                if (streq(v.group.devices[i].address, address))
                        snprintf(buf, size, "%s", v.group.devices[i].driver);
        group_view_done(&v);
}

#define assert_driver(m, spec, addr, want)                                                             \
        do {                                                                                           \
                char _d[64];                                                                           \
                read_driver(m, spec, addr, _d, sizeof _d);                                             \
                ck_assert_msg(streq(_d, want), "%s is on \"%s\", want \"%s\"", addr, _d, want);        \
        } while (0)

/* The driver of a device as the simulated kernel has it, read without a manager. */
static void host_driver(const char *address, char *buf, size_t size) {
        Host *h = new_host();
        HostDevice d;

        ck_assert_int_eq(host_read_device(h, address, &d), 0);
        snprintf(buf, size, "%s", d.driver);
        host_free(h);
}

static const Caller root = { .uid = 0, .gid = 0, .connection_id = 1 };

static Lease *acquire(Manager *m, const Caller *c, const char *spec, OwnerKind owner, int pidfd, Answer *a) {
        const char *specs[] = { spec };
        AcquireRequest req = { .specs = specs, .n_specs = 1, .label = "vm", .owner = owner,
                               .owner_pidfd = pidfd };
        ManagerError err = {};

        *a = (Answer) { .lease_fd = -EBADF };
        ck_assert_msg(manager_acquire(m, c, &req, test_answer_acquired, a, &err) >= 0, "%s", err.message);
        test_run_until(event, &a->done);
        ck_assert_msg(a->lease, "acquire of %s failed: %s", spec, a->err.message);
        return a->lease;
}

static void setup(void) {
        snprintf(dir, sizeof dir, "/tmp/test-manager-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(runtime, sizeof runtime, "%s/run", dir);
        snprintf(simdir, sizeof simdir, "%s/sim", dir);
        ck_assert_int_eq(mkdir(runtime, 0700), 0);
        ck_assert_int_ge(sd_event_new(&event), 0);
        fail_worker_new = false;
        memlock_raised_pid = 0;
        memlock_raised_bytes = 0;
        fail_bind_address = NULL;
}

static void teardown(void) {
        event = sd_event_unref(event);
        test_rm_rf(dir);
}

/* Acquire moves the devices, a second acquire is refused naming the holder, release puts them back. */
START_TEST(test_acquire_busy_release) {
        Heard heard = {};
        Manager *m = new_manager(&heard);
        const char *specs[] = { "0000:03:00.1" };
        AcquireRequest req = { .specs = specs, .n_specs = 1 };
        ManagerError err = {};
        Answer a, b = {};
        Lease *l;

        assert_driver(m, "3", "0000:03:00.1", "e1000");
        l = acquire(m, &root, "3", OWNER_CONNECTION, -EBADF, &a);
        ck_assert_int_eq(l->state, LEASE_ACTIVE);
        ck_assert_int_ge(l->container_fd, 0);
        ck_assert_int_ge(l->group_fds[0], 0);
        ck_assert_uint_eq(heard.started, 1);
        ck_assert_uint_eq(manager_n_leases(m), 1);
        assert_driver(m, "3", "0000:03:00.0", "vfio-pci");
        assert_driver(m, "3", "0000:03:00.1", "vfio-pci");

        /* The same group by another name: refused at once, nothing changes. */
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &b, &err), -EBUSY);
        ck_assert_int_eq(err.code, MANAGER_ERROR_BUSY);
        ck_assert_msg(strstr(err.message, l->id), "%s", err.message);
        ck_assert(!b.done);
        ck_assert_uint_eq(manager_n_leases(m), 1);

        /* Released by token; the end is announced after the lease left the registry. */
        ck_assert_int_eq(manager_release_token(m, &root, l->token, &err), 0);
        test_run_until_ended(event, &heard, 1);
        ck_assert_int_eq(heard.last_reason, LEASE_REASON_RELEASED);
        ck_assert_uint_eq(heard.n_leases_at_end, 0);
        ck_assert_uint_eq(manager_n_leases(m), 0);
        assert_driver(m, "3", "0000:03:00.0", "");
        assert_driver(m, "3", "0000:03:00.1", "e1000");
        manager_free(m);
}
END_TEST

/* A refusal before anything is touched: bad specs, too many, unknown groups, the never rule. */
START_TEST(test_refusals_change_nothing) {
        Manager *m = new_manager(NULL);
        const char *bad[] = { "not-a-group" }, *unknown[] = { "99" }, *storage[] = { "5" };
        const char *many[LEASE_GROUPS_MAX + 1];
        AcquireRequest req = { .n_specs = 1 };
        ManagerError err = {};
        Answer a = {};

        req.specs = bad;
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EINVAL);
        ck_assert_int_eq(err.code, MANAGER_ERROR_INVALID);
        req.specs = unknown;
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -ENOENT);
        ck_assert_int_eq(err.code, MANAGER_ERROR_NOT_FOUND);
        req.specs = storage;
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EPERM);
        ck_assert_int_eq(err.code, MANAGER_ERROR_DENIED);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "2";
        req.specs = many;
        req.n_specs = ELEMENTSOF(many);
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EINVAL);
        ck_assert_msg(strstr(err.message, "1 to 64"), "%s", err.message);
        req.n_specs = 0;
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EINVAL);

        ck_assert(!a.done);
        ck_assert_uint_eq(manager_n_leases(m), 0);
        assert_driver(m, "5", "0000:05:00.0", "nvme");
        manager_free(m);
}
END_TEST

/* A failure half-way (vfio-pci refuses the second GPU function, after the first and group 3 moved) rolls
 * back what it moved, and the lease is never announced. */
START_TEST(test_failed_acquire_rolls_back) {
        Heard heard = {};
        Manager *m = new_manager(&heard);
        const char *specs[] = { "3", "1" };
        AcquireRequest req = { .specs = specs, .n_specs = 2 };
        ManagerError err = {};
        Answer a = { .lease_fd = -EBADF };

        fail_bind_address = "0000:01:00.1";
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), 0);
        test_run_until(event, &a.done);
        ck_assert_ptr_null(a.lease);
        ck_assert_int_eq(a.err.code, MANAGER_ERROR_HOST);
        ck_assert_msg(strstr(a.err.message, "0000:01:00.1"), "%s", a.err.message);
        ck_assert_uint_eq(heard.started, 0);
        ck_assert_uint_eq(heard.ended, 0);     /* never announced, never ended */
        ck_assert_uint_eq(manager_n_leases(m), 0);
        assert_driver(m, "3", "0000:03:00.0", "");
        assert_driver(m, "3", "0000:03:00.1", "e1000");
        assert_driver(m, "1", "0000:01:00.0", "nouveau");
        assert_driver(m, "1", "0000:01:00.1", "snd_hda_intel");
        manager_free(m);
}
END_TEST

/* The owner process dies: its lease ends with owner-exited, drivers back. */
START_TEST(test_owner_process_death) {
        Heard heard = {};
        Manager *m = new_manager(&heard);
        Answer a;
        Lease *l;
        pid_t pid;
        int pidfd;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        ck_assert_int_ge(pidfd, 0);
        l = acquire(m, &root, "2", OWNER_PROCESS, pidfd, &a);
        ck_assert_int_eq(l->owner_kind, OWNER_PROCESS);
        ck_assert_int_eq(l->owner_pid, pid);
        close(pidfd);  /* the manager keeps its own copy */
        assert_driver(m, "2", "0000:02:00.0", "vfio-pci");

        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        test_run_until_ended(event, &heard, 1);
        ck_assert_int_eq(heard.last_reason, LEASE_REASON_OWNER_EXITED);
        assert_driver(m, "2", "0000:02:00.0", "e1000e");
        manager_free(m);
}
END_TEST

/* Every copy of the lease fd closed: the lease ends with lease-fd-closed. */
START_TEST(test_lease_fd_closed) {
        Heard heard = {};
        Manager *m = new_manager(&heard);
        Answer a;
        Lease *l;

        l = acquire(m, &root, "6", OWNER_LEASE_FD, -EBADF, &a);
        ck_assert_int_eq(l->owner_kind, OWNER_LEASE_FD);
        ck_assert_int_ge(a.lease_fd, 0);
        for (int i = 0; i < 20; i++)
                ck_assert_int_ge(sd_event_run(event, 1000), 0);
        ck_assert_uint_eq(heard.ended, 0);     /* held while the fd is open */

        close(a.lease_fd);
        test_run_until_ended(event, &heard, 1);
        ck_assert_int_eq(heard.last_reason, LEASE_REASON_LEASE_FD_CLOSED);
        assert_driver(m, "6", "0000:06:00.0", "xhci_hcd");
        manager_free(m);
}
END_TEST

/* A state file written in the middle of an acquire (the daemon died after binding): the next start puts
 * the device back and the record goes. */
START_TEST(test_reconcile_half_done) {
        Heard heard = {};
        Host *h = new_host();
        char path[PATH_MAX + 32];
        Manager *m;
        FILE *f;

        /* What the dead daemon had done: override, unbind, bind. */
        ck_assert_int_eq(host_device_set_override(h, "0000:02:00.0", "vfio-pci"), 0);
        ck_assert_int_eq(host_device_unbind(h, "0000:02:00.0"), 0);
        ck_assert_int_eq(host_device_bind(h, "0000:02:00.0", "vfio-pci"), 0);
        host_free(h);

        snprintf(path, sizeof path, "%s/state", runtime);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("groupd-state 1\n"
              "lease 1a2b3c4d5e6f ffeeddccbbaa99887766554433221100 acquiring connection uid=0 gid=0 pid=5000 "
              "owner-pid=0 owner-start=0 conn=5 iommu=0 since=1796615076000000 kvm=0 memlock=0 label=half\n"
              "group 2\n"
              "device 0000:02:00.0 2 e1000e\n"
              "end\n", f);
        fclose(f);

        m = new_manager(&heard);
        test_run_until_ended(event, &heard, 1);
        /* Its acquire was cut short by the restart, and the reason says so. */
        ck_assert_int_eq(heard.last_reason, LEASE_REASON_DAEMON_RESTARTED);
        assert_driver(m, "2", "0000:02:00.0", "e1000e");
        ck_assert_uint_eq(manager_n_leases(m), 0);
        ck_assert(!test_file_contains(path, "1a2b3c4d5e6f"));
        manager_free(m);
}
END_TEST

/* Today's state file format (written by the version before the core had its own words) is still read. */
START_TEST(test_state_file_v1_read_back) {
        char path[PATH_MAX];
        Lease *leases = NULL, *l, *next;
        unsigned line = 0, n = 0;

        snprintf(path, sizeof path, "%s/tests/data/state-v1.state", getenv("TOP_SRCDIR") ?: TOP_SRCDIR_DEFAULT);
        ck_assert_int_eq(state_read(path, NULL, &leases, &line), 0);
        for (l = leases; l; l = l->next)
                n++;
        ck_assert_uint_eq(n, 5);

        l = leases;
        ck_assert_str_eq(l->id, "6cdc36278a81");
        ck_assert_int_eq(l->state, LEASE_ACTIVE);
        ck_assert_int_eq(l->owner_kind, OWNER_PROCESS);
        ck_assert_int_eq(l->owner_pid, 6114);
        ck_assert(l->configure_iommu);
        ck_assert_uint_eq(l->n_groups, 1);
        ck_assert_uint_eq(l->groups[0], 6);
        ck_assert_str_eq(l->devices[0].driver, "xhci_hcd");
        l = l->next;
        ck_assert_str_eq(l->label, "vm one");
        ck_assert_uint_eq(l->n_devices, 2);
        ck_assert_str_eq(l->devices[0].driver, "");
        l = l->next;
        ck_assert_int_eq(l->owner_kind, OWNER_LEASE_FD);
        ck_assert_int_eq(l->uid, 107);
        ck_assert(l->kvm_registered);
        ck_assert_uint_eq(l->memlock, UINT64_C(9663676416));
        ck_assert_str_eq(l->label, "libvirt:guest-7");
        l = l->next;
        ck_assert_int_eq(l->state, LEASE_ACQUIRING);
        ck_assert_int_eq(l->owner_kind, OWNER_CONNECTION);
        l = l->next;
        ck_assert_int_eq(l->state, LEASE_RELEASING);
        ck_assert_int_eq(l->owner_kind, OWNER_BUS_NAME);
        ck_assert_uint_eq(l->n_devices, 2);

        for (l = leases; l; l = next) {
                next = l->next;
                lease_free(l);
        }
}
END_TEST

/* A restart with the fd store: a lease-fd lease whose stored fds come back is kept, watched again, and
 * ends when its owner closes the lease fd. Unclaimed stored fds are dropped. */
START_TEST(test_fd_store_claim) {
        ManagerConfig cfg = { .runtime_dir = runtime, .keep_leases_on_exit = true };
        Heard heard = {};
        Stored stored = {};
        ManagerError err = {};
        Manager *m;
        Answer a;
        Lease *l;
        char id[LEASE_ID_LEN + 1], drv[64];
        int client_fd, n_open = 0;

        m = NULL;
        ck_assert_int_eq(manager_new(event, new_host(), &cfg, &m), 0);
        manager_set_fd_store(m, test_store_fd, &stored);
        ck_assert_int_ge(manager_start(m, &err), 0);
        l = acquire(m, &root, "6", OWNER_LEASE_FD, -EBADF, &a);
        snprintf(id, sizeof id, "%s", l->id);
        client_fd = a.lease_fd;
        for (size_t i = 0; i < stored.n; i++)
                n_open += stored.fds[i] >= 0;
        ck_assert_int_eq(n_open, 3);           /* container, group 6, owner */

        /* The daemon stops, keeping the lease (its fds are in the store): the device stays assigned. */
        ck_assert_int_eq(manager_shutdown(m, NULL, NULL), 0);
        manager_free(m);
        host_driver("0000:06:00.0", drv, sizeof drv);
        ck_assert_str_eq(drv, "vfio-pci");

        /* Started again with the stored fds offered back, and one that nobody claims. */
        m = NULL;
        ck_assert_int_eq(manager_new(event, new_host(), &cfg, &m), 0);
        ck_assert_int_eq(manager_add_listener(m, test_heard_event, &heard), 0);
        manager_set_fd_store(m, test_store_fd, &stored);
        for (size_t i = 0; i < stored.n; i++)
                if (stored.fds[i] >= 0)
                        ck_assert_int_eq(manager_offer_stored_fd(m, stored.names[i],
                                                                 fcntl(stored.fds[i], F_DUPFD_CLOEXEC, 3)), 0);
        ck_assert_int_eq(manager_offer_stored_fd(m, "lease-000000000000-owner", open("/dev/null", O_RDONLY | O_CLOEXEC)),
                         0);
        ck_assert_int_ge(manager_start(m, &err), 0);
        l = manager_find_lease(m, id);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(l->state, LEASE_ACTIVE);
        ck_assert_int_ge(l->container_fd, 0);
        ck_assert_int_ge(l->group_fds[0], 0);
        ck_assert_uint_eq(heard.ended, 0);

        /* Its owner lets go: ended, device back, and the stored fds dropped. */
        close(client_fd);
        test_run_until_ended(event, &heard, 1);
        ck_assert_int_eq(heard.last_reason, LEASE_REASON_LEASE_FD_CLOSED);
        assert_driver(m, "6", "0000:06:00.0", "xhci_hcd");
        for (size_t i = 0; i < stored.n; i++)
                ck_assert_msg(stored.fds[i] < 0, "fd \"%s\" is still stored", stored.names[i]);
        manager_free(m);
}
END_TEST

/* manager_new() that fails leaves the host to the caller, who frees it once (ASan sees a double free). */
START_TEST(test_manager_new_fails_cleanly) {
        ManagerConfig cfg = { .runtime_dir = runtime };
        Manager *m = NULL;
        Host *h = new_host();

        fail_worker_new = true;
        ck_assert_int_eq(manager_new(event, h, &cfg, &m), -EMFILE);
        ck_assert_ptr_null(m);
        fail_worker_new = false;
        /* Still the caller's, and still working. */
        ck_assert_int_eq(host_get_kind(h), HOST_SIM);
        host_free(h);
}
END_TEST

/* A group held by a lease that is still being acquired, or being released, is BUSY naming the holder, and
 * the acquire's intent is in the state file before any device is touched. */
START_TEST(test_busy_while_acquiring_and_releasing) {
        Heard heard = {};
        Manager *m = new_manager(&heard);
        const char *specs[] = { "2" };
        AcquireRequest req = { .specs = specs, .n_specs = 1, .label = "first" };
        ManagerError err = {};
        Answer a = { .lease_fd = -EBADF }, b = { .lease_fd = -EBADF };
        char path[PATH_MAX + 32];
        Lease *l;

        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), 0);
        l = manager_first_lease(m);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(l->state, LEASE_ACQUIRING);
        snprintf(path, sizeof path, "%s/state", runtime);
        ck_assert(test_file_contains(path, l->id));

        /* Still acquiring: refused as busy, naming the lease. */
        req.label = "second";
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &b, &err), -EBUSY);
        ck_assert_int_eq(err.code, MANAGER_ERROR_BUSY);
        ck_assert_msg(strstr(err.message, "being acquired by") && strstr(err.message, l->id), "%s", err.message);

        test_run_until(event, &a.done);
        ck_assert_ptr_nonnull(a.lease);
        ck_assert_int_eq(manager_release_lease(m, a.lease, LEASE_REASON_RELEASED), 0);
        ck_assert_int_eq(a.lease->state, LEASE_RELEASING);
        /* Being released: busy too. */
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &b, &err), -EBUSY);
        ck_assert_msg(strstr(err.message, "being released by"), "%s", err.message);
        test_run_until_ended(event, &heard, 1);
        ck_assert(!b.done);
        manager_free(m);
}
END_TEST

/* The memlock raise goes to the owner process, not to the caller that asked. */
START_TEST(test_memlock_raised_on_owner) {
        Manager *m = new_manager(NULL);
        const char *specs[] = { "2" };
        AcquireRequest req = { .specs = specs, .n_specs = 1, .owner = OWNER_PROCESS, .memlock = true,
                               .guest_ram = UINT64_C(8) << 30 };
        Caller caller = root;
        ManagerError err = {};
        Answer a = { .lease_fd = -EBADF };
        pid_t pid;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        req.owner_pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        ck_assert_int_ge(req.owner_pidfd, 0);
        caller.pid = getpid();
        ck_assert_int_eq(manager_acquire(m, &caller, &req, test_answer_acquired, &a, &err), 0);
        test_run_until(event, &a.done);
        ck_assert_msg(a.lease, "%s", a.err.message);
        ck_assert_int_eq(memlock_raised_pid, pid);
        ck_assert_uint_eq(memlock_raised_bytes, UINT64_C(9) << 30);
        ck_assert_uint_eq(a.lease->memlock, UINT64_C(9) << 30);
        close(req.owner_pidfd);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        manager_free(m);
}
END_TEST

/* After a restart, a lease-fd lease whose owner closed the lease fd while groupd was down ends, even with
 * its fds back from the store; and a lease found half released is released again. */
START_TEST(test_restart_owner_gone_meanwhile) {
        ManagerConfig cfg = { .runtime_dir = runtime, .keep_leases_on_exit = true };
        Heard heard = {};
        Stored stored = {};
        ManagerError err = {};
        char path[PATH_MAX + 32];
        Manager *m = NULL;
        Answer a;
        FILE *f;

        ck_assert_int_eq(manager_new(event, new_host(), &cfg, &m), 0);
        manager_set_fd_store(m, test_store_fd, &stored);
        ck_assert_int_ge(manager_start(m, &err), 0);
        (void) acquire(m, &root, "6", OWNER_LEASE_FD, -EBADF, &a);
        ck_assert_int_eq(manager_shutdown(m, NULL, NULL), 0);
        manager_free(m);
        close(a.lease_fd);                       /* the owner lets go while groupd is down */

        /* A second lease, recorded as half released by the daemon that died. */
        snprintf(path, sizeof path, "%s/state", runtime);
        f = fopen(path, "ae");
        ck_assert_ptr_nonnull(f);
        fputs("lease 2a2b3c4d5e6f 0123456789abcdef0123456789abcdef releasing connection uid=0 gid=0 pid=1 "
              "owner-pid=0 owner-start=0 conn=9 iommu=0 since=1 kvm=0 memlock=0 label=half\n"
              "group 2\n"
              "device 0000:02:00.0 2 e1000e\n"
              "end\n", f);
        fclose(f);
        {
                Host *h = new_host();
                ck_assert_int_eq(host_device_set_override(h, "0000:02:00.0", "vfio-pci"), 0);
                ck_assert_int_eq(host_device_unbind(h, "0000:02:00.0"), 0);
                ck_assert_int_eq(host_device_bind(h, "0000:02:00.0", "vfio-pci"), 0);
                host_free(h);
        }

        m = NULL;
        ck_assert_int_eq(manager_new(event, new_host(), &cfg, &m), 0);
        ck_assert_int_eq(manager_add_listener(m, test_heard_event, &heard), 0);
        manager_set_fd_store(m, test_store_fd, &stored);
        for (size_t i = 0; i < stored.n; i++)
                if (stored.fds[i] >= 0)
                        ck_assert_int_eq(manager_offer_stored_fd(m, stored.names[i],
                                                                 fcntl(stored.fds[i], F_DUPFD_CLOEXEC, 3)), 0);
        ck_assert_int_ge(manager_start(m, &err), 0);
        test_run_until_ended(event, &heard, 2);
        /* Ended with the reasons that say what happened: the owner let go; the release was cut short. */
        ck_assert_msg((heard.reasons & (1u << LEASE_REASON_LEASE_FD_CLOSED)) &&
                      (heard.reasons & (1u << LEASE_REASON_DAEMON_RESTARTED)), "reasons 0x%x", heard.reasons);
        ck_assert_uint_eq(manager_n_leases(m), 0);
        assert_driver(m, "6", "0000:06:00.0", "xhci_hcd");
        assert_driver(m, "2", "0000:02:00.0", "e1000e");
        manager_free(m);
}
END_TEST

/* What a restart does with a lease follows the state file, which is written only when that would change:
 * a lease-fd lease is recorded active once acquired (a restart keeps it while the fd is open) and
 * releasing once its release starts (a restart then puts the devices back, fd or not); a connection's
 * lease is recorded from before its devices move until they are back, whatever it says of its state. */
START_TEST(test_state_file_follows_what_a_restart_does) {
        Heard heard = {};
        Manager *m = new_manager(&heard);
        char path[PATH_MAX + 32], line[256], id[LEASE_ID_LEN + 1];
        Answer a, b;
        Lease *l, *c;

        snprintf(path, sizeof path, "%s/state", runtime);
        l = acquire(m, &root, "6", OWNER_LEASE_FD, -EBADF, &a);
        snprintf(line, sizeof line, "lease %s %s active lease-fd", l->id, l->token);
        ck_assert_msg(test_file_contains(path, line), "no \"%s\" in the state file", line);

        c = acquire(m, &root, "2", OWNER_CONNECTION, -EBADF, &b);
        ck_assert(test_file_contains(path, c->id));
        ck_assert_int_eq(manager_release_lease(m, c, LEASE_REASON_RELEASED), 0);
        ck_assert(test_file_contains(path, c->id));   /* its devices are on their way back */
        ck_assert(test_file_contains(path, "group 2"));
        test_run_until_ended(event, &heard, 1);
        ck_assert(!test_file_contains(path, "group 2"));

        ck_assert_int_eq(manager_release_lease(m, l, LEASE_REASON_RELEASED), 0);
        snprintf(line, sizeof line, "lease %s %s releasing lease-fd", l->id, l->token);
        ck_assert_msg(test_file_contains(path, line), "no \"%s\" in the state file", line);
        snprintf(id, sizeof id, "%s", l->id);
        test_run_until_ended(event, &heard, 2);
        ck_assert(!test_file_contains(path, id));
        close(a.lease_fd);
        manager_free(m);
}
END_TEST

/* A standby rule: the device goes to vfio-pci at start; a lease of it takes it as it is and its release
 * leaves it there (no host driver back), and a connection's lease of it is never written to the state
 * file (a restart would find nothing to put back). A group without the rule is put back as before. The
 * group's view says it is on standby, and after a restart the device is still there. */
START_TEST(test_standby_kept_on_vfio_pci) {
        ManagerConfig cfg = { .runtime_dir = runtime, .release_deadline_usec = 5 * 1000000ULL };
        char policy[PATH_MAX + 32], path[PATH_MAX + 32], drv[64];
        Heard heard = {};
        ManagerError err = {};
        GroupView v = {};
        Manager *m = NULL;
        Answer a;
        Lease *l;

        snprintf(policy, sizeof policy, "%s/policy.conf", dir);
        test_write_file(policy, "standby pci=0000:02:00.0\n");
        cfg.policy_path = policy;
        snprintf(path, sizeof path, "%s/state", runtime);

        ck_assert_int_eq(manager_new(event, new_host(), &cfg, &m), 0);
        ck_assert_int_eq(manager_add_listener(m, test_heard_event, &heard), 0);
        ck_assert_msg(manager_start(m, &err) >= 0, "%s", err.message);
        for (int i = 0; i < 1000; i++) {
                host_driver("0000:02:00.0", drv, sizeof drv);
                if (streq(drv, "vfio-pci"))
                        break;
                ck_assert_int_ge(sd_event_run(event, 10 * 1000), 0);
        }
        ck_assert_str_eq(drv, "vfio-pci");
        ck_assert_int_ge(manager_get_group(m, "2", &v, &err), 0);
        ck_assert_msg(strstr(v.policy_note, "standby"), "policy note: %s", v.policy_note);
        group_view_done(&v);

        l = acquire(m, &root, "2", OWNER_CONNECTION, -EBADF, &a);
        ck_assert(l->devices[0].standby);
        ck_assert(!test_file_contains(path, l->id));
        ck_assert_int_eq(manager_release_lease(m, l, LEASE_REASON_RELEASED), 0);
        test_run_until_ended(event, &heard, 1);
        ck_assert_msg(strstr(heard.last_detail, "0000:02:00.0 stays on vfio-pci"), "%s", heard.last_detail);
        assert_driver(m, "2", "0000:02:00.0", "vfio-pci");

        /* Without the rule, the same group goes back to e1000e at its release. */
        l = acquire(m, &root, "6", OWNER_CONNECTION, -EBADF, &a);
        ck_assert(!l->devices[0].standby);
        ck_assert(test_file_contains(path, l->id));
        ck_assert_int_eq(manager_release_lease(m, l, LEASE_REASON_RELEASED), 0);
        test_run_until_ended(event, &heard, 2);
        assert_driver(m, "6", "0000:06:00.0", "xhci_hcd");
        manager_free(m);

        /* A restart leaves the standby device where it is. */
        m = NULL;
        ck_assert_int_eq(manager_new(event, new_host(), &cfg, &m), 0);
        ck_assert_msg(manager_start(m, &err) >= 0, "%s", err.message);
        assert_driver(m, "2", "0000:02:00.0", "vfio-pci");
        manager_free(m);
}
END_TEST

static Suite *manager_suite(void) {
        Suite *s = suite_create("manager");
        TCase *tc = tcase_create("sim");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_acquire_busy_release);
        tcase_add_test(tc, test_refusals_change_nothing);
        tcase_add_test(tc, test_failed_acquire_rolls_back);
        tcase_add_test(tc, test_owner_process_death);
        tcase_add_test(tc, test_lease_fd_closed);
        tcase_add_test(tc, test_reconcile_half_done);
        tcase_add_test(tc, test_state_file_v1_read_back);
        tcase_add_test(tc, test_fd_store_claim);
        tcase_add_test(tc, test_manager_new_fails_cleanly);
        tcase_add_test(tc, test_busy_while_acquiring_and_releasing);
        tcase_add_test(tc, test_memlock_raised_on_owner);
        tcase_add_test(tc, test_restart_owner_gone_meanwhile);
        tcase_add_test(tc, test_state_file_follows_what_a_restart_does);
        tcase_add_test(tc, test_standby_kept_on_vfio_pci);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(manager_suite(), NULL);
}
