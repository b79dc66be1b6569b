/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <cap-ng.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#include "caps.h"
#include "log.h"

static const int kept_caps[] = {
        CAP_SYS_RESOURCE,
};

static bool cap_is_kept(int c) {
        for (size_t i = 0; i < ELEMENTSOF(kept_caps); i++)
                if (kept_caps[i] == c)
                        return true;
        return false;
}

unsigned long long caps_kept_mask(void) {
        unsigned long long mask = 0;
        for (size_t i = 0; i < ELEMENTSOF(kept_caps); i++)
                mask |= 1ULL << kept_caps[i];
        return mask;
}

static int cap_last(void) {
        /* The kernel may know more capabilities than our headers: ask it (prctl needs no /proc). */
        int c = CAP_LAST_CAP;
        while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
                c++;
        return c;
}

int caps_drop(void) {
        bool extra = false, extra_bounding = false, setpcap;
        int last = cap_last();

        capng_clear(CAPNG_SELECT_BOTH);
        if (capng_get_caps_process() < 0)
                return -EIO;

        for (int c = 0; c <= last; c++) {
                if (cap_is_kept(c))
                        continue;
                if (capng_have_capability(CAPNG_EFFECTIVE, (unsigned) c) ||
                    capng_have_capability(CAPNG_PERMITTED, (unsigned) c) ||
                    capng_have_capability(CAPNG_INHERITABLE, (unsigned) c))
                        extra = true;
                if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) > 0)
                        extra_bounding = true;
        }
        if (!extra && !extra_bounding)
                return 0;
        /* Without CAP_SETPCAP the bounding set cannot shrink; the unit's CapabilityBoundingSet= does
         * that. The sets that matter for what this process can do still go. */
        setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
        if (!extra && !setpcap)
                return 0;

        {
                bool keep[64] = {};
                for (size_t i = 0; i < ELEMENTSOF(kept_caps); i++)
                        keep[kept_caps[i]] = capng_have_capability(CAPNG_PERMITTED, (unsigned) kept_caps[i]);

                capng_clear(setpcap ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS);
                for (size_t i = 0; i < ELEMENTSOF(kept_caps); i++) {
                        if (!keep[kept_caps[i]])
                                continue;
                        if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE|CAPNG_PERMITTED|(setpcap ? CAPNG_BOUNDING_SET : 0),
                                         (unsigned) kept_caps[i]) < 0)
                                return -EINVAL;
                }
        }

        /* The securebits lock needs CAP_SETPCAP, so it goes first. */
        if (setpcap && capng_lock() < 0)
                log_debug("Could not lock the securebits; continuing.");
        if (capng_apply(setpcap ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS) < 0)
                return errno > 0 ? -errno : -EPERM;
        (void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        return 1;
}

bool caps_have_sys_resource(void) {
        capng_clear(CAPNG_SELECT_BOTH);
        if (capng_get_caps_process() < 0)
                return false;
        return capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_RESOURCE);
}
