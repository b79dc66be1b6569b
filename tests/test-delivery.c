/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The three delivery modes in the core, in-process on the simulated host with the kernel's rules:
 *
 *   iommufd     an iommufd with per-process accounting and one unbound cdev per device; /dev/vfio/N never
 *               opened (the group still opens afterwards; a cdev then cannot bind: EBUSY); DMA facts from
 *               a scratch IOAS with the MSI window cut out; drivers back when the owner exits.
 *   auto        iommufd where the simulated kernel has it ("cdev" in the topology), else legacy.
 *   node-grant  nothing opened; the uid may open /dev/vfio/N, another uid may not; when the lease ends the
 *               node's owner, mode and ACL are byte for byte what they were, also when the lease was taken
 *               back by a restarted daemon from its state file.
 *   refusals    node-grant for another uid by non-root, an unknown mode, a grant uid without node-grant,
 *               iommufd on a kernel without it: refused at once, with a message, nothing changed. */
#include <check.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fd-util.h"
#include "host-sim.h"
#include "manager.h"
#include "test-manager-util.h"
#include "test-util.h"

static char dir[PATH_MAX], runtime[PATH_MAX + 16], simdir[PATH_MAX + 16], topo[PATH_MAX + 16],
            topo_iommufd_only[PATH_MAX + 32];
static sd_event *event;
static Host *cur_host;           /* the running manager's (borrowed after manager_new) */

/* The same, keeping the client's end of a lease fd. */
static int kept_lease_fd = -EBADF;
static int on_acquired_keep_fd(Manager *m, Lease *l, int *lease_fd, const ManagerError *err, void *userdata) {
        if (lease_fd && *lease_fd >= 0)
                kept_lease_fd = fcntl(*lease_fd, F_DUPFD_CLOEXEC, 3);
        return test_answer_acquired(m, l, NULL, err, userdata);   /* one copy kept, here */
}

static Manager *new_manager_on(const char *topology_path, Heard *heard) {
        HostSimConfig hc = { .state_dir = simdir, .topology_path = topology_path };
        ManagerConfig cfg = { .runtime_dir = runtime, .release_deadline_usec = 5 * 1000000ULL };
        ManagerError err = {};
        Manager *m = NULL;
        Host *h = NULL;

        ck_assert_int_eq(host_new_sim(&hc, &h), 0);
        ck_assert_int_eq(manager_new(event, h, &cfg, &m), 0);
        cur_host = h;
        if (heard)
                ck_assert_int_eq(manager_add_listener(m, test_heard_event, heard), 0);
        ck_assert_msg(manager_start(m, &err) >= 0, "%s", err.message);
        return m;
}

static Manager *new_manager(bool cdev, Heard *heard) {
        return new_manager_on(cdev ? topo : NULL, heard);
}

static void driver_of(const char *address, char *buf, size_t size) {
        HostDevice d;

        ck_assert_int_eq(host_read_device(cur_host, address, &d), 0);
        snprintf(buf, size, "%s", d.driver);
}

#define assert_driver(addr, want)                                                                      \
        do {                                                                                           \
                char _d[64];                                                                           \
                driver_of(addr, _d, sizeof _d);                                                        \
                ck_assert_msg(streq(_d, want), "%s is on \"%s\", want \"%s\"", addr, _d, want);        \
        } while (0)

static const Caller root = { .uid = 0, .gid = 0, .connection_id = 1 };

static Lease *acquire(Manager *m, const Caller *c, AcquireRequest *req, const char *spec) {
        const char *specs[] = { spec };
        ManagerError err = {};
        static Answer a;

        a = (Answer) {};
        req->specs = specs;
        req->n_specs = 1;
        ck_assert_msg(manager_acquire(m, c, req, test_answer_acquired, &a, &err) >= 0, "%s", err.message);
        test_run_until(event, &a.done);
        ck_assert_msg(a.lease, "acquire of %s failed: %s", spec, a.err.message);
        return a.lease;
}

/* A child that waits to be killed: a VMM, for a process-owned lease. */
static pid_t spawn_owner(int *ret_pidfd) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        *ret_pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        ck_assert_int_ge(*ret_pidfd, 0);
        return pid;
}

