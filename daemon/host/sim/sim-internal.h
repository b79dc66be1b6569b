/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the simulated host's files share: its state (Sim), its open files, and the functions one file
 * calls in another. host-sim.c describes the whole; sim-tree.c keeps the trees, sim-files.c the open
 * files and the responder thread, sim-controls.c what happens behind the daemon's back, sim-vfio.c the
 * VFIO and iommufd calls. */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host-internal.h"
#include "host-sim.h"
#include "sim-topology.h"

#define SIM_REQUEST_MAX 256
#define SIM_REPLY_MAX 4096

typedef enum SimFileKind {
        SIM_FILE_GROUP,
        SIM_FILE_CONTAINER,
        SIM_FILE_DEVICE,        /* a device cdev */
        SIM_FILE_IOMMUFD,
} SimFileKind;

typedef struct SimFile SimFile;
struct SimFile {
        SimFileKind kind;
        int peer_fd;            /* our end; -EBADF once closed */
        dev_t client_dev;       /* identity of the client end, to recognize the fds we handed out */
        ino_t client_ino;
        bool closed;            /* every copy of the client end is gone */
        unsigned group;         /* SIM_FILE_GROUP */
        SimFile *container;     /* SIM_FILE_GROUP: the container it is attached to */
        uint32_t iommu_type;    /* SIM_FILE_CONTAINER: 0 until set */
        char address[HOST_ADDR_MAX]; /* SIM_FILE_DEVICE */
        SimFile *iommufd;       /* SIM_FILE_DEVICE: the iommufd it is bound to, or NULL */
        bool rlimit_process;    /* SIM_FILE_IOMMUFD: IOMMU_OPTION_RLIMIT_MODE set to per-process */
        SimFile *next;
};

typedef struct SimGroupState {
        SimFile *file;          /* the open group, or NULL */
        uint64_t usage;
} SimGroupState;

typedef struct Sim {
        SimTopology *topology;
        SimGroupState *groups;  /* parallel to topology->groups */
        int state_fd;           /* state_dir */
        int dev_fd;             /* state_dir/dev (also h->dev_fd, as O_PATH) */
        int book_fd;            /* state_dir/sim */

        pthread_mutex_t mutex;
        pthread_cond_t cond;    /* broadcast when a file closes, and when stopping */
        SimFile *files;
        unsigned n_waiters;     /* unbinds waiting for a group to close */
        unsigned unbind_wait_ms; /* $GROUPD_SIM_UNBIND_WAIT: how long an unbind waits; 0: for ever */
        bool stopping;

        int wake_fd;            /* eventfd: rebuild the poll set, or stop */
        pthread_t thread;
        bool thread_started;

        /* Behind the daemon's back: the control fifo (state_dir/sim/control), what it removed, what the
         * host stands on, and the changes the watcher has not drained yet. */
        int control_fd;
        char control_buf[1024];
        size_t control_len;
        bool *removed;          /* parallel to topology->devices */
        HostUse *uses;
        size_t n_uses, allocated_uses;
        HostChange *changes;
        size_t n_changes, allocated_changes;
        int change_fd;          /* eventfd: changes to drain */
} Sim;

static inline Sim *sim_of(Host *h) {
        return h->data;
}

static inline SimGroupState *sim_group_state(Sim *s, unsigned id) {
        const SimTopoGroup *g = sim_topology_find_group(s->topology, id);
        if (!g)
                return NULL;
        return &s->groups[g - s->topology->groups];
}

static inline void sim_wake(Sim *s) {
        uint64_t one = 1;
        (void) !write(s->wake_fd, &one, sizeof one);
}

/* The topology's device at address, unless a control removed it. */
static inline const SimTopoDevice *sim_device(Sim *s, const char *address) {
        const SimTopoDevice *td = sim_topology_find_device(s->topology, address);
        if (!td || (s->removed && s->removed[td - s->topology->devices]))
                return NULL;
        return td;
}

