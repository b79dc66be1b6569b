/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The native wire protocol of groupd: AF_UNIX SOCK_SEQPACKET, one message per packet.
 *
 * Every message is a 12-byte header followed by `length` bytes of payload:
 *
 *         u16 version   GD_PROTO_VERSION
 *         u16 type      GdMsgType
 *         u32 serial    chosen by the client for a request, echoed in its reply(ies); 0 for events
 *         u32 length    payload bytes that follow (header + payload = the packet, exactly)
 *
 * All integers are little-endian and fixed-width. A string is a u16 byte count followed by that many
 * bytes: no NUL inside, no terminator, valid within its field's limit below. An array is a u16 count
 * followed by its elements. A message whose payload has bytes left over after decoding is malformed, and
 * so is one with an enum field (owner kind, lease state, reason, event kind, error code, `more`) out of
 * range or a flag word (ACQUIRE flags, SUBSCRIBE mask, GdGroup.flags) with an undefined bit set.
 *
 * This file is pure data definitions plus a pure encode/decode (proto.c): no I/O, so it can be fuzzed.
 * proto/PROTOCOL.md describes every message, error and limit; keep the two in step. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GD_PROTO_VERSION 1u
#define GD_HEADER_SIZE 12u

/* Limits. A packet larger than GD_MSG_SIZE_MAX is refused by the receiver. Replies that could exceed it
 * (group and lease lists) are split into several packets with the `more` flag set on all but the last. */
#define GD_MSG_SIZE_MAX 65536u
#define GD_GROUPS_PER_ACQUIRE_MAX 64u
#define GD_LABEL_MAX 256u        /* bytes */
#define GD_SPEC_MAX 64u          /* a group number or a PCI address */
#define GD_TOKEN_LEN 32u         /* 128 bits as lowercase hex, exactly */
#define GD_LEASE_ID_MAX 32u
#define GD_NAME_MAX 64u          /* driver names, group types, region types, owner kinds */
#define GD_PCI_ADDR_MAX 32u
#define GD_TEXT_MAX 1024u        /* error messages, reasons, details */
#define GD_DEVICES_PER_GROUP_MAX 256u
#define GD_REGIONS_PER_GROUP_MAX 64u
#define GD_FDS_PER_MSG_MAX (GD_GROUPS_PER_ACQUIRE_MAX + 2u)
#define GD_IOVA_RANGES_MAX 64u   /* IOVA ranges in one GdDma */

typedef enum GdMsgType {
        /* Requests, client → daemon. */
        GD_MSG_HELLO = 1,        /* u32 version_min, u32 version_max, str client → HELLO_REPLY */
        GD_MSG_LIST_GROUPS = 2,  /* (empty) → GROUPS (possibly several packets) */
        GD_MSG_SHOW_GROUP = 3,   /* str spec → GROUPS with one group */
        GD_MSG_ACQUIRE = 4,      /* u32 flags, str label, str[] specs; fd: the owner pidfd if
                                  * GD_ACQUIRE_OWNER_PROCESS → ACQUIRED with fds */
        GD_MSG_RELEASE = 5,      /* str token → OK once the release has started */
        GD_MSG_LIST_LEASES = 6,  /* (empty) → LEASES (possibly several packets) */
        GD_MSG_SUBSCRIBE = 7,    /* u32 event mask (0 = all) → OK, then EVENTs with serial 0 */
        GD_MSG_STATUS = 8,       /* (empty) → STATUS_REPLY */
        GD_MSG_DMA_INFO = 9,     /* str spec → DMA_INFO_REPLY */
        GD_MSG_REVOKE = 10,      /* str lease id, u32 deadline (seconds), u32 flags (GdRevokeFlags) → OK once
                                  * the release has started */

        /* Replies, daemon → client, carrying the request's serial. */
        GD_MSG_ERROR = 64,       /* i32 code (GdError), i32 errno (positive, or 0), str message */
        GD_MSG_OK = 65,          /* (empty) */
        GD_MSG_HELLO_REPLY = 66, /* u32 version, str daemon_version, str host */
        GD_MSG_GROUPS = 67,      /* u8 more, GdGroup[] */
        GD_MSG_ACQUIRED = 68,    /* see GdAcquired; fds: container, one per group in order, lease fd
                                  * (if GD_ACQUIRE_LEASE_FD) */
        GD_MSG_LEASES = 69,      /* u8 more, GdLease[] */
        GD_MSG_STATUS_REPLY = 70,/* see GdStatus */
        GD_MSG_DMA_INFO_REPLY = 71, /* see GdDmaInfo */
        GD_MSG_ACQUIRED_DELIVERY = 72, /* the reply to an ACQUIRE with GD_ACQUIRE_DELIVERY: ACQUIRED's fields, then
                                  * the delivery block (GdAcquired); fds as its delivery says */

        /* Events, daemon → subscribed client, serial 0. */
        GD_MSG_EVENT = 96,       /* see GdEvent */
} GdMsgType;