static void kill_owner(pid_t pid) {
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

/* One text request on a simulated fd, with an fd attached or not. */
static void sim_call(int fd, const char *req, int pass_fd, char *reply, size_t size) {
        ssize_t n;

        ck_assert_int_ge(fd_send_msg(fd, req, strlen(req), pass_fd >= 0 ? &pass_fd : NULL, pass_fd >= 0 ? 1 : 0), 0);
        n = recv(fd, reply, size - 1, 0);
        ck_assert_int_gt(n, 0);
        reply[n] = 0;
}

static void setup(void) {
        FILE *f, *d;
        char line[512], path[PATH_MAX];

        snprintf(dir, sizeof dir, "/tmp/test-delivery-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(runtime, sizeof runtime, "%s/run", dir);
        snprintf(simdir, sizeof simdir, "%s/sim", dir);
        snprintf(topo, sizeof topo, "%s/cdev.topo", dir);
        ck_assert_int_eq(mkdir(runtime, 0700), 0);
        ck_assert_int_eq(chmod(dir, 0755), 0);   /* other uids reach the sim's nodes (open_as()) */
        ck_assert_int_ge(sd_event_new(&event), 0);

        /* The default topology on a kernel with IOMMUFD and VFIO_DEVICE_CDEV. */
        snprintf(path, sizeof path, "%s/tests/data/sim-default.topo",
                 getenv("TOP_SRCDIR") ?: TOP_SRCDIR_DEFAULT);
        d = fopen(path, "re");
        ck_assert_ptr_nonnull(d);
        f = fopen(topo, "we");
        ck_assert_ptr_nonnull(f);
        fputs("cdev\n", f);
        while (fgets(line, sizeof line, d))
                fputs(line, f);
        fclose(f);

        /* ...and on one with IOMMUFD but not VFIO_DEVICE_CDEV: /dev/iommu, no cdevs. */
        snprintf(topo_iommufd_only, sizeof topo_iommufd_only, "%s/iommufd-only.topo", dir);
        rewind(d);
        f = fopen(topo_iommufd_only, "we");
        ck_assert_ptr_nonnull(f);
        fputs("iommufd\n", f);
        while (fgets(line, sizeof line, d))
                fputs(line, f);
        fclose(d);
        fclose(f);
}

static void teardown(void) {
        event = sd_event_unref(event);
        test_rm_rf(dir);
}

/* ---------------------------------------------------------------- iommufd */

START_TEST(test_iommufd) {
        Heard heard = {};
        Manager *m = new_manager(true, &heard);
        AcquireRequest req = { .delivery = LEASE_DELIVERY_IOMMUFD, .owner = OWNER_PROCESS };
        char reply[512], path[PATH_MAX + 128];
        bool per_process = false;
        int pidfd, group_fd = -EBADF;
        Lease *l;
        pid_t pid;

        pid = spawn_owner(&pidfd);
        req.owner_pidfd = pidfd;
        l = acquire(m, &root, &req, "3");
        close(pidfd);
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_IOMMUFD);

        /* One iommufd, per-process accounting; one cdev per device, labelled; no container, no group. */
        ck_assert_int_ge(l->iommufd, 0);
        ck_assert_int_eq(host_iommufd_get_rlimit_mode(cur_host, l->iommufd, &per_process), 0);
        ck_assert(per_process);
        ck_assert_uint_eq(l->n_devices, 2);
        ck_assert_str_eq(l->devices[0].address, "0000:03:00.0");
        ck_assert_str_eq(l->devices[1].address, "0000:03:00.1");
        for (size_t i = 0; i < l->n_devices; i++)
                ck_assert_int_ge(l->device_fds[i], 0);
        ck_assert_int_lt(l->container_fd, 0);
        ck_assert_int_lt(l->group_fds[0], 0);
        assert_driver("0000:03:00.0", "vfio-pci");
        assert_driver("0000:03:00.1", "vfio-pci");
        {
                char cdev[HOST_CDEV_MAX];
                ck_assert_int_eq(host_device_cdev(cur_host, "0000:03:00.0", cdev), 0);
                snprintf(path, sizeof path, "%s/dev/vfio/devices/%s", simdir, cdev);
                ck_assert_int_eq(access(path, F_OK), 0);
        }

        /* Each fd is the cdev of the device it is labelled with: it binds, and says which it is. An unbound
         * one answers nothing. */
        sim_call(l->device_fds[1], "STATUS", -EBADF, reply, sizeof reply);
        ck_assert_str_eq(reply, "error=EINVAL");

        /* /dev/vfio/3 was never opened: it opens now; and while it is open a cdev cannot bind (EBUSY). */
        ck_assert_int_eq(host_open_group(cur_host, 3, &group_fd), 0);
        sim_call(l->device_fds[1], "BIND", l->iommufd, reply, sizeof reply);
        ck_assert_str_eq(reply, "error=EBUSY");
        group_fd = safe_close(group_fd);
        sim_call(l->device_fds[1], "BIND", l->iommufd, reply, sizeof reply);
        ck_assert_str_eq(reply, "bound device=0000:03:00.1");
        sim_call(l->device_fds[1], "STATUS", -EBADF, reply, sizeof reply);
        ck_assert_msg(strstr(reply, "device=0000:03:00.1 vendor=0x8086 device=0x100e driver=vfio-pci"), "%s", reply);
        /* ...and once a cdev is bound, the group does not open. */
        ck_assert_int_eq(host_open_group(cur_host, 3, &group_fd), -EBUSY);

        /* DMA facts: the whole space but the group's reserved regions (the MSI window). */
        ck_assert(l->dma.flags & HOST_IOMMU_IOVA);
        ck_assert_uint_eq(l->dma.n_iova, 2);
        ck_assert_uint_eq(l->dma.iova[0].end, 0xfedfffffULL);
        ck_assert_uint_eq(l->dma.iova[1].start, 0xfef00000ULL);
        {
                DmaView v = {};
                ManagerError err = {};
                ck_assert_int_eq(manager_dma_info(m, "3", &v, &err), 0);
                ck_assert_int_eq(v.source, DMA_SOURCE_CONTAINER);
                ck_assert_uint_eq(v.dma.n_iova, 2);
                ck_assert_msg(strstr(v.note, "iommufd"), "%s", v.note);
                dma_view_done(&v);
        }

        /* The owner exits while a copy of a cdev is still open somewhere (a VMM's child, say): the unbind
         * waits for it, as the kernel's does; then the lease ends, the drivers come back, the cdevs go. */
        {
                int held = fcntl(l->device_fds[0], F_DUPFD_CLOEXEC, 3);
                ck_assert_int_ge(held, 0);
                kill_owner(pid);
                for (int i = 0; i < 50; i++)
                        ck_assert_int_ge(sd_event_run(event, 10 * 1000), 0);
                ck_assert_uint_eq(heard.ended, 0);
                assert_driver("0000:03:00.0", "vfio-pci");
                safe_close(held);
        }
        test_run_until_ended(event, &heard, 1);
        ck_assert_int_eq(heard.last_reason, LEASE_REASON_OWNER_EXITED);
        assert_driver("0000:03:00.0", "");
        assert_driver("0000:03:00.1", "e1000");
        ck_assert_int_eq(access(path, F_OK), -1);
        manager_free(m);
}
END_TEST

/* auto: iommufd where the kernel has it, else legacy; iommufd on a kernel without it: refused at once. */
START_TEST(test_auto) {
        AcquireRequest req = { .delivery = LEASE_DELIVERY_AUTO };
        const char *specs[] = { "2" };
        ManagerError err = {};
        Answer a = {};
        Heard heard = {};
        Manager *m;
        Lease *l;
        int r;

        m = new_manager(true, &heard);
        l = acquire(m, &root, &req, "2");
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_IOMMUFD);
        ck_assert_int_ge(l->iommufd, 0);
        ck_assert_int_eq(manager_release_token(m, &root, l->token, &err), 0);
        test_run_until_ended(event, &heard, 1);
        manager_free(m);

        heard = (Heard) {};
        m = new_manager(false, &heard);
        l = acquire(m, &root, &req, "2");
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_LEGACY);
        ck_assert_int_ge(l->container_fd, 0);
        ck_assert_int_ge(l->group_fds[0], 0);
        ck_assert_int_lt(l->iommufd, 0);
        ck_assert_int_eq(manager_release_token(m, &root, l->token, &err), 0);
        test_run_until_ended(event, &heard, 1);
        assert_driver("0000:02:00.0", "e1000e");

        /* A request that does not say (zero) is legacy, as it always was. */
        req = (AcquireRequest) {};
        l = acquire(m, &root, &req, "2");
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_LEGACY);
        ck_assert_int_eq(manager_release_token(m, &root, l->token, &err), 0);
        test_run_until_ended(event, &heard, 2);

        req = (AcquireRequest) { .specs = specs, .n_specs = 1, .delivery = LEASE_DELIVERY_IOMMUFD };
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EOPNOTSUPP);
        ck_assert_int_eq(err.code, MANAGER_ERROR_HOST);
        ck_assert_msg(strstr(err.message, "/dev/iommu"), "%s", err.message);
        ck_assert(!a.done);
        ck_assert_uint_eq(manager_n_leases(m), 0);
        assert_driver("0000:02:00.0", "e1000e");
        manager_free(m);

        /* /dev/iommu without VFIO cdevs (IOMMUFD but not VFIO_DEVICE_CDEV): auto is legacy, since an
         * iommufd without a device to bind to it is of no use; iommufd itself is refused, naming the
         * device without a cdev, and nothing changes. */
        heard = (Heard) {};
        m = new_manager_on(topo_iommufd_only, &heard);
        ck_assert(host_has_iommufd(cur_host));
        req = (AcquireRequest) { .delivery = LEASE_DELIVERY_AUTO };
        l = acquire(m, &root, &req, "2");
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_LEGACY);
        ck_assert_int_ge(l->container_fd, 0);
        ck_assert_int_lt(l->iommufd, 0);
        ck_assert_int_eq(manager_release_token(m, &root, l->token, &err), 0);
        test_run_until_ended(event, &heard, 1);
        assert_driver("0000:02:00.0", "e1000e");

        a = (Answer) {};
        req = (AcquireRequest) { .specs = specs, .n_specs = 1, .delivery = LEASE_DELIVERY_IOMMUFD };
        r = manager_acquire(m, &root, &req, test_answer_acquired, &a, &err);
        if (r >= 0)
                test_run_until(event, &a.done);
        ck_assert_msg(r < 0 || !a.lease, "iommufd delivery granted without cdevs");
        ck_assert_msg(strstr(r < 0 ? err.message : a.err.message, "0000:02:00.0") &&
                      strstr(r < 0 ? err.message : a.err.message, "cdev"),
                      "%s", r < 0 ? err.message : a.err.message);
        ck_assert_uint_eq(manager_n_leases(m), 0);
        assert_driver("0000:02:00.0", "e1000e");
        manager_free(m);
}
END_TEST

