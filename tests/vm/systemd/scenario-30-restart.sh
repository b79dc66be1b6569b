#!/bin/sh
# shellcheck shell=dash
# Leases of every owner kind meant to outlive the daemon survive `systemctl restart groupd` and a
# SIGKILL (Restart=on-failure), with their fds from the fd store, and their VMMs go on using their fds:
#   P  group 3, owned by a process (groupctl acquire --exec, the owner's pidfd)
#   F  group 6 (two devices), owned by a lease fd the VMM keeps (libgroupd)
#   Q  the groups of 01:00.0 (e1000e) and 00:01.0 (edu), owned by a process (libgroupd, its own pidfd)
# while C, group 00:02.0's, owned by groupctl's connection, ends with the daemon (groupd(8)). Then near
# FileDescriptorStoreMax: with the store exactly full the leases survive again; of two more leases whose
# fds no longer fit, R (a process's) is still kept (found by pid and start time, groupd(8)) and S (a lease
# fd's) ends. All in the legacy delivery, named (lease-vmm checks a container and groups, and auto is
# iommufd on own-6.12); scenario-20 takes each mode through acquire and release.


has_lease() { groupctl leases --no-legend 2>/dev/null | awk '{ print $2 }' | grep -qx "$1"; }
leases_line() { groupctl leases --no-legend 2>/dev/null | awk '{ print $2 }' | sort | tr '\n' ' '; }

start_vmm() {   # start_vmm OUT ARGS...: lease-vmm acquire ARGS in the background; waits for "CHECK ok"
        out=$1
        shift
        lease-vmm acquire "$@" >"$out" 2>&1 &
        LVMM=$!
        wait_until 150 file_has "$out" 'CHECK ' && file_has "$out" 'CHECK ok'
}

