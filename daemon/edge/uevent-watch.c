/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdlib.h>
#include <systemd/sd-device.h>

#include "log.h"
#include "uevent-watch.h"

struct UeventWatch {
        Manager *manager;
        sd_device_monitor *monitor;
};

static int on_uevent(sd_device_monitor *mon, sd_device *dev, void *userdata) {
        UeventWatch *w = userdata;
        const char *sysname = NULL, *driver = NULL, *group_path = NULL;
        sd_device_action_t action;
        HostChange c;
        int r;

        if (sd_device_get_action(dev, &action) < 0 || sd_device_get_sysname(dev, &sysname) < 0)
                return 0;
        (void) sd_device_get_driver(dev, &driver);
        r = host_change_from_uevent(action == SD_DEVICE_ADD ? "add" :
                                    action == SD_DEVICE_REMOVE ? "remove" :
                                    action == SD_DEVICE_BIND ? "bind" :
                                    action == SD_DEVICE_UNBIND ? "unbind" : "other",
                                    sysname, driver, &c);
        if (r < 0)
                return 0; /* change, move, online...: nothing groupd cares about */
        /* The group, when the device is still there to say. */
        if (sd_device_get_sysattr_value(dev, "iommu_group", &group_path) >= 0 && group_path) {
                const char *slash = strrchr(group_path, '/');
                c.group = (unsigned) strtoul(slash ? slash + 1 : group_path, NULL, 10);
        }
        log_debug("uevent: %s %s%s%s", host_change_kind_to_string(c.kind), c.address, isempty(c.driver) ? "" : " ",
                  c.driver);
        manager_host_changed(w->manager, &c);
        return 0;
}

UeventWatch *uevent_watch_free(UeventWatch *w) {
        if (!w)
                return NULL;
        if (w->monitor) {
                (void) sd_device_monitor_stop(w->monitor);
                sd_device_monitor_unref(w->monitor);
        }
        free(w);
        return NULL;
}

int uevent_watch_new(sd_event *e, Manager *m, UeventWatch **ret) {
        _cleanup_(uevent_watch_freep) UeventWatch *w = NULL;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->manager = m;
        r = sd_device_monitor_new(&w->monitor);
        if (r < 0)
                return r;
        r = sd_device_monitor_filter_add_match_subsystem_devtype(w->monitor, "pci", NULL);
        if (r < 0)
                return r;
        r = sd_device_monitor_attach_event(w->monitor, e);
        if (r < 0)
                return r;
        (void) sd_device_monitor_set_description(w->monitor, "pci-uevents");
        r = sd_device_monitor_start(w->monitor, on_uevent, w);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}