/* ---------------------------------------------------------------- node-grant */

typedef struct NodeState {
        bool exists;
        struct stat st;
        uint8_t acl[1024];
        ssize_t acl_size;          /* -1: none */
} NodeState;

static void node_state(const char *node, NodeState *ret) {
        char path[PATH_MAX + 64];

        snprintf(path, sizeof path, "%s/dev/%s", simdir, node);
        *ret = (NodeState) { .acl_size = -1 };
        if (stat(path, &ret->st) < 0) {
                ck_assert_int_eq(errno, ENOENT);
                return;
        }
        ret->exists = true;
        ret->acl_size = getxattr(path, "system.posix_acl_access", ret->acl, sizeof ret->acl);
}

static void assert_node_as_before(const char *node, const NodeState *before) {
        NodeState now;

        node_state(node, &now);
        ck_assert(now.exists);
        ck_assert_uint_eq(now.st.st_uid, before->st.st_uid);
        ck_assert_uint_eq(now.st.st_gid, before->st.st_gid);
        ck_assert_msg((now.st.st_mode & 07777) == (before->st.st_mode & 07777), "mode %o, before %o",
                      now.st.st_mode & 07777, before->st.st_mode & 07777);
        ck_assert_int_eq(now.acl_size, before->acl_size);
        if (now.acl_size > 0)
                ck_assert_int_eq(memcmp(now.acl, before->acl, (size_t) now.acl_size), 0);
}

