/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host-internal.h"
#include "parse-util.h"
#include "sim-topology.h"

#define TOPOLOGY_FILE_MAX (16U * 1024U * 1024U)
#define TOPOLOGY_TOKENS_MAX 16

static const char default_text[] =
        "# The simulated host groupd runs against when no topology file is given: a small x86 server.\n"
        "# The format is described in daemon/host/sim/sim-topology.h. This file is identical to the built-in\n"
        "# default.\n"
        "\n"
        "# The DMA facts of every container (VFIO_IOMMU_GET_INFO), as an Intel IOMMU on 6.12 reports\n"
        "# them: 4K/2M/1G pages, 65535 mappings, the MSI window cut out of the IOVA space.\n"
        "iommu pgsizes=0x40201000 dma-avail=65535 iova=0x0-0xfedfffff,0xfef00000-0xffffffffffff "
        "migration=0x1000:0x10000000 kernel=6.12\n"
        "\n"
        "# The host bridge.\n"
        "group 0 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:00:00.0 vendor=0x8086 device=0x29c0 class=0x060000\n"
        "\n"
        "# A GPU and its HDMI audio function: one group, handed out together.\n"
        "group 1 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:01:00.0 vendor=0x10de device=0x1eb8 class=0x030200 native=nouveau\n"
        "device 0000:01:00.1 vendor=0x10de device=0x10fa class=0x040300 native=snd_hda_intel\n"
        "\n"
        "# A network card.\n"
        "group 2 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:02:00.0 vendor=0x8086 device=0x10d3 class=0x020000 native=e1000e\n"
        "\n"
        "# A multi-function device: function 0 has no driver, function 1 is a network card on a host\n"
        "# driver. The group is viable only once both are claimed.\n"
        "group 3 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:03:00.0 vendor=0x1234 device=0x11e8 class=0x00ff00\n"
        "device 0000:03:00.1 vendor=0x8086 device=0x100e class=0x020000 native=e1000\n"
        "\n"
        "# A PCIe root port: a bridge, on pcieport.\n"
        "group 4 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:00:1c.0 vendor=0x8086 device=0xa110 class=0x060400 native=pcieport\n"
        "\n"
        "# The host's NVMe disk: the default policy never hands it out.\n"
        "group 5 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:05:00.0 vendor=0x144d device=0xa808 class=0x010802 native=nvme\n"
        "\n"
        "# A USB controller.\n"
        "group 6 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:06:00.0 vendor=0x1b36 device=0x000d class=0x0c0330 native=xhci_hcd\n"
        "\n"
        "# A QuickAssist crypto function on vfio-pci's denylist: binding it to vfio-pci fails.\n"
        "group 7 type=DMA-FQ\n"
        "region 0x00000000fee00000 0x00000000feefffff msi\n"
        "device 0000:07:00.0 vendor=0x8086 device=0x37c8 class=0x0b4000 native=qat_c62x denylisted\n";

const char *sim_topology_default_text(void) {
        return default_text;
}

SimTopology *sim_topology_free(SimTopology *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_groups; i++) {
                free(t->groups[i].regions);
                free(t->groups[i].own_iommu);
        }
        free(t->groups);
        free(t->devices);
        free(t);
        return NULL;
}

