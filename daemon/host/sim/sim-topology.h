/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The simulated host's topology: which IOMMU groups exist, what they hold, and which drivers the devices
 * are on when the simulated host is first created.
 *
 * The file format is line based. '#' starts a comment (to the end of the line), blank lines are ignored,
 * fields are separated by blanks. Three kinds of lines:
 *
 *   group ID [type=TYPE]
 *           Starts IOMMU group ID (decimal). TYPE is what kernel/iommu_groups/ID/type reads: "DMA-FQ"
 *           when left out; an empty "type=" leaves the file out, as kernels before 5.11 do.
 *
 *   region START END TYPE
 *           A reserved region of the current group, as the kernel lists it in reserved_regions:
 *           "region 0x00000000fee00000 0x00000000feefffff msi". START <= END, both hex.
 *
 *   device ADDRESS vendor=0xVVVV device=0xDDDD [class=0xCCCCCC] [native=DRIVER] [driver=DRIVER] [denylisted]
 *          [noprobe] [override=DRIVER] [header=N] [variant=DRIVER] [boot_vga] [mounted=PATH] [swap]
 *          [route=IFACE]
 *           A PCI device of the current group. ADDRESS is "0000:01:00.0" (or "01:00.0"). native= names
 *           the host driver the kernel binds when the device is probed without a driver_override
 *           (none when left out); driver= the driver the device is on when the simulated host is first
 *           created (the native driver when left out; an empty "driver=" for none). class defaults
 *           to 0. denylisted marks a device on vfio-pci's denylist (the kernel's vfio_pci_is_denylisted():
 *           some Intel QuickAssist functions): binding it to vfio-pci fails with EBUSY, as the kernel's
 *           probe does, and a probe leaves it without a driver. noprobe: a probe (drivers_probe) does
 *           not bring the native driver back, only a bind by name does. override= is its driver_override at
 *           creation. header= its PCI header type (0 normal, 1 bridge, 2 CardBus; from the class when
 *           left out: 0x0604xx and 0x0609xx are bridges); vfio-pci (and every VFIO driver) refuses a
 *           bridge with EINVAL. variant= names a VFIO variant driver for the device (as mlx5_vfio_pci is
 *           for a ConnectX function): it is loaded, binds only when driver_override names it, gives the
 *           device a vfio-dev/ directory while bound, and the device's modalias matches a
 *           "vfio_pci:" alias of it in the simulated modules.alias. boot_vga: the device's boot_vga
 *           reads 1. mounted=, swap and route= say what the host stands on: a filesystem mounted at
 *           PATH is on a block device under this function, active swap is, the default route goes out
 *           through IFACE on it (the simulated /proc/mounts, /proc/swaps, /proc/net/route).
 *
 *   iommu [pgsizes=HEX] [dma-avail=N] [iova=START-END[,START-END...]] [migration=PGSIZES:MAXBITMAP|none]
 *         [spapr-dma32=START:SIZE|none] [kernel=6.1|6.12]
 *           The DMA facts VFIO_IOMMU_GET_INFO reports for a container (see daemon/host/iommu-info.h). Before
 *           the first group line it sets the host's facts, which every group starts from; after a group
 *           line, it changes that group's (the fields it gives; the others stay the host's). pgsizes is
 *           the page-size bitmap, dma-avail the DMA_AVAIL budget, iova the usable IOVA ranges (hex,
 *           inclusive, ascending and disjoint, at most 64), migration the dirty-tracking capability
 *           (its page sizes and largest bitmap, hex), spapr-dma32 makes the container an sPAPR one with
 *           that 32-bit DMA window (hex), and kernel= the capability layout: 6.1 packs capabilities,
 *           6.12 pads each to 8 bytes. A container's facts are those of its groups combined: the IOVA
 *           ranges intersected, the page sizes and the budget the smallest. Without an iommu line the
 *           host has the default's x86 facts: page sizes 4K|2M|1G, 65535 mappings, IOVA 0-0xfedfffff and
 *           0xfef00000-0xffffffffffff (the MSI window cut out), migration 0x1000:0x10000000, kernel=6.12.
 *
 *   cdev
 *           Before the first group line: the simulated kernel has IOMMUFD and VFIO_DEVICE_CDEV. dev/iommu
 *           exists, and each device on vfio-pci gets sys/bus/pci/devices/ADDR/vfio-dev/vfioN and
 *           dev/vfio/devices/vfioN (N: the device's place in the topology, by address). Without it (the
 *           default, as Debian's kernels) there is neither.
 *
 *   iommufd
 *           Before the first group line: IOMMUFD without VFIO_DEVICE_CDEV (a kernel built so, or one whose
 *           vfio lacks the option): dev/iommu exists and opens, but no device gets a cdev. "cdev" implies
 *           it.
 *
 * A device must come after a group line; every group needs at least one device; group ids and device
 * addresses are unique. Errors name the line: "line 7: duplicate device 0000:01:00.0 (first on line 4)".
 *
 * The drivers named anywhere in the file, and vfio-pci, are the drivers the simulated host has loaded.
 * The built-in default (sim_topology_default_text(), also shipped as tests/data/sim-default.topo) looks
 * like a small server. */

#include "host.h"
#include "iommu-info.h"

typedef struct SimIommu {
        HostIommuInfo info;             /* without iommu_type; HOST_IOMMU_SPAPR for an sPAPR host */
        bool align8;                    /* kernel=6.12 */
} SimIommu;

typedef struct SimTopoDevice {
        char address[HOST_ADDR_MAX];    /* canonical */
        uint16_t vendor;
        uint16_t device;
        uint32_t class_code;
        char native[HOST_DRIVER_MAX];   /* "" when none */
        char driver[HOST_DRIVER_MAX];   /* at creation; "" when none */
        bool vfio_denylisted;           /* vfio-pci's probe refuses it */
        bool no_probe;                  /* a probe does not bring its native driver back: only a bind by
                                         * name does (a driver given the device by hand, through new_id
                                         * and bind, as administrators and vendor tools do) */
        char override[HOST_DRIVER_MAX]; /* driver_override at creation; "" none */
        uint8_t header_type;
        char variant[HOST_DRIVER_MAX];  /* a VFIO variant driver for it; "" none */
        bool boot_vga;
        char mounted[64];               /* "" none */
        bool swap;
        char route[32];                 /* "" none */
        unsigned group;
        unsigned line;
} SimTopoDevice;

typedef struct SimTopoGroup {
        unsigned id;
        char type[HOST_TYPE_MAX];       /* "" when the type file is left out */
        HostRegion *regions;
        size_t n_regions;
        size_t n_devices;
        SimIommu *own_iommu;            /* the group's own iommu line(s); NULL: the host's (see below) */
        unsigned line;
} SimTopoGroup;

typedef struct SimTopology {
        SimTopoGroup *groups;           /* sorted by id */
        size_t n_groups;
        SimTopoDevice *devices;         /* sorted by address */
        size_t n_devices;
        SimIommu iommu;                 /* the host-wide facts */
        bool cdev;                      /* IOMMUFD and VFIO_DEVICE_CDEV */
        bool iommufd;                   /* IOMMUFD: dev/iommu (true with cdev) */
} SimTopology;

const char *sim_topology_default_text(void);

/* On a syntax error returns -EINVAL and, if ret_error is given, a message naming the line. */
int sim_topology_parse(const char *text, SimTopology **ret, char **ret_error);
/* Reads the file at path (NULL: the built-in default) and parses it. Messages name the file. */
int sim_topology_load(const char *path, SimTopology **ret, char **ret_error);
SimTopology *sim_topology_free(SimTopology *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(SimTopology *, sim_topology_free);

const SimTopoGroup *sim_topology_find_group(const SimTopology *t, unsigned id);
/* A group's DMA facts: its own, or the host's. (Kept apart so that 4096 groups do not carry 4096 copies
 * of the same kilobyte and more.) */
const SimIommu *sim_topology_group_iommu(const SimTopology *t, const SimTopoGroup *g);
const SimTopoDevice *sim_topology_find_device(const SimTopology *t, const char *address);
/* Is driver a VFIO driver on this host: vfio-pci, or a variant= of some device? */
bool sim_topology_is_vfio_driver(const SimTopology *t, const char *driver);