/* Can uid open the node for reading and writing? 0, or the errno. Needs root (setresuid in a child). */
static int open_as(uid_t uid, const char *node) {
        char path[PATH_MAX + 64];
        int status;
        pid_t pid;

        snprintf(path, sizeof path, "%s/dev/%s", simdir, node);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd;
                if (setresgid(uid, uid, uid) < 0 || setgroups(0, NULL) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(100);
                fd = open(path, O_RDWR|O_CLOEXEC);
                _exit(fd >= 0 ? 0 : errno);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* The node as a udev rule might have left it: mode 0660 and an ACL entry for another uid. */
static void prepare_node(const char *address, const char *node, NodeState *ret) {
        HostSimConfig hc = { .state_dir = simdir };
        char path[PATH_MAX + 64];
        Host *h = NULL;

        /* On vfio-pci before the lease (bound by hand): the node exists already. */
        ck_assert_int_eq(host_new_sim(&hc, &h), 0);
        ck_assert_int_eq(host_device_set_override(h, address, "vfio-pci"), 0);
        ck_assert_int_eq(host_device_unbind(h, address), 0);
        ck_assert_int_eq(host_device_bind(h, address, "vfio-pci"), 0);
        ck_assert_int_eq(host_node_grant(h, node, 4242, NULL), 0);
        host_free(h);
        snprintf(path, sizeof path, "%s/dev/%s", simdir, node);
        ck_assert_int_eq(chmod(path, 0660), 0);
        node_state(node, ret);
        ck_assert(ret->exists);
        ck_assert_int_gt(ret->acl_size, 0);
}

/* Releases l and checks the node afterwards: the device was on vfio-pci before the lease (bound by hand),
 * so it stays there, and so does its node, which must be exactly as before; the uid is refused again. */
static void release_and_check(Manager *m, Lease *l, Heard *heard, const char *node, const NodeState *before) {
        ManagerError err = {};
        unsigned ended = heard->ended;

        ck_assert_int_eq(manager_release_token(m, &root, l->token, &err), 0);
        test_run_until_ended(event, heard, ended + 1);
        ck_assert_msg(strstr(heard->last_detail, "/dev/vfio/2: access as before"), "%s", heard->last_detail);
        assert_driver("0000:02:00.0", "vfio-pci");
        assert_node_as_before(node, before);
        if (geteuid() == 0)
                ck_assert_int_eq(open_as(1000, node), EACCES);
}

START_TEST(test_node_grant) {
        AcquireRequest req = { .delivery = LEASE_DELIVERY_NODE_GRANT, .grant_uid_set = true, .grant_uid = 1000 };
        NodeState before, during;
        Heard heard = {};
        Manager *m;
        Lease *l;

        prepare_node("0000:02:00.0", "vfio/2", &before);
        if (geteuid() == 0) {
                ck_assert_int_eq(open_as(1000, "vfio/2"), EACCES);
                ck_assert_int_eq(open_as(4242, "vfio/2"), 0);
        }

        m = new_manager(false, &heard);
        l = acquire(m, &root, &req, "2");
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_NODE_GRANT);
        ck_assert_uint_eq(l->grant_uid, 1000);
        /* Nothing opened. */
        ck_assert_int_lt(l->container_fd, 0);
        ck_assert_int_lt(l->group_fds[0], 0);
        ck_assert_int_lt(l->iommufd, 0);
        ck_assert_uint_eq(l->n_grants, 1);
        ck_assert_str_eq(l->grants[0].node, "vfio/2");

        /* The uid may open it, another may not; the owner stays. */
        node_state("vfio/2", &during);
        ck_assert_uint_eq(during.st.st_uid, before.st.st_uid);
        ck_assert_int_gt(during.acl_size, before.acl_size);
        if (geteuid() == 0) {
                ck_assert_int_eq(open_as(1000, "vfio/2"), 0);
                ck_assert_int_eq(open_as(1001, "vfio/2"), EACCES);
        }

        release_and_check(m, l, &heard, "vfio/2", &before);
        manager_free(m);
}
END_TEST

/* A daemon restart in the middle: the grant and what the node was are in the state file, and the new
 * daemon puts back exactly that. */
START_TEST(test_node_grant_restart) {
        AcquireRequest req = { .delivery = LEASE_DELIVERY_NODE_GRANT, .grant_uid_set = true, .grant_uid = 1000,
                               .owner = OWNER_PROCESS };
        char token[TOKEN_LEN + 1], id[LEASE_ID_LEN + 1], state[PATH_MAX + 32];
        NodeState before;
        Heard heard = {};
        Manager *m;
        Lease *l;
        int pidfd;
        pid_t pid;

        prepare_node("0000:02:00.0", "vfio/2", &before);
        pid = spawn_owner(&pidfd);
        req.owner_pidfd = pidfd;
        m = new_manager(false, &heard);
        l = acquire(m, &root, &req, "2");
        close(pidfd);
        snprintf(token, sizeof token, "%s", l->token);
        snprintf(id, sizeof id, "%s", l->id);
        snprintf(state, sizeof state, "%s/state", runtime);
        ck_assert(test_file_contains(state, "delivery=node-grant"));
        ck_assert(test_file_contains(state, "grant=vfio/2,"));
        manager_free(m);   /* the daemon goes; its lease stays recorded, its owner alive */

        heard = (Heard) {};
        m = new_manager(false, &heard);
        l = manager_find_lease(m, id);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(l->state, LEASE_ACTIVE);
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_NODE_GRANT);
        ck_assert_uint_eq(l->n_grants, 1);
        if (geteuid() == 0)
                ck_assert_int_eq(open_as(1000, "vfio/2"), 0);
        release_and_check(m, l, &heard, "vfio/2", &before);
        kill_owner(pid);
        manager_free(m);
}
END_TEST