_printf_(3, 4)
static int topo_error(char **ret_error, unsigned line, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (!ret_error)
                return -EINVAL;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg)
                return -ENOMEM;

        free(*ret_error);
        *ret_error = NULL;
        if (asprintf(ret_error, "line %u: %s", line, msg) < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static bool name_chars_ok(const char *s, size_t max) {
        if (isempty(s) || strlen(s) >= max)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-' || *p == '.'))
                        return false;
        return !streq(s, ".") && !streq(s, "..");
}

static int parse_group_number(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!(*s >= '0' && *s <= '9'))
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != 0 || v > 0x7fffffffUL)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int cmp_group(const void *a, const void *b) {
        const SimTopoGroup *x = a, *y = b;
        if (x->id != y->id)
                return x->id < y->id ? -1 : 1;
        return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_device(const void *a, const void *b) {
        const SimTopoDevice *x = a, *y = b;
        int c = strcmp(x->address, y->address);
        if (c != 0)
                return c;
        return x->line < y->line ? -1 : x->line > y->line;
}

static void sim_iommu_default(SimIommu *i) {
        *i = (SimIommu) {
                .info = {
                        .flags = HOST_IOMMU_PGSIZES | HOST_IOMMU_IOVA | HOST_IOMMU_DMA_AVAIL |
                                 HOST_IOMMU_MIGRATION,
                        .pgsizes = 0x40201000,
                        .iova = { { 0, 0xfedfffff }, { 0xfef00000, 0xffffffffffff } },
                        .n_iova = 2,
                        .dma_avail = 65535,
                        .migration_pgsizes = 0x1000,
                        .migration_max_dirty_bitmap_size = 0x10000000,
                },
                .align8 = true,
        };
}

/* "A:B" with both hex. */
static int parse_hex_pair(const char *s, char sep, uint64_t *a, uint64_t *b) {
        char buf[64], *c;

        if (strlen(s) >= sizeof buf)
                return -EINVAL;
        strcpy(buf, s);
        c = strchr(buf, sep);
        if (!c)
                return -EINVAL;
        *c = 0;
        if (parse_hex_u64(buf, UINT64_MAX, a) < 0 || parse_hex_u64(c + 1, UINT64_MAX, b) < 0)
                return -EINVAL;
        return 0;
}

static int parse_iommu_line(SimIommu *io, char **tok, size_t n, unsigned line, char **ret_error) {
        for (size_t i = 1; i < n; i++) {
                const char *v;
                uint64_t a, b;

                if ((v = startswith_word(tok[i], "pgsizes="))) {
                        if (parse_hex_u64(v, UINT64_MAX, &a) < 0 || a == 0)
                                return topo_error(ret_error, line, "bad page-size bitmap \"%s\"", v);
                        io->info.pgsizes = a;
                        io->info.flags |= HOST_IOMMU_PGSIZES;
                } else if ((v = startswith_word(tok[i], "dma-avail="))) {
                        char *end;
                        unsigned long x;

                        errno = 0;
                        x = strtoul(v, &end, 10);
                        if (!(*v >= '0' && *v <= '9') || errno != 0 || *end != 0 || x > UINT32_MAX)
                                return topo_error(ret_error, line, "bad dma-avail \"%s\"", v);
                        io->info.dma_avail = (uint32_t) x;
                        io->info.flags |= HOST_IOMMU_DMA_AVAIL;
                } else if ((v = startswith_word(tok[i], "iova="))) {
                        _cleanup_free_ char *copy = strdup(v);
                        char *save = NULL;
                        uint32_t k = 0;

                        if (!copy)
                                return -ENOMEM;
                        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                                if (k >= HOST_IOVA_RANGES_MAX)
                                        return topo_error(ret_error, line, "more than %u IOVA ranges",
                                                          HOST_IOVA_RANGES_MAX);
                                if (parse_hex_pair(w, '-', &a, &b) < 0 || a > b)
                                        return topo_error(ret_error, line, "bad IOVA range \"%s\"", w);
                                if (k > 0 && a <= io->info.iova[k - 1].end)
                                        return topo_error(ret_error, line,
                                                          "IOVA range \"%s\" is not above the one before", w);
                                io->info.iova[k++] = (HostIovaRange) { a, b };
                        }
                        if (k == 0)
                                return topo_error(ret_error, line, "iova= names no range");
                        io->info.n_iova = k;
                        io->info.flags |= HOST_IOMMU_IOVA;
                } else if ((v = startswith_word(tok[i], "migration="))) {
                        if (streq(v, "none")) {
                                io->info.flags &= ~(uint32_t) HOST_IOMMU_MIGRATION;
                                continue;
                        }
                        if (parse_hex_pair(v, ':', &a, &b) < 0)
                                return topo_error(ret_error, line, "bad migration \"%s\" (want PGSIZES:MAXBITMAP)", v);
                        io->info.migration_pgsizes = a;
                        io->info.migration_max_dirty_bitmap_size = b;
                        io->info.flags |= HOST_IOMMU_MIGRATION;
                } else if ((v = startswith_word(tok[i], "spapr-dma32="))) {
                        if (streq(v, "none")) {
                                io->info.flags &= ~(uint32_t) HOST_IOMMU_SPAPR;
                                continue;
                        }
                        if (parse_hex_pair(v, ':', &a, &b) < 0 || a > UINT32_MAX || b > UINT32_MAX || b == 0)
                                return topo_error(ret_error, line, "bad spapr-dma32 \"%s\" (want START:SIZE, 32-bit)", v);
                        io->info.spapr_dma32_start = (uint32_t) a;
                        io->info.spapr_dma32_size = (uint32_t) b;
                        io->info.flags |= HOST_IOMMU_SPAPR;
                } else if ((v = startswith_word(tok[i], "kernel="))) {
                        if (streq(v, "6.1"))
                                io->align8 = false;
                        else if (streq(v, "6.12"))
                                io->align8 = true;
                        else
                                return topo_error(ret_error, line, "bad kernel \"%s\" (6.1 or 6.12)", v);
                } else
                        return topo_error(ret_error, line, "unknown field \"%s\" in an iommu line", tok[i]);
        }
        return 0;
}