/* Error codes of GD_MSG_ERROR. Stable numbers: PROTOCOL.md lists them. */
typedef enum GdError {
        GD_ERR_PROTOCOL = 1,      /* malformed, truncated or oversized message; unexpected fds */
        GD_ERR_VERSION = 2,       /* no common protocol version */
        GD_ERR_INVALID = 3,       /* a well-formed request with a bad argument (spec, flags, label) */
        GD_ERR_NOT_FOUND = 4,     /* no such group, device or lease */
        GD_ERR_BUSY = 5,          /* the group is leased, or being acquired or released */
        GD_ERR_DENIED = 6,        /* policy refuses it */
        GD_ERR_NOT_VIABLE = 7,    /* the group cannot be made viable */
        GD_ERR_HOST = 8,          /* a kernel (host) operation failed; errno says which */
        GD_ERR_LIMIT = 9,         /* too many groups, leases or clients */
        GD_ERR_BAD_TOKEN = 10,    /* no lease has this token */
        GD_ERR_INTERNAL = 11,
        GD_ERR_SHUTTING_DOWN = 12,
        _GD_ERR_MAX,
} GdError;

/* GD_MSG_ACQUIRE flags. */
enum {
        GD_ACQUIRE_CONFIGURE_IOMMU = 1u << 0, /* set the IOMMU type on the container (VFIO_SET_IOMMU) */
        GD_ACQUIRE_OWNER_PROCESS = 1u << 1,   /* a pidfd is attached: the lease ends when it exits */
        GD_ACQUIRE_LEASE_FD = 1u << 2,        /* the owner is a lease fd, returned last in the reply */
        GD_ACQUIRE_KVM = 1u << 3,             /* the client registers the groups with its VM's kvm-vfio device
                                               * itself (only the VM's process can: libgroupd does); recorded */
        GD_ACQUIRE_MEMLOCK = 1u << 4,         /* raise the owner's RLIMIT_MEMLOCK for guest_ram */
        GD_ACQUIRE_VIOMMU = 1u << 5,          /* the guest has a vIOMMU (memlock: RAM once per device) */
        GD_ACQUIRE_DELIVERY = 1u << 6,        /* the payload ends with u32 delivery, u32 grant_uid, and the reply
                                               * is ACQUIRED_DELIVERY (ACQUIRED and the delivery block); without
                                               * it: legacy, and ACQUIRED as protocol 1 always had it */
        _GD_ACQUIRE_ALL = (1u << 7) - 1,
};

/* GD_MSG_REVOKE flags. */
enum {
        GD_REVOKE_FORCE = 1u << 0,            /* past the deadline, SIGTERM then SIGKILL the owner process */
        _GD_REVOKE_ALL = (1u << 1) - 1,
};

