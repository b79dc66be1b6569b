/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kernel sequences of a lease (daemon/core/prepare.c) on the simulated host, with no manager: an
 * acquire that fails at any step of any phase leaves every device as it found it and no fd open, and a
 * restore after a good acquire does too. Failures are injected by wrapping the host calls
 * (-Wl,--wrap=host_...), as tpm2-abrmd swaps its collaborators. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host-sim.h"
#include "sim-topology.h"
#include "prepare.h"
#include "test-util.h"

/* ---------------------------------------------------------------- fault injection */

typedef enum Op {
        OP_SET_OVERRIDE,
        OP_UNBIND,
        OP_BIND,
        OP_OPEN_CONTAINER,
        OP_OPEN_GROUP,
        OP_SET_CONTAINER,
        OP_SET_IOMMU,
        OP_RAISE_MEMLOCK,
        _OP_MAX,
} Op;

static const char *const op_names[_OP_MAX] = {
        "set_override", "unbind", "bind", "open_container", "open_group", "set_container", "set_iommu",
        "raise_memlock",
};

/* The devices' shares run on threads of their own (fanout.h): the counters are atomic, and "call N" is
 * the N-th to start, whichever device it is for. */
static unsigned calls[_OP_MAX];
static Op fail_op = _OP_MAX;
static unsigned fail_at;     /* 1-based call number of fail_op that fails */

/* Overlap watch: calls of meet_op wait (at most MEET_WAIT_MS) until another is in flight with them, and the
 * most ever in flight at once is kept. One after the other, no call ever meets another. */
#define MEET_WAIT_MS 500
static Op meet_op = _OP_MAX;
static unsigned in_flight, max_in_flight;

static void meet_begin(Op op) {
        unsigned now;

        if (op != meet_op)
                return;
        now = __atomic_add_fetch(&in_flight, 1, __ATOMIC_SEQ_CST);
        for (unsigned seen = __atomic_load_n(&max_in_flight, __ATOMIC_SEQ_CST); now > seen;)
                if (__atomic_compare_exchange_n(&max_in_flight, &seen, now, false, __ATOMIC_SEQ_CST,
                                                __ATOMIC_SEQ_CST))
                        break;
        for (unsigned ms = 0; ms < MEET_WAIT_MS && __atomic_load_n(&max_in_flight, __ATOMIC_SEQ_CST) < 2; ms++)
                usleep(1000);
}

static void meet_end(Op op) {
        if (op == meet_op)
                __atomic_sub_fetch(&in_flight, 1, __ATOMIC_SEQ_CST);
}

static bool inject(Op op) {
        unsigned n = __atomic_add_fetch(&calls[op], 1, __ATOMIC_SEQ_CST);
        return op == fail_op && n == fail_at;
}

int __real_host_device_set_override(Host *h, const char *address, const char *driver);
int __wrap_host_device_set_override(Host *h, const char *address, const char *driver);
int __wrap_host_device_set_override(Host *h, const char *address, const char *driver) {
        return inject(OP_SET_OVERRIDE) ? -EIO : __real_host_device_set_override(h, address, driver);
}

int __real_host_device_unbind(Host *h, const char *address);
int __wrap_host_device_unbind(Host *h, const char *address);
int __wrap_host_device_unbind(Host *h, const char *address) {
        int r;

        meet_begin(OP_UNBIND);
        r = inject(OP_UNBIND) ? -EIO : __real_host_device_unbind(h, address);
        meet_end(OP_UNBIND);
        return r;
}

int __real_host_device_bind(Host *h, const char *address, const char *driver);
int __wrap_host_device_bind(Host *h, const char *address, const char *driver);
int __wrap_host_device_bind(Host *h, const char *address, const char *driver) {
        int r;

        meet_begin(OP_BIND);
        r = inject(OP_BIND) ? -EINVAL : __real_host_device_bind(h, address, driver);
        meet_end(OP_BIND);
        return r;
}

int __real_host_open_container(Host *h, int *ret_fd);
int __wrap_host_open_container(Host *h, int *ret_fd);
int __wrap_host_open_container(Host *h, int *ret_fd) {
        return inject(OP_OPEN_CONTAINER) ? -EMFILE : __real_host_open_container(h, ret_fd);
}

int __real_host_open_group(Host *h, unsigned id, int *ret_fd);
int __wrap_host_open_group(Host *h, unsigned id, int *ret_fd);
int __wrap_host_open_group(Host *h, unsigned id, int *ret_fd) {
        return inject(OP_OPEN_GROUP) ? -EBUSY : __real_host_open_group(h, id, ret_fd);
}