static int parse_group_line(SimTopology *t, char **tok, size_t n, unsigned line, char **ret_error) {
        SimTopoGroup g = { .line = line };
        SimTopoGroup *a;

        if (n < 2)
                return topo_error(ret_error, line, "\"group\" wants a group number");
        if (parse_group_number(tok[1], &g.id) < 0)
                return topo_error(ret_error, line, "bad group number \"%s\"", tok[1]);
        strcpy(g.type, "DMA-FQ");

        for (size_t i = 2; i < n; i++) {
                const char *v = startswith_word(tok[i], "type=");
                if (!v)
                        return topo_error(ret_error, line, "unknown field \"%s\" in a group line", tok[i]);
                if (!isempty(v) && !name_chars_ok(v, sizeof g.type))
                        return topo_error(ret_error, line, "bad group type \"%s\"", v);
                strcpy(g.type, v);
        }

        a = reallocarray(t->groups, t->n_groups + 1, sizeof *t->groups);
        if (!a)
                return -ENOMEM;
        t->groups = a;
        t->groups[t->n_groups++] = g;
        return 0;
}

static int parse_region_line(SimTopoGroup *g, char **tok, size_t n, unsigned line, char **ret_error) {
        HostRegion r = {};
        HostRegion *a;

        if (!g)
                return topo_error(ret_error, line,
                                  "region outside a group (a \"group\" line must come first)");
        if (n != 4)
                return topo_error(ret_error, line, "\"region\" wants START END TYPE");
        if (parse_hex_u64(tok[1], UINT64_MAX, &r.start) < 0)
                return topo_error(ret_error, line, "bad region start \"%s\"", tok[1]);
        if (parse_hex_u64(tok[2], UINT64_MAX, &r.end) < 0)
                return topo_error(ret_error, line, "bad region end \"%s\"", tok[2]);
        if (r.end < r.start)
                return topo_error(ret_error, line, "region ends before it starts");
        if (!name_chars_ok(tok[3], sizeof r.type))
                return topo_error(ret_error, line, "bad region type \"%s\"", tok[3]);
        strcpy(r.type, tok[3]);

        a = reallocarray(g->regions, g->n_regions + 1, sizeof *g->regions);
        if (!a)
                return -ENOMEM;
        g->regions = a;
        g->regions[g->n_regions++] = r;
        return 0;
}