/* How a lease's devices reach the VMM (ACQUIRE's delivery; ACQUIRED's says what was used). */
typedef enum GdDelivery {
        GD_DELIVERY_LEGACY = 0,       /* the container fd and the group fds */
        GD_DELIVERY_IOMMUFD = 1,      /* one iommufd (RLIMIT_MODE per-process) and one unbound cdev fd per device */
        GD_DELIVERY_NODE_GRANT = 2,   /* no fds: grant_uid may open /dev/vfio/N itself for the lease's life */
        GD_DELIVERY_AUTO = 3,         /* request only: iommufd where the kernel has it, else legacy */
        _GD_DELIVERY_MAX,
} GdDelivery;

/* ACQUIRE's grant_uid: the caller's own uid. */
#define GD_GRANT_UID_CALLER UINT32_MAX
/* Device fds in one ACQUIRED (iommufd): the iommufd and a lease fd besides fit GD_FDS_PER_MSG_MAX. */
#define GD_DEVICES_PER_ACQUIRE_MAX 64u
#define GD_NODE_PATH_MAX 64u     /* "/dev/vfio/3" */

/* How a lease's lifetime is tied to its owner. */
typedef enum GdOwnerKind {
        GD_OWNER_CONNECTION = 0,
        GD_OWNER_PROCESS = 1,
        GD_OWNER_LEASE_FD = 2,
        GD_OWNER_BUS_NAME = 3,        /* a D-Bus caller's unique name: the lease ends when it vanishes */
        _GD_OWNER_MAX,
} GdOwnerKind;

typedef enum GdLeaseState {
        GD_LEASE_ACQUIRING = 0,
        GD_LEASE_ACTIVE = 1,
        GD_LEASE_RELEASING = 2,
        GD_LEASE_RELEASED = 3,
        _GD_LEASE_STATE_MAX,
} GdLeaseState;

/* Why a lease ended. */
typedef enum GdReason {
        GD_REASON_RELEASED = 0,           /* the holder asked (RELEASE with the token) */
        GD_REASON_CONNECTION_CLOSED = 1,  /* the owning connection (or D-Bus name) went away */
        GD_REASON_OWNER_EXITED = 2,       /* the owner process exited */
        GD_REASON_LEASE_FD_CLOSED = 3,    /* every copy of the lease fd was closed */
        GD_REASON_SHUTDOWN = 4,           /* the daemon shut down */
        GD_REASON_REVOKED = 5,            /* an administrator revoked it */
        GD_REASON_DEVICE_VANISHED = 6,    /* a device of the lease disappeared */
        GD_REASON_RECOVERED_DEAD = 7,     /* found after a restart with its owner gone */
        GD_REASON_DAEMON_RESTARTED = 8,   /* the daemon restarted and could not keep it (no fd store) */
        _GD_REASON_MAX,
} GdReason;

/* GD_MSG_EVENT kinds; the SUBSCRIBE mask is a bitmask of (1u << kind). */
typedef enum GdEventKind {
        GD_EVENT_LEASE_STARTED = 0,
        GD_EVENT_LEASE_RELEASING = 1,    /* release begun; the host drivers are not back yet */
        GD_EVENT_LEASE_ENDED = 2,        /* release done: reason, and whether drivers came back */
        GD_EVENT_GROUP_CHANGED = 3,      /* a group's devices or drivers changed */
        GD_EVENT_EVENTS_DROPPED = 4,     /* the last event of a subscription the daemon ended: the
                                          * subscriber fell too far behind; sent whatever the mask */
        _GD_EVENT_MAX,
} GdEventKind;

/* GdGroup.flags */
enum {
        GD_GROUP_VIABLE = 1u << 0,  /* every device is on vfio-pci or on no driver / a VFIO-safe one */
        GD_GROUP_LEASED = 1u << 1,  /* held by a lease (holder fields set) */
        GD_GROUP_NEVER = 1u << 2,   /* the policy never hands this group out */
};

typedef struct GdDevice {
        char *address;          /* "0000:00:03.0" */
        uint16_t vendor;
        uint16_t device;
        uint32_t class_code;    /* 24 bits, as sysfs "class" */
        char *driver;           /* "" when none */
        char *driver_override;  /* "" when none */
} GdDevice;

typedef struct GdRegion {
        uint64_t start;
        uint64_t end;           /* inclusive, as sysfs prints it */
        char *type;             /* "msi", "direct", "reserved", ... */
} GdRegion;

