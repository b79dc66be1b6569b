/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "log.h"
#include "manager-internal.h"
#include "state.h"

/* A device on vfio-pci through a vfio-pci override, in a group no lease holds: groupd binds devices only
 * after recording the lease, so this was prepared beforehand (driverctl, libvirt's managed='no'), or a
 * state file was lost. It may be in use by a VM we do not know of, and we do not know its host driver:
 * touching it could hang on an unbind or take a device from under a guest. Leases use such a device as it
 * is and leave it so; say what to do if it was not meant to stay, and leave it. */
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
                if (policy_device_standby(m->policy, d, NULL, 0))
                        continue; /* on standby: ours */
                log_notice("Device %s (group %u) is on vfio-pci with a vfio-pci driver_override, and no lease "
                            "holds it: prepared beforehand (driverctl, libvirt's unmanaged mode), or left by "
                            "a groupd that lost its state file. Leases use it as it is and leave it so. If it "
                            "is not meant to stay, give it back to its host driver: echo > "
                            "/sys/bus/pci/devices/%s/driver_override; echo %s > "
                            "/sys/bus/pci/drivers/vfio-pci/unbind; echo %s > /sys/bus/pci/drivers_probe",
                            d->address, d->group, d->address, d->address, d->address);
                orphans++;
        }
        if (orphans > 0)
                log_notice("%zu device(s) on vfio-pci without a lease (see above).", orphans);
}

/* Is a recovered active lease's owner still there? From the fd store (its pidfd or lease fd came back),
 * else, for a process owner, by pid and start time (a new pidfd is opened and stored). Returns > 0 kept,
 * -ESRCH when the fd store's fds say the owner is gone, 0 when nothing says it lives. */
static int reconcile_owner(Manager *m, Lease *l) {
        int verdict;

        if (l->state != LEASE_ACTIVE)
                return 0;
        verdict = manager_recover_lease_fds(m, l);
        if (verdict == -ESRCH)
                return -ESRCH;
        if (verdict > 0) {
                if (lease_watch_owner(l) >= 0) {
                        log_notice("Recovered lease %s (\"%s\") with its fds from the fd store: its owner "
                                   "(%s%s) is still there, so it is kept.", l->id, strempty(l->label),
                                   owner_kind_to_string(l->owner_kind),
                                   l->owner_kind == OWNER_PROCESS ? ", pidfd" : ", lease fd");
                        return 1;
                }
        }
        if (l->owner_pidfd >= 0 || !lease_owner_alive(l))
                return 0;
        l->owner_pidfd = (int) syscall(SYS_pidfd_open, l->owner_pid, 0);
        if (l->owner_pidfd >= 0 && lease_watch_owner(l) >= 0) {
                log_notice("Recovered lease %s (\"%s\"): its owner pid %i is alive, so it is kept. Its fds were "
                           "not recoverable (the old daemon's copies are gone; the owner still has its own).",
                           l->id, strempty(l->label), (int) l->owner_pid);
                /* What it has (the pidfd) goes to the store for the next restart. */
                manager_store_owner_fd(m, l);
                return 1;
        }
        l->owner_pidfd = safe_close(l->owner_pidfd);
        return 0;
}

/* Why a recovered lease cannot be kept, logged, as the reason it ends with: recovered-dead only when its
 * owner is known to be gone; daemon-restarted when the owner may well live but this daemon cannot find it
 * again (without systemd's fd store a lease fd, or the old daemon's D-Bus name watch, is lost). */
static LeaseReason reconcile_why_not_kept(Lease *l, int verdict) {
        const char *id = l->id, *label = strempty(l->label);

        if (verdict == -ESRCH) {
                /* Its fds came back from the store and say it: the owner let go while groupd was down. */
                log_notice("Recovered lease %s (\"%s\"): its %s came back from the fd store, and its owner is gone "
                           "(it let go while groupd was down); restoring its devices.", id, label,
                           l->owner_kind == OWNER_PROCESS ? "pidfd" : "lease fd");
                return l->owner_kind == OWNER_PROCESS ? LEASE_REASON_OWNER_EXITED : LEASE_REASON_LEASE_FD_CLOSED;
        }

        if (l->state != LEASE_ACTIVE) {
                log_notice("Recovered lease %s (\"%s\") was %s when groupd stopped; finishing its release.", id,
                           label, lease_state_to_string(l->state));
                return LEASE_REASON_DAEMON_RESTARTED; /* the restart cut its acquire or release short */
        }
        switch (l->owner_kind) {
        case OWNER_LEASE_FD:
                log_warning("Recovered lease %s (\"%s\") is owned by a lease fd, and its lease fd did not come "
                            "back from systemd's fd store (groupd ran without one: not under systemd, or without "
                            "FileDescriptorStoreMax=): this daemon cannot tell when its holder lets go, so it "
                            "cannot keep the lease. Its holder may still be alive and hold the fds. Restoring "
                            "its devices (reason daemon-restarted).", id, label);
                return LEASE_REASON_DAEMON_RESTARTED;
        case OWNER_BUS_NAME:
                log_warning("Recovered lease %s (\"%s\") was owned by D-Bus name %s, which a restarted groupd "
                            "does not watch again: it cannot keep the lease. Restoring its devices (reason "
                            "daemon-restarted).", id, label, strna(l->bus_name));
                return LEASE_REASON_DAEMON_RESTARTED;
        case OWNER_CONNECTION:
                log_notice("Recovered lease %s (\"%s\") was owned by a connection to the old daemon, which "
                           "closed with it; restoring its devices.", id, label);
                return LEASE_REASON_RECOVERED_DEAD;
        default:
                log_notice("Recovered lease %s (\"%s\"): its owner process (pid %i) is gone; restoring its "
                           "devices.", id, label, (int) l->owner_pid);
                return LEASE_REASON_RECOVERED_DEAD;
        }
}

int manager_reconcile(Manager *m) {
        Lease *recovered = NULL, *next;
        unsigned line = 0;
        size_t kept = 0, ended = 0;
        int r;

        assert(m);

        r = state_read(m->state_path, m, &recovered, &line);
        if (r < 0) {
                _cleanup_free_ char *aside = NULL;

                log_error_errno(r, "State file %s is unreadable (line %u): %m. Moving it aside; devices it "
                                "named must be checked by hand.", m->state_path, line);
                if (asprintf(&aside, "%s.broken", m->state_path) >= 0)
                        (void) rename(m->state_path, aside);
                manager_drop_unclaimed_fds(m);
                return 0;
        }

        for (Lease *l = recovered; l; l = next) {
                bool conflict = false;
                int verdict;

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

                verdict = reconcile_owner(m, l);
                if (verdict > 0) {
                        kept++;
                        continue;
                }

                /* Not kept: say exactly why, and end it with a reason that says so. */
                (void) manager_release_lease(m, l, reconcile_why_not_kept(l, verdict));
                ended++;
        }

        manager_drop_unclaimed_fds(m);
        if (kept + ended > 0)
                log_info("Reconciled the state file: %zu lease(s) kept, %zu ended.", kept, ended);
        manager_save(m);
        manager_scan_orphans(m);
        return 0;
}