static int parse_device_line(SimTopology *t, SimTopoGroup *g, char **tok, size_t n, unsigned line,
                             char **ret_error) {
        SimTopoDevice d = { .line = line };
        bool have_vendor = false, have_device = false, have_driver = false, have_header = false;
        SimTopoDevice *a;

        if (n < 2)
                return topo_error(ret_error, line, "\"device\" wants an address");
        if (host_parse_pci_address(tok[1], d.address) < 0)
                return topo_error(ret_error, line, "bad PCI address \"%s\"", tok[1]);
        if (!g)
                return topo_error(ret_error, line,
                                  "device %s outside a group (a \"group\" line must come first)", d.address);
        d.group = g->id;

        for (size_t i = 2; i < n; i++) {
                const char *v;
                uint64_t x;

                if ((v = startswith_word(tok[i], "vendor="))) {
                        if (parse_hex_u64(v, UINT16_MAX, &x) < 0)
                                return topo_error(ret_error, line, "bad vendor id \"%s\"", v);
                        d.vendor = (uint16_t) x;
                        have_vendor = true;
                } else if ((v = startswith_word(tok[i], "device="))) {
                        if (parse_hex_u64(v, UINT16_MAX, &x) < 0)
                                return topo_error(ret_error, line, "bad device id \"%s\"", v);
                        d.device = (uint16_t) x;
                        have_device = true;
                } else if ((v = startswith_word(tok[i], "class="))) {
                        if (parse_hex_u64(v, 0xffffff, &x) < 0)
                                return topo_error(ret_error, line, "bad class \"%s\"", v);
                        d.class_code = (uint32_t) x;
                } else if ((v = startswith_word(tok[i], "native="))) {
                        if (!isempty(v) && !name_chars_ok(v, sizeof d.native))
                                return topo_error(ret_error, line, "bad driver name \"%s\"", v);
                        strcpy(d.native, v);
                } else if ((v = startswith_word(tok[i], "driver="))) {
                        if (!isempty(v) && !name_chars_ok(v, sizeof d.driver))
                                return topo_error(ret_error, line, "bad driver name \"%s\"", v);
                        strcpy(d.driver, v);
                        have_driver = true;
                } else if ((v = startswith_word(tok[i], "override="))) {
                        if (!isempty(v) && !name_chars_ok(v, sizeof d.override))
                                return topo_error(ret_error, line, "bad driver name \"%s\"", v);
                        strcpy(d.override, v);
                } else if ((v = startswith_word(tok[i], "variant="))) {
                        if (!name_chars_ok(v, sizeof d.variant))
                                return topo_error(ret_error, line, "bad driver name \"%s\"", v);
                        strcpy(d.variant, v);
                } else if ((v = startswith_word(tok[i], "header="))) {
                        if (!(v[0] >= '0' && v[0] <= '2' && v[1] == 0))
                                return topo_error(ret_error, line, "bad header type \"%s\" (0, 1 or 2)", v);
                        d.header_type = (uint8_t) (v[0] - '0');
                        have_header = true;
                } else if ((v = startswith_word(tok[i], "mounted="))) {
                        if (isempty(v) || v[0] != '/' || strlen(v) >= sizeof d.mounted)
                                return topo_error(ret_error, line, "bad mount point \"%s\"", v);
                        strcpy(d.mounted, v);
                } else if ((v = startswith_word(tok[i], "route="))) {
                        if (!name_chars_ok(v, sizeof d.route))
                                return topo_error(ret_error, line, "bad interface name \"%s\"", v);
                        strcpy(d.route, v);
                } else if (streq(tok[i], "boot_vga"))
                        d.boot_vga = true;
                else if (streq(tok[i], "swap"))
                        d.swap = true;
                else if (streq(tok[i], "denylisted"))
                        d.vfio_denylisted = true;
                else if (streq(tok[i], "noprobe"))
                        d.no_probe = true;
                else
                        return topo_error(ret_error, line, "unknown field \"%s\" in a device line", tok[i]);
        }
        if (!have_vendor || !have_device)
                return topo_error(ret_error, line, "device %s needs vendor= and device=", d.address);
        if (!have_driver)
                strcpy(d.driver, d.native);
        if (!have_header)
                switch (d.class_code >> 8) {
                case 0x0604:
                case 0x0609:
                        d.header_type = HOST_HEADER_BRIDGE;
                        break;
                case 0x0607:
                        d.header_type = HOST_HEADER_CARDBUS;
                        break;
                }

        a = reallocarray(t->devices, t->n_devices + 1, sizeof *t->devices);
        if (!a)
                return -ENOMEM;
        t->devices = a;
        t->devices[t->n_devices++] = d;
        g->n_devices++;
        return 0;
}