typedef struct GdGroup {
        uint32_t id;
        uint32_t flags;
        char *type;             /* sysfs "type": DMA, DMA-FQ, identity, blocked; "" if unknown */
        char *viability;        /* "" when viable; else which device on which driver blocks it */
        GdDevice *devices;
        uint16_t n_devices;
        GdRegion *regions;
        uint16_t n_regions;
        /* The holder, when GD_GROUP_LEASED. */
        char *lease_id;
        char *holder_label;
        uint32_t holder_uid;
        uint32_t holder_pid;
        char *policy_note;      /* why the policy never hands it out, when GD_GROUP_NEVER; else "" */
} GdGroup;

/* GdDma.flags: which facts are present (the same bits as the daemon's HostIommuInfo). */
enum {
        GD_DMA_PGSIZES = 1u << 0,       /* pgsizes */
        GD_DMA_IOVA = 1u << 1,          /* iova[] */
        GD_DMA_AVAIL = 1u << 2,         /* dma_avail */
        GD_DMA_MIGRATION = 1u << 3,     /* migration_* */
        GD_DMA_SPAPR = 1u << 4,         /* spapr_dma32_* */
        GD_DMA_SPAPR_DDW = 1u << 5,     /* spapr_ddw_* */
        _GD_DMA_ALL = (1u << 6) - 1,
};

typedef struct GdRange {
        uint64_t start;
        uint64_t end;           /* inclusive */
} GdRange;

/* A container's DMA facts (VFIO_IOMMU_GET_INFO, or SPAPR_TCE_GET_INFO). flags 0: none known. */
typedef struct GdDma {
        uint32_t flags;
        uint32_t iommu_type;
        uint64_t pgsizes;
        GdRange iova[GD_IOVA_RANGES_MAX];
        uint16_t n_iova;
        uint32_t dma_avail;
        uint32_t migration_flags;
        uint64_t migration_pgsizes;
        uint64_t migration_max_dirty_bitmap_size;
        uint32_t spapr_dma32_start;
        uint32_t spapr_dma32_size;
        uint64_t spapr_ddw_pgsizes;
        uint32_t spapr_ddw_max_windows;
        uint32_t spapr_ddw_levels;
} GdDma;

/* GdDmaInfo.source: where the facts came from. */
typedef enum GdDmaSource {
        GD_DMA_SOURCE_SYSFS = 0,        /* the group's reserved regions only: no container to ask */
        GD_DMA_SOURCE_CONTAINER = 1,    /* the lease's container (GET_INFO), plus the reserved regions */
        _GD_DMA_SOURCE_MAX,
} GdDmaSource;

typedef struct GdDmaInfo {
        uint32_t group;
        uint32_t source;        /* GdDmaSource */
        GdDma dma;
        GdRegion *regions;      /* sysfs reserved_regions */
        uint16_t n_regions;
        uint32_t n_devices;     /* devices a lease of this group assigns (bridges left out): memlock */
        uint8_t kvm;            /* leased, and its client said it registered the groups with its VM */
        char *note;             /* why the container's facts are missing, or "" */
} GdDmaInfo;

typedef struct GdLease {
        char *id;               /* public, short; never the token */
        char *label;
        uint32_t uid;           /* of the client that acquired */
        uint32_t pid;           /* of the client that acquired */
        uint32_t owner_kind;    /* GdOwnerKind */
        uint32_t owner_pid;     /* the owner process (GD_OWNER_PROCESS), else 0 */
        uint32_t state;         /* GdLeaseState */
        uint64_t since_usec;    /* CLOCK_REALTIME of the acquire */
        uint32_t *groups;
        uint16_t n_groups;
} GdLease;

typedef struct GdHello {
        /* HELLO_REPLY carries one version, the chosen one: encoded from version_min (version_max if
         * version_min is 0), decoded into both. */
        uint32_t version_min;
        uint32_t version_max;
        char *name;             /* request: client name; reply: daemon version */
        char *host;             /* reply only: "linux", "sim" */
} GdHello;

