#!/bin/sh
# shellcheck shell=dash
# KVM-HV on POWER: a stand-in VMM with a real VM (spapr-standin kvm) acquires the lone edu's group through
# libgroupd with its kvm-vfio device; libgroupd registers the group (a second ADD gets EEXIST). The VM's
# TCE table for the DMA32 window is refused by the kernel before the group's hardware window exists
# (EINVAL), and gd_client_lease_set_spapr_tce() succeeds anyway (the library makes the default window
# exist first); a table for a 64-bit window nobody created is refused with an error naming what to do
# first; the DMA32 window takes a map; the release deletes the group from KVM (DEL: ENOENT) and the
# device goes back to no driver. And the kernel has no WARNING to give: 6.12 warns once when a group
# leaves kvm-vfio without ever having had its TCE table set (the x86 order), which this order avoids.
. /groupd/ppc-lib.sh

if [ ! -c /dev/kvm ]; then
        skip kvm "no /dev/kvm (kvm_hv did not load)"
        exit 0
fi
if ! daemon_start; then
        fail kvm "groupd did not start"
        exit 0
fi
warn0=$(dmesg | grep -c 'WARNING:')
spapr-standin kvm "$EDU_GROUP" >/tmp/kvm.out 2>&1
st=$?
sed 's/^/    /' /tmp/kvm.out
if [ $st -eq 77 ]; then
        skip kvm "no KVM-HV VM here: $(grep -E '^(SKIP|STEP create-vm)' /tmp/kvm.out)"
else
        for c in kvm-registered iommu-type kernel-refuses-early library-orders-tce library-explains-64bit window-usable kvm-deleted; do
                line=$(grep "^CHECK $c " /tmp/kvm.out)
                case $line in
                "CHECK $c PASS"*) pass "kvm-$c" "${line#"CHECK $c PASS "}" ;;
                "") fail "kvm-$c" "the stand-in did not get that far (exit $st)" ;;
                *) fail "kvm-$c" "${line#"CHECK $c FAIL "}" ;;
                esac
        done
fi
warn1=$(dmesg | grep -c 'WARNING:')
if [ $st -ne 77 ]; then
        if [ "$warn1" = "$warn0" ]; then
                pass kvm-no-kernel-warning "no kernel WARNING during the VM's life"
        else
                fail kvm-no-kernel-warning "the kernel warned: $(dmesg | grep -A3 'WARNING:' | tail -n 4 | tr '\n' '|')"
        fi
fi
if wait_until 150 node_gone "$EDU_GROUP" && [ -z "$(driver_of "$EDU_DEV")" ] && wait_until 50 no_leases; then
        pass kvm-released "/dev/vfio/$EDU_GROUP gone, $EDU_DEV on no driver, no lease"
else
        fail kvm-released "after the release: $EDU_DEV on '$(driver_of "$EDU_DEV")', leases '$(groupctl leases --no-legend)'"
fi
daemon_stop