int __real_host_group_set_container(Host *h, int group_fd, int container_fd);
int __wrap_host_group_set_container(Host *h, int group_fd, int container_fd);
int __wrap_host_group_set_container(Host *h, int group_fd, int container_fd) {
        return inject(OP_SET_CONTAINER) ? -EPERM : __real_host_group_set_container(h, group_fd, container_fd);
}

int __real_host_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type);
int __wrap_host_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type);
int __wrap_host_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type) {
        return inject(OP_SET_IOMMU) ? -ENODEV : __real_host_container_set_iommu(h, container_fd, ret_type);
}

/* Never the real prlimit here: raising a hard limit needs CAP_SYS_RESOURCE, which a test may lack. */
int __wrap_host_raise_memlock(Host *h, pid_t pid, uint64_t bytes, uint64_t *ret_old_soft, uint64_t *ret_old_hard);
int __wrap_host_raise_memlock(Host *h, pid_t pid, uint64_t bytes, uint64_t *ret_old_soft, uint64_t *ret_old_hard) {
        return inject(OP_RAISE_MEMLOCK) ? -EPERM : 0;
}

/* The delivery modes' host calls, failed in turn by test_rollback_delivery. */
typedef enum DeliveryOp {
        DOP_OPEN_IOMMUFD,
        DOP_RLIMIT_MODE,
        DOP_OPEN_CDEV,
        DOP_NODE_GRANT,
        _DOP_MAX,
} DeliveryOp;

static const char *const dop_names[_DOP_MAX] = { "open_iommufd", "set_rlimit_mode", "open_device_cdev", "node_grant" };
static unsigned dcalls[_DOP_MAX];
static DeliveryOp dfail_op = _DOP_MAX;
static unsigned dfail_at;

static bool dinject(DeliveryOp op) {
        dcalls[op]++;
        return op == dfail_op && dcalls[op] == dfail_at;
}

static void dinject_reset(DeliveryOp op, unsigned at) {
        memset(dcalls, 0, sizeof dcalls);
        dfail_op = op;
        dfail_at = at;
}

int __real_host_open_iommufd(Host *h, int *ret_fd);
int __wrap_host_open_iommufd(Host *h, int *ret_fd);
int __wrap_host_open_iommufd(Host *h, int *ret_fd) {
        return dinject(DOP_OPEN_IOMMUFD) ? -EMFILE : __real_host_open_iommufd(h, ret_fd);
}

int __real_host_iommufd_set_rlimit_mode(Host *h, int iommufd, bool per_process);
int __wrap_host_iommufd_set_rlimit_mode(Host *h, int iommufd, bool per_process);
/* With rlimit_mode_ignored, the call "succeeds" and changes nothing (the mode stays system-wide). */
static bool rlimit_mode_ignored;
int __wrap_host_iommufd_set_rlimit_mode(Host *h, int iommufd, bool per_process) {
        if (rlimit_mode_ignored)
                return 0;
        return dinject(DOP_RLIMIT_MODE) ? -EPERM : __real_host_iommufd_set_rlimit_mode(h, iommufd, per_process);
}

int __real_host_open_device_cdev(Host *h, const char *address, int *ret_fd);
int __wrap_host_open_device_cdev(Host *h, const char *address, int *ret_fd);
int __wrap_host_open_device_cdev(Host *h, const char *address, int *ret_fd) {
        return dinject(DOP_OPEN_CDEV) ? -ENXIO : __real_host_open_device_cdev(h, address, ret_fd);
}

int __real_host_node_grant(Host *h, const char *node, uid_t uid, HostNodeAccess *ret_before);
int __wrap_host_node_grant(Host *h, const char *node, uid_t uid, HostNodeAccess *ret_before);
int __wrap_host_node_grant(Host *h, const char *node, uid_t uid, HostNodeAccess *ret_before) {
        return dinject(DOP_NODE_GRANT) ? -EOPNOTSUPP : __real_host_node_grant(h, node, uid, ret_before);
}

static void inject_reset(Op op, unsigned at) {
        memset(calls, 0, sizeof calls);
        fail_op = op;
        fail_at = at;
}

static void meet_reset(Op op) {
        meet_op = op;
        in_flight = max_in_flight = 0;
}

/* ---------------------------------------------------------------- the host as it was */

