/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the DMA facts and KVM registration below the manager: the VFIO_IOMMU_GET_INFO
 * capability-chain parser on the kernel's layouts and on hostile buffers, the memlock arithmetic, the
 * simulated host's facts and kvm-vfio device, and, where /dev/kvm exists, the linux backend's kvm-vfio
 * calls against the real kernel. */
#include <check.h>
#include <linux/capability.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "host-internal.h"
#include "host-sim.h"
#include "iommu-info.h"
#include "kvm-vfio.h"
#include "memlock.h"
#include "sim-topology.h"
#include "test-util.h"

#ifndef TOP_SRCDIR_DEFAULT
#define TOP_SRCDIR_DEFAULT "."
#endif

static const char *top_srcdir(void) {
        const char *e = getenv("TOP_SRCDIR");
        return isempty(e) ? TOP_SRCDIR_DEFAULT : e;
}

/* ---------------------------------------------------------------- buffers as the kernel lays them out */

static void put16(uint8_t *b, size_t off, uint16_t v) { memcpy(b + off, &v, 2); }
static void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

/* struct vfio_iommu_type1_info { u32 argsz; u32 flags; u64 iova_pgsizes; u32 cap_offset; u32 pad; }
 * then, in vfio_iommu_type1_get_info()'s order, migration (32 bytes), DMA_AVAIL (12; 16 from 6.5 on,
 * which pads every capability to 8 bytes) and the IOVA ranges (16 + 16 per range). Written out by hand
 * here, offset by offset, independently of iommu_info_build_type1(). */
static size_t kernel_buffer(uint8_t *b, bool padded, const HostIovaRange *iova, uint32_t n_iova) {
        size_t mig = 24, avail = mig + 32, iov = avail + (padded ? 16 : 12);
        size_t end = iov + 16 + 16 * n_iova;

        memset(b, 0, end);
        put32(b, 0, (uint32_t) end);
        put32(b, 4, 3);                         /* PGSIZES | CAPS */
        put64(b, 8, 0x40201000);
        put32(b, 16, (uint32_t) mig);
        put16(b, mig, 2); put16(b, mig + 2, 1); put32(b, mig + 4, (uint32_t) avail);
        put32(b, mig + 8, 0); put64(b, mig + 16, 0x1000); put64(b, mig + 24, 0x10000000);
        put16(b, avail, 3); put16(b, avail + 2, 1); put32(b, avail + 4, (uint32_t) iov);
        put32(b, avail + 8, 65535);
        put16(b, iov, 1); put16(b, iov + 2, 1); put32(b, iov + 4, 0);
        put32(b, iov + 8, n_iova);
        for (uint32_t i = 0; i < n_iova; i++) {
                put64(b, iov + 16 + 16 * i, iova[i].start);
                put64(b, iov + 24 + 16 * i, iova[i].end);
        }
        return end;
}

static const HostIovaRange intel_iova[] = { { 0, 0xfedfffff }, { 0xfef00000, 0xffffffffffff } };
/* AMD-Vi also reserves the HyperTransport window 0xfd00000000-0xffffffffff. */
static const HostIovaRange amd_iova[] = {
        { 0, 0xfedfffff }, { 0xfef00000, 0xfcffffffff }, { 0x10000000000, 0xffffffffffff },
};

static void assert_facts(const HostIommuInfo *i, const HostIovaRange *iova, uint32_t n) {
        ck_assert_uint_eq(i->flags, HOST_IOMMU_PGSIZES | HOST_IOMMU_IOVA | HOST_IOMMU_DMA_AVAIL |
                                    HOST_IOMMU_MIGRATION);
        ck_assert_uint_eq(i->pgsizes, 0x40201000);
        ck_assert_uint_eq(i->dma_avail, 65535);
        ck_assert_uint_eq(i->migration_pgsizes, 0x1000);
        ck_assert_uint_eq(i->migration_max_dirty_bitmap_size, 0x10000000);
        ck_assert_uint_eq(i->n_iova, n);
        for (uint32_t k = 0; k < n; k++) {
                ck_assert_uint_eq(i->iova[k].start, iova[k].start);
                ck_assert_uint_eq(i->iova[k].end, iova[k].end);
        }
}

