#!/bin/sh
# shellcheck shell=dash
# Helpers of the systemd tier's scenarios (busybox sh), sourced after tests/vm/guest-lib.sh. Here groupd
# runs as the shipped units make it run: groupd.socket (enabled offline) and groupd.service, installed
# as `make install` lays them out; its log is the journal.

# The delivery modes the scenarios run through: one word a mode, its groupctl options in acquire_args,
# its stand-in VMM in vmm_args, and why a kernel cannot do it in mode_skip.
MODES="legacy iommufd node-grant"
# The uid a node grant is for: the stand-in VMM runs as it and opens the nodes itself.
GRANT_UID=65534
# acquire_args MODE: groupctl acquire's options for a delivery mode (legacy named, since auto is iommufd
# where the kernel has it).
acquire_args() {
        case $1 in
        legacy) echo "--delivery=legacy" ;;
        iommufd) echo "--delivery=iommufd" ;;
        node-grant) echo "--delivery=node-grant --grant-uid=$GRANT_UID" ;;
        *) return 1 ;;
        esac
}
# vmm_args MODE: the stand-in VMM's command line (it picks its mode from GROUPD_DELIVERY; a node grant's
# VMM is the granted uid, opening the nodes itself as QEMU -device vfio-pci,host= does).
vmm_args() {
        case $1 in
        node-grant) echo "vmm-standin as-uid $GRANT_UID -- vmm-standin node-grant --hold 60" ;;
        *) echo "vmm-standin --hold 60" ;;
        esac
}
# mode_skip MODE: why this kernel cannot do MODE; nothing when it can.
mode_skip() {
        case $1 in
        iommufd) [ -c /dev/iommu ] || echo "no /dev/iommu: this kernel has no iommufd (Debian's leave it out; own-6.12 has it)" ;;
        esac
}

UNIT=groupd.service

main_pid() { systemctl show -P MainPID "$UNIT"; }
unit_state() { systemctl show -P ActiveState "$UNIT"; }
is_active() { [ "$(unit_state)" = active ]; }
is_inactive() { [ "$(unit_state)" = inactive ] || [ "$(unit_state)" = failed ]; }
n_restarts() { systemctl show -P NRestarts "$UNIT"; }
# fd_store_count: how many fds systemd holds for groupd now.
fd_store_count() { systemctl show -P NFileDescriptorStore "$UNIT" 2>/dev/null; }

# The journal from the mark the runner set before the topic began (a cursor file).
journal_mark() { journalctl -n 0 --show-cursor -q 2>/dev/null | sed -n 's/^-- cursor: //p' >/run/rig-cursor; }
journal_since_mark() {
        if [ -s /run/rig-cursor ]; then
                journalctl -q --no-pager -o short-monotonic --after-cursor="$(cat /run/rig-cursor)" "$@"
        else
                journalctl -q --no-pager -o short-monotonic -b "$@"
        fi
}
groupd_journal() { journal_since_mark -u groupd.service -u groupd.socket "$@"; }

# denials: the journal lines since the mark that show the sandbox in the way: a system call the filter
# refused (audit SECCOMP, or groupd reporting EPERM / "Operation not permitted"), a device node or
# path missing in groupd's private view, a read-only file system.
denials() {
        {
                journal_since_mark -k | grep -iE 'audit.*(seccomp|type=1326)|apparmor="DENIED"'
                groupd_journal | grep -iE 'EPERM|Operation not permitted|Permission denied|No such file or directory|Read-only file system|ENOENT|EROFS|EACCES|seccomp'
        } 2>/dev/null
}

