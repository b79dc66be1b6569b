/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <limits.h>
#include <stdio.h>

#include "manager-internal.h"
#include "text-util.h"

void group_view_done(GroupView *v) {
        if (!v)
                return;
        host_group_done(&v->group);
        v->viability = mfree(v->viability);
        v->policy_note = mfree(v->policy_note);
        v->holder = NULL;
}

void group_views_free(GroupView *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                group_view_done(&v[i]);
        free(v);
}

bool device_host_critical(const HostDevice *d, const HostUse *uses, size_t n_uses, char *why, size_t size) {
        size_t off = 0;
        bool critical = false;

#define SAY(...)                                                                                 \
        do {                                                                                     \
                if (off < size)                                                                  \
                        off += (size_t) snprintf(why + off, size - off, "%s", critical ? "; " : ""); \
                if (off < size)                                                                  \
                        off += (size_t) snprintf(why + off, size - off, __VA_ARGS__);            \
                critical = true;                                                                 \
        } while (0)

        assert(d);
        if (size > 0)
                why[0] = 0;
        if ((d->class_code >> 8) == 0x0600)
                SAY("the host bridge");
        if ((d->class_code >> 8) == 0x0601)
                SAY("the ISA/LPC bridge");
        if (d->boot_vga)
                SAY("the boot VGA device (the console)");
        for (size_t i = 0; i < n_uses; i++) {
                const HostUse *u = &uses[i];

                if (!streq(u->address, d->address))
                        continue;
                switch (u->kind) {
                case HOST_USE_MOUNT:
                        SAY("under the mounted filesystem %s", u->what);
                        break;
                case HOST_USE_SWAP:
                        SAY("under active swap (%s)", u->what);
                        break;
                case HOST_USE_BOOT_VGA:
                        if (!d->boot_vga)
                                SAY("the boot VGA device (the console)");
                        break;
                case HOST_USE_ROUTE:
                        SAY("the NIC of the default route (%s)", u->what);
                        break;
                default:
                        break;
                }
        }
#undef SAY
        return critical;
}

int manager_group_refusal(Manager *m, const PolicySubject *s, const HostGroup *g, const HostUse *uses,
                          size_t n_uses, ManagerError *err) {
        char msg[MANAGER_TEXT_MAX] = "", one[MANAGER_TEXT_MAX], why[512];

        assert(m);
        assert(g);
        assert(uses || n_uses == 0);

        if (group_refusal(g, msg, sizeof msg)) {
                manager_error(err, MANAGER_ERROR_NOT_VIABLE, EPERM, "%s", msg);
                return -EPERM;
        }
        /* Every device's reason, so that one refusal says all that stands in the way (the ICH9 group:
         * its LPC bridge and its SATA controller). */
        for (size_t k = 0; k < g->n_devices; k++) {
                const HostDevice *d = &g->devices[k];

                if (!lease_device_is_assigned(d))
                        continue;
                if (device_host_critical(d, uses, n_uses, why, sizeof why) &&
                    !policy_lifts_host_critical(m->policy, s, d))
                        text_append(msg, sizeof msg, "%s is %s: the host stands on it, so groupd never hands it "
                                    "out (built-in host protection; a policy rule naming it lifts that: allow "
                                    "WHO pci=%s host-critical)", d->address, why, d->address);
                else if (policy_device_never(m->policy, d, one, sizeof one))
                        text_append(msg, sizeof msg, "%s", one);
        }
        if (!isempty(msg)) {
                manager_error(err, MANAGER_ERROR_DENIED, EPERM, "%s", msg);
                return -EPERM;
        }
        return 0;
}