START_TEST(test_parse_kernel_layouts) {
        static const struct {
                bool padded;
                const HostIovaRange *iova;
                uint32_t n;
                size_t argsz;
        } cases[] = {
                { false, intel_iova, 2, 116 },   /* 6.1, Intel */
                { true, intel_iova, 2, 120 },    /* 6.12, Intel */
                { false, amd_iova, 3, 132 },     /* 6.1, AMD */
                { true, amd_iova, 3, 136 },      /* 6.12, AMD */
        };

        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                uint8_t buf[256], built[256];
                HostIommuInfo info, want = {};
                size_t len, needed = 0;

                len = kernel_buffer(buf, cases[c].padded, cases[c].iova, cases[c].n);
                ck_assert_uint_eq(len, cases[c].argsz);
                ck_assert_int_eq(iommu_info_parse_type1(buf, len, &info, &needed), 0);
                ck_assert_uint_eq(needed, cases[c].argsz);
                assert_facts(&info, cases[c].iova, cases[c].n);

                /* The builder lays the same facts out byte for byte as the kernel does. */
                want = info;
                ck_assert_int_eq(iommu_info_build_type1(&want, cases[c].padded, built, sizeof built, &needed),
                                 (int) cases[c].argsz);
                ck_assert_mem_eq(built, buf, len);

                /* The first call with only the fixed part: the kernel says how much it needs. */
                put32(buf, 0, IOMMU_TYPE1_INFO_SIZE);
                ck_assert_int_eq(iommu_info_build_type1(&want, cases[c].padded, buf, IOMMU_TYPE1_INFO_SIZE,
                                                        &needed), -ENOBUFS);
                ck_assert_int_eq(iommu_info_parse_type1(buf, IOMMU_TYPE1_INFO_SIZE, &info, &needed), -ENOBUFS);
                ck_assert_uint_eq(needed, cases[c].argsz);
                ck_assert_uint_eq(info.pgsizes, 0x40201000);
                ck_assert_uint_eq(info.n_iova, 0);
        }
}
END_TEST

/* Raw GET_INFO buffers captured from real kernels by the real-kernel tier (tests/vm): Debian's 6.1 and
 * 6.12 in qemu, with an emulated Intel (VT-d) and AMD (AMD-Vi) IOMMU, group 3 attached to a Type1v2
 * container: tests/data/iommu-info-KERNEL-IOMMU.bin (with a .hex twin for people). */
static size_t read_bin(const char *path, uint8_t *buf, size_t size) {
        int fd = open(path, O_RDONLY|O_CLOEXEC);
        ssize_t n;

        ck_assert_msg(fd >= 0, "cannot open %s", path);
        n = read(fd, buf, size);
        close(fd);
        ck_assert_int_gt(n, 0);
        return (size_t) n;
}

START_TEST(test_parse_captured) {
        static const struct {
                const char *name;
                uint32_t argsz;
                uint32_t n_iova;
                uint64_t last_end;      /* the end of the last IOVA range: the IOMMU's address width */
        } cases[] = {
                { "iommu-info-6.1-intel.bin", 116, 2, 0x7fffffffff },
                { "iommu-info-6.12-intel.bin", 120, 2, 0x7fffffffff },
                { "iommu-info-6.1-amd.bin", 132, 3, UINT64_MAX },
                { "iommu-info-6.12-amd.bin", 136, 3, UINT64_MAX },
        };

        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                char path[4096];
                uint8_t buf[4096];
                HostIommuInfo info;
                size_t len, needed = 0;
                uint32_t argsz;

                (void) snprintf(path, sizeof path, "%s/tests/data/%s", top_srcdir(), cases[c].name);
                if (access(path, R_OK) < 0) {
                        fprintf(stderr, "SKIP %s: not captured (the real-kernel tier writes it)\n", cases[c].name);
                        continue;
                }
                len = read_bin(path, buf, sizeof buf);
                memcpy(&argsz, buf, 4);
                ck_assert_uint_eq(argsz, cases[c].argsz);
                ck_assert_uint_eq(len, cases[c].argsz);
                ck_assert_int_eq(iommu_info_parse_type1(buf, len, &info, &needed), 0);
                ck_assert_uint_eq(needed, argsz);
                ck_assert_uint_eq(info.flags, HOST_IOMMU_PGSIZES | HOST_IOMMU_IOVA | HOST_IOMMU_DMA_AVAIL |
                                              HOST_IOMMU_MIGRATION);
                ck_assert_uint_eq(info.n_iova, cases[c].n_iova);
                ck_assert_uint_eq(info.dma_avail, 65535);
                ck_assert_uint_eq(info.iova[0].start, 0);
                ck_assert_uint_eq(info.iova[0].end, 0xfedfffff);    /* the MSI window cut out */
                ck_assert_uint_eq(info.iova[1].start, 0xfef00000);
                ck_assert_uint_eq(info.iova[info.n_iova - 1].end, cases[c].last_end);
                if (cases[c].n_iova == 3) {                          /* AMD: the HyperTransport hole too */
                        ck_assert_uint_eq(info.iova[1].end, 0xfcffffffff);
                        ck_assert_uint_eq(info.iova[2].start, 0x10000000000);
                }
                ck_assert(info.pgsizes & 0x1000);
                ck_assert_uint_eq(info.migration_pgsizes, 0x1000);

                /* Every shorter cut of a real buffer is refused or reported short, never misread. */
                for (size_t cut = 0; cut < len; cut++) {
                        HostIommuInfo t;
                        int r;
                        uint8_t copy[4096];
                        memcpy(copy, buf, cut);
                        r = iommu_info_parse_type1(copy, cut, &t, NULL);
                        ck_assert_msg(r == -EBADMSG || r == -ENOBUFS, "%s cut at %zu: %d", cases[c].name, cut, r);
                }

                /* The builder, given the parsed facts, lays them out byte for byte as that kernel did. */
                {
                        uint8_t built[4096];
                        ck_assert_int_eq(iommu_info_build_type1(&info, strstr(cases[c].name, "6.12") != NULL,
                                                                built, sizeof built, NULL), (int) len);
                        ck_assert_mem_eq(built, buf, len);
                }
                fprintf(stderr, "captured %s: argsz %u, %u IOVA ranges, pgsizes 0x%" PRIx64 ", dma_avail %u\n",
                        cases[c].name, argsz, info.n_iova, info.pgsizes, info.dma_avail);
        }
}
END_TEST

