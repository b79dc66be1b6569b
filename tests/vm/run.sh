#!/usr/bin/env bash
# The real-kernel tier: boots Debian's own kernels in qemu (TCG) behind an emulated IOMMU and runs
# groupd's scenarios in the guest (tests/vm/scenario-*.sh, linux backend, real VFIO).
#
#   tests/vm/run.sh --build-dir BUILD [--line 6.1|6.12|own-6.12]... [--iommu intel|amd]... [--capture DIR]
#                   [--only REGEX] [--scenario-timeout SEC] [--guest-timeout SEC] [--verbose]
#
# By default every kernel line (6.1 from bookworm; 6.12 from bookworm-backports where apt can reach it,
# skipped with a message otherwise; own-6.12, the rig's own build of backports' linux-source-6.12 with
# iommufd, built once per machine by build-kernel.sh) boots with the Intel IOMMU and with the AMD
# IOMMU. Each guest also gets a QEMU (rig-qemu.sh): QEMU 10 from bookworm-backports on own-6.12,
# Debian's QEMU 7.2 on the stock lines; the scenarios that need one skip without it. Each boot prints
# the kernel's version string, each scenario with PASS or FAIL, and its time; the whole serial output
# goes to BUILD/vm/logs/LINE-IOMMU.log and is shown on failure (--verbose: always, as it comes).
#
# --only REGEX runs only the scenario files (tests/vm/scenario-NN-TOPIC.sh) whose NN-TOPIC matches.
#
# --scenario-timeout SEC (or RIG_SCENARIO_TIMEOUT): each topic's limit in the guest (default 120); a topic
# killed at it is reported as such. --guest-timeout SEC (or RIG_GUEST_TIMEOUT): the guest's watchdog,
# which powers it off without RIG-DONE (default 420); the host waits that plus 60 s.
#
# --capture DIR: the guests also capture their sysfs (IOMMU groups and PCI devices) and the raw
# VFIO_IOMMU_GET_INFO buffer (with VFIO_IOMMU_INFO_CAPS, asked again with the argsz the kernel wants)
# into DIR (tests/data): sysfs-LINE-IOMMU.tar.gz, iommu-info-LINE-IOMMU.hex (a '#' line naming kernel and
# IOMMU, then 16 bytes a line) and iommu-info-LINE-IOMMU.bin (the same bytes).
#
# Exit status: 0 all passed, 1 a scenario failed, a guest hung or did not finish, 77 the tier cannot
# run here (no qemu to be had, or no kernel package reachable).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"

build_dir= capture= verbose=0 only=
lines=() iommus=()
usage() {
        sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}
split_opts "$@"
set -- "${OPTS[@]}"
while [ $# -gt 0 ]; do
        case $1 in
        -v | --verbose) verbose=1; shift; continue ;;
        --build-dir | --line | --iommu | --capture | --only | --scenario-timeout | --guest-timeout) [ $# -ge 2 ] || usage ;;
        *) usage ;;
        esac
        case $1 in
        --build-dir) build_dir=$2 ;;
        --line) lines+=("$2") ;;
        --iommu) iommus+=("$2") ;;
        --capture) capture=$2 ;;
        --only) only=$2 ;;
        --scenario-timeout) RIG_SCENARIO_TIMEOUT=$2 ;;
        --guest-timeout) RIG_GUEST_TIMEOUT=$2 ;;
        esac
        shift 2
done
[ -n "$build_dir" ] || usage
x86_choices
build_dir=$(cd "$build_dir" && pwd)
if [ -n "$capture" ]; then
        mkdir -p "$capture"
        capture=$(cd "$capture" && pwd)
fi

log() { echo "run.sh: $*" >&2; }
skip_tier() {
        echo "real-kernel tier: SKIPPED: $*" >&2
        exit 77
}
unavailable() { skip_tier "$@"; }

# qemu and busybox from Debian; installed when missing (as root), quietly.
need_packages qemu-system-x86 busybox-static kmod xz-utils zstd
command -v qemu-system-x86_64 >/dev/null || skip_tier "no qemu-system-x86_64"
[ "$(id -u)" -eq 0 ] || skip_tier "the rig builder writes device nodes into the initramfs as root"