/* ---------------------------------------------------------------- a restart with the fd store */

static ino_t file_ino(int fd) {
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        return st.st_ino;
}

static bool same_file(int fd, ino_t ino) {
        return fd >= 0 && file_ino(fd) == ino;
}

/* An iommufd lease's fds go to the store under names systemd accepts (no ':'), come back to the restarted
 * daemon (the same iommufd, per-process still; the same cdevs, in the lease's device order), and leave it
 * when the release starts, before the unbind that would wait for them. */
START_TEST(test_iommufd_fd_store) {
        HostSimConfig hc = { .state_dir = simdir, .topology_path = topo };
        ManagerConfig cfg = { .runtime_dir = runtime, .release_deadline_usec = 5 * 1000000ULL };
        AcquireRequest req = { .delivery = LEASE_DELIVERY_IOMMUFD, .owner = OWNER_LEASE_FD };
        const char *specs[] = { "3" };
        char id[LEASE_ID_LEN + 1], name[128];
        ManagerError err = {};
        Stored stored = {};
        Heard heard = {};
        Answer a = {};
        bool per_process = false;
        ino_t ino_iommufd, ino_cdev[2];
        Manager *m = NULL;
        Host *h = NULL;
        int client_fd;
        Lease *l;

        ck_assert_int_eq(host_new_sim(&hc, &h), 0);
        ck_assert_int_eq(manager_new(event, h, &cfg, &m), 0);
        cur_host = h;
        manager_set_fd_store(m, test_store_fd, &stored);
        ck_assert_int_ge(manager_start(m, &err), 0);

        /* The lease fd's client end comes through the done callback: keep it open as the owner. */
        req.specs = specs;
        req.n_specs = 1;
        ck_assert_int_ge(manager_acquire(m, &root, &req, on_acquired_keep_fd, &a, &err), 0);
        test_run_until(event, &a.done);
        ck_assert_ptr_nonnull(a.lease);
        l = a.lease;
        client_fd = kept_lease_fd;
        ck_assert_int_ge(client_fd, 0);
        snprintf(id, sizeof id, "%s", l->id);
        snprintf(name, sizeof name, "lease-%s-iommufd", id);
        ck_assert_int_eq(stored.n, 4);          /* the iommufd, two cdevs, the owner */
        for (size_t i = 0; i < stored.n; i++)
                ck_assert_msg(!strchr(stored.names[i], ':'), "\"%s\"", stored.names[i]);
        ck_assert_str_eq(stored.names[0], name);
        ck_assert_int_eq(host_iommufd_get_rlimit_mode(h, l->iommufd, &per_process), 0);
        ck_assert(per_process);
        ck_assert_uint_eq(l->n_devices, 2);
        ino_iommufd = file_ino(l->iommufd);
        for (size_t i = 0; i < l->n_devices; i++)
                ino_cdev[i] = file_ino(l->device_fds[i]);
        manager_free(m);    /* the daemon goes; the lease stays recorded, its fds in the store */

        ck_assert_int_eq(host_new_sim(&hc, &h), 0);
        ck_assert_int_eq(manager_new(event, h, &cfg, &m), 0);
        cur_host = h;
        ck_assert_int_eq(manager_add_listener(m, test_heard_event, &heard), 0);
        manager_set_fd_store(m, test_store_fd, &stored);
        for (size_t i = 0; i < stored.n; i++)
                if (stored.fds[i] >= 0)
                        ck_assert_int_eq(manager_offer_stored_fd(m, stored.names[i],
                                                                 fcntl(stored.fds[i], F_DUPFD_CLOEXEC, 3)), 0);
        ck_assert_int_ge(manager_start(m, &err), 0);
        l = manager_find_lease(m, id);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(l->state, LEASE_ACTIVE);
        ck_assert_int_eq(l->delivery, LEASE_DELIVERY_IOMMUFD);
        /* The very files handed out before (a new sim instance does not know the old one's files, as a
         * new kernel would not: compare the open files themselves). */
        ck_assert_int_ge(l->iommufd, 0);
        ck_assert(same_file(l->iommufd, ino_iommufd));
        for (size_t i = 0; i < l->n_devices; i++)
                ck_assert(same_file(l->device_fds[i], ino_cdev[i]));

        /* The owner lets go: the stored fds are dropped, the drivers come back. */
        close(client_fd);
        test_run_until_ended(event, &heard, 1);
        ck_assert_int_eq(heard.last_reason, LEASE_REASON_LEASE_FD_CLOSED);
        for (size_t i = 0; i < stored.n; i++)
                ck_assert_msg(stored.fds[i] < 0, "fd \"%s\" is still stored", stored.names[i]);
        assert_driver("0000:03:00.1", "e1000");
        manager_free(m);
}
END_TEST