/* Every hostile buffer is refused with -EBADMSG and leaves the answer empty. */
static void assert_hostile(const uint8_t *buf, size_t len, const char *what) {
        HostIommuInfo info;
        int r;

        memset(&info, 0xaa, sizeof info);
        r = iommu_info_parse_type1(buf, len, &info, NULL);
        ck_assert_msg(r == -EBADMSG, "%s: got %d", what, r);
        ck_assert_msg(info.flags == 0 && info.n_iova == 0, "%s: answer not left empty", what);
}

START_TEST(test_parse_hostile) {
        uint8_t good[256], b[256];
        size_t len = kernel_buffer(good, true, intel_iova, 2);  /* mig 24, avail 56, iova 72, end 120 */

        /* A loop: the last capability points back to the first; one pointing at itself. */
        memcpy(b, good, len); put32(b, 72 + 4, 24);
        assert_hostile(b, len, "loop back to the first");
        memcpy(b, good, len); put32(b, 56 + 4, 56);
        assert_hostile(b, len, "self loop");
        /* A next inside the current header. */
        memcpy(b, good, len); put32(b, 24 + 4, 28);
        assert_hostile(b, len, "next inside the header");
        /* Offsets past the end: the first capability, a next, one whose header straddles the end. */
        memcpy(b, good, len); put32(b, 16, 4096);
        assert_hostile(b, len, "cap_offset past the end");
        memcpy(b, good, len); put32(b, 56 + 4, 0xfffffff0);
        assert_hostile(b, len, "next past the end");
        memcpy(b, good, len); put32(b, 72 + 4, (uint32_t) len - 4);
        assert_hostile(b, len, "header straddling the end");
        /* A cap_offset inside the fixed part. */
        memcpy(b, good, len); put32(b, 16, 8);
        assert_hostile(b, len, "cap_offset inside the fixed part");
        /* Truncated capabilities: the IOVA one claiming more ranges than it holds, a huge count, a
         * DMA_AVAIL squeezed to its header, argsz cutting the IOVA ranges short. */
        memcpy(b, good, len); put32(b, 72 + 8, 3);
        assert_hostile(b, len, "more IOVA ranges than bytes");
        memcpy(b, good, len); put32(b, 72 + 8, 0xffffffff);
        assert_hostile(b, len, "2^32-1 IOVA ranges");
        memcpy(b, good, len); put32(b, 24 + 4, 32); put16(b, 32, 3); put32(b, 32 + 4, 56);
        assert_hostile(b, len, "migration squeezed to 8 bytes");
        memcpy(b, good, len); put32(b, 0, (uint32_t) len - 8);
        assert_hostile(b, len - 8, "argsz cutting the ranges");
        /* Ranges out of order, overlapping, or ending before they start. */
        memcpy(b, good, len); put64(b, 72 + 16 + 16, 0x1000);
        assert_hostile(b, len, "ranges out of order");
        memcpy(b, good, len); put64(b, 72 + 16 + 8, 0xfef00000);
        assert_hostile(b, len, "ranges overlapping");
        memcpy(b, good, len); put64(b, 72 + 16, 0xfee00000); put64(b, 72 + 24, 0x1000);
        assert_hostile(b, len, "range ending before it starts");
        /* The same capability twice. */
        memcpy(b, good, len); put16(b, 56, 2);
        assert_hostile(b, len, "migration twice");
        /* An argsz below the fixed part, a buffer shorter than it. */
        memcpy(b, good, len); put32(b, 0, 8);
        assert_hostile(b, len, "argsz 8");
        assert_hostile(good, 23, "23 bytes");
        {
                HostIommuInfo info;
                ck_assert_int_eq(iommu_info_parse_type1(NULL, 0, &info, NULL), -EINVAL);
        }
        /* A long chain of unknown capabilities, each 8 bytes: more than IOMMU_INFO_CAPS_MAX. */
        {
                uint8_t big[24 + 8 * 80];
                memset(big, 0, sizeof big);
                put32(big, 0, sizeof big); put32(big, 4, 3); put32(big, 16, 24);
                for (unsigned i = 0; i < 80; i++) {
                        put16(big, 24 + 8 * i, 99);
                        put32(big, 24 + 8 * i + 4, i + 1 < 80 ? 24 + 8 * (i + 1) : 0);
                }
                assert_hostile(big, sizeof big, "80 capabilities");
        }
}
END_TEST