int mkdir_at(int dir_fd, const char *path);
int write_new_file_at(int dir_fd, const char *path, const char *text);
int replace_file_at(int dir_fd, const char *dir, const char *name, const char *text);
int rm_rf_at(int dir_fd, const char *name);
int rm_rf_entry(const struct dirent64 *de, void *userdata);
int rm_rf_children(int fd);
void device_dir(const char *address, char *buf, size_t size);
int tree_add_driver(int sys_fd, const char *driver);
bool tree_has_driver(int sys_fd, const char *driver);
int tree_bind(int sys_fd, const SimTopology *t, const char *address, const char *driver);
int tree_unbind(int sys_fd, const char *address, const char *driver);
int tree_add_group(int sys_fd, const SimTopoGroup *g);
int tree_write_config(int sys_fd, const char *dir, const SimTopoDevice *d);
int tree_add_device(int sys_fd, const SimTopology *t, const SimTopoDevice *d, const char *driver,
                           const char *override);
int tree_remove_device(int sys_fd, const SimTopoDevice *d, const char *driver);
int tree_build(int sys_fd, const SimTopology *t);
void cdev_name(const Sim *s, const SimTopoDevice *td, char buf[HOST_CDEV_MAX]);
int dev_node_make(int dev_fd, const char *path, mode_t mode);
int dev_node_remove(int dev_fd, const char *path);
int sim_dev_sync(Host *h, Sim *s, const SimTopoDevice *td);
int dev_sweep_entry(const struct dirent64 *de, void *userdata);
int sim_dev_setup(Host *h, Sim *s, const char *state_dir);
int tree_verify(int sys_fd, SysfsCache *cache, const SimTopology *t, const char *where);
SimFile *sim_find_file(Sim *s, int fd, SimFileKind kind);
bool container_has_groups(Sim *s, SimFile *c);
bool iommufd_has_devices(Sim *s, SimFile *i);
void sim_file_release(Sim *s, SimFile *f);
bool sim_file_check_closed(Sim *s, SimFile *f);
bool sim_group_is_open(Sim *s, SimGroupState *gs);
bool sim_device_is_open(Sim *s, const char *address);
bool sim_group_has_bound_cdev(Sim *s, unsigned group);
int sim_file_new(Sim *s, SimFileKind kind, unsigned group, SimFile **ret_file, int *ret_fd);
void sim_reap(Sim *s);
bool group_devices_vfio_safe(const HostGroup *g);
void sim_count_usage(Sim *s, unsigned group);
void sim_answer_group(Host *h, Sim *s, SimFile *f, const char *req, char *reply, size_t size);
void sim_answer_container(Sim *s, SimFile *c, const char *req, char *reply, size_t size);
void sim_answer_device(Host *h, Sim *s, SimFile *f, const char *req, int passed_fd, char *reply,
                              size_t size);
void sim_answer_iommufd(Sim *s, SimFile *i, const char *req, char *reply, size_t size);
void sim_serve(Host *h, Sim *s, SimFile *f, short revents);
void *sim_responder(void *userdata);
void sim_queue_change(Sim *s, HostChangeKind kind, const char *address, const char *driver);
void sim_set_use(Sim *s, const char *address, HostUseKind kind, const char *what, bool on);
int sim_control(Host *h, Sim *s, char *line);
void sim_read_control(Host *h, Sim *s);
int sim_watch_fd(Host *h);
int sim_watch_drain(Host *h, HostChange **ret, size_t *ret_n);
int sim_list_uses(Host *h, HostUse **ret, size_t *ret_n);
int sim_modules_alias(Host *h, char **ret);
bool sim_denylisted(Host *h, const HostDevice *d);
int sim_open_container(Host *h, int *ret_fd);
int sim_open_group(Host *h, unsigned id, int *ret_fd);
int sim_group_is_viable(Host *h, int group_fd, bool *ret);
int sim_group_set_container(Host *h, int group_fd, int container_fd);
int sim_container_set_iommu(Host *h, int container_fd, uint32_t *ret_type);
int sim_container_facts(Sim *s, SimFile *c, HostIommuInfo *ret, bool *ret_align8);
int sim_container_get_info(Host *h, int container_fd, uint8_t *buf, size_t size);
int sim_open_device_cdev(Host *h, const char *address, const char *cdev, int *ret_fd);
int sim_open_iommufd(Host *h, int *ret_fd);
int sim_iommufd_rlimit_mode(Host *h, int iommufd, bool set, bool *per_process);
int sim_iommufd_iova_ranges(Host *h, int iommufd, HostIommuInfo *ret);
