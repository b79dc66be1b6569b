#!/bin/sh
# shellcheck shell=dash
# A real QEMU realizes a device that a broker handed it, on the real kernel, without groupd (issue 12's
# raw proof; groupd's delivery modes are to do the same). vfio-broker plays the broker: it binds
# 00:03.0 (group 3, e1000e) to vfio-pci, runs QEMU as uid 65534 with a locked-memory limit, closes its
# own copies, waits for QEMU to exit and puts e1000e back. QEMU is paused (-S) and answers QMP; the
# check is QEMU's own answer: query-pci lists hostdev0 with the host device's vendor and device id.
#
# Where /dev/iommu is there (own-6.12) and QEMU 10 is in the guest (/opt/qemu-10):
#   qemu-iommufd: the broker opens /dev/iommu, sets IOMMU_OPTION_RLIMIT_MODE to per-process (read
#     back), opens the cdev named by vfio-dev/, and hands both, unbound, to QEMU 10
#     (-object iommufd,fd= -device vfio-pci,iommufd=,fd=); while QEMU holds the bound cdev,
#     /dev/vfio/3 opens EBUSY, and QEMU's fds are /dev/iommu and the cdev.
#   qemu-iommufd-memlock: the same with a limit below the guest's RAM: the mapping fails in QEMU
#     (per-process accounting charges QEMU), QEMU exits, e1000e comes back.
# Wherever a QEMU is in the guest (7.2 on the stock lines, 10 on own-6.12):
#   qemu-node-grant: the broker opens nothing and chowns /dev/vfio/3 to uid 65534 for QEMU's
#     lifetime; QEMU opens it itself (-device vfio-pci,host=0000:00:03.0); afterwards the node's owner
#     and mode are put back and, with e1000e back, the node is gone.

dev=0000:00:03.0
uid=65534
kvm_gid=104 # the rig's /etc/group
want=$(pci_id $dev)

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

# broker_qemu NAME MEMLOCK MODE QEMU-ARGS...: vfio-broker MODE in the background, its output in
# /tmp/NAME.out; sets BROKER_PID, and QMP_DIR for the QEMU arguments (made before).
broker_start() {
        name=$1 memlock=$2 mode=$3
        shift 3
        vfio-broker "$mode" --uid $uid --gid $uid --groups $kvm_gid --memlock "$memlock" $dev -- "$@" \
                >"/tmp/$name.out" 2>&1 &
        BROKER_PID=$!
}
broker_fact() { sed -n "s/^BROKER $2 //p" "/tmp/$1.out" | head -n 1; }
broker_log() { sed 's/^/    /' "/tmp/$1.out"; }

# realize NAME: QMP up, hostdev0 in query-pci with the host's ids; quit. Prints the check's lines.
realize() {
        name=$1 t0=$(now_ms)
        if ! qmp_connect "$QMP_DIR" "$BROKER_PID" 30; then
                fail "$name" "QEMU did not answer QMP (within 30 s); the broker and QEMU said:"
                broker_log "$name"
                qmp_close
                return 1
        fi
        t_qmp=$(now_ms)
        got=$(qmp_pci_id "$QMP_DIR" hostdev0)
        if [ "$got" = "$want" ]; then
                pass "$name-realized" "query-pci: hostdev0 $got as on the host ($(qemu_accel), QMP after $((t_qmp - t0)) ms)"
        else
                fail "$name-realized" "query-pci: hostdev0 is '${got:-missing}', the host device $want"
        fi
        REALIZED_HOOK=${REALIZED_HOOK:-:}
        $REALIZED_HOOK
        if ! qmp_quit "$QMP_DIR" "$BROKER_PID" 30; then
                fail "$name-quit" "QEMU or the broker still running 30 s after quit"
                kill -TERM "$BROKER_PID" 2>/dev/null
        fi
        qmp_close
        wait "$BROKER_PID"
        BROKER_RC=$?
        return 0
}

# After the broker: QEMU exited 0, e1000e back on 00:03.0, no override, no group node.
restored() {
        name=$1
        if [ "$BROKER_RC" -eq 0 ] && [ "$(broker_fact "$name" exit)" = 0 ] && is_on $dev e1000e &&
                [ -z "$(override_of $dev)" ] && wait_until 20 node_gone 3; then
                pass "$name-restored" "QEMU exited 0; e1000e back, override cleared, /dev/vfio/3 gone ($(broker_fact "$name" restored))"
        else
                fail "$name-restored" "broker exit $BROKER_RC, QEMU '$(broker_fact "$name" exit)', 00:03.0 on '$(driver_of $dev)', override '$(override_of $dev)'"
                broker_log "$name"
        fi
}