START_TEST(test_parse_tolerant) {
        uint8_t b[256];
        HostIommuInfo info;
        size_t len = kernel_buffer(b, false, intel_iova, 2);

        /* An unknown capability id is skipped. */
        put16(b, 56, 42);
        ck_assert_int_eq(iommu_info_parse_type1(b, len, &info, NULL), 0);
        ck_assert(!(info.flags & HOST_IOMMU_DMA_AVAIL));
        ck_assert_uint_eq(info.n_iova, 2);
        /* No CAPS flag: only the page sizes (a kernel before 5.4). */
        len = kernel_buffer(b, false, intel_iova, 2);
        put32(b, 4, 1);
        ck_assert_int_eq(iommu_info_parse_type1(b, len, &info, NULL), 0);
        ck_assert_uint_eq(info.flags, HOST_IOMMU_PGSIZES);
        /* A buffer larger than argsz: bytes past argsz are not the kernel's and are not read. */
        len = kernel_buffer(b, true, intel_iova, 2);
        memset(b + len, 0xff, 64);
        ck_assert_int_eq(iommu_info_parse_type1(b, len + 64, &info, NULL), 0);
        assert_facts(&info, intel_iova, 2);
}
END_TEST

START_TEST(test_parse_spapr) {
        uint8_t b[64] = {};
        HostIommuInfo info = {}, in = {
                .flags = HOST_IOMMU_SPAPR | HOST_IOMMU_SPAPR_DDW,
                .spapr_dma32_start = 0, .spapr_dma32_size = 0x40000000,
                .spapr_ddw_pgsizes = 0x1011000, .spapr_ddw_max_windows = 2, .spapr_ddw_levels = 5,
        };

        /* struct vfio_iommu_spapr_tce_info: argsz, flags, dma32 start, size, ddw {pgsizes, max, levels}. */
        put32(b, 0, 32); put32(b, 4, 1); put32(b, 8, 0); put32(b, 12, 0x40000000);
        put64(b, 16, 0x1011000); put32(b, 24, 2); put32(b, 28, 5);
        ck_assert_int_eq(iommu_info_parse_spapr(b, 32, &info), 0);
        ck_assert_uint_eq(info.flags, HOST_IOMMU_SPAPR | HOST_IOMMU_SPAPR_DDW);
        ck_assert_uint_eq(info.spapr_dma32_size, 0x40000000);
        ck_assert_uint_eq(info.spapr_ddw_levels, 5);
        {
                uint8_t built[64] = {};
                ck_assert_int_eq(iommu_info_build_spapr(&in, built, sizeof built), 32);
                ck_assert_mem_eq(built, b, 32);
        }
        /* Short, or argsz lying. */
        ck_assert_int_eq(iommu_info_parse_spapr(b, 31, &info), -EBADMSG);
        put32(b, 0, 64);
        ck_assert_int_eq(iommu_info_parse_spapr(b, 32, &info), -EBADMSG);
        put32(b, 0, 16);
        ck_assert_int_eq(iommu_info_parse_spapr(b, 32, &info), -EBADMSG);
}
END_TEST

START_TEST(test_intersect) {
        HostIommuInfo a = { .flags = HOST_IOMMU_IOVA, .n_iova = 2,
                            .iova = { { 0, 0xfedfffff }, { 0xfef00000, 0xffffffffffff } } };
        HostIommuInfo b = { .flags = HOST_IOMMU_IOVA, .n_iova = 3, .iova = {
                { 0, 0xfedfffff }, { 0xfef00000, 0xfcffffffff }, { 0x10000000000, 0xffffffffffff } } };

        iommu_info_intersect_iova(&a, &b);
        ck_assert_uint_eq(a.n_iova, 3);
        ck_assert_uint_eq(a.iova[1].end, 0xfcffffffff);
        ck_assert_uint_eq(a.iova[2].start, 0x10000000000);
}
END_TEST

/* ---------------------------------------------------------------- memlock */