# recheck NAME OUT PID: SIGUSR2 to a lease-vmm, which uses its fds again.
recheck() {
        n=$(grep -c RECHECK "$2")
        kill -USR2 "$3"
        i=0
        while [ "$(grep -c RECHECK "$2")" -le "$n" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        tail -n 1 "$2" | grep -q '^RECHECK ok'
}

groupctl status >/dev/null
if ! acquire_exec /tmp/p.out 3 --label sd-P --delivery=legacy --exec -- lease-vmm env; then
        fail restart-setup "lease P"
        exit 0
fi
p_vmm=$VMM_PID
wait_until 50 file_has /tmp/p.out 'CHECK ok'
start_vmm /tmp/f.out --lease-fd --label sd-F 6 || { fail restart-setup "lease F: $(cat /tmp/f.out)"; exit 0; }
f_vmm=$LVMM
start_vmm /tmp/q.out --label sd-Q 0000:01:00.0 0000:00:01.0 || { fail restart-setup "lease Q: $(cat /tmp/q.out)"; exit 0; }
q_vmm=$LVMM
groupctl acquire 0000:00:02.0 --label sd-C >/tmp/c.out 2>&1 &

wait_until 100 has_lease sd-C
stored=$(fd_store_count)
# P 3 (container, group, owner) + F 3 + Q 4 + C 0
if [ "$stored" = 10 ]; then
        pass restart-setup "leases P (process), F (lease fd), Q (process, 2 groups), C (connection); 10 fds stored"
else
        fail restart-setup "NFileDescriptorStore '$stored', expected 10; leases: $(groupctl leases --no-legend | tr '\n' '|')"
fi

KEPT="sd-F sd-P sd-Q "
kept_all() { [ "$(leases_line)" = "$KEPT" ]; }
groups_held() {
        [ "$(driver_of 0000:00:03.0)" = vfio-pci ] && [ "$(group_state 6)" = "0000:00:06.0=vfio-pci 0000:00:06.1=vfio-pci" ] &&
                [ "$(driver_of 0000:01:00.0)" = vfio-pci ] && [ "$(driver_of 0000:00:01.0)" = vfio-pci ]
}

# check_kept NAME OLD_PID: after a restart, everything but C is kept, with fds, and the VMMs work.
check_kept() {
        name=$1 old=$2
        if ! wait_until 200 is_active || [ "$(main_pid)" = "$old" ] || [ -z "$(main_pid)" ] || [ "$(main_pid)" = 0 ]; then
                fail "$name" "groupd did not come back: $(unit_state), pid $(main_pid) (was $old)"
                groupd_journal | tail -n 15 | sed 's/^/    /'
                return
        fi
        groupctl status >/dev/null 2>&1
        wait_until 100 kept_all
        pid=$(main_pid)
        own=$(vfio_fds_of "$pid")
        want_own="/dev/vfio/$(group_of 0000:00:01.0) /dev/vfio/3 /dev/vfio/6 /dev/vfio/$(group_of 0000:01:00.0) /dev/vfio/vfio /dev/vfio/vfio /dev/vfio/vfio"
        want_own=$(echo "$want_own" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
        okp=no okf=no okq=no
        recheck P /tmp/p.out "$p_vmm" && okp=yes
        recheck F /tmp/f.out "$f_vmm" && okf=yes
        recheck Q /tmp/q.out "$q_vmm" && okq=yes
        if kept_all && groups_held && [ "$own" = "$want_own" ] && [ $okp$okf$okq = yesyesyes ] &&
                [ "$(fd_store_count)" = 10 ]; then
                pass "$name" "groupd $old → $pid kept P, F, Q with their fds ($own), 10 in the store; the VMMs' fds work: $(tail -n 1 /tmp/q.out | cut -c1-120)"
        else
                fail "$name" "leases '$(leases_line)', groups held: $(groups_held && echo yes || echo no), groupd's fds '$own' (want '$want_own'), rechecks P $okp F $okf Q $okq, store $(fd_store_count)"
                groupd_journal | tail -n 20 | sed 's/^/    /'
        fi
        vf=$(vfio_fds_of "$f_vmm")
        note "F's VMM holds: $vf (raw: $(ls -l /proc/"$f_vmm"/fd 2>/dev/null | awk '/vfio|-> \/[0-9]/ { print $NF }' | tr '\n' ' '))"
}

# 1. systemctl restart
old=$(main_pid)
journal_mark
systemctl restart groupd.service
check_kept restart-keeps-leases "$old"
if wait_until 50 is_baseline 0000:00:02.0 && ! has_lease sd-C; then
        pass restart-ends-connection-lease "C ended with the daemon; 00:02.0 back to '$(driver_of 0000:00:02.0)'"
else
        fail restart-ends-connection-lease "leases '$(leases_line)', 00:02.0 on '$(driver_of 0000:00:02.0)'"
fi
d=$(denials)
[ -z "$d" ] && pass restart-no-denial || fail restart-no-denial "$(echo "$d" | head -n 5 | tr '\n' '|')"

# 2. SIGKILL: systemd restarts it (Restart=on-failure). With FileDescriptorStoreMax=10 from here on, the
# store is exactly full.
mkdir -p /etc/systemd/system/groupd.service.d
printf '[Service]\nFileDescriptorStoreMax=10\n' >/etc/systemd/system/groupd.service.d/rig-fdstore.conf
systemctl daemon-reload
old=$(main_pid)
nr=$(n_restarts)
systemctl kill -s KILL groupd.service
wait_until 100 restarted_since "$nr"
check_kept sigkill-fdstore-full-keeps-leases "$old"

# 3. Two more leases whose fds do not fit: R, group 02:00.0's, owned by a process, and S, 00:02.0's,
# owned by a lease fd. systemd closes the fds beyond the limit and groupd is not told (252 passes no
# $FDSTORE), so after the restart groupd(8)'s rule for leases without stored fds applies: R is kept
# (its owner is alive), S ends and its device goes home, though its VMM still holds its fds.
journal_mark
start_vmm /tmp/r.out --label sd-R 0000:02:00.0 || fail fdstore-over "lease R: $(cat /tmp/r.out)"
r_vmm=$LVMM
start_vmm /tmp/s.out --lease-fd --label sd-S 0000:00:02.0 || fail fdstore-over "lease S: $(cat /tmp/s.out)"
s_vmm=$LVMM
over=$(journal_since_mark | grep -iE 'fd store|file descriptor|FileDescriptorStoreMax|EXFULL|Too many' | head -n 3 | tr '\n' '|')
note "store $(fd_store_count) after R; journal: $over"
old=$(main_pid)
systemctl restart groupd.service
wait_until 200 is_active
groupctl status >/dev/null 2>&1
okr=no
recheck R /tmp/r.out "$r_vmm" && okr=yes
if groupctl leases --no-legend | grep -q sd-R && [ "$(driver_of 0000:02:00.0)" = vfio-pci ] && [ $okr = yes ]; then
        pass fdstore-over-process-lease-kept "R (no room in the store) kept for its live owner after the restart, its VMM's fds work; store $(fd_store_count)"
else
        fail fdstore-over-process-lease-kept "leases '$(leases_line)', 02:00.0 on '$(driver_of 0000:02:00.0)', R's recheck $okr"
        groupd_journal | tail -n 20 | sed 's/^/    /'
fi
s_gone() { ! has_lease sd-S; }
if wait_until 100 s_gone && wait_until 100 is_baseline 0000:00:02.0; then
        pass fdstore-over-lease-fd-lease-ends "S (lease fd, no room in the store) ended at the restart, 00:02.0 went home; its VMM still holds '$(vfio_fds_of "$s_vmm")'"
else
        fail fdstore-over-lease-fd-lease-ends "leases '$(leases_line)', 00:02.0 on '$(driver_of 0000:00:02.0)'"
fi
KEPT="sd-F sd-P sd-Q sd-R "
check_kept fdstore-over-keeps-others "$old"

# The owners go; every lease ends and every device goes home.
kill "$p_vmm" "$f_vmm" "$q_vmm" "$r_vmm" "$s_vmm" 2>/dev/null
if wait_until 150 no_leases && wait_until 100 baseline_clean; then
        pass restart-owners-end "the owners exited: no lease left, every device home; store $(fd_store_count)"
else
        fail restart-owners-end "leases '$(leases_line)', devices: $(baseline_diff)"
fi
