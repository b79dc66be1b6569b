/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Standby (issue 16): the devices a "standby MATCH..." rule names go to vfio-pci at start, off the loop and
 * all at once, unless a lease holds their group (a recovered one: its release leaves them there). Their
 * release then leaves them on vfio-pci (LeaseDevice.standby; prepare.c skips them), so that acquiring them
 * again is only opening and attaching. A device that fails to move is logged and left as it is: an
 * acquire then moves it as any other. */
#include <assert.h>
#include <limits.h>

#include "fanout.h"
#include "log.h"
#include "manager-internal.h"

typedef struct StandbyOp {
        Host *host;
        HostDevice *devices;           /* copies */
        size_t n;
        int *results;
        size_t n_moved;
} StandbyOp;

static void standby_op_free(StandbyOp *op) {
        if (!op)
                return;
        free(op->devices);
        free(op->results);
        free(op);
}

/* One device onto vfio-pci: the override first (nothing else probes it), off its driver, onto vfio-pci. */
static void standby_one(size_t i, void *userdata) {
        StandbyOp *op = userdata;
        const HostDevice *d = &op->devices[i];
        int r;

        r = host_device_set_override(op->host, d->address, VFIO_PCI_DRIVER);
        if (r >= 0 && !isempty(d->driver))
                r = host_device_unbind(op->host, d->address);
        if (r >= 0)
                r = host_device_bind(op->host, d->address, VFIO_PCI_DRIVER);
        op->results[i] = r;
}

static int standby_job_run(void *userdata) {
        StandbyOp *op = userdata;

        fanout_run(op->n, standby_one, op);
        return 0;
}

static void standby_job_done(int result, void *userdata) {
        StandbyOp *op = userdata;
        size_t moved = 0;

        for (size_t i = 0; i < op->n; i++) {
                if (op->results[i] >= 0) {
                        moved++;
                        continue;
                }
                log_warning_errno(op->results[i], "Standby: cannot move %s from %s to vfio-pci: %m. It stays "
                                  "where it is; an acquire moves it.", op->devices[i].address,
                                  isempty(op->devices[i].driver) ? "(no driver)" : op->devices[i].driver);
        }
        log_info("Standby: %zu device(s) moved to vfio-pci, %zu kept there already.", moved, op->n_moved);
        standby_op_free(op);
}

int manager_standby_start(Manager *m) {
        _cleanup_free_ unsigned *ids = NULL;
        StandbyOp *op;
        size_t n_ids = 0, n_on = 0;
        int r;

        assert(m);
        assert(m->policy);

        /* Without a standby rule there is nothing to look for: reading every group here cost a big host
         * its start-up time and the memory of the host's discovery cache. */
        if (!policy_has_standby(m->policy))
                return 0;
        r = host_list_groups(m->host, &ids, &n_ids);
        if (r < 0)
                return log_warning_errno(r, "Standby: cannot list the IOMMU groups: %m");
        op = calloc(1, sizeof *op);
        if (!op)
                return -ENOMEM;
        op->host = m->host;

        for (size_t i = 0; i < n_ids; i++) {
                _cleanup_(host_group_done) HostGroup hg = {};

                if (manager_group_holder(m, ids[i]) || host_read_group(m->host, ids[i], &hg) < 0)
                        continue;
                for (size_t k = 0; k < hg.n_devices; k++) {
                        const HostDevice *d = &hg.devices[k];
                        HostDevice *n;

                        if (!policy_device_standby(m->policy, d, NULL, 0) || !lease_device_is_assigned(d) ||
                            policy_device_never(m->policy, d, NULL, 0))
                                continue;
                        if (streq(d->driver, VFIO_PCI_DRIVER)) {
                                n_on++;
                                continue;
                        }
                        n = reallocarray(op->devices, op->n + 1, sizeof *n);
                        if (!n) {
                                standby_op_free(op);
                                return -ENOMEM;
                        }
                        op->devices = n;
                        op->devices[op->n++] = *d;
                }
        }
        op->n_moved = n_on;
        if (op->n == 0) {
                if (n_on > 0)
                        log_info("Standby: %zu device(s) on vfio-pci already.", n_on);
                standby_op_free(op);
                return 0;
        }
        op->results = calloc(op->n, sizeof *op->results);
        if (!op->results) {
                standby_op_free(op);
                return -ENOMEM;
        }
        r = worker_submit(m->worker, standby_job_run, standby_job_done, op);
        if (r < 0) {
                standby_op_free(op);
                return log_warning_errno(r, "Standby: cannot start moving devices to vfio-pci: %m");
        }
        return 0;
}