START_TEST(test_memlock_arithmetic) {
        const uint64_t G = UINT64_C(1) << 30;
        uint64_t v = 0;

        /* libvirt's rule: guest RAM + 1 GiB, once per container. */
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 8 * G, .n_devices = 3 }, &v), 0);
        ck_assert_uint_eq(v, 9 * G);
        /* With a vIOMMU: RAM times the number of devices, + 1 GiB. */
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 8 * G, .n_devices = 3, .viommu = true }, &v), 0);
        ck_assert_uint_eq(v, 25 * G);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 8 * G, .n_devices = 1, .viommu = true }, &v), 0);
        ck_assert_uint_eq(v, 9 * G);
        /* ppc64 (libvirt's figures in KiB, << 10): base RAM/128 + 4 MiB per PHB + 8 MiB, and the larger of
         * 2 GiB per PHB and RAM + RAM/512 per PHB + 8 MiB. A vIOMMU changes nothing there. */
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 256 << 20, .rule = MEMLOCK_RULE_PPC64 }, &v), 0);
        ck_assert_uint_eq(v, UINT64_C(2111488) << 10);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 8 * G, .n_devices = 3, .viommu = true,
                                                         .rule = MEMLOCK_RULE_PPC64 }, &v), 0);
        ck_assert_uint_eq(v, UINT64_C(8491008) << 10);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 8 * G, .max_memory = 16 * G, .n_phbs = 2,
                                                         .rule = MEMLOCK_RULE_PPC64 }, &v), 0);
        ck_assert_uint_eq(v, UINT64_C(8577024) << 10);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = G, .n_phbs = 3, .rule = MEMLOCK_RULE_PPC64 },
                                       &v), 0);
        ck_assert_uint_eq(v, UINT64_C(6320128) << 10);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 2 * G, .max_memory = G,
                                                         .rule = MEMLOCK_RULE_PPC64 }, &v), -EINVAL);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = G, .rule = _MEMLOCK_RULE_MAX }, &v), -EINVAL);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = UINT64_MAX, .rule = MEMLOCK_RULE_PPC64 }, &v),
                         -ERANGE);
        for (int i = 0; i < _MEMLOCK_RULE_MAX; i++)
                ck_assert_int_eq(memlock_rule_from_string(memlock_rule_to_string((MemlockRule) i)), i);
        ck_assert_int_eq(memlock_rule_from_string("sparc"), _MEMLOCK_RULE_INVALID);
        ck_assert_ptr_null(memlock_rule_to_string(_MEMLOCK_RULE_MAX));
        /* Bad input and overflow. */
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = 0 }, &v), -EINVAL);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = G, .viommu = true }, &v), -EINVAL);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = UINT64_MAX - G + 1 }, &v), -ERANGE);
        ck_assert_int_eq(memlock_limit(&(MemlockInput) { .guest_ram = UINT64_MAX / 2, .n_devices = 3,
                                                         .viommu = true }, &v), -ERANGE);
}
END_TEST

/* The one rule for a set of groups: a group named twice is one group. */
START_TEST(test_memlock_for_groups) {
        const uint64_t G = UINT64_C(1) << 30;
        MemlockGroup g[] = {
                { .id = 7, .n_devices = 2 },
                { .id = 3, .n_devices = 1 },
                { .id = 7, .n_devices = 2 },
        };
        MemlockInput in = {};
        uint64_t v = 0, once = 0;

        /* Without a vIOMMU the devices do not count: RAM + 1 GiB. */
        ck_assert_int_eq(memlock_limit_for_groups(8 * G, false, g, 3, &v, &in), 0);
        ck_assert_uint_eq(v, 9 * G);
        ck_assert_uint_eq(in.n_devices, 3);

        /* With one, each distinct device pins the RAM once: 3 devices, not 5. */
        ck_assert_int_eq(memlock_limit_for_groups(8 * G, true, g, 3, &v, &in), 0);
        ck_assert_int_eq(memlock_limit_for_groups(8 * G, true, g, 2, &once, NULL), 0);
        ck_assert_uint_eq(v, once);
        ck_assert_uint_eq(v, 3 * 8 * G + G);
        ck_assert_uint_eq(in.n_devices, 3);

        ck_assert_int_eq(in.rule, memlock_rule_host());

        ck_assert_int_eq(memlock_limit_for_groups(0, false, g, 3, &v, NULL), -EINVAL);
        ck_assert_int_eq(memlock_limit_for_groups(G, true, NULL, 0, &v, NULL), -EINVAL);
}
END_TEST