int sim_topology_parse(const char *text, SimTopology **ret, char **ret_error) {
        _cleanup_(sim_topology_freep) SimTopology *t = NULL;
        _cleanup_free_ char *copy = NULL;
        ssize_t cur = -1;
        unsigned line = 0;
        char *p;
        int r;

        if (!text || !ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;

        t = calloc(1, sizeof *t);
        copy = strdup(text);
        if (!t || !copy)
                return -ENOMEM;
        sim_iommu_default(&t->iommu);

        for (p = copy; p;) {
                char *tok[TOPOLOGY_TOKENS_MAX], *save = NULL, *s, *eol;
                size_t n = 0;

                line++;
                eol = strchr(p, '\n');
                if (eol)
                        *eol = 0;
                s = p;
                p = eol ? eol + 1 : NULL;

                s[strcspn(s, "#")] = 0;
                for (char *w = strtok_r(s, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
                        if (n >= ELEMENTSOF(tok))
                                return topo_error(ret_error, line, "too many fields");
                        tok[n++] = w;
                }
                if (n == 0)
                        continue;

                if (streq(tok[0], "group")) {
                        r = parse_group_line(t, tok, n, line, ret_error);
                        if (r >= 0)
                                cur = (ssize_t) t->n_groups - 1;
                } else if (streq(tok[0], "region"))
                        r = parse_region_line(cur >= 0 ? &t->groups[cur] : NULL, tok, n, line, ret_error);
                else if (streq(tok[0], "iommu")) {
                        SimIommu *io = &t->iommu;
                        if (cur >= 0) {
                                SimTopoGroup *g = &t->groups[cur];
                                if (!g->own_iommu) {
                                        /* Starts from the host's facts as they stand at this line. */
                                        g->own_iommu = malloc(sizeof *g->own_iommu);
                                        if (!g->own_iommu)
                                                return -ENOMEM;
                                        *g->own_iommu = t->iommu;
                                }
                                io = g->own_iommu;
                        }
                        r = parse_iommu_line(io, tok, n, line, ret_error);
                }
                else if (streq(tok[0], "cdev") || streq(tok[0], "iommufd")) {
                        if (cur >= 0 || n != 1)
                                r = topo_error(ret_error, line, "\"%s\" stands alone, before the first group",
                                               tok[0]);
                        else {
                                t->cdev = t->cdev || streq(tok[0], "cdev");
                                t->iommufd = true;
                                r = 0;
                        }
                }
                else if (streq(tok[0], "device"))
                        r = parse_device_line(t, cur >= 0 ? &t->groups[cur] : NULL, tok, n, line, ret_error);
                else
                        r = topo_error(ret_error, line, "unknown keyword \"%s\"", tok[0]);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < t->n_groups; i++)
                if (t->groups[i].n_devices == 0)
                        return topo_error(ret_error, t->groups[i].line, "group %u has no devices",
                                          t->groups[i].id);
        if (t->n_groups == 0)
                return topo_error(ret_error, line, "no groups");

        /* Sorted for lookups; a duplicate sits next to its first occurrence then. */
        qsort(t->groups, t->n_groups, sizeof *t->groups, cmp_group);
        for (size_t i = 1; i < t->n_groups; i++)
                if (t->groups[i].id == t->groups[i - 1].id)
                        return topo_error(ret_error, t->groups[i].line,
                                          "duplicate group %u (first on line %u)", t->groups[i].id,
                                          t->groups[i - 1].line);
        qsort(t->devices, t->n_devices, sizeof *t->devices, cmp_device);
        for (size_t i = 1; i < t->n_devices; i++)
                if (streq(t->devices[i].address, t->devices[i - 1].address))
                        return topo_error(ret_error, t->devices[i].line,
                                          "duplicate device %s (first on line %u)", t->devices[i].address,
                                          t->devices[i - 1].line);

        *ret = TAKE_PTR(t);
        return 0;
}

int sim_topology_load(const char *path, SimTopology **ret, char **ret_error) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t size = 0, allocated = 0;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!path)
                return sim_topology_parse(default_text, ret, ret_error);

        fd = open(path, O_RDONLY|O_CLOEXEC|O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                if (ret_error && asprintf(ret_error, "%s: cannot open: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }

        for (;;) {
                ssize_t n;

                if (allocated - size < 4096) {
                        char *a;
                        allocated = MAX(allocated * 2, (size_t) 16384);
                        if (allocated > TOPOLOGY_FILE_MAX + 1) {
                                if (ret_error && asprintf(ret_error, "%s: larger than %u bytes", path,
                                                          TOPOLOGY_FILE_MAX) < 0)
                                        *ret_error = NULL;
                                return -EFBIG;
                        }
                        a = realloc(text, allocated);
                        if (!a)
                                return -ENOMEM;
                        text = a;
                }
                n = read(fd, text + size, allocated - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        text[size] = 0;
        if (strlen(text) != size) {
                if (ret_error && asprintf(ret_error, "%s: not a text file (contains NUL bytes)", path) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }

        r = sim_topology_parse(text, ret, ret_error ? &error : NULL);
        if (r < 0 && ret_error && error)
                if (asprintf(ret_error, "%s: %s", path, error) < 0)
                        *ret_error = NULL;
        return r;
}

static int cmp_group_key(const void *key, const void *elem) {
        unsigned id = *(const unsigned *) key, other = ((const SimTopoGroup *) elem)->id;
        return id < other ? -1 : id > other;
}

static int cmp_device_key(const void *key, const void *elem) {
        return strcmp(key, ((const SimTopoDevice *) elem)->address);
}

const SimIommu *sim_topology_group_iommu(const SimTopology *t, const SimTopoGroup *g) {
        return g->own_iommu ?: &t->iommu;
}

const SimTopoGroup *sim_topology_find_group(const SimTopology *t, unsigned id) {
        if (!t || t->n_groups == 0)
                return NULL;
        return bsearch(&id, t->groups, t->n_groups, sizeof *t->groups, cmp_group_key);
}

const SimTopoDevice *sim_topology_find_device(const SimTopology *t, const char *address) {
        if (!t || !address || t->n_devices == 0)
                return NULL;
        return bsearch(address, t->devices, t->n_devices, sizeof *t->devices, cmp_device_key);
}

bool sim_topology_is_vfio_driver(const SimTopology *t, const char *driver) {
        if (isempty(driver))
                return false;
        if (streq(driver, VFIO_PCI_DRIVER))
                return true;
        for (size_t i = 0; t && i < t->n_devices; i++)
                if (streq(t->devices[i].variant, driver))
                        return true;
        return false;
}