/* Takes hg (moved into the view, also on failure). uses: what the host stands on, read once by the caller. */
static int group_view_make(Manager *m, HostGroup *hg, const HostUse *uses, size_t n_uses, GroupView *ret) {
        char reason[MANAGER_TEXT_MAX], note[MANAGER_TEXT_MAX] = "";
        GroupView v = { .group = *hg };
        ManagerError e = {};

        *hg = (HostGroup) {};
        v.viable = group_viability(&v.group, reason, sizeof reason);
        /* What an acquire would refuse whoever asks (the host protection unless a rule lifts it for
         * someone), shown before anyone tries. */
        if (manager_group_refusal(m, NULL, &v.group, uses, n_uses, &e) < 0) {
                v.never = true;
                (void) snprintf(note, sizeof note, "%s", e.message);
        }
        for (size_t i = 0; i < v.group.n_devices && !v.never && isempty(note); i++)
                (void) policy_device_standby(m->policy, &v.group.devices[i], note, sizeof note);
        v.holder = manager_group_holder(m, v.group.id);
        v.viability = strdup(reason);
        v.policy_note = strdup(note);
        if (!v.viability || !v.policy_note) {
                group_view_done(&v);
                return -ENOMEM;
        }
        *ret = v;
        return 0;
}

int manager_group_views(Manager *m, const unsigned *ids, size_t n_ids, GroupView **ret, size_t *ret_n) {
        _cleanup_free_ HostUse *uses = NULL;
        GroupView *views = NULL;
        size_t n = 0, n_uses = 0;
        int r;

        assert(m);
        assert(ids || n_ids == 0);
        assert(ret && ret_n);

        /* Once for the whole batch. Not knowing what the host stands on refuses nothing. */
        (void) host_list_uses(m->host, &uses, &n_uses);
        if (n_ids > 0) {
                views = calloc(n_ids, sizeof *views);
                if (!views)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n_ids; i++) {
                HostGroup hg = {};

                r = host_read_group(m->host, ids[i], &hg);
                if (r == -ENOENT)
                        continue; /* vanished while we looked */
                if (r >= 0)
                        r = group_view_make(m, &hg, uses, n_uses, &views[n]);
                if (r < 0) {
                        host_group_done(&hg);
                        group_views_free(views, n);
                        return r;
                }
                n++;
        }
        *ret = views;
        *ret_n = n;
        return 0;
}

int manager_list_groups(Manager *m, GroupView **ret, size_t *ret_n) {
        _cleanup_free_ unsigned *ids = NULL;
        size_t n_ids = 0;
        int r;

        assert(m);
        assert(ret && ret_n);

        r = host_list_groups(m->host, &ids, &n_ids);
        if (r < 0)
                return r;
        return manager_group_views(m, ids, n_ids, ret, ret_n);
}

/* Resolves "7", "0000:01:00.0" or "01:00.0" to a group number. */
int manager_resolve_spec(Manager *m, const char *spec, unsigned *ret, ManagerError *err) {
        char addr[HOST_ADDR_MAX];
        HostDevice d;
        int r;

        assert(m);
        assert(ret);

        if (isempty(spec)) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "empty group or device");
                return -EINVAL;
        }
        if (strspn(spec, "0123456789") == strlen(spec)) {
                char *end;
                unsigned long v;

                errno = 0;
                v = strtoul(spec, &end, 10);
                if (errno != 0 || *end != 0 || v > UINT32_MAX || strlen(spec) > 10) {
                        manager_error(err, MANAGER_ERROR_INVALID, EINVAL, "\"%s\" is not a valid group number",
                                      spec);
                        return -EINVAL;
                }
                *ret = (unsigned) v;
                return 0;
        }

        r = host_parse_pci_address(spec, addr);
        if (r < 0) {
                manager_error(err, MANAGER_ERROR_INVALID, EINVAL,
                              "\"%s\" is neither a group number nor a PCI address (like 0000:01:00.0)", spec);
                return -EINVAL;
        }
        r = host_read_device(m->host, addr, &d);
        if (r == -ENOENT) {
                manager_error(err, MANAGER_ERROR_NOT_FOUND, ENOENT, "no PCI device %s", addr);
                return r;
        }
        if (r < 0) {
                manager_error(err, MANAGER_ERROR_HOST, r, "cannot read PCI device %s: %s", addr, strerror(-r));
                return r;
        }
        *ret = d.group;
        return 0;
}