START_TEST(test_memlock_sizes) {
        uint64_t v = 0;
        char buf[32];

        ck_assert_int_eq(memlock_parse_size("8G", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(8) << 30);
        ck_assert_int_eq(memlock_parse_size("512MiB", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(512) << 20);
        ck_assert_int_eq(memlock_parse_size("4096", &v), 0);
        ck_assert_uint_eq(v, 4096);
        ck_assert_int_eq(memlock_parse_size("1T", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(1) << 40);
        ck_assert_int_eq(memlock_parse_size("", &v), -EINVAL);
        ck_assert_int_eq(memlock_parse_size("G", &v), -EINVAL);
        ck_assert_int_eq(memlock_parse_size("8X", &v), -EINVAL);
        ck_assert_int_eq(memlock_parse_size("-8G", &v), -EINVAL);
        ck_assert_int_eq(memlock_parse_size("8 G", &v), -EINVAL);
        ck_assert_int_eq(memlock_parse_size("99999999999999999999", &v), -ERANGE);
        ck_assert_int_eq(memlock_parse_size("20000000000T", &v), -ERANGE);
        ck_assert_str_eq(memlock_format_size(UINT64_C(9) << 30, buf, sizeof buf), "9 GiB");
        ck_assert_str_eq(memlock_format_size((UINT64_C(9) << 30) + (UINT64_C(512) << 20), buf, sizeof buf),
                         "9.5 GiB");
        ck_assert_str_eq(memlock_format_size(1000, buf, sizeof buf), "1000 B");
}
END_TEST

/* ---------------------------------------------------------------- the simulated host */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static char *make_tmpdir(void) {
        char *d = NULL;
        ck_assert_int_ge(asprintf(&d, "%s/test-dma-XXXXXX",
                                  access("/dev/shm", W_OK) >= 0 ? "/dev/shm" : "/tmp"), 0);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static void rm_tree(char *dir) {
        (void) nftw(dir, rm_one, 16, FTW_DEPTH|FTW_PHYS);
        free(dir);
}

static Host *new_sim(const char *dir, const char *topology_text) {
        HostSimConfig cfg = { .state_dir = dir };
        char path[4096];
        Host *h = NULL;

        if (topology_text) {
                FILE *f;
                (void) snprintf(path, sizeof path, "%s.topo", dir);
                f = fopen(path, "we");
                ck_assert_ptr_nonnull(f);
                fputs(topology_text, f);
                fclose(f);
                cfg.topology_path = path;
        }
        ck_assert_int_eq(host_new_sim(&cfg, &h), 0);
        if (topology_text)
                unlink(path);
        return h;
}

static void claim(Host *h, const char *address) {
        ck_assert_int_eq(host_device_set_override(h, address, VFIO_PCI_DRIVER), 0);
        ck_assert_int_eq(host_device_unbind(h, address), 0);
        ck_assert_int_eq(host_device_bind(h, address, VFIO_PCI_DRIVER), 0);
}

/* A container holding the given group, with the IOMMU set if asked. */
static void open_attached(Host *h, unsigned group, bool set_iommu, int *ret_container, int *ret_group,
                          uint32_t *ret_type) {
        ck_assert_int_eq(host_open_container(h, ret_container), 0);
        ck_assert_int_eq(host_open_group(h, group, ret_group), 0);
        ck_assert_int_eq(host_group_set_container(h, *ret_group, *ret_container), 0);
        *ret_type = 0;
        if (set_iommu)
                ck_assert_int_eq(host_container_set_iommu(h, *ret_container, ret_type), 0);
}

START_TEST(test_sim_facts_default) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        int c = -EBADF, g = -EBADF;
        uint32_t type;
        HostIommuInfo info;

        claim(h, "0000:02:00.0");
        open_attached(h, 2, false, &c, &g, &type);
        /* No IOMMU type yet: nothing to ask, as the kernel. */
        ck_assert_int_eq(host_container_get_info(h, c, 0, &info), -EINVAL);
        ck_assert_int_eq(host_container_set_iommu(h, c, &type), 0);
        ck_assert_uint_eq(type, VFIO_TYPE1v2_IOMMU);
        ck_assert_int_eq(host_container_get_info(h, c, type, &info), 0);
        assert_facts(&info, intel_iova, 2);
        ck_assert_uint_eq(info.iommu_type, VFIO_TYPE1v2_IOMMU);
        /* A group fd is no container. */
        ck_assert_int_eq(host_container_get_info(h, g, type, &info), -ENOTTY);

        safe_close(g);
        safe_close(c);
        host_free(h);
        rm_tree(dir);
}
END_TEST

static const char amd_topology[] =
        "iommu pgsizes=0xfffffffff000 dma-avail=65535 kernel=6.1 "
        "iova=0x0-0xfedfffff,0xfef00000-0xfcffffffff,0x10000000000-0xffffffffffff\n"
        "group 1\n"
        "device 0000:01:00.0 vendor=0x8086 device=0x10d3\n"
        "group 2\n"
        "iommu dma-avail=1000 pgsizes=0x40201000 iova=0x0-0xfedfffff,0xfef00000-0xffffffffffff migration=none\n"
        "device 0000:02:00.0 vendor=0x8086 device=0x10d3\n"
        "group 9\n"
        "iommu iova=0x100000-0x1fffff,0x300000-0x3fffff\n"
        "device 0000:09:00.0 vendor=0x8086 device=0x10d3\n";

START_TEST(test_sim_facts_topology) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, amd_topology);
        int c = -EBADF, g1 = -EBADF, g2 = -EBADF;
        uint32_t type;
        HostIommuInfo info;

        claim(h, "0000:01:00.0");
        claim(h, "0000:02:00.0");
        open_attached(h, 1, true, &c, &g1, &type);
        ck_assert_int_eq(host_container_get_info(h, c, type, &info), 0);
        ck_assert_uint_eq(info.n_iova, 3);
        ck_assert_uint_eq(info.pgsizes, 0xfffffffff000);
        ck_assert(info.flags & HOST_IOMMU_MIGRATION);

        /* A second group joins: ranges intersected, the smaller page sizes and budget. */
        ck_assert_int_eq(host_open_group(h, 2, &g2), 0);
        ck_assert_int_eq(host_group_set_container(h, g2, c), 0);
        ck_assert_int_eq(host_container_get_info(h, c, type, &info), 0);
        ck_assert_uint_eq(info.n_iova, 3);
        ck_assert_uint_eq(info.iova[1].end, 0xfcffffffff);
        ck_assert_uint_eq(info.pgsizes, 0x40201000 & 0xfffffffff000);
        ck_assert_uint_eq(info.dma_avail, 1000);
        ck_assert(!(info.flags & HOST_IOMMU_MIGRATION));

        safe_close(g1);
        safe_close(g2);
        safe_close(c);
        host_free(h);
        rm_tree(dir);
}
END_TEST

START_TEST(test_sim_facts_spapr) {
        static const char topo[] =
                "iommu spapr-dma32=0x0:0x40000000 migration=none\n"
                "group 0\n"
                "device 0000:00:01.0 vendor=0x1af4 device=0x1000\n";
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, topo);
        int c = -EBADF, g = -EBADF;
        uint32_t type;
        HostIommuInfo info;

        claim(h, "0000:00:01.0");
        open_attached(h, 0, true, &c, &g, &type);
        ck_assert_uint_eq(type, VFIO_SPAPR_TCE_v2_IOMMU);
        ck_assert_int_eq(host_container_get_info(h, c, type, &info), 0);
        ck_assert(info.flags & HOST_IOMMU_SPAPR);
        ck_assert_uint_eq(info.spapr_dma32_size, 0x40000000);
        safe_close(g);
        safe_close(c);
        host_free(h);
        rm_tree(dir);
}
END_TEST