/* ---------------------------------------------------------------- refusals */

START_TEST(test_refusals_change_nothing) {
        const Caller user = { .uid = 1000, .gid = 1000, .connection_id = 2 };
        const char *specs[] = { "2" };
        AcquireRequest req = { .specs = specs, .n_specs = 1 };
        ManagerError err = {};
        Answer a = {};
        NodeState before;
        Manager *m;

        prepare_node("0000:02:00.0", "vfio/2", &before);
        m = new_manager(true, NULL);

        /* Node access for someone else, asked by someone who is not root. */
        req.delivery = LEASE_DELIVERY_NODE_GRANT;
        req.grant_uid_set = true;
        req.grant_uid = 1001;
        ck_assert_int_eq(manager_acquire(m, &user, &req, test_answer_acquired, &a, &err), -EPERM);
        ck_assert_int_eq(err.code, MANAGER_ERROR_DENIED);
        ck_assert_msg(strstr(err.message, "only root may grant"), "%s", err.message);

        /* A grant uid without node-grant; node-grant with CONFIGURE_IOMMU; a mode nobody knows. */
        req.delivery = LEASE_DELIVERY_LEGACY;
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EINVAL);
        ck_assert_msg(strstr(err.message, "node-grant"), "%s", err.message);
        req.grant_uid_set = false;
        req.delivery = LEASE_DELIVERY_NODE_GRANT;
        req.configure_iommu = true;
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EINVAL);
        req.configure_iommu = false;
        req.delivery = (LeaseDelivery) 7;
        ck_assert_int_eq(manager_acquire(m, &root, &req, test_answer_acquired, &a, &err), -EINVAL);
        ck_assert_int_eq(err.code, MANAGER_ERROR_INVALID);
        ck_assert_msg(strstr(err.message, "unknown delivery mode 7"), "%s", err.message);

        ck_assert(!a.done);
        ck_assert_uint_eq(manager_n_leases(m), 0);
        assert_driver("0000:02:00.0", "vfio-pci");
        assert_node_as_before("vfio/2", &before);
        manager_free(m);
}
END_TEST

static Suite *delivery_suite(void) {
        Suite *s = suite_create("delivery");
        TCase *tc = tcase_create("sim");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_iommufd);
        tcase_add_test(tc, test_auto);
        tcase_add_test(tc, test_node_grant);
        tcase_add_test(tc, test_node_grant_restart);
        tcase_add_test(tc, test_iommufd_fd_store);
        tcase_add_test(tc, test_refusals_change_nothing);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(delivery_suite(), NULL);
}
