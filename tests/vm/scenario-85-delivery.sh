#!/bin/sh
# shellcheck shell=dash
# groupd's delivery modes on the real kernel, with a real QEMU where the rig has one (issue 12's
# scenarios 1-3, and 4's libgroupd half). The command lines are README's "With QEMU" ones, with the
# tier's QMP pipe and accelerator (qemu_base_args). Each part skips, saying why, where its kernel or
# QEMU is missing: iommufd needs /dev/iommu (the own-6.12 line) and QEMU 10; node-grant any QEMU (7.2
# on the stock lines); the QEMU parts need guest-qemu.sh's helpers (qemu_bin, qemu_base_args, qmp_*), and
# a VMM runs as another uid through vmm-standin as-uid.
#
#   delivery-iommufd-qemu      groupctl acquire 3 --delivery=iommufd --exec -- qemu ... {iommufd}
#                              {device:0000:00:03.0}: query-pci lists hostdev0 with the host device's ids;
#                              QEMU holds /dev/iommu and the cdev and never /dev/vfio/3, and so does groupd;
#                              /dev/vfio/3 opens EBUSY; QEMU quits, the lease ends owner-exited, e1000e back.
#   delivery-iommufd-memlock   the handed iommufd reads back per-process (IOMMU_OPTION get, in the owner);
#                              a mapping beyond the owner's RLIMIT_MEMLOCK fails in the owner, one within
#                              it works (vmm-standin: bind, IOAS, attach, map).
#   delivery-libgroupd-iommufd a VMM linking libgroupd acquires with delivery iommufd and does the same.
#   delivery-node-grant-acl/uid/revoked (no QEMU needed) the grant is an ACL entry for uid 65534 on the real
#                              node, its owner kept, uid 65534 passes the permission check; released, the
#                              ACL is put back before the unbind; e1000e back, the node gone.
#   delivery-node-grant-exact  00:03.0 on vfio-pci before the lease stays there after it, and so does its
#                              node: owner, mode and ACL exactly as before; uid 65534 refused (EACCES).
#   delivery-node-grant-qemu   groupctl acquire 3 --delivery=node-grant --grant-uid=65534 --exec -- (as uid
#                              65534) qemu ... -device vfio-pci,host=0000:00:03.0: QEMU opens the node itself
#                              and realizes the device; groupd holds no /dev/vfio fd. Released while QEMU
#                              still holds the group: the grant is revoked before the unbind, so while the
#                              release waits uid 65534 gets EACCES and the node's owner, mode and ACL are
#                              exactly a fresh node's; QEMU quits, e1000e back, the node gone.

dev=0000:00:03.0
uid=65534
kvm_gid=104 # the rig's /etc/group

have_fn() { type "$1" >/dev/null 2>&1; }
qemu_helpers=yes
for f in qemu_bin qemu_base_args qmp_prepare qmp_connect qmp_pci_id qmp_quit qmp_close pci_id; do
        have_fn $f || qemu_helpers=
done
# QEMU runs as uid 65534 (in the kvm group), as a VMM under a launcher does.
run_as="vmm-standin as-uid $uid --groups=$kvm_gid --"

if ! daemon_start; then
        fail delivery "groupd did not start"
        exit 0
fi

# QEMU as uid 65534 may use KVM through the kvm group, as udev's rule gives it on a real host.
kvm_before=
if [ -c /dev/kvm ]; then
        kvm_before=$(stat -c '%u:%g %a' /dev/kvm)
        chgrp $kvm_gid /dev/kvm && chmod 0660 /dev/kvm
fi
put_kvm_back() {
        [ -n "$kvm_before" ] || return 0
        chown "${kvm_before% *}" /dev/kvm
        chmod "${kvm_before#* }" /dev/kvm
}