START_TEST(test_topology_iommu_errors) {
        static const char *const bad[] = {
                "iommu pgsizes=0\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
                "iommu iova=0x10-0x1\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
                "iommu iova=0x0-0x10,0x5-0x20\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
                "iommu dma-avail=-1\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
                "iommu migration=0x1000\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
                "iommu kernel=5.4\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
                "iommu spapr-dma32=0x0:0x100000000\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
                "iommu colour=blue\ngroup 1\ndevice 0000:01:00.0 vendor=0x1 device=0x1\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                SimTopology *t = NULL;
                char *error = NULL;
                ck_assert_int_eq(sim_topology_parse(bad[i], &t, &error), -EINVAL);
                ck_assert_msg(error && strstr(error, "line 1"), "case %zu: %s", i, strempty(error));
                free(error);
        }
}
END_TEST

/* ---------------------------------------------------------------- kvm-vfio (client/kvm-vfio.c) */

/* Runs f(arg) in a forked child (another mm: not the VM's process) and returns what it returned. */
static int in_child(int (*f)(int), int arg) {
        int status;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(-f(arg));
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        return -WEXITSTATUS(status);
}

static void kvm_text(int fd, char *buf, size_t size) {
        ssize_t n = pread(fd, buf, size - 1, 0);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
}

static int add_eventfd(int kvm) {
        int e = eventfd(0, EFD_CLOEXEC);
        int r = kvm_vfio_add(kvm, e, 0);
        close(e);
        return r;
}

START_TEST(test_sim_kvm) {
        int kvm, g[2], efd, table;
        char text[256];

        kvm = kvm_vfio_sim_new();
        ck_assert_int_ge(kvm, 0);
        ck_assert_int_eq(kvm_vfio_kind(kvm), KVM_VFIO_SIM);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, g), 0); /* a sim group fd is a socket */

        ck_assert_int_eq(kvm_vfio_add(kvm, g[0], 3), 0);
        kvm_text(kvm, text, sizeof text);
        ck_assert_ptr_nonnull(strstr(text, "group 3\n"));
        /* The kernel's rules: twice is EEXIST, a non-VFIO fd EINVAL, sPAPR on x86 ENXIO, and anyone but the
         * VM's process EIO. */
        ck_assert_int_eq(kvm_vfio_add(kvm, g[0], 3), -EEXIST);
        efd = eventfd(0, EFD_CLOEXEC);
        ck_assert_int_eq(kvm_vfio_add(kvm, efd, 4), -EINVAL);
        table = eventfd(0, EFD_CLOEXEC);
        ck_assert_int_eq(kvm_vfio_set_spapr_tce(kvm, g[0], table), -ENXIO);
        ck_assert_int_eq(in_child(add_eventfd, kvm), -EIO);

        ck_assert_int_eq(kvm_vfio_del(kvm, g[0], 3), 0);
        kvm_text(kvm, text, sizeof text);
        ck_assert_ptr_null(strstr(text, "group 3"));
        ck_assert_int_eq(kvm_vfio_del(kvm, g[0], 3), -ENOENT);

        /* Neither kind of kvm-vfio device. */
        {
                int other = memfd_create("something-else", MFD_CLOEXEC);
                ck_assert_int_eq(kvm_vfio_kind(other), -ENOTTY);
                ck_assert_int_eq(kvm_vfio_add(other, g[0], 3), -ENOTTY);
                close(other);
        }
        ck_assert_int_eq(kvm_vfio_kind(efd), -ENOTTY);
        ck_assert_int_eq(kvm_vfio_kind(-1), -EBADF);

        close(g[0]);
        close(g[1]);
        close(efd);
        close(table);
        close(kvm);
}
END_TEST

/* ---------------------------------------------------------------- the real kernel: /dev/kvm */