# ---------------------------------------------------------------------------------------------
# The kernel's nodes: /dev/iommu always, and a cdev for each device on vfio-pci (gone when it leaves).
if [ -c /dev/iommu ]; then
        echo vfio-pci >"$pci/$dev/driver_override"
        echo $dev >"$pci/$dev/driver/unbind"
        echo $dev >/sys/bus/pci/drivers_probe
        name=$(ls "$pci/$dev/vfio-dev" 2>/dev/null)
        sysdev=$(cat "$pci/$dev/vfio-dev/$name/dev" 2>/dev/null)
        nodedev=$(stat -c '%t:%T' "/dev/vfio/devices/$name" 2>/dev/null)
        nodedev=$(printf '%d:%d' "0x${nodedev%:*}" "0x${nodedev#*:}" 2>/dev/null)
        echo >"$pci/$dev/driver_override"
        echo $dev >"$pci/$dev/driver/unbind"
        echo $dev >/sys/bus/pci/drivers_probe
        if [ -n "$name" ] && [ "$sysdev" = "$nodedev" ] && wait_until 20 is_on $dev e1000e &&
                [ ! -e "/dev/vfio/devices/$name" ] && [ ! -e "$pci/$dev/vfio-dev" ]; then
                pass iommufd-nodes "/dev/iommu; on vfio-pci, $dev has vfio-dev/$name and /dev/vfio/devices/$name ($sysdev), gone after"
        else
                fail iommufd-nodes "vfio-dev/'$name' (dev '$sysdev'), /dev/vfio/devices/$name is '$nodedev'; 00:03.0 on '$(driver_of $dev)'"
        fi
fi

# Why a broker: a plain iommufd's holder may read the accounting mode but not set it (EPERM without
# CAP_SYS_RESOURCE), and nobody may change it once the fd holds an object (EBUSY).
if [ -c /dev/iommu ]; then
        if out=$(vfio-broker rlimit-option --uid $uid 2>&1); then
                pass iommufd-rlimit-option "$(echo "$out" | sed -n 's/^BROKER //p' | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
        else
                fail iommufd-rlimit-option "$(echo "$out" | tr '\n' ';')"
        fi
fi

q10=$(qemu_bin 10)
if [ ! -c /dev/iommu ]; then
        skip qemu-iommufd "no /dev/iommu: this kernel has no iommufd (Debian's leave it out; own-6.12 has it)"
elif [ -z "$q10" ]; then
        skip qemu-iommufd "no QEMU 10 in this guest (rig-qemu.sh could not fetch it)"