static char dir[PATH_MAX], simdir[PATH_MAX + 16];
static Host *host;

/* Groups 1 (nouveau + snd_hda_intel), 3 (a driverless function + e1000) and 6 (xhci_hcd) of the default
 * sim topology: host drivers, no driver, several groups in one container. */
static const unsigned groups[] = { 1, 3, 6 };

typedef struct Snapshot {
        HostDevice d[16];
        size_t n;
} Snapshot;

static void snapshot(Snapshot *s) {
        *s = (Snapshot) {};
        for (size_t i = 0; i < ELEMENTSOF(groups); i++) {
                HostGroup g = {};
                ck_assert_int_eq(host_read_group(host, groups[i], &g), 0);
                for (size_t k = 0; k < g.n_devices; k++)
                        s->d[s->n++] = g.devices[k];
                host_group_done(&g);
        }
}

static void assert_same(const Snapshot *want, const char *when) {
        Snapshot now;

        snapshot(&now);
        ck_assert_uint_eq(now.n, want->n);
        for (size_t i = 0; i < want->n; i++) {
                ck_assert_msg(streq(now.d[i].driver, want->d[i].driver) &&
                              streq(now.d[i].driver_override, want->d[i].driver_override),
                              "%s: %s is on \"%s\" (override \"%s\"), was on \"%s\" (override \"%s\")", when,
                              want->d[i].address, now.d[i].driver, now.d[i].driver_override, want->d[i].driver,
                              want->d[i].driver_override);
        }
}

static Prepare *new_prepare(void) {
        LeaseDevice devices[16];
        size_t n = 0;
        Prepare *p = NULL;

        for (size_t i = 0; i < ELEMENTSOF(groups); i++) {
                HostGroup g = {};
                ck_assert_int_eq(host_read_group(host, groups[i], &g), 0);
                for (size_t k = 0; k < g.n_devices; k++) {
                        devices[n] = (LeaseDevice) { .group = groups[i] };
                        snprintf(devices[n].address, sizeof devices[n].address, "%s", g.devices[k].address);
                        snprintf(devices[n].driver, sizeof devices[n].driver, "%s", g.devices[k].driver);
                        n++;
                }
                host_group_done(&g);
        }
        ck_assert_int_eq(prepare_new(host, devices, n, groups, ELEMENTSOF(groups), &p), 0);
        p->configure_iommu = true;
        p->memlock = true;
        p->guest_ram = UINT64_C(1) << 30;
        p->memlock_max = UINT64_MAX;
        p->memlock_pid = getpid();
        return p;
}