/* The kvm-vfio device of a real VM: the errors a VMM and a broker meet. */
START_TEST(test_real_kvm_errors) {
        int vm = -EBADF, kvm, efd, table;

        kvm = kvm_vfio_create(&vm);
        if (kvm < 0) {
                fprintf(stderr, "SKIP test_real_kvm_errors: cannot make a kvm-vfio device: %s\n", strerror(-kvm));
                return;
        }
        ck_assert_int_eq(kvm_vfio_kind(kvm), KVM_VFIO_REAL);
        efd = eventfd(0, EFD_CLOEXEC);
        /* Adding a file that is not VFIO's: EINVAL. */
        ck_assert_int_eq(kvm_vfio_add(kvm, efd, 0), -EINVAL);
        /* Deleting what was never added: ENOENT. */
        ck_assert_int_eq(kvm_vfio_del(kvm, efd, 0), -ENOENT);
        /* SET_SPAPR_TCE on x86: ENXIO, the attribute does not exist here. */
#if defined(__x86_64__) || defined(__i386__)
        table = eventfd(0, EFD_CLOEXEC);
        ck_assert_int_eq(kvm_vfio_set_spapr_tce(kvm, efd, table), -ENXIO);
        close(table);
#endif
        /* From any process but the VM's, every attribute is EIO: what a broker handed this fd would get.
         * Why groupd cannot register groups itself, and libgroupd does it in the VMM. */
        ck_assert_int_eq(in_child(add_eventfd, kvm), -EIO);
        /* The VM fd and an eventfd are no kvm-vfio device; nor is the sim's stand-in a real one. */
        ck_assert_int_eq(kvm_vfio_kind(vm), -ENOTTY);
        ck_assert_int_eq(kvm_vfio_kind(efd), -ENOTTY);

        close(efd);
        close(kvm);
        close(vm);
}
END_TEST

/* prlimit of another process: raised to at least the amount, never lowered. */
START_TEST(test_raise_memlock) {
        char *dir = make_tmpdir();
        Host *h = new_sim(dir, NULL);
        struct rlimit rl;
        uint64_t old_soft = 0, old_hard = 0;
        int p[2], status;
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit low = { 64 << 10, 64 << 10 };
                (void) setrlimit(RLIMIT_MEMLOCK, &low);
                (void) !write(p[1], "x", 1);
                for (;;)
                        pause();  /* until killed */
        }
        {
                char c;
                test_wait_readable(p[0], 10000, "the child");
                ck_assert_int_eq(read(p[0], &c, 1), 1);
        }
        if (!test_have_cap(CAP_SYS_RESOURCE)) {
                /* Raising a hard limit needs CAP_SYS_RESOURCE (root in a container may lack it). */
                fprintf(stderr, "test_raise_memlock: no CAP_SYS_RESOURCE here: checking the refusal only\n");
                ck_assert_int_eq(host_raise_memlock(h, pid, UINT64_C(9) << 30, NULL, NULL), -EPERM);
        } else {
                ck_assert_int_eq(host_raise_memlock(h, pid, UINT64_C(9) << 30, &old_soft, &old_hard), 0);
                ck_assert_uint_eq(old_soft, 64 << 10);
                ck_assert_uint_eq(old_hard, 64 << 10);
                ck_assert_int_eq(prlimit(pid, RLIMIT_MEMLOCK, NULL, &rl), 0);
                ck_assert_uint_eq(rl.rlim_cur, UINT64_C(9) << 30);
                ck_assert_uint_eq(rl.rlim_max, UINT64_C(9) << 30);
                /* Never lowered. */
                ck_assert_int_eq(host_raise_memlock(h, pid, 1 << 20, NULL, NULL), 0);
                ck_assert_int_eq(prlimit(pid, RLIMIT_MEMLOCK, NULL, &rl), 0);
                ck_assert_uint_eq(rl.rlim_cur, UINT64_C(9) << 30);
        }
        ck_assert_int_eq(host_raise_memlock(h, 0, 1, NULL, NULL), -EINVAL);
        kill(pid, SIGKILL);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(host_raise_memlock(h, pid, 1 << 20, NULL, NULL), -ESRCH);
        close(p[0]);
        close(p[1]);
        host_free(h);
        rm_tree(dir);
}
END_TEST

static Suite *dma_suite(void) {
        Suite *s = suite_create("dma");
        TCase *tc;

        tc = tcase_create("parser");
        tcase_add_test(tc, test_parse_kernel_layouts);
        tcase_add_test(tc, test_parse_captured);
        tcase_add_test(tc, test_parse_hostile);
        tcase_add_test(tc, test_parse_tolerant);
        tcase_add_test(tc, test_parse_spapr);
        tcase_add_test(tc, test_intersect);
        suite_add_tcase(s, tc);

        tc = tcase_create("memlock");
        tcase_add_test(tc, test_memlock_arithmetic);
        tcase_add_test(tc, test_memlock_for_groups);
        tcase_add_test(tc, test_memlock_sizes);
        tcase_add_test(tc, test_raise_memlock);
        suite_add_tcase(s, tc);

        tc = tcase_create("sim");
        tcase_add_test(tc, test_sim_facts_default);
        tcase_add_test(tc, test_sim_facts_topology);
        tcase_add_test(tc, test_sim_facts_spapr);
        tcase_add_test(tc, test_topology_iommu_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("kvm");
        tcase_add_test(tc, test_sim_kvm);
        tcase_add_test(tc, test_real_kvm_errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(dma_suite(), NULL);
}