typedef struct GdAcquire {
        uint32_t flags;
        char *label;
        char **specs;           /* group numbers ("7") or PCI addresses ("0000:01:00.0", "01:00.0") */
        uint16_t n_specs;
        uint64_t guest_ram;     /* bytes, with GD_ACQUIRE_MEMLOCK (else 0) */
        /* On the wire only with GD_ACQUIRE_DELIVERY; decoded as legacy and GD_GRANT_UID_CALLER without. */
        uint32_t delivery;      /* GdDelivery */
        uint32_t grant_uid;     /* node-grant: the uid to grant (root may name any, others only themselves);
                                 * GD_GRANT_UID_CALLER for the caller; otherwise must be GD_GRANT_UID_CALLER */
} GdAcquire;

typedef struct GdAcquired {
        char *token;            /* GD_TOKEN_LEN hex characters */
        GdLease lease;
        uint32_t iommu_type;    /* VFIO_TYPE1v2_IOMMU etc. if configured, else 0 */
        GdDma dma;              /* the container's facts when the IOMMU was configured, else flags 0 */
        uint64_t memlock;       /* the RLIMIT_MEMLOCK set on the owner with GD_ACQUIRE_MEMLOCK, else 0 */
        /* The delivery block: ACQUIRED_DELIVERY only (ACQUIRED leaves these out and zero). */
        uint32_t delivery;      /* GdDelivery used: legacy, iommufd or node-grant (never auto) */
        uint32_t grant_uid;     /* node-grant: the uid granted; else 0 */
        char **devices;         /* iommufd: the PCI address of each device fd, in fd order */
        uint16_t n_devices;
        char **nodes;           /* node-grant: the nodes granted ("/dev/vfio/3"), in lease.groups order */
        uint16_t n_nodes;
        /* fds, in the packet's SCM_RIGHTS: legacy: [0] container, [1..n_groups] groups in lease.groups
         * order; iommufd: [0] the iommufd, [1..n_devices] the cdevs in devices[] order; node-grant: none.
         * Then the lease fd if GD_ACQUIRE_LEASE_FD was asked. */
} GdAcquired;

typedef struct GdError_ {
        int32_t code;           /* GdError */
        int32_t errno_value;    /* positive errno, or 0 */
        char *message;
} GdErrorMsg;

typedef struct GdStatus {
        char *version;
        char *host;
        uint32_t n_groups;
        uint32_t n_leases;
        uint32_t n_clients;
        uint64_t started_usec;  /* CLOCK_REALTIME */
} GdStatus;

typedef struct GdEvent {
        uint32_t kind;          /* GdEventKind */
        GdLease lease;          /* LEASE_*; for GROUP_CHANGED: lease.groups has the group */
        uint32_t reason;        /* GdReason, for RELEASING and ENDED */
        int32_t errno_value;    /* ENDED: 0 when every driver came back, else what failed */
        char *detail;           /* human text: what was restored, or what failed */
} GdEvent;

typedef struct GdRevoke {
        char *lease_id;         /* the public id (groupctl leases), never the token */
        uint32_t deadline_sec;  /* how long the holder has to let go; 0: the daemon's release deadline */
        uint32_t flags;         /* GdRevokeFlags */
} GdRevoke;

typedef struct GdMsg {
        uint16_t type;          /* GdMsgType */
        uint32_t serial;
        union {
                GdHello hello;              /* HELLO, HELLO_REPLY */
                char *spec;                 /* SHOW_GROUP, DMA_INFO */
                GdAcquire acquire;          /* ACQUIRE */
                char *token;                /* RELEASE */
                GdRevoke revoke;            /* REVOKE */
                uint32_t event_mask;        /* SUBSCRIBE */
                GdErrorMsg error;           /* ERROR */
                struct {                    /* GROUPS */
                        uint8_t more;
                        GdGroup *groups;
                        uint16_t n_groups;
                } groups;
                GdAcquired acquired;        /* ACQUIRED */
                struct {                    /* LEASES */
                        uint8_t more;
                        GdLease *leases;
                        uint16_t n_leases;
                } leases;
                GdStatus status;            /* STATUS_REPLY */
                GdDmaInfo dma_info;         /* DMA_INFO_REPLY */
                GdEvent event;              /* EVENT */
        };
} GdMsg;

