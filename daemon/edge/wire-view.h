/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one place where the core's types become the native protocol's records (proto/groupd-proto.h), and
 * the wire's requests become the core's. The core's enums keep the wire's numeric values (checked here
 * with static_assert), so most conversions are by value; the records are built here. The D-Bus side uses
 * the same views (a lease's strings, a group's flags) so that both edges say the same thing. */

#include "groupd-proto.h"
#include "manager.h"

GdError wire_error(ManagerErrorCode code);
GdReason wire_reason(LeaseReason r);
GdOwnerKind wire_owner_kind(OwnerKind k);
GdLeaseState wire_lease_state(LeaseState s);
GdEventKind wire_event_kind(ManagerEvent e);
ManagerEvent wire_event_from_kind(GdEventKind k);

/* The strings point into the lease (do not free them), groups into l. */
void wire_lease(const Lease *l, GdLease *ret);
/* Deep copies; free with gd_group_done() / gd_groups_free(). */
int wire_group(const GroupView *v, GdGroup *ret);
int wire_groups(const GroupView *v, size_t n, GdGroup **ret);
void wire_dma(const HostIommuInfo *i, GdDma *ret);
/* Deep copy; free with gd_dma_info_free(). */
int wire_dma_info(const DmaView *v, GdDmaInfo **ret);

/* An ACQUIRE's flags and fields as the core's request (specs and label point into a, not copied).
 * -EINVAL (with *err) for flags the core has no word for. */
int wire_acquire_request(const GdAcquire *a, int owner_pidfd, AcquireRequest *ret, ManagerError *err);

/* ACQUIRED_DELIVERY's delivery block for a lease (the device addresses and node paths are allocated: free
 * them with wire_acquired_delivery_done()). */
int wire_acquired_delivery(const Lease *l, GdAcquired *ret);
void wire_acquired_delivery_done(GdAcquired *a);