# baseline helpers on top of guest-lib.sh's
baseline_clean() { [ -z "$(baseline_diff)" ]; }
baseline_restore() {
        for pair in $BASELINE_DRIVERS; do
                d=${pair%%=*} want=${pair#*=}
                echo >"$pci/$d/driver_override" 2>/dev/null
                [ "$(driver_of "$d")" = "$want" ] && continue
                [ -L "$pci/$d/driver" ] && echo "$d" >"$pci/$d/driver/unbind" 2>/dev/null
                [ -n "$want" ] && echo "$d" >/sys/bus/pci/drivers_probe 2>/dev/null
        done
}

# rig_cleanup: after a topic, whatever it left: the VMMs and groupctl go (so their leases end), then
# groupd is stopped (releasing what is left), and a failed unit is reset for the next topic.
rig_cleanup() {
        for p in vmm-standin lease-vmm groupctl; do
                pids=$(pidof "$p")
                [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        done
        wait_until 100 no_leases_or_down
        systemctl stop groupd.service 2>/dev/null
        rm -f /etc/systemd/system/groupd.service.d/rig-*.conf /etc/polkit-1/rules.d/50-rig-*.rules
        systemctl daemon-reload
        systemctl reset-failed groupd.service groupd.socket 2>/dev/null
        systemctl start groupd.socket
}
no_leases_or_down() { ! is_active || no_leases; }

# is_baseline ADDR: the device is on its boot driver (none for a device BASELINE_DRIVERS does not name,
# such as the pci-testdev at 00:02.0), without an override.
is_baseline() {
        _want=
        for pair in $BASELINE_DRIVERS; do
                [ "${pair%%=*}" = "$1" ] && _want=${pair#*=}
        done
        [ "$(driver_of "$1")" = "$_want" ] && [ -z "$(override_of "$1")" ]
}
# restarted_since N: systemd restarted groupd since NRestarts was N, and it is up again.
restarted_since() { [ "$(n_restarts)" -gt "$1" ] && is_active; }

# dev_fds_of PID: the /dev/vfio/* and /dev/iommu fds PID holds, sorted, by the names /proc gives them.
dev_fds_of() {
        for f in /proc/"$1"/fd/*; do readlink "$f" 2>/dev/null; done | grep -E '^/dev/(iommu|vfio/)' | sort |
                tr '\n' ' ' | sed 's/ $//'
}
# cdev_of ADDR: the device's VFIO cdev node (/dev/vfio/devices/vfioN) when it is on a VFIO driver.
cdev_of() {
        for _c in "$pci/$1"/vfio-dev/vfio*; do
                [ -e "$_c" ] && echo "/dev/vfio/devices/${_c##*/}"
        done
}
# no_cdevs: no VFIO cdev node is left (every device is off vfio-pci).
no_cdevs() { [ -z "$(ls /dev/vfio/devices 2>/dev/null)" ]; }
# node_state PATH: "UID:GID MODE acl=HEX" (vmm-standin node-state; busybox has no getfacl).
node_state() { vmm-standin node-state "$1" 2>&1; }
# uid 65534's ACL entry in system.posix_acl_access: tag 2 (ACL_USER), perm 6 (rw), id 0xfffe, LE.
GRANT_ACL_ENTRY=02000600feff0000
ACQ_DEVS="0000:00:03.0 0000:00:06.0 0000:00:06.1"

# acquire_once MODE VARIANT: the acquire/release round of scenario-20 (and -25): groups 3 and 6 in one
# lease, in delivery MODE, handed to a stand-in VMM that uses what it gets; asserted on the kernel's state
# (drivers, the nodes and cdevs, who holds which fd, a node's ACL), the fd store, the drivers back after
# the release, and no denial in groupd's journal.
acquire_once() {
        mode=$1 variant=$2
        name=acquire-$mode-$variant
        why=$(mode_skip "$mode")
        if [ -n "$why" ]; then
                skip "$name" "$why"
                return
        fi
        journal_mark
        # shellcheck disable=SC2046 # the helpers print argument lists
        if ! acquire_exec /tmp/acq.out 3 6 --label "sd-$mode" $(acquire_args "$mode") --exec -- $(vmm_args "$mode"); then
                fail "$name" "the acquire did not get to the stand-in"
                groupd_journal | tail -n 15 | sed 's/^/    /'
                return
        fi
        pid=$(main_pid)
        s="$(driver_of 0000:00:03.0) $(group_state 6)"
        vmm_fds=$(dev_fds_of "$VMM_PID")
        own_fds=$(dev_fds_of "$pid")
        stored=$(fd_store_count)
        said=$(tr '\n' '|' </tmp/acq.out | head -c 600)
        ok=
        case $mode in
        legacy)
                want_stored="4 (container, group-3, group-6, owner)"
                [ "$vmm_fds" = "/dev/vfio/3 /dev/vfio/6 /dev/vfio/vfio" ] &&
                        grep -q 'group 3: viable, in container' /tmp/acq.out && grep -q 'group 6: viable, in container' /tmp/acq.out &&
                        ok=yes
                what="the VMM uses its fds ($vmm_fds); groupd holds $own_fds"
                ;;
        iommufd)
                want_stored="5 (iommufd, 3 devices, owner)"
                cdevs='' n_cdev=0
                for d in $ACQ_DEVS; do
                        c=$(cdev_of "$d")
                        [ -c "$c" ] && n_cdev=$((n_cdev + 1))
                        cdevs="$cdevs $c"
                done
                want_vmm=$(for c in /dev/iommu $cdevs; do echo "$c"; done | sort | tr '\n' ' ' | sed 's/ $//')
                # A bound cdev keeps the group's node shut (EBUSY): the two paths exclude each other.
                busy=$( (exec 5<>/dev/vfio/3) 2>&1)
                [ "$n_cdev" = 3 ] && [ "$vmm_fds" = "$want_vmm" ] &&
                        ! echo "$vmm_fds $own_fds" | grep -qE '/dev/vfio/([0-9]+|vfio)( |$)' &&
                        echo "$busy" | grep -qi busy &&
                        grep -q 'iommufd: rlimit-mode=process' /tmp/acq.out &&
                        [ "$(grep -c ': bound, attached to IOAS' /tmp/acq.out)" = 3 ] &&
                        grep -q '^Delivery: iommufd (an iommufd and the cdevs of 0000:00:03.0, 0000:00:06.0, 0000:00:06.1)' /tmp/acq.out &&
                        ok=yes
                what="the VMM holds $vmm_fds (per-process accounting, 3 cdevs bound and attached); groupd holds $own_fds; /dev/vfio/3 busy"
                ;;
        node-grant)
                want_stored="1 (owner)"
                g3=$(node_state /dev/vfio/3) g6=$(node_state /dev/vfio/6)
                [ "$vmm_fds" = "/dev/vfio/3 /dev/vfio/6" ] && [ -z "$own_fds" ] &&
                        echo "$g3" | grep -q "$GRANT_ACL_ENTRY" && echo "$g6" | grep -q "$GRANT_ACL_ENTRY" &&
                        [ "${g3%% *}" = 0:0 ] && [ "${g6%% *}" = 0:0 ] &&
                        grep -q "uid $GRANT_UID opened /dev/vfio/3" /tmp/acq.out && grep -q "uid $GRANT_UID opened /dev/vfio/6" /tmp/acq.out &&
                        grep -q "^Delivery: node-grant (uid $GRANT_UID may open /dev/vfio/3, /dev/vfio/6)" /tmp/acq.out &&
                        ok=yes
                what="uid $GRANT_UID opened the nodes itself ($vmm_fds); /dev/vfio/3 $g3, /dev/vfio/6 $g6; groupd holds ${own_fds:-no /dev/vfio fd}"
                ;;
        esac
        if [ "$s" = "vfio-pci 0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ] && [ -n "$ok" ] &&
                ! grep -q 'could not be used\|cannot open' /tmp/acq.out; then
                pass "$name" "$what"
        else
                fail "$name" "drivers '$s'; $what; groupctl and the stand-in said: $said"
        fi
        if [ "$stored" = "${want_stored%% *}" ]; then
                pass "$name-fd-store" "$want_stored stored"
        else
                fail "$name-fd-store" "NFileDescriptorStore is '$stored', expected $want_stored"
        fi
        # The VMM's device fds (the cdevs) hold the unbind from vfio-pci up: it lets go of them first, as a
        # VMM does when its guest is done with the devices. Legacy and node-grant hold only group fds,
        # which the kernel does not wait for.
        if [ "$mode" = iommufd ]; then
                kill -USR1 "$VMM_PID"
                wait_until 50 file_has /tmp/acq.out 'let go of' || note "the stand-in did not say it let go"
        fi
        out=$(timeout 20 groupctl release "$TOKEN" 2>&1)
        st=$?
        if [ $st -eq 0 ] && wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 100 is_on 0000:00:06.1 e1000 &&
                wait_until 50 node_gone 3 && wait_until 50 node_gone 6 && wait_until 50 no_cdevs && wait_until 50 no_leases; then
                pass "$name-release" "drivers back: 00:03.0 $(driver_of 0000:00:03.0), group 6 $(group_state 6); no node, no cdev; fd store $(fd_store_count)"
        else
                fail "$name-release" "release exited $st ($out); 00:03.0 '$(driver_of 0000:00:03.0)', group 6 '$(group_state 6)', cdevs '$(ls /dev/vfio/devices 2>/dev/null | tr '\n' ' ')'"
        fi
        if [ "$mode" = node-grant ]; then
                j=$(groupd_journal)
                if echo "$j" | grep -q '/dev/vfio/3: access as before' && echo "$j" | grep -q '/dev/vfio/6: access as before'; then
                        pass "$name-revoked" "groupd put both nodes' access back before the unbind"
                else
                        fail "$name-revoked" "groupd's journal says no 'access as before' for both nodes: $(echo "$j" | grep -i 'access' | tail -n 3 | tr '\n' '|')"
                fi
        fi
        kill "$VMM_PID" 2>/dev/null
        wait "$ACQ_PID" 2>/dev/null
        if [ "$(fd_store_count)" != 0 ]; then
                fail "$name-fd-store-empty" "NFileDescriptorStore is '$(fd_store_count)' after the release"
        fi
        no_denial "$name" "$pid"
}

