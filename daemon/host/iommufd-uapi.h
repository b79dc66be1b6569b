/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The iommufd and VFIO cdev uapi of kernels 6.2 and later (include/uapi/linux/iommufd.h and vfio.h), for
 * build hosts whose headers are older (Debian 12 ships 6.1's). Only what groupd, its tests and its
 * stand-ins use. The numbers are the kernel's ABI and do not change. */

#include <stdint.h>
#include <sys/ioctl.h>

#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#endif

#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')

struct iommu_destroy {
        uint32_t size;
        uint32_t id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, 0x80)

struct iommu_ioas_alloc {
        uint32_t size;
        uint32_t flags;
        uint32_t out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)

struct iommu_iova_range {
        uint64_t start __attribute__((aligned(8)));
        uint64_t last __attribute__((aligned(8)));
};

struct iommu_ioas_iova_ranges {
        uint32_t size;
        uint32_t ioas_id;
        uint32_t num_iovas;
        uint32_t __reserved;
        uint64_t allowed_iovas __attribute__((aligned(8)));
        uint64_t out_iova_alignment __attribute__((aligned(8)));
};
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, 0x84)

struct iommu_ioas_map {
        uint32_t size;
        uint32_t flags;
        uint32_t ioas_id;
        uint32_t __reserved;
        uint64_t user_va __attribute__((aligned(8)));
        uint64_t length __attribute__((aligned(8)));
        uint64_t iova __attribute__((aligned(8)));
};
#define IOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)
#define IOMMU_IOAS_MAP_WRITEABLE (1u << 1)
#define IOMMU_IOAS_MAP_READABLE (1u << 2)
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, 0x85)

struct iommu_option {
        uint32_t size;
        uint32_t option_id;
        uint16_t op;
        uint16_t __reserved;
        uint32_t object_id;
        uint64_t val64 __attribute__((aligned(8)));
};
#define IOMMU_OPTION_RLIMIT_MODE 0
#define IOMMU_OPTION_OP_SET 0
#define IOMMU_OPTION_OP_GET 1
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, 0x87)
#endif

#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
        uint32_t argsz;
        uint32_t flags;
        int32_t iommufd;
        uint32_t out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(';', 100 + 18)

struct vfio_device_attach_iommufd_pt {
        uint32_t argsz;
        uint32_t flags;
        uint32_t pt_id;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(';', 100 + 19)
#endif