static void setup(void) {
        HostSimConfig cfg = {};

        snprintf(dir, sizeof dir, "/tmp/test-prepare-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(simdir, sizeof simdir, "%s/sim", dir);
        cfg.state_dir = simdir;
        ck_assert_int_eq(host_new_sim(&cfg, &host), 0);
        inject_reset(_OP_MAX, 0);
        meet_reset(_OP_MAX);
}

static void teardown(void) {
        host = host_free(host);
        test_rm_rf(dir);
}

/* A good acquire moves every device and opens what it should; a restore gives everything back. */
START_TEST(test_acquire_then_restore) {
        Snapshot before;
        Prepare *p;

        snapshot(&before);
        p = new_prepare();
        ck_assert_int_eq(prepare_acquire(p), 0);
        ck_assert_int_ge(p->container_fd, 0);
        for (size_t i = 0; i < p->n_groups; i++)
                ck_assert_int_ge(p->group_fds[i], 0);
        ck_assert_uint_ne(p->iommu_type, 0);
        ck_assert_uint_eq(p->memlock_set, (UINT64_C(1) << 30) + (UINT64_C(1) << 30));
        for (size_t i = 0; i < p->n_devices; i++) {
                HostDevice d;
                ck_assert_int_eq(host_read_device(host, p->devices[i].address, &d), 0);
                ck_assert_str_eq(d.driver, "vfio-pci");
        }
        /* What the loop does when it takes the fds: the daemon lets go before the restore. */
        p->container_fd = safe_close(p->container_fd);
        close_many(p->group_fds, p->n_groups);
        ck_assert_int_eq(prepare_restore(p), 0);
        ck_assert_msg(strstr(p->detail, "0000:01:00.0 → nouveau"), "%s", p->detail);
        assert_same(&before, "after restore");
        /* Restoring again changes nothing: it is idempotent (a crash between the two is fine). */
        ck_assert_int_eq(prepare_restore(p), 0);
        assert_same(&before, "after a second restore");
        prepare_free(p);
}
END_TEST

/* Every call of every phase made to fail in turn: the acquire fails, says where, closes its fds, and the
 * host is exactly as before. */
START_TEST(test_rollback_after_each_step) {
        unsigned total[_OP_MAX];
        Snapshot before;
        Prepare *p;
        unsigned cases = 0;

        snapshot(&before);
        /* Count the calls of a good run. */
        p = new_prepare();
        inject_reset(_OP_MAX, 0);
        ck_assert_int_eq(prepare_acquire(p), 0);
        memcpy(total, calls, sizeof total);
        p->container_fd = safe_close(p->container_fd);
        close_many(p->group_fds, p->n_groups);
        ck_assert_int_eq(prepare_restore(p), 0);
        prepare_free(p);
        assert_same(&before, "after the counting run");
        for (Op op = 0; op < _OP_MAX; op++)
                ck_assert_msg(total[op] > 0, "a good acquire never calls %s", op_names[op]);

        for (Op op = 0; op < _OP_MAX; op++)
                for (unsigned at = 1; at <= total[op]; at++) {
                        char when[128];
                        int r;

                        p = new_prepare();
                        inject_reset(op, at);
                        r = prepare_acquire(p);
                        snprintf(when, sizeof when, "%s call %u of %u failed", op_names[op], at, total[op]);
                        ck_assert_msg(r < 0, "%s: the acquire succeeded", when);
                        ck_assert_msg(!isempty(p->error.message), "%s: no error message", when);
                        ck_assert_msg(p->container_fd < 0, "%s: the container fd is left open", when);
                        for (size_t i = 0; i < p->n_groups; i++)
                                ck_assert_msg(p->group_fds[i] < 0, "%s: group %u's fd is left open", when,
                                              p->groups[i]);
                        inject_reset(_OP_MAX, 0);
                        assert_same(&before, when);
                        prepare_free(p);
                        cases++;
                }
        ck_assert_uint_ge(cases, 10);
}
END_TEST

/* The delivery modes, on a host with iommufd and cdevs: each of their host calls made to fail in turn.
 * The acquire fails, says where, leaves no iommufd, cdev or group fd open and no grant behind (a grant
 * made before the failure is revoked, and says so), and the host is exactly as before. */
/* The fixture's host again, on a kernel with IOMMUFD and VFIO_DEVICE_CDEV. */
static void use_cdev_host(void) {
        char topo[PATH_MAX + 16];
        FILE *f;

        host = host_free(host);
        snprintf(topo, sizeof topo, "%s/cdev.topo", dir);
        f = fopen(topo, "we");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "cdev\n%s", sim_topology_default_text());
        fclose(f);
        ck_assert_int_eq(host_new_sim(&(HostSimConfig) { .state_dir = simdir, .topology_path = topo }, &host), 0);
}

START_TEST(test_rollback_delivery) {
        static const LeaseDelivery modes[] = { LEASE_DELIVERY_IOMMUFD, LEASE_DELIVERY_NODE_GRANT };
        unsigned cases = 0;
        Snapshot before;

        use_cdev_host();
        snapshot(&before);

        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                unsigned total[_DOP_MAX];
                Prepare *p = new_prepare();

                /* A good run, counting its calls; then back. */
                p->delivery = modes[m];
                p->grant_uid = 1000;
                dinject_reset(_DOP_MAX, 0);
                ck_assert_int_eq(prepare_acquire(p), 0);
                memcpy(total, dcalls, sizeof total);
                ck_assert_int_eq(p->delivery, modes[m]);
                ck_assert_int_lt(p->container_fd, 0);
                p->iommufd = safe_close(p->iommufd);
                close_many(p->device_fds, p->n_devices);
                ck_assert_int_eq(prepare_restore(p), 0);
                prepare_free(p);
                assert_same(&before, "after the counting run");

                for (DeliveryOp op = 0; op < _DOP_MAX; op++)
                        for (unsigned at = 1; at <= total[op]; at++) {
                                char when[160];
                                int r;

                                p = new_prepare();
                                p->delivery = modes[m];
                                p->grant_uid = 1000;
                                dinject_reset(op, at);
                                r = prepare_acquire(p);
                                snprintf(when, sizeof when, "%s: %s call %u of %u failed",
                                         modes[m] == LEASE_DELIVERY_IOMMUFD ? "iommufd" : "node-grant",
                                         dop_names[op], at, total[op]);
                                ck_assert_msg(r < 0, "%s: the acquire succeeded", when);
                                ck_assert_msg(!isempty(p->error.message), "%s: no error message", when);
                                ck_assert_msg(p->iommufd < 0, "%s: the iommufd is left open", when);
                                for (size_t i = 0; i < p->n_devices; i++)
                                        ck_assert_msg(p->device_fds[i] < 0, "%s: a cdev is left open", when);
                                ck_assert_msg(p->container_fd < 0, "%s: a container was opened", when);
                                ck_assert_msg(p->n_grants == 0, "%s: %zu grant(s) left", when, p->n_grants);
                                if (op == DOP_NODE_GRANT && at > 1)
                                        ck_assert_msg(strstr(p->detail, "/dev/vfio/1: access as before"), "%s: %s",
                                                      when, p->detail);
                                dinject_reset(_DOP_MAX, 0);
                                assert_same(&before, when);
                                prepare_free(p);
                                cases++;
                        }
        }
        /* iommufd: 1 + 1 + 5 devices; node-grant: 3 groups. */
        ck_assert_uint_eq(cases, 10);
}
END_TEST

