#!/usr/bin/env bash
# The ppc64le tier: boots bookworm-backports' 6.12 ppc64el kernel on qemu's pseries and powernv9 machines
# (TCG) and runs groupd's scenarios in the guest against the real sPAPR VFIO stack and KVM-HV.
#
#   tests/vm/ppc/run.sh --build-dir BUILD [--machine pseries|powernv]... [--only REGEX] [--verbose]
#
# Cross-builds first (cross-build.sh into BUILD/ppc64el), builds the rig (build-rig.sh into
# BUILD/vm-ppc), then boots each machine. Prints the kernel's version string, every SCENARIO line and
# each boot's time; the whole serial output of a boot is in BUILD/vm-ppc/logs/MACHINE.log (shown on
# failure; --verbose: always, as it comes).
#
# The machines (the same roles on both, found by ppc-lib.sh in the guest):
#   pseries   one IOMMU group per PHB: an e1000e alone; an edu (no driver) with an e1000 (not viable);
#             a virtio-net; an edu alone. VOF instead of SLOF (boots the vmlinux directly), nested HV on
#             for KVM-HV in the guest.
#   powernv9  one group per PE (a PHB4 with its root port each): the same, with an e1000e for the e1000
#             (PHB4 has no I/O space); skiboot, and an IPMI BMC so that poweroff ends qemu.
#
# Exit status: 0 all passed, 1 a scenario failed or a guest hung, 77 the tier cannot run here (no
# cross compiler or qemu to be had, no ppc64el packages reachable).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/vm/host-lib.sh
. "$here/../host-lib.sh"

build_dir= verbose=0 only=
machines=()
usage() {
        sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}
split_opts "$@"
set -- "${OPTS[@]}"
while [ $# -gt 0 ]; do
        case $1 in
        -v | --verbose) verbose=1; shift; continue ;;
        --build-dir | --machine | --only) [ $# -ge 2 ] || usage ;;
        *) usage ;;
        esac
        case $1 in
        --build-dir) build_dir=$2 ;;
        --machine) machines+=("$2") ;;
        --only) only=$2 ;;
        esac
        shift 2
done
[ -n "$build_dir" ] || usage
[ ${#machines[@]} -gt 0 ] || machines=(pseries powernv)
for m in "${machines[@]}"; do
        case $m in pseries | powernv) ;; *) echo "run.sh: unknown machine '$m' (pseries or powernv)" >&2; exit 2 ;; esac
done
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)

log() { echo "ppc64le tier: $*" >&2; }
skip_tier() {
        echo "ppc64le tier: SKIPPED: $*" >&2
        exit 77
}
unavailable() { skip_tier "$@"; }

t_all=$(now)
[ "$(id -u)" -eq 0 ] || skip_tier "the rig builder installs packages and writes device nodes as root"
need_packages qemu-system-ppc busybox-static kmod xz-utils zstd
command -v qemu-system-ppc64 >/dev/null || skip_tier "no qemu-system-ppc64"

rc=0
"$here/cross-build.sh" "$build_dir" || rc=$?
[ $rc -eq 77 ] && skip_tier "the cross build cannot be done here (see above)"
[ $rc -eq 0 ] || { echo "ppc64le tier: the cross build failed" >&2; exit 1; }
rc=0
"$here/build-rig.sh" "$build_dir" || rc=$?
[ $rc -eq 77 ] && skip_tier "the kernel or busybox for ppc64el cannot be had here (see above)"
[ $rc -eq 0 ] || { echo "ppc64le tier: building the rig failed" >&2; exit 1; }
# shellcheck disable=SC1091
. "$build_dir/vm-ppc/rig.env"
echo "  rig ready in $(secs "$t_all" "$(now)") s"

logs=$build_dir/vm-ppc/logs
mkdir -p "$logs"
GUEST_TIMEOUT=${RIG_GUEST_TIMEOUT:-240}