# no_denial NAME PID: nothing in the journal since the mark shows the sandbox in the way, and groupd is
# still the same process.
no_denial() {
        d=$(denials)
        if [ -z "$d" ] && [ "$(main_pid)" = "$2" ] && is_active; then
                pass "$1-no-denial" "no seccomp, EPERM, EACCES, ENOENT or EROFS in the journal; groupd still pid $2"
        else
                fail "$1-no-denial" "groupd pid $2 → $(main_pid) ($(unit_state)); journal: $(echo "$d" | head -n 5 | tr '\n' '|')"
        fi
}

# grant_exact VARIANT: a node grant on a node that outlives the lease (00:03.0 bound to vfio-pci by hand
# before it, so groupd leaves it there): the node's owner, mode and ACL are exactly as before afterwards,
# and the uid the grant was for is refused again.
grant_exact() {
        name=acquire-node-grant-$1-exact
        dev=0000:00:03.0
        journal_mark
        echo vfio-pci >"$pci/$dev/driver_override"
        echo $dev >"$pci/$dev/driver/unbind"
        echo $dev >/sys/bus/pci/drivers_probe
        pid=$(main_pid)
        before=$(node_state /dev/vfio/3)
        # shellcheck disable=SC2046
        timeout 30 groupctl acquire 3 $(acquire_args node-grant) --exec -- \
                vmm-standin as-uid $GRANT_UID -- vmm-standin node-grant --hold 1 >/tmp/acq-exact.out 2>&1
        after=$(node_state /dev/vfio/3)
        denied=$(vmm-standin as-uid $GRANT_UID -- sh -c 'exec 5<>/dev/vfio/3' 2>&1)
        if grep -q "uid $GRANT_UID opened /dev/vfio/3" /tmp/acq-exact.out && grep -q 'ended: owner-exited' /tmp/acq-exact.out &&
                [ -n "$before" ] && [ "$after" = "$before" ] && is_on $dev vfio-pci && echo "$denied" | grep -q 'ermission denied' &&
                groupd_journal | grep -q '/dev/vfio/3: access as before'; then
                pass "$name" "granted, opened by uid $GRANT_UID, then /dev/vfio/3 exactly as before ($after); uid $GRANT_UID refused again"
        else
                fail "$name" "node '$after', before '$before'; 00:03.0 on '$(driver_of $dev)'; uid $GRANT_UID: '${denied:-it opened}'; said: $(tr '\n' '|' </tmp/acq-exact.out | head -c 400)"
        fi
        echo >"$pci/$dev/driver_override"
        echo $dev >"$pci/$dev/driver/unbind"
        echo $dev >/sys/bus/pci/drivers_probe
        wait_until 50 is_on $dev e1000e
        no_denial "$name" "$pid"
}