# The project's binaries for the guest.
for b in groupd groupctl vmm-standin bench-groupd; do
        [ -x "$build_dir/$b" ] || { echo "run.sh: $build_dir/$b is missing: build first (./dev build)" >&2; exit 1; }
done
scenario_files=("$here"/scenario-*.sh)

logs=$build_dir/vm/logs
mkdir -p "$logs"

# ---------------------------------------------------------------------------------------------
# boot LINE IOMMU: one guest run. Prints the rig's lines as they come; returns 0 when every scenario
# passed and RIG-DONE was seen.
QEMU_DEVICES=("${X86_DEVICES[@]}"
        -netdev hubport,id=n3,hubid=0 -device e1000,addr=07.0,multifunction=on,netdev=n3,romfile=
        -device edu,addr=07.1
        -netdev hubport,id=n4,hubid=0 -device e1000,addr=07.2,netdev=n4,romfile=
        -device pcie-root-port,id=rp3,chassis=3,slot=3,addr=08.0 -device pcie-pci-bridge,id=pb1,bus=rp3
        -netdev hubport,id=n5,hubid=0 -device e1000,bus=pb1,addr=01.0,netdev=n5,romfile=)
# RIG_PARALLEL_NICS=1 (bench/run.sh, issue 16): two more e1000e behind root ports of their own, so that four
# are in four groups (00:03.0, and those behind rp1, rp4, rp5) for scenario-91's parallel-preparation
# benchmark. Only then: the new bus-0 slots add groups that the usual rig's scenarios do not expect.
if [ "${RIG_PARALLEL_NICS:-0}" = 1 ]; then
        QEMU_DEVICES+=(-device pcie-root-port,id=rp4,chassis=4,slot=4,addr=09.0
                -netdev hubport,id=n6,hubid=0 -device e1000e,bus=rp4,netdev=n6,romfile=
                -device pcie-root-port,id=rp5,chassis=5,slot=5,addr=0a.0
                -netdev hubport,id=n7,hubid=0 -device e1000e,bus=rp5,netdev=n7,romfile=)
fi
GUEST_TIMEOUT=${RIG_GUEST_TIMEOUT:-420}
SCENARIO_TIMEOUT=${RIG_SCENARIO_TIMEOUT:-120}
case $GUEST_TIMEOUT$SCENARIO_TIMEOUT in *[!0-9]*) echo "run.sh: timeouts are whole seconds" >&2; exit 2 ;; esac

summary=()
failed=0

boot() {
        local line=$1 iommu=$2 log=$logs/$1-$2.log cmdline t0 t1 kver
        # shellcheck disable=SC1090
        . "$build_dir/vm/$line/rig.env"
        cmdline="console=ttyS0 iommu=nopt panic=-1 quiet rig.timeout=$GUEST_TIMEOUT rig.scenario_timeout=$SCENARIO_TIMEOUT rig.label=$line-$iommu"
        [ -n "$capture" ] && cmdline="$cmdline rig.capture=1"
        [ -n "$only" ] && cmdline="$cmdline rig.only=$only"
        x86_guest "$iommu" "$cmdline" "${QEMU_DEVICES[@]}"

        bold "=== kernel $line ($RIG_PKG $RIG_PKG_VERSION), $iommu IOMMU"
        t0=$(now)
        # The host's own limit: the guest's watchdog plus boot and slack. qemu's stdin is not the
        # terminal (it would take it over).
        timeout -k 5 $((GUEST_TIMEOUT + 60)) qemu-system-x86_64 "${guest_args[@]}" -initrd "$RIG_INITRD" </dev/null 2>&1 |
                tr -d '\r' | tee "$log" | tier_show $verbose "RIG-DAEMON-LOG RIG-CAPTURE" '^IOMMU: |^MODULES: |RIG-CAPTURE-FAIL' || true
        t1=$(now)

        tier_verdict "$log"
        kver=$(sed -n 's/^KERNEL: [^ ]* //p' "$log" | head -n 1)
        if [ -n "$capture" ]; then
                capture_out "$log" "$line" "$iommu" || why="${why:+$why, }capture failed"
        fi
        tier_result "$line/$iommu" "$t0" "$t1" "$log" 150 $verbose "${kver:-?}"
}

