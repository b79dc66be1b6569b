#!/bin/sh
# shellcheck shell=dash
# Memlock on POWER, by libvirt's ppc64 rule: `groupctl memlock` gives the same figure before a lease and
# during one, and it is libvirt's (computed here in KiB, as libvirt does); the D-Bus MemlockLimit (on the
# guest's own system bus) says the same, before and during; groupd sets exactly that on the
# owner at acquire (--guest-ram; /proc/PID/limits); it covers what the kernel charges: a VMM given that
# limit (CAP_IPC_LOCK dropped, so that the limit applies) sets sPAPR v1, VFIO_IOMMU_ENABLE charges the
# whole DMA32 window to locked_vm (VmLck) and its maps work; a VMM given one IOMMU page less than that
# charge gets ENOMEM from ENABLE.
. /groupd/ppc-lib.sh

RAM_MIB=256
ram=$((RAM_MIB * 1048576))
# libvirt, KiB: max/128 + 4096*PHBs + 8192 + MAX(2 GiB*PHBs, mem + mem/512*PHBs + 8192), one PHB.
kib=$((ram / 1024))
pt=$((kib + kib / 512 + 8192))
[ $pt -lt 2097152 ] && pt=2097152
libvirt=$(((kib / 128 + 4096 + 8192 + pt) * 1024))

# A system bus of the guest's own, open to root, so that groupd serves org.groupd1 on it.
BUS_PID=
if command -v dbus-daemon >/dev/null; then
        mkdir -p /run/dbus
        cat >/run/dbus/rig.conf <<'CONF'
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
        dbus-daemon --config-file=/run/dbus/rig.conf --nofork --nopidfile >/tmp/dbus.log 2>&1 &
        BUS_PID=$!
        wait_until 50 test -S /run/dbus/system_bus_socket || note "dbus-daemon did not start: $(cat /tmp/dbus.log)"
fi
bus_figure() {
        dbus-send --system --print-reply --dest=org.groupd1 /org/groupd1 org.groupd1.Manager.MemlockLimit \
                array:string:"$EDU_GROUP" uint64:$ram boolean:false 2>&1 | sed -n 's/^ *uint64 \([0-9]*\)$/\1/p'
}
bus_stop() { [ -n "$BUS_PID" ] && kill "$BUS_PID" 2>/dev/null && wait "$BUS_PID" 2>/dev/null; }

if ! daemon_start; then
        fail memlock "groupd did not start"
        bus_stop
        exit 0
fi
figure() { groupctl memlock "$EDU_GROUP" --guest-ram ${RAM_MIB}M --json 2>&1 | sed -n 's/.*"memlock":\([0-9]*\).*/\1/p'; }
before=$(figure)
if [ "$before" = "$libvirt" ] && groupctl memlock "$EDU_GROUP" --guest-ram ${RAM_MIB}M --json | grep -q '"rule":"ppc64"'; then
        pass memlock-libvirt-rule "$before bytes for ${RAM_MIB} MiB of guest RAM, as libvirt's ppc64 rule gives"
else
        fail memlock-libvirt-rule "groupctl memlock says '$before', libvirt's ppc64 rule $libvirt: $(groupctl memlock "$EDU_GROUP" --guest-ram ${RAM_MIB}M --json 2>&1)"
fi

if [ -n "$BUS_PID" ]; then
        dbus_before=$(bus_figure)
        if [ "$dbus_before" = "$before" ]; then
                pass memlock-dbus-agrees "MemlockLimit over D-Bus: $dbus_before"
        else
                fail memlock-dbus-agrees "MemlockLimit over D-Bus said '$dbus_before' ($(dbus-send --system --print-reply --dest=org.groupd1 /org/groupd1 org.groupd1.Manager.MemlockLimit array:string:"$EDU_GROUP" uint64:$ram boolean:false 2>&1 | tr '\n' ' ')), groupctl $before"
        fi
else
        skip memlock-dbus-agrees "no dbus-daemon in this rig"
fi

# During a lease (groupd set the IOMMU type, so groupd knows the container's DMA32 window): the same
# figure, over both, and the one groupd set on the owner.
if acquire_exec /tmp/acq-ml.out "$EDU_GROUP" --label vm-ml --configure-iommu --guest-ram ${RAM_MIB}M --exec -- spapr-standin probe --hold 60; then
        during=$(figure)
        [ -n "$BUS_PID" ] && [ "$(bus_figure)" != "$before" ] && during="$during (D-Bus: $(bus_figure))"
        soft=$(awk '/^Max locked memory/ { print $4 }' "/proc/$VMM_PID/limits")
        hard=$(awk '/^Max locked memory/ { print $5 }' "/proc/$VMM_PID/limits")
        if [ "$during" = "$before" ] && [ "$soft" = "$before" ] && [ "$hard" = "$before" ]; then
                pass memlock-same-during-lease "before $before, during $during; the owner's RLIMIT_MEMLOCK $soft/$hard"
        else
                fail memlock-same-during-lease "before $before, during '$during', the owner's limit '$soft'/'$hard'"
        fi
        kill -TERM "$VMM_PID"
        wait_until 150 node_gone "$EDU_GROUP" || fail memlock-release "/dev/vfio/$EDU_GROUP still there"
else
        fail memlock-same-during-lease "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null

# v1 with exactly groupd's figure: ENABLE charges the DMA32 window, the maps work.
v1() {
        acquire_exec "$1" "$EDU_GROUP" --label vm-v1 --exec -- spapr-standin v1 --limit "$2" --map 16777216 || return 1
        wait "$ACQ_PID" 2>/dev/null
        wait_until 150 node_gone "$EDU_GROUP"
}
if v1 /tmp/v1-ok.out "$before"; then
        sed 's/^/    /' /tmp/v1-ok.out
        charged=$(sed -n 's/^VMLCK-ENABLED \([0-9]*\) kB/\1/p' /tmp/v1-ok.out)
        if grep -q '^STEP enable ok' /tmp/v1-ok.out && grep -q '^STEP map-dma ok' /tmp/v1-ok.out &&
                [ "$((charged * 1024))" = "$DMA32_SIZE" ] && [ "$before" -ge "$((charged * 1024))" ]; then
                pass memlock-v1-enough "with RLIMIT_MEMLOCK $before: ENABLE charged $charged kB (the DMA32 window), 16 MiB mapped"
        else
                fail memlock-v1-enough "with RLIMIT_MEMLOCK $before: $(grep -E '^(STEP|VMLCK)' /tmp/v1-ok.out | tr '\n' '|')"
        fi
        # One IOMMU page (64 KiB here) short of the kernel's charge: ENABLE fails with ENOMEM.
        short=$((charged * 1024 - 65536))
        if v1 /tmp/v1-short.out "$short" || true; then
                if grep -q '^STEP enable ENOMEM' /tmp/v1-short.out && grep -q '^VMLCK-ENABLED 0 kB' /tmp/v1-short.out; then
                        pass memlock-v1-less-fails "with RLIMIT_MEMLOCK $short (one page under the charge): ENABLE gets ENOMEM, nothing charged"
                else
                        fail memlock-v1-less-fails "with RLIMIT_MEMLOCK $short: $(grep -E '^(STEP|VMLCK)' /tmp/v1-short.out | tr '\n' '|')"
                fi
        fi
else
        fail memlock-v1-enough "acquire failed"
        daemon_log_tail
fi
daemon_stop
bus_stop