/* An iommufd whose accounting mode did not become per-process (the set "worked", the read-back says
 * otherwise) is not handed out: the VMM's own RLIMIT_MEMLOCK would not bound its pinning. Refused, saying
 * so, and rolled back. */
START_TEST(test_iommufd_rlimit_mode_read_back) {
        Snapshot before;
        Prepare *p;

        use_cdev_host();
        snapshot(&before);
        p = new_prepare();
        p->delivery = LEASE_DELIVERY_IOMMUFD;
        rlimit_mode_ignored = true;
        ck_assert_int_lt(prepare_acquire(p), 0);
        rlimit_mode_ignored = false;
        ck_assert_msg(strstr(p->error.message, "RLIMIT_MODE"), "%s", p->error.message);
        ck_assert_int_lt(p->iommufd, 0);
        for (size_t i = 0; i < p->n_devices; i++)
                ck_assert_int_lt(p->device_fds[i], 0);
        assert_same(&before, "after an iommufd left in the system-wide mode");
        prepare_free(p);
}
END_TEST

/* The devices of a lease move at once, across its groups and within one (group 1: nouveau and
 * snd_hda_intel): the unbinds of an acquire overlap, so do the binds and the unbinds of the restore. And
 * a bind that fails while the others are under way still leaves the host exactly as it was. */
START_TEST(test_devices_move_at_once) {
        Snapshot before;
        Prepare *p;

        snapshot(&before);
        p = new_prepare();
        ck_assert_uint_ge(p->n_devices, 4);
        meet_reset(OP_UNBIND);
        ck_assert_int_eq(prepare_acquire(p), 0);
        ck_assert_msg(max_in_flight >= 2, "the acquire's unbinds ran one after the other");
        p->container_fd = safe_close(p->container_fd);
        close_many(p->group_fds, p->n_groups);
        meet_reset(OP_UNBIND);
        ck_assert_int_eq(prepare_restore(p), 0);
        ck_assert_msg(max_in_flight >= 2, "the restore's unbinds ran one after the other");
        ck_assert_msg(strstr(p->detail, "0000:01:00.0 → nouveau, 0000:01:00.1 → snd_hda_intel"),
                      "the detail is not in the devices' order: %s", p->detail);
        assert_same(&before, "after restore");
        prepare_free(p);

        for (unsigned at = 1; at <= 3; at++) {
                char when[64];

                p = new_prepare();
                meet_reset(OP_BIND);
                inject_reset(OP_BIND, at);
                ck_assert_int_lt(prepare_acquire(p), 0);
                ck_assert_msg(max_in_flight >= 2, "the acquire's binds ran one after the other");
                ck_assert_msg(strstr(p->error.message, "cannot bind"), "%s", p->error.message);
                ck_assert(p->container_fd < 0);
                inject_reset(_OP_MAX, 0);
                snprintf(when, sizeof when, "bind %u of the parallel binds failed", at);
                assert_same(&before, when);
                prepare_free(p);
        }
}
END_TEST