# capture_out LOG LINE IOMMU: the guest's captured sysfs tree and GET_INFO buffer into the capture dir.
# The tree is kept as a tarball: sysfs links go round in circles (device -> iommu_group -> devices ->
# device), which `make dist` (tar -h) would follow forever.
capture_out() {
        local log=$1 line=$2 iommu=$3 tmp=$logs/capture-$2-$3 out=$capture/sysfs-$2-$3.tar.gz
        awk '/RIG-CAPTURE-BEGIN sysfs/ { on = 1; next } /RIG-CAPTURE-END sysfs/ { on = 0 } on' "$log" >"$log.sysfs.b64"
        rm -rf "$tmp"
        mkdir -p "$tmp"
        if ! base64 -d "$log.sysfs.b64" | tar -xz -C "$tmp"; then
                echo "  capture: cannot unpack the sysfs capture of $line/$iommu" >&2
                return 1
        fi
        # Repacked the same way every time, so that an unchanged tree gives the same bytes.
        tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp" -cf - . | gzip -9n >"$out"
        rm -rf "$tmp"
        awk '/RIG-CAPTURE-BEGIN iommu-info/ { on = 1; next } /RIG-CAPTURE-END iommu-info/ { on = 0 } on' "$log" \
                >"$capture/iommu-info-$line-$iommu.hex"
        if ! grep -q '^[0-9a-f][0-9a-f] ' "$capture/iommu-info-$line-$iommu.hex"; then
                echo "  capture: no GET_INFO buffer from $line/$iommu" >&2
                return 1
        fi
        # The same bytes as a binary file, for parsers that want the buffer as the kernel filled it.
        perl -ne 'next if /^#/; s/\s+//g; print pack("H*", $_)' "$capture/iommu-info-$line-$iommu.hex" \
                >"$capture/iommu-info-$line-$iommu.bin"
        echo "  captured $out and $capture/iommu-info-$line-$iommu.{hex,bin}"
}

# ---------------------------------------------------------------------------------------------
t_all=$(now)
booted=0
for line in "${lines[@]}"; do
        t0=$(now)
        # The guest's QEMU: 10 (iommufd) with the own kernel, Debian's 7.2 with Debian's kernels.
        qemu_version=7.2 qemu_cpio=() rc=0
        [ "$line" = own-6.12 ] && qemu_version=10
        "$here/rig-qemu.sh" "$build_dir/vm/qemu-$qemu_version.cpio" "$qemu_version" || rc=$?
        if [ $rc -eq 0 ]; then
                qemu_cpio=(--cpio "$build_dir/vm/qemu-$qemu_version.cpio")
        elif [ $rc -eq 77 ]; then
                echo "  QEMU $qemu_version cannot be had here: the $line guest has none, its QEMU scenarios skip"
        else
                echo "run.sh: preparing QEMU $qemu_version for the guest failed (exit $rc)" >&2
                summary+=("FAIL  $line  QEMU $qemu_version for the guest")
                failed=1
                continue
        fi
        rc=0
        "$here/build-rig.sh" "$build_dir" "$line" \
                --bin "$build_dir/groupd" "$build_dir/groupctl" "$build_dir/vmm-standin" "$build_dir/bench-groupd" \
                --file "$here/guest-lib.sh" "$here/guest-qemu.sh" "${scenario_files[@]}" \
                --scenarios "$here/guest-run.sh" "${qemu_cpio[@]}" || rc=$?
        if [ $rc -eq 77 ]; then
                bold "=== kernel $line: SKIPPED (the kernel package cannot be had here; see above)"
                summary+=("SKIP  $line  kernel package not reachable")
                continue
        elif [ $rc -ne 0 ]; then
                echo "run.sh: building the $line rig failed (exit $rc)" >&2
                summary+=("FAIL  $line  rig build failed")
                failed=1
                continue
        fi
        echo "  rig $line ready in $(secs "$t0" "$(now)") s"
        for iommu in "${iommus[@]}"; do
                booted=$((booted + 1))
                boot "$line" "$iommu" || failed=1
        done
done

tier_end "real-kernel tier" "$t_all" $failed "$([ $booted -gt 0 ] || echo "no kernel line could be had")"