else
        # While QEMU holds the bound cdev: the group node is EBUSY, QEMU's fds are the two handed over.
        while_held() {
                qpid=$(broker_fact qemu-iommufd pid | cut -d' ' -f1)
                fds=$(for f in /proc/"$qpid"/fd/*; do readlink "$f"; done 2>/dev/null |
                        grep -E '^/dev/(iommu|vfio)' | sort | tr '\n' ' ')
                busy=$( (exec 5<>/dev/vfio/3) 2>&1)
                if echo "$fds" | grep -q '/dev/iommu' && echo "$fds" | grep -q '/dev/vfio/devices/vfio' &&
                        ! echo "$fds" | grep -q '/dev/vfio/3' && echo "$busy" | grep -qi 'busy'; then
                        pass qemu-iommufd-held "QEMU (uid $(stat -c %u /proc/"$qpid")) holds ${fds% }; /dev/vfio/3: busy"
                else
                        fail qemu-iommufd-held "QEMU's fds '$fds'; opening /dev/vfio/3: '${busy:-it opened}'"
                fi
        }
        QMP_DIR=/tmp/qmp-iommufd
        qmp_prepare $QMP_DIR
        t0=$(now_ms)
        # shellcheck disable=SC2046 # the helpers print argument lists
        broker_start qemu-iommufd 256M iommufd \
                "$q10" $(qemu_base_args $QMP_DIR) $(qemu_iommufd_args '{iommufd}' '{device}')
        REALIZED_HOOK=while_held realize qemu-iommufd
        REALIZED_HOOK=
        mode=$(broker_fact qemu-iommufd rlimit-mode)
        cdev=$(broker_fact qemu-iommufd cdev)
        if [ "$mode" = "1 (per-process)" ] && [ -n "$cdev" ]; then
                pass qemu-iommufd-handed "IOMMU_OPTION_RLIMIT_MODE reads back $mode; ${cdev% fd*} from vfio-dev/; QEMU $(qemu_version 10) ran $(($(now_ms) - t0)) ms"
        else
                fail qemu-iommufd-handed "rlimit-mode '$mode', cdev '$cdev'"
                broker_log qemu-iommufd
        fi
        restored qemu-iommufd

        # Per-process accounting charges QEMU: 16 MiB cannot pin a 64 MiB guest.
        QMP_DIR=/tmp/qmp-memlock
        qmp_prepare $QMP_DIR
        # shellcheck disable=SC2046
        broker_start qemu-iommufd-memlock 16M iommufd \
                "$q10" $(qemu_base_args $QMP_DIR) $(qemu_iommufd_args '{iommufd}' '{device}')
        wait_until 600 dead "$BROKER_PID"
        wait "$BROKER_PID"
        BROKER_RC=$?
        qexit=$(broker_fact qemu-iommufd-memlock exit)
        why=$(grep -m1 -E 'Cannot allocate memory|= -12' /tmp/qemu-iommufd-memlock.out)
        if [ -n "$qexit" ] && [ "$qexit" != 0 ] && [ -n "$why" ] && is_on $dev e1000e &&
                wait_until 20 node_gone 3; then
                pass qemu-iommufd-memlock "RLIMIT_MEMLOCK 16M < 64M of guest RAM: QEMU exit $qexit ($(echo "$why" | sed 's/^.*memory listener/memory listener/' | cut -c1-160)); e1000e back"
        else
                fail qemu-iommufd-memlock "QEMU exit '$qexit' (expected a failure to map: ENOMEM), 00:03.0 on '$(driver_of $dev)'"
                broker_log qemu-iommufd-memlock
        fi
fi

# ---------------------------------------------------------------------------------------------
qv=
if [ -c /dev/iommu ] && qemu_bin 10 >/dev/null; then qv=10; elif qemu_bin 7.2 >/dev/null; then qv=7.2; fi
if [ -z "$qv" ]; then
        skip qemu-node-grant "no QEMU in this guest (rig-qemu.sh could not provide one)"
else
        QMP_DIR=/tmp/qmp-grant
        qmp_prepare $QMP_DIR
        t0=$(now_ms)
        # shellcheck disable=SC2046
        broker_start qemu-node-grant 256M node-grant \
                "$(qemu_bin $qv)" $(qemu_base_args $QMP_DIR) $(qemu_host_args $dev)
        realize qemu-node-grant
        granted=$(broker_fact qemu-node-grant granted)
        ungranted=$(broker_fact qemu-node-grant ungranted)
        if [ -n "$granted" ] && [ -n "$ungranted" ]; then
                pass qemu-node-grant-granted "QEMU $(qemu_version $qv) as uid $uid opened it itself: granted ${granted}; put back: ${ungranted#/dev/vfio/3 }; $(($(now_ms) - t0)) ms"
        else
                fail qemu-node-grant-granted "granted '$granted', put back '$ungranted'"
                broker_log qemu-node-grant
        fi
        restored qemu-node-grant
        # Without the grant, the same uid cannot open the group (bound again, for the check only).
        echo vfio-pci >"$pci/$dev/driver_override"
        echo $dev >"$pci/$dev/driver/unbind"
        echo $dev >/sys/bus/pci/drivers_probe
        denied=$(vfio-broker run-as --uid $uid --gid $uid -- sh -c 'exec 5<>/dev/vfio/3' 2>&1)
        echo >"$pci/$dev/driver_override"
        echo $dev >"$pci/$dev/driver/unbind"
        echo $dev >/sys/bus/pci/drivers_probe
        if echo "$denied" | grep -qi 'denied'; then
                pass qemu-node-grant-revoked "uid $uid without the grant: /dev/vfio/3 permission denied"
        else
                fail qemu-node-grant-revoked "uid $uid opening /dev/vfio/3 without the grant: '${denied:-it opened}'"
        fi
        wait_until 20 is_on $dev e1000e
fi
put_kvm_back