/* Devices already on vfio-pci before the acquire (bound by hand) are not touched by its rollback. */
START_TEST(test_rollback_leaves_what_it_did_not_move) {
        Snapshot before;
        Prepare *p;

        ck_assert_int_eq(__real_host_device_set_override(host, "0000:06:00.0", "vfio-pci"), 0);
        ck_assert_int_eq(__real_host_device_unbind(host, "0000:06:00.0"), 0);
        ck_assert_int_eq(__real_host_device_bind(host, "0000:06:00.0", "vfio-pci"), 0);
        snapshot(&before);

        p = new_prepare();
        inject_reset(OP_SET_IOMMU, 1);
        ck_assert_int_lt(prepare_acquire(p), 0);
        ck_assert_int_eq(p->error.code, MANAGER_ERROR_HOST);
        assert_same(&before, "after a failed acquire");
        prepare_free(p);
}
END_TEST

/* The policy's memlock ceiling: above it, refused (and rolled back); exactly at it, granted. */
START_TEST(test_memlock_ceiling) {
        const uint64_t want = (UINT64_C(1) << 30) + (UINT64_C(1) << 30);
        Snapshot before;
        Prepare *p;

        snapshot(&before);
        p = new_prepare();
        p->memlock_max = want - 1;
        ck_assert_int_eq(prepare_acquire(p), -EPERM);
        ck_assert_int_eq(p->error.code, MANAGER_ERROR_DENIED);
        ck_assert_msg(strstr(p->error.message, "max="), "%s", p->error.message);
        assert_same(&before, "after a refused memlock");
        prepare_free(p);

        p = new_prepare();
        p->memlock_max = want;
        ck_assert_int_eq(prepare_acquire(p), 0);
        ck_assert_uint_eq(p->memlock_set, want);
        p->container_fd = safe_close(p->container_fd);
        close_many(p->group_fds, p->n_groups);
        ck_assert_int_eq(prepare_restore(p), 0);
        assert_same(&before, "after restore");
        prepare_free(p);
}
END_TEST

/* A device whose host driver does not come back by itself on a reprobe (bound by hand: no native driver
 * matches it) gets it back by an explicit bind. */
START_TEST(test_restore_binds_by_name) {
        char topo[PATH_MAX + 16], dir2[PATH_MAX + 16];
        HostSimConfig cfg = {};
        LeaseDevice ld = { .group = 9 };
        unsigned g = 9;
        Host *h = NULL;
        Prepare *p = NULL;
        HostDevice d;

        snprintf(topo, sizeof topo, "%s/hand.topo", dir);
        snprintf(dir2, sizeof dir2, "%s/sim-hand", dir);
        test_write_file(topo, "group 9\ndevice 0000:09:00.0 vendor=0x1af4 device=0x1041 class=0x020000 "
                              "native=virtio-by-hand noprobe\n");
        cfg.state_dir = dir2;
        cfg.topology_path = topo;
        ck_assert_int_eq(host_new_sim(&cfg, &h), 0);
        snprintf(ld.address, sizeof ld.address, "0000:09:00.0");
        snprintf(ld.driver, sizeof ld.driver, "virtio-by-hand");

        ck_assert_int_eq(prepare_new(h, &ld, 1, &g, 1, &p), 0);
        ck_assert_int_eq(prepare_acquire(p), 0);
        ck_assert_int_eq(host_read_device(h, "0000:09:00.0", &d), 0);
        ck_assert_str_eq(d.driver, "vfio-pci");
        p->container_fd = safe_close(p->container_fd);
        close_many(p->group_fds, p->n_groups);
        ck_assert_msg(prepare_restore(p) == 0, "%s", p->detail);
        ck_assert_int_eq(host_read_device(h, "0000:09:00.0", &d), 0);
        ck_assert_str_eq(d.driver, "virtio-by-hand");
        ck_assert_str_eq(d.driver_override, "");
        prepare_free(p);
        host_free(h);
}
END_TEST

static Suite *prepare_suite(void) {
        Suite *s = suite_create("prepare");
        TCase *tc = tcase_create("sim");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_acquire_then_restore);
        tcase_add_test(tc, test_rollback_delivery);
        tcase_add_test(tc, test_iommufd_rlimit_mode_read_back);
        tcase_add_test(tc, test_rollback_after_each_step);
        tcase_add_test(tc, test_devices_move_at_once);
        tcase_add_test(tc, test_rollback_leaves_what_it_did_not_move);
        tcase_add_test(tc, test_memlock_ceiling);
        tcase_add_test(tc, test_restore_binds_by_name);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(prepare_suite(), NULL);
}