handed_pid() { sed -n 's/^Handed to .* (pid \([0-9]*\)).*/\1/p' "$1"; }
vfio_and_iommu_fds_of() {
        for f in /proc/"$1"/fd/*; do readlink "$f" 2>/dev/null; done | grep -E '^/dev/(iommu|vfio)' | sort |
                tr '\n' ' ' | sed 's/ $//'
}
ended_back() { # OUT: the lease ended owner-exited, e1000e is back, no lease is left
        file_has "$1" 'ended: owner-exited' && wait_until 100 is_on $dev e1000e && wait_until 50 no_leases &&
                [ -z "$(override_of $dev)" ]
}

# ------------------------------------------------------------------------------------------- iommufd
q10=
[ -n "$qemu_helpers" ] && q10=$(qemu_bin 10)
if [ ! -c /dev/iommu ]; then
        skip delivery-iommufd-qemu "no /dev/iommu: this kernel has no iommufd (Debian's leave it out; own-6.12 has it)"
elif [ -z "$qemu_helpers" ]; then
        skip delivery-iommufd-qemu "no guest-qemu.sh helpers in this rig"
elif [ -z "$q10" ]; then
        skip delivery-iommufd-qemu "no QEMU 10 in this guest"
else
        want=$(pci_id $dev)
        QMP_DIR=/tmp/qmp-gd-iommufd
        qmp_prepare $QMP_DIR
        t0=$(now_ms)
        # shellcheck disable=SC2046,SC2086 # the helpers print argument lists; run_as is one too
        groupctl acquire 3 --delivery=iommufd --guest-ram=64M --exec -- $run_as \
                "$q10" $(qemu_base_args $QMP_DIR) \
                -object 'iommufd,id=iommufd0,fd={iommufd}' \
                -device 'vfio-pci,id=hostdev0,iommufd=iommufd0,fd={device:0000:00:03.0}' \
                >/tmp/gd-iommufd.out 2>&1 &
        ACQ_PID=$!
        if qmp_connect $QMP_DIR "$ACQ_PID" 60; then
                got=$(qmp_pci_id $QMP_DIR hostdev0)
                qpid=$(handed_pid /tmp/gd-iommufd.out)
                qfds=$(vfio_and_iommu_fds_of "$qpid")
                gfds=$(vfio_and_iommu_fds_of "$DAEMON_PID")
                busy=$( (exec 5<>/dev/vfio/3) 2>&1)
                if [ "$got" = "$want" ]; then
                        pass delivery-iommufd-qemu "query-pci: hostdev0 $got as on the host ($(qemu_accel), $(($(now_ms) - t0)) ms)"
                else
                        fail delivery-iommufd-qemu "query-pci: hostdev0 is '${got:-missing}', the host device $want"
                fi
                if echo "$qfds" | grep -q '/dev/iommu' && echo "$qfds" | grep -q '/dev/vfio/devices/vfio' &&
                        ! echo "$qfds $gfds" | grep -q '/dev/vfio/3' && echo "$busy" | grep -qi busy &&
                        file_has /tmp/gd-iommufd.out "^Delivery: iommufd (an iommufd and the cdevs of $dev)"; then
                        pass delivery-iommufd-held "QEMU holds $qfds; groupd $gfds; /dev/vfio/3 busy"
                else
                        fail delivery-iommufd-held "QEMU's fds '$qfds', groupd's '$gfds', /dev/vfio/3: '${busy:-it opened}'"
                fi
                qmp_quit $QMP_DIR "$ACQ_PID" 30 || kill -TERM "$qpid" 2>/dev/null
        else
                fail delivery-iommufd-qemu "QEMU did not answer QMP; groupctl and QEMU said:"
                sed 's/^/    /' /tmp/gd-iommufd.out
        fi
        qmp_close $QMP_DIR
        wait "$ACQ_PID"
        if ended_back /tmp/gd-iommufd.out; then
                pass delivery-iommufd-ended "lease ended owner-exited; e1000e back on $dev"
        else
                fail delivery-iommufd-ended "00:03.0 on '$(driver_of $dev)', leases '$(groupctl leases --no-legend 2>&1)'"
                sed 's/^/    /' /tmp/gd-iommufd.out
                daemon_log_tail
        fi
fi

# The accounting is the owner's: per-process on the handed iommufd, a mapping beyond its limit fails.
if [ ! -c /dev/iommu ]; then
        skip delivery-iommufd-memlock "no /dev/iommu"
else
        for case in "64M fail" "8M ok"; do
                size=${case% *} want=${case#* }
                # Not root: root's CAP_IPC_LOCK would pass any limit.
                groupctl acquire 3 --delivery=iommufd --exec -- \
                        vmm-standin as-uid $uid --memlock=16M -- \
                        vmm-standin iommufd '--iommufd={iommufd}' "--device=$dev={device:$dev}" --map="$size" \
                        >/tmp/gd-memlock.out 2>&1
                if file_has /tmp/gd-memlock.out 'iommufd: rlimit-mode=process' &&
                        file_has /tmp/gd-memlock.out "device $dev (fd 4): bound, attached" &&
                        { { [ "$want" = fail ] && file_has /tmp/gd-memlock.out 'map of .* bytes: failed: Cannot allocate memory'; } ||
                          { [ "$want" = ok ] && file_has /tmp/gd-memlock.out 'map of .* bytes: ok'; }; } &&
                        ended_back /tmp/gd-memlock.out; then
                        pass "delivery-iommufd-memlock-$size" "RLIMIT_MEMLOCK 16M, map $size: $(grep -m1 'map of' /tmp/gd-memlock.out | sed 's/^vmm-standin: //'); e1000e back"
                else
                        fail "delivery-iommufd-memlock-$size" "want the map to $want:"
                        sed 's/^/    /' /tmp/gd-memlock.out
                fi
        done
fi

if [ ! -c /dev/iommu ]; then
        skip delivery-libgroupd-iommufd "no /dev/iommu"
else
        out=$(vmm-standin acquire-iommufd $dev --map=2M 2>&1)
        if echo "$out" | grep -q "libgroupd: lease .*, delivery iommufd" &&
                echo "$out" | grep -q "device $dev (fd [0-9]*): bound, attached to IOAS" &&
                echo "$out" | grep -q 'map of 2097152 bytes: ok' && echo "$out" | grep -q released &&
                wait_until 100 is_on $dev e1000e; then
                pass delivery-libgroupd-iommufd "$(echo "$out" | grep 'bound, attached' | sed 's/^vmm-standin: //')"
        else
                fail delivery-libgroupd-iommufd "$(echo "$out" | tr '\n' ';')"
        fi
fi

# ------------------------------------------------------------------------------------------- node-grant
# What the kernel makes: a fresh node's owner, mode and ACL (bound by hand, for the comparisons below).
echo vfio-pci >"/sys/bus/pci/devices/$dev/driver_override"
echo $dev >"/sys/bus/pci/devices/$dev/driver/unbind"
echo $dev >/sys/bus/pci/drivers_probe
fresh=$(vmm-standin node-state /dev/vfio/3 2>&1)
echo >"/sys/bus/pci/devices/$dev/driver_override"
echo $dev >"/sys/bus/pci/devices/$dev/driver/unbind"
echo $dev >/sys/bus/pci/drivers_probe
wait_until 50 is_on $dev e1000e

# Without QEMU, on every kernel: the grant is an ACL entry on the real devtmpfs node, the owner kept; a
# stand-in VMM (root here) opens the node itself and holds the group; released meanwhile, the grant is
# put back before the unbind. (The held-up release, with the node compared to a fresh one and uid 65534
# refused, needs a VMM that holds a device fd: QEMU, below.)
as_uid="vmm-standin as-uid $uid"
groupctl acquire 3 --delivery=node-grant --grant-uid=$uid --exec -- vmm-standin node-grant --hold 60 \
        >/tmp/gd-grant-standin.out 2>&1 &
ACQ_PID=$!
if wait_until 150 file_has /tmp/gd-grant-standin.out 'holding the groups'; then
        granted=$(vmm-standin node-state /dev/vfio/3 2>&1)
        gfds=$(vfio_and_iommu_fds_of "$DAEMON_PID")
        # uid 65534's entry: tag 2 (ACL_USER), perm 6 (rw), id 0xfffe, little-endian.
        if echo "$granted" | grep -q '02000600feff0000' && [ "${granted%% *}" = "${fresh%% *}" ] && [ -z "$gfds" ] &&
                file_has /tmp/gd-grant-standin.out "^Delivery: node-grant (uid $uid may open /dev/vfio/3)"; then
                pass delivery-node-grant-acl "granted: node $granted (fresh: $fresh); owner kept; groupd holds no /dev/vfio fd"
        else
                fail delivery-node-grant-acl "node '$granted' (fresh '$fresh'), groupd holds '$gfds'"
                sed 's/^/    /' /tmp/gd-grant-standin.out
        fi
        # The group is open (the stand-in's), so an allowed open is EBUSY and a refused one EACCES.
        try=$($as_uid sh -c 'exec 5<>/dev/vfio/3' 2>&1)
        if echo "$try" | grep -q 'resource busy'; then
                pass delivery-node-grant-uid "uid $uid passes the permission check (then: busy, the stand-in has the group)"
        else
                fail delivery-node-grant-uid "uid $uid opening /dev/vfio/3 while granted: '${try:-it opened}'"
        fi
        # Released while the stand-in holds only the group (no device fd, so the kernel lets the driver
        # go at once and the node goes with it): the grant was put back first, and said so.
        token=$(sed -n 's/^Token: \([0-9a-f]*\)$/\1/p' /tmp/gd-grant-standin.out)
        groupctl release "$token" >/dev/null 2>&1
        if wait_until 100 is_on $dev e1000e && wait_until 50 node_gone 3 && wait_until 50 no_leases &&
                file_has "$DAEMON_LOG" "/dev/vfio/3: access as before"; then
                pass delivery-node-grant-revoked "released: /dev/vfio/3's ACL and mode put back before the unbind; e1000e back, the node gone"
        else
                fail delivery-node-grant-revoked "00:03.0 on '$(driver_of $dev)', /dev/vfio/3 $([ -e /dev/vfio/3 ] && echo there || echo gone), leases '$(groupctl leases --no-legend 2>&1)'"
                daemon_log_tail
        fi
        kill -TERM "$(handed_pid /tmp/gd-grant-standin.out)" 2>/dev/null
        wait "$ACQ_PID"
else
        fail delivery-node-grant-acl "the stand-in did not get to hold the group:"
        sed 's/^/    /' /tmp/gd-grant-standin.out
        kill -TERM "$ACQ_PID" 2>/dev/null
        wait "$ACQ_PID"
fi

# A device on vfio-pci before the lease (bound by hand) stays there afterwards, and so does its node: the
# node grant's end is then checked on the node itself: owner, mode and ACL exactly as before, and uid
# 65534 refused again.
echo vfio-pci >"/sys/bus/pci/devices/$dev/driver_override"
echo $dev >"/sys/bus/pci/devices/$dev/driver/unbind"
echo $dev >/sys/bus/pci/drivers_probe
before=$(vmm-standin node-state /dev/vfio/3 2>&1)
groupctl acquire 3 --delivery=node-grant --grant-uid=$uid --exec -- vmm-standin node-grant --hold 1 \
        >/tmp/gd-grant-prebound.out 2>&1
after=$(vmm-standin node-state /dev/vfio/3 2>&1)
denied=$($as_uid sh -c 'exec 5<>/dev/vfio/3' 2>&1)
if file_has /tmp/gd-grant-prebound.out 'ended: owner-exited' && file_has /tmp/gd-grant-prebound.out 'access as before' &&
        [ "$after" = "$before" ] && is_on $dev vfio-pci && echo "$denied" | grep -q 'ermission denied'; then
        pass delivery-node-grant-exact "the node stays (device on vfio-pci as found): $after as before; uid $uid: permission denied"
else
        fail delivery-node-grant-exact "node '$after', before '$before'; 00:03.0 on '$(driver_of $dev)'; uid $uid: '${denied:-it opened}'"
        sed 's/^/    /' /tmp/gd-grant-prebound.out
fi
echo >"/sys/bus/pci/devices/$dev/driver_override"
echo $dev >"/sys/bus/pci/devices/$dev/driver/unbind"
echo $dev >/sys/bus/pci/drivers_probe
wait_until 50 is_on $dev e1000e

qv=
if [ -n "$qemu_helpers" ]; then
        if [ -c /dev/iommu ] && qemu_bin 10 >/dev/null; then qv=10; elif qemu_bin 7.2 >/dev/null; then qv=7.2; fi
fi
if [ -z "$qv" ]; then
        skip delivery-node-grant-qemu "no QEMU (or no guest-qemu.sh helpers) in this guest"
else
        want=$(pci_id $dev)
        QMP_DIR=/tmp/qmp-gd-grant
        qmp_prepare $QMP_DIR
        t0=$(now_ms)
        # shellcheck disable=SC2046,SC2086
        groupctl acquire 3 --delivery=node-grant --grant-uid=$uid --guest-ram=64M --exec -- $run_as \
                "$(qemu_bin $qv)" $(qemu_base_args $QMP_DIR) -device vfio-pci,id=hostdev0,host=$dev \
                >/tmp/gd-grant.out 2>&1 &
        ACQ_PID=$!
        if qmp_connect $QMP_DIR "$ACQ_PID" 60; then
                got=$(qmp_pci_id $QMP_DIR hostdev0)
                granted=$(vmm-standin node-state /dev/vfio/3 2>&1)
                gfds=$(vfio_and_iommu_fds_of "$DAEMON_PID")
                if [ "$got" = "$want" ] && [ -z "$gfds" ] &&
                        file_has /tmp/gd-grant.out "^Delivery: node-grant (uid $uid may open /dev/vfio/3)"; then
                        pass delivery-node-grant-qemu "QEMU $(qemu_version $qv) as uid $uid opened /dev/vfio/3 itself: hostdev0 $got; node $granted (fresh: $fresh); $(($(now_ms) - t0)) ms"
                else
                        fail delivery-node-grant-qemu "hostdev0 '${got:-missing}' (want $want), groupd holds '$gfds', node $granted"
                        sed 's/^/    /' /tmp/gd-grant.out
                fi
                # Released while QEMU holds the group: the unbind waits; the grant is already gone.
                token=$(sed -n 's/^Token: \([0-9a-f]*\)$/\1/p' /tmp/gd-grant.out)
                groupctl release "$token" >/dev/null 2>&1
                wait_until 50 file_has "$DAEMON_LOG" "access as before" || sleep 1
                during=$(vmm-standin node-state /dev/vfio/3 2>&1)
                denied=$($as_uid sh -c 'exec 5<>/dev/vfio/3' 2>&1)
                if [ "$during" = "$fresh" ] && echo "$denied" | grep -qi 'denied'; then
                        pass delivery-node-grant-qemu-revoked "released while QEMU holds the group: node $during as a fresh one; uid $uid: permission denied"
                else
                        fail delivery-node-grant-qemu-revoked "node '$during' (fresh '$fresh'); uid $uid opening it: '${denied:-it opened}'"
                fi
                qmp_quit $QMP_DIR "$ACQ_PID" 30 || kill -TERM "$(handed_pid /tmp/gd-grant.out)" 2>/dev/null
        else
                fail delivery-node-grant-qemu "QEMU did not answer QMP; groupctl and QEMU said:"
                sed 's/^/    /' /tmp/gd-grant.out
        fi
        qmp_close $QMP_DIR
        wait "$ACQ_PID"
        if wait_until 100 is_on $dev e1000e && wait_until 50 node_gone 3 && wait_until 50 no_leases; then
                pass delivery-node-grant-qemu-ended "e1000e back, /dev/vfio/3 gone"
        else
                fail delivery-node-grant-qemu-ended "00:03.0 on '$(driver_of $dev)', leases '$(groupctl leases --no-legend 2>&1)'"
                daemon_log_tail
        fi
fi

put_kvm_back
daemon_stop