machine_args() {
        local n
        case $1 in
        pseries)
                echo -machine pseries,cap-nested-hv=on,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off
                echo -device spapr-pci-host-bridge,index=1,id=phb1
                echo -netdev hubport,id=n0,hubid=0 -device e1000e,bus=phb1.0,addr=1.0,netdev=n0,romfile=
                echo -device spapr-pci-host-bridge,index=2,id=phb2 -device edu,bus=phb2.0,addr=1.0,multifunction=on
                echo -netdev hubport,id=n1,hubid=0 -device e1000,bus=phb2.0,addr=1.1,netdev=n1,romfile=
                echo -device spapr-pci-host-bridge,index=3,id=phb3
                echo -netdev hubport,id=n2,hubid=0 -device virtio-net-pci,bus=phb3.0,addr=1.0,netdev=n2,romfile=
                echo -device spapr-pci-host-bridge,index=4,id=phb4 -device edu,bus=phb4.0,addr=1.0
                ;;
        powernv)
                echo -machine powernv9
                echo -device ipmi-bmc-sim,id=bmc0 -device isa-ipmi-bt,bmc=bmc0,irq=10
                for n in 0 1 2 3; do
                        echo -device pnv-phb,chip-id=0,index=$n,id=phb$n -device pnv-phb-root-port,id=rp$n,bus=phb$n
                done
                echo -netdev hubport,id=n0,hubid=0 -device e1000e,bus=rp0,addr=0.0,netdev=n0,romfile=
                echo -device edu,bus=rp1,addr=0.0,multifunction=on
                echo -netdev hubport,id=n1,hubid=0 -device e1000e,bus=rp1,addr=0.1,netdev=n1,romfile=
                echo -netdev hubport,id=n2,hubid=0 -device virtio-net-pci,bus=rp2,addr=0.0,netdev=n2,romfile=
                echo -device edu,bus=rp3,addr=0.0
                ;;
        esac
}

summary=()
failed=0
boot() {
        local m=$1 log=$logs/$1.log cmdline t0 t1 args result
        # shellcheck disable=SC2207 # words, on purpose
        args=($(machine_args "$m"))
        # Each topic's limit: TCG on POWER is slower than on x86, and the CI machine is shared.
        cmdline="console=hvc0 panic=-1 quiet rig.timeout=$GUEST_TIMEOUT rig.scenario_timeout=120 rig.label=$m"
        [ -n "$only" ] && cmdline="$cmdline rig.only=$only"
        bold "=== $m ($RIG_PKG $RIG_PKG_VERSION)"
        t0=$(now)
        timeout -k 5 $((GUEST_TIMEOUT + 60)) nice qemu-system-ppc64 "${args[@]}" -accel tcg -m 1024 -smp 1 \
                -nodefaults -nographic -no-reboot -serial stdio -kernel "$RIG_KERNEL" -initrd "$RIG_INITRD" \
                -append "$cmdline" </dev/null 2>&1 | tr -d '\r' | tee "$log" |
                tier_show $verbose RIG-DAEMON-LOG '^MACHINE: |RIG-RESULT|RIG-FAILED' || true
        t1=$(now)
        tier_verdict "$log"
        # The guest's own count besides: the serial output may have a line cut by the firmware's messages.
        result=$(sed -n 's/^.*RIG-RESULT \(pass=[0-9]* fail=[0-9]* skip=[0-9]*\).*$/\1/p' "$log" | tail -n 1)
        if [ -z "$result" ]; then
                why="${why:+$why, }no RIG-RESULT from the guest"
        else
                n_pass=$(echo "$result" | sed -n 's/^pass=\([0-9]*\) .*/\1/p')
                n_skip=$(echo "$result" | sed -n 's/.* skip=\([0-9]*\)$/\1/p')
                case $result in *" fail=0 "*) ;; *) why="${why:+$why, }the guest counts $result" ;; esac
        fi
        tier_result "$m" "$t0" "$t1" "$log" 150 $verbose
}

for m in "${machines[@]}"; do
        boot "$m" || failed=1
done
tier_end "ppc64le tier" "$t_all" $failed
