#!/bin/sh
# shellcheck shell=dash
# Acquire and release under the shipped sandbox, in each delivery mode (MODES): groups 3 (e1000e) and 6
# (edu + e1000) in one lease, handed to a stand-in VMM that uses them; the fds in the fd store while the
# lease lives; the drivers back after the release; and no denial in the journal. Then the same again
# with the system call filter made to kill instead of answering EPERM (a drop-in resetting
# SystemCallErrorNumber=): a call the filter refuses would then kill groupd, and the kernel would log it.

run_once() {
        mode=$1 variant=$2 name=acquire-$1-$2
        journal_mark
        if ! acquire_exec /tmp/acq.out 3 6 --label "sd-$mode" $(acquire_args "$mode") --exec -- vmm-standin --hold 60; then
                fail "$name" "the acquire did not get to the stand-in"
                groupd_journal | tail -n 15 | sed 's/^/    /'
                return
        fi
        pid=$(main_pid)
        s="$(driver_of 0000:00:03.0) $(group_state 6)"
        vmm_fds=$(vfio_fds_of "$VMM_PID")
        own_fds=$(vfio_fds_of "$pid")
        stored=$(fd_store_count)
        if [ "$s" = "vfio-pci 0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ] &&
                [ "$vmm_fds" = "/dev/vfio/3 /dev/vfio/6 /dev/vfio/vfio" ] &&
                grep -q 'group 3: viable, in container' /tmp/acq.out && grep -q 'group 6: viable, in container' /tmp/acq.out &&
                ! grep -q 'could not be used' /tmp/acq.out; then
                pass "$name" "the VMM uses its fds ($vmm_fds); groupd holds $own_fds; the fd store holds $stored"
        else
                fail "$name" "drivers '$s', VMM fds '$vmm_fds', stand-in said: $(tr '\n' '|' </tmp/acq.out | head -c 400)"
        fi
        # container, 2 groups, the owner's pidfd
        if [ "$stored" = 4 ]; then
                pass "$name-fd-store" "4 fds stored: container, group-3, group-6, owner"
        else
                fail "$name-fd-store" "NFileDescriptorStore is '$stored', expected 4"
        fi
        out=$(timeout 20 groupctl release "$TOKEN" 2>&1)
        st=$?
        if [ $st -eq 0 ] && wait_until 100 is_on 0000:00:03.0 e1000e && wait_until 100 is_on 0000:00:06.1 e1000 &&
                wait_until 50 node_gone 3 && wait_until 50 node_gone 6 && wait_until 50 no_leases; then
                pass "$name-release" "drivers back: 00:03.0 $(driver_of 0000:00:03.0), group 6 $(group_state 6); fd store $(fd_store_count)"
        else
                fail "$name-release" "release exited $st ($out); 00:03.0 '$(driver_of 0000:00:03.0)', group 6 '$(group_state 6)'"
        fi
        kill "$VMM_PID" 2>/dev/null
        wait "$ACQ_PID" 2>/dev/null
        if [ "$(fd_store_count)" != 0 ]; then
                fail "$name-fd-store-empty" "NFileDescriptorStore is '$(fd_store_count)' after the release"
        fi
        d=$(denials)
        if [ -z "$d" ] && [ "$(main_pid)" = "$pid" ] && is_active; then
                pass "$name-no-denial" "no seccomp, EPERM, EACCES, ENOENT or EROFS in the journal; groupd still pid $pid"
        else
                fail "$name-no-denial" "groupd pid $pid → $(main_pid) ($(unit_state)); journal: $(echo "$d" | head -n 5 | tr '\n' '|')"
        fi
}

for mode in $MODES; do
        run_once "$mode" shipped
done

mkdir -p /etc/systemd/system/groupd.service.d
printf '[Service]\nSystemCallErrorNumber=\n' >/etc/systemd/system/groupd.service.d/rig-seccomp-kill.conf
systemctl daemon-reload
systemctl restart groupd.service
for mode in $MODES; do
        run_once "$mode" seccomp-kill
done
