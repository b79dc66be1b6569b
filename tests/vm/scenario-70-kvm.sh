#!/bin/sh
# shellcheck shell=dash
# KVM registration, DMA facts and memlock on the real kernel (issue 5). The guest has /dev/kvm through
# nested SVM (TCG emulates it). The kernel lets only the VM's own process use its kvm-vfio device (EIO for
# anyone else, groupd included), so libgroupd registers the groups inside the VMM. vmm-standin kvm forks a
# VMM that makes a VM and a kvm-vfio device and acquires group 3 with it:
#   - the ADD happened: the VMM's own second ADD of the group gets EEXIST;
#   - anyone else gets EIO on that device (what groupd would get);
#   - after a release through libgroupd, the DEL happened: the VMM's DEL gets ENOENT, and the group can
#     be acquired again (a kvm-vfio device still holding it would make /dev/vfio/3 EBUSY);
#   - with the VMM SIGKILLed, the kernel drops the registration: the group can be acquired again;
#   - with --guest-ram, the owner's RLIMIT_MEMLOCK is raised (prlimit) to libvirt's figure.
# It also shows `groupctl dma 00:03.0` and `groupctl memlock 00:03.0 --guest-ram 8G` for its leased group.

modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null || true
if [ ! -e /dev/kvm ]; then
        skip kvm "no /dev/kvm in the guest (no nested SVM/VMX)"
        exit 0
fi
if ! daemon_start; then
        fail kvm "groupd did not start"
        exit 0
fi

# standin NAME ARGS...: runs vmm-standin kvm ARGS, turns its CHECK lines into SCENARIO lines.
standin() {
        name=$1
        shift
        out=/tmp/standin-$name.out
        timeout 60 vmm-standin kvm "$@" >"$out" 2>&1
        rc=$?
        if [ "$rc" -eq 77 ]; then
                skip "kvm-$name" "$(sed -n 's/^SKIP //p' "$out")"
                return
        fi
        sed -n 's/^CHECK \([a-z-]*\) \(PASS\|FAIL\): \(.*\)$/SCENARIO kvm-'"$name"'-\1 \2 \3/p' "$out"
        if [ "$rc" -ne 0 ] || ! grep -q '^RESULT PASS' "$out"; then
                fail "kvm-$name" "vmm-standin exited $rc"
                sed 's/^/    /' "$out"
                daemon_log_tail
        fi
        if ! wait_until 100 is_on 0000:00:03.0 e1000e; then
                fail "kvm-$name-restored" "00:03.0 is on '$(driver_of 0000:00:03.0)' after the lease"
        fi
}

standin release --configure-iommu --end release "$NIC"
standin killed --end kill "$NIC"
standin control --end release-keep-kvm "$NIC"
standin memlock --guest-ram 8G --end release "$NIC"

# The DMA facts of a leased group 3, and the memlock figure, as groupctl shows them.
if acquire_exec /tmp/dma3.out "$NIC" --configure-iommu --label dma --exec -- vmm-standin --hold 60; then
        dma=$(groupctl dma "$NIC" 2>&1)
        mem=$(groupctl memlock "$NIC" --guest-ram 8G 2>&1)
        if echo "$dma" | grep -q "lease's container" && echo "$dma" | grep -q "0x00000000fef00000" &&
           echo "$mem" | grep -q "^9663676416 bytes"; then
                pass kvm-dma-facts "groupctl dma $NIC: IOVA ranges around the MSI window; memlock 9 GiB for 8 GiB"
        else
                fail kvm-dma-facts "unexpected output"
        fi
        note "\$ groupctl dma $NIC"
        echo "$dma" | sed 's/^/    /'
        note "\$ groupctl memlock "$NIC" --guest-ram 8G"
        echo "$mem" | sed 's/^/    /'
        note "\$ groupctl dma "$NIC" --json"
        groupctl dma "$NIC" --json 2>&1 | sed 's/^/    /'
        groupctl release "$TOKEN" >/dev/null 2>&1
        kill -TERM "$VMM_PID" 2>/dev/null
        wait "$ACQ_PID" 2>/dev/null
        wait_until 100 is_on 0000:00:03.0 e1000e
else
        fail kvm-dma-facts "acquire failed"
        daemon_log_tail
fi

daemon_stop
d=$(baseline_diff)
if [ -z "$d" ]; then
        pass kvm-baseline "every device back as at boot"
else
        fail kvm-baseline "$d"
fi