/* Encodes m into buf. Returns 0 and the packet length in *ret_len, -ENOBUFS if buf is too small (then
 * *ret_len says how large it must be; buf may be NULL with size 0 to ask just that),
 * -EMSGSIZE if the packet would exceed GD_MSG_SIZE_MAX, -EINVAL if a field breaks its limit (a string too
 * long or containing NUL, a NULL pointer where a string is needed is encoded as ""), -EBADMSG for an
 * unknown type. Never reads past the structures it is given. */
int gd_msg_encode(const GdMsg *m, uint8_t *buf, size_t size, size_t *ret_len);

/* Decodes one packet. On success fills *ret (free with gd_msg_done()) and returns 0. Returns -EBADMSG for
 * a malformed, truncated or overlong packet or a field breaking its limit, -EPROTONOSUPPORT for another
 * protocol version, -EMSGSIZE for a packet over GD_MSG_SIZE_MAX, -ENOMEM. On error *ret is left empty (no
 * allocation to free). Never reads outside buf[0..len). Every string field on the wire decodes to a non-NULL string (HELLO's
 * host, absent from the request, stays NULL). */
int gd_msg_decode(const uint8_t *buf, size_t len, GdMsg *ret);

/* Frees what gd_msg_decode() allocated (or what a caller built with malloc()ed fields) and zeroes *m. */
void gd_msg_done(GdMsg *m);

/* How many fds a message of this type must carry, given its decoded contents: ACQUIRE: 1 with
 * GD_ACQUIRE_OWNER_PROCESS, else 0; ACQUIRED: 1 + n_groups; ACQUIRED_DELIVERY: legacy 1 + n_groups, iommufd
 * 1 + n_devices, node-grant 0; either +1 with a lease fd (lease.owner_kind GD_OWNER_LEASE_FD); others 0. */
size_t gd_msg_expected_fds(const GdMsg *m);
/* Free what the codec (or a producer of the same views) allocated inside one record, and zero it. */
void gd_group_done(GdGroup *g);
void gd_lease_done(GdLease *l);
void gd_dma_info_done(GdDmaInfo *d);
/* The same for arrays of n records (and the array), and for one allocated GdDmaInfo. */
void gd_groups_free(GdGroup *g, size_t n);
void gd_leases_free(GdLease *l, size_t n);
void gd_dma_info_free(GdDmaInfo *d);

/* Names, for logs, groupctl and PROTOCOL.md. Return NULL for values out of range. */
const char *gd_msg_type_to_string(int t);
const char *gd_error_to_string(int e);       /* "busy", "denied", ... */
const char *gd_owner_kind_to_string(int k);  /* "connection", "process", "lease-fd" */
const char *gd_lease_state_to_string(int s); /* "acquiring", "active", "releasing", "released" */
const char *gd_reason_to_string(int r);      /* "released", "connection-closed", "owner-exited", ... */
const char *gd_event_kind_to_string(int k);  /* "lease-started", ... */
const char *gd_dma_source_to_string(int s);  /* "sysfs", "container" */
const char *gd_delivery_to_string(int d);    /* "legacy", "iommufd", "node-grant", "auto" */
int gd_delivery_from_string(const char *s);
int gd_error_from_string(const char *s);     /* and the inverses, -EINVAL when unknown */
int gd_owner_kind_from_string(const char *s);
int gd_lease_state_from_string(const char *s);
int gd_reason_from_string(const char *s);
int gd_event_kind_from_string(const char *s);

/* The one table from errno to GdError, for errors that carry no better code. */
GdError gd_error_from_errno(int errno_value);

/* True when s is exactly GD_TOKEN_LEN lowercase hex characters. */
bool gd_token_is_valid(const char *s);