int manager_read_group(Manager *m, unsigned id, HostGroup *ret, ManagerError *err) {
        int r;

        assert(m);
        assert(ret);
        r = host_read_group(m->host, id, ret);
        if (r == -ENOENT)
                manager_error(err, MANAGER_ERROR_NOT_FOUND, ENOENT, "no IOMMU group %u", id);
        else if (r < 0)
                manager_error(err, MANAGER_ERROR_HOST, r, "cannot read IOMMU group %u: %s", id, strerror(-r));
        return r;
}

int manager_get_group(Manager *m, const char *spec, GroupView *ret, ManagerError *err) {
        _cleanup_free_ HostUse *uses = NULL;
        HostGroup hg = {};
        size_t n_uses = 0;
        unsigned id;
        int r;

        assert(m);
        assert(ret);

        r = manager_resolve_spec(m, spec, &id, err);
        if (r < 0)
                return r;
        r = manager_read_group(m, id, &hg, err);
        if (r < 0)
                return r;
        (void) host_list_uses(m->host, &uses, &n_uses);
        r = group_view_make(m, &hg, uses, n_uses, ret);
        if (r < 0)
                manager_error(err, MANAGER_ERROR_INTERNAL, r, "out of memory");
        return r;
}

void dma_view_done(DmaView *v) {
        if (v)
                host_group_done(&v->host);
}

int manager_dma_info(Manager *m, const char *spec, DmaView *ret, ManagerError *err) {
        DmaView d = { .source = DMA_SOURCE_SYSFS };
        const Lease *holder;
        int r;

        assert(m);
        assert(ret);

        r = manager_resolve_spec(m, spec, &d.group, err);
        if (r < 0)
                return r;
        r = manager_read_group(m, d.group, &d.host, err);
        if (r < 0)
                return r;

        for (size_t k = 0; k < d.host.n_devices; k++)
                if (lease_device_is_assigned(&d.host.devices[k]))
                        d.n_devices++;

        holder = manager_group_holder(m, d.group);
        if (holder && holder->state == LEASE_ACTIVE && holder->dma.flags != 0) {
                d.source = DMA_SOURCE_CONTAINER;
                d.dma = holder->dma;
                if (holder->delivery == LEASE_DELIVERY_IOMMUFD)
                        /* No container: what the lease's iommufd says before any device is bound. */
                        (void) snprintf(d.note, sizeof d.note, "lease %s's iommufd: the IOVA ranges of an IOAS with "
                                        "nothing attached, the groups' reserved regions cut out; page sizes and "
                                        "IOMMU_GET_HW_INFO need a bound device, and groupd binds none", holder->id);
        } else if (holder && holder->state == LEASE_ACTIVE && holder->delivery == LEASE_DELIVERY_NODE_GRANT)
                (void) snprintf(d.note, sizeof d.note, "lease %s is a node grant: groupd opened nothing to ask; only "
                                "the reserved regions are known", holder->id);
        else if (holder && holder->state == LEASE_ACTIVE && holder->dma_errno != 0)
                (void) snprintf(d.note, sizeof d.note, "VFIO_IOMMU_GET_INFO on lease %s's container failed: %s",
                                holder->id, strerror(holder->dma_errno));
        else if (holder && holder->state == LEASE_ACTIVE && holder->recovered)
                (void) snprintf(d.note, sizeof d.note, "lease %s was taken back after a restart: groupd has no "
                                "container fd to ask", holder->id);
        else if (holder && holder->state == LEASE_ACTIVE)
                (void) snprintf(d.note, sizeof d.note, "lease %s's container has no IOMMU type from groupd (acquire "
                                "with --configure-iommu for the facts); only the reserved regions are known",
                                holder->id);
        else if (holder)
                (void) snprintf(d.note, sizeof d.note, "group %u is being %s", d.group,
                                holder->state == LEASE_ACQUIRING ? "acquired" : "released");
        else
                (void) snprintf(d.note, sizeof d.note, "group %u is not leased: the IOMMU facts need a container, "
                                "and groupd does not open a free group just to look; only the reserved regions "
                                "are known", d.group);
        d.kvm = holder && holder->kvm_registered;
        *ret = d;
        return 0;
}
