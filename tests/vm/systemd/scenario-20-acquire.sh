#!/bin/sh
# shellcheck shell=dash
# Acquire and release under the shipped sandbox, in each delivery mode (MODES; iommufd only where the
# kernel has /dev/iommu): groups 3 (e1000e) and 6 (edu + e1000) in one lease, handed to a stand-in VMM
# that uses them (legacy: the container and group fds; iommufd: /dev/iommu and the three cdevs, bound and
# attached, never /dev/vfio/N; node-grant: nothing handed, uid 65534 opens the nodes itself through an
# ACL entry); the fds in the fd store while the lease lives; the drivers back, the nodes and cdevs gone
# after the release; and no denial in the journal. Then a node grant on a node that outlives the lease:
# owner, mode and ACL exactly as before. (acquire_once and grant_exact live in systemd-lib.sh; scenario-25
# runs the modes again with the system call filter made to kill.)

for mode in $MODES; do
        acquire_once "$mode" shipped
done
grant_exact shipped
