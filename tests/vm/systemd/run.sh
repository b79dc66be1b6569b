#!/usr/bin/env bash
# The systemd tier: groupd as its shipped units run it, under systemd as PID 1 with udev, dbus and
# polkitd, on Debian's own kernels and the rig's own iommufd kernel behind an emulated IOMMU
# (tests/vm/README.md, "The systemd tier").
#
#   tests/vm/systemd/run.sh --build-dir BUILD [--line 6.1|6.12|own-6.12]... [--iommu intel|amd]...
#                           [--only REGEX] [--all | --ci] [--verbose]
#
# By default each line (6.1, 6.12, own-6.12) boots with each IOMMU (intel, amd). own-6.12 is the kernel
# tests/vm/build-kernel.sh builds once per machine (cached in /var/cache/groupd-rig), found through
# tests/vm/build-rig.sh as tests/vm/run.sh finds it; the only one with /dev/iommu, so the only one where
# the iommufd delivery runs; everything is built in, so it needs no modules (the line is skipped, saying
# why, where it cannot be had). The first boot runs every scenario; the others run only the ones the
# kernel and IOMMU can change (KERNEL_TOPICS: activation and sandbox, acquire and release in each delivery
# mode, the same with the filter made to kill, restarts with the fd store): D-Bus activation, stop, the
# watchdog, polkit and systemd-analyze do not depend on them. --all runs every scenario on every boot;
# --only REGEX picks topics; --ci (./dev check) boots two: 6.1 with the Intel IOMMU (every scenario) and
# own-6.12 with the AMD IOMMU (KERNEL_TOPICS: iommufd, and the other modes on the newer kernel and the
# other IOMMU), to keep CI's time modest (the tier in tests/vm/ covers VFIO itself on every boot).
#
# It configures and builds groupd as a distribution would (--prefix=/usr --sysconfdir=/etc
# --localstatedir=/var, in BUILD/vm-systemd/pkg) and installs it with `make install DESTDIR=`; builds
# (once, cached outside the clone) a small Debian root with systemd, udev, dbus and polkitd
# (build-root.sh); takes each kernel line's kernel from tests/vm/build-rig.sh; and boots each line with
# each IOMMU. The guest's first stage (init) puts groupd and the tier's files into the root, enables
# groupd.socket offline and starts systemd with groupd-rig.target, whose service runs the scenarios
# (tests/vm/systemd/scenario-*.sh) and powers off. Each boot prints the kernel, each scenario's
# PASS/FAIL/SKIP line and each topic's time; the serial output is in BUILD/vm-systemd/logs/LINE-IOMMU.log
# (shown on failure, with the journal of groupd for each topic).
#
# Exit status: 0 all passed, 1 a scenario failed or a guest did not finish, 77 the tier cannot run here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vmdir=$(cd "$here/.." && pwd)
top=$(cd "$here/../../.." && pwd)

# shellcheck source=tests/vm/host-lib.sh
. "$vmdir/host-lib.sh"

build_dir= verbose=0 only= all=0 ci=0
KERNEL_TOPICS='^(10|20|25|30)-'
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
        --all) all=1; shift; continue ;;
        --ci) ci=1; shift; continue ;;
        --build-dir | --line | --iommu | --only) [ $# -ge 2 ] || usage ;;
        *) usage ;;
        esac
        case $1 in
        --build-dir) build_dir=$2 ;;
        --line) lines+=("$2") ;;
        --iommu) iommus+=("$2") ;;
        --only) only=$2 ;;
        esac
        shift 2
done
[ -n "$build_dir" ] || usage
x86_choices
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)
work=$build_dir/vm-systemd
mkdir -p "$work/logs"

log() { echo "systemd tier: $*" >&2; }
skip_tier() {
        echo "systemd tier: SKIPPED: $*" >&2
        exit 77
}
unavailable() { skip_tier "$@"; }
t_all=$(now)

[ "$(id -u)" -eq 0 ] || skip_tier "not root (the guest root keeps its packages' owners; qemu's rig needs root)"
need_packages qemu-system-x86 busybox-static kmod e2fsprogs cpio
command -v qemu-system-x86_64 >/dev/null || skip_tier "no qemu-system-x86_64"

# ---------------------------------------------------------------------------------------------
# groupd as a distribution builds and installs it.
t0=$(now)
pkg=$work/pkg dest=$work/dest
mkdir -p "$pkg"
opts="--prefix=/usr --sysconfdir=/etc --localstatedir=/var"
if [ ! -f "$pkg/Makefile" ] || [ "$top/configure" -nt "$pkg/Makefile" ] || [ "$(cat "$pkg/.options" 2>/dev/null)" != "$opts" ]; then
        # shellcheck disable=SC2086
        (cd "$pkg" && "$top/configure" -q $opts) >&2
        echo "$opts" >"$pkg/.options"
fi
nice make -C "$pkg" -s -j2 all >/dev/null
rm -rf "$dest"
make -C "$pkg" -s install DESTDIR="$dest" >/dev/null 2>&1 || make -C "$pkg" -s install DESTDIR="$dest" >/dev/null
grep -q '^ExecStart=/usr/sbin/groupd' "$dest"/lib/systemd/system/groupd.service 2>/dev/null ||
        grep -q '^ExecStart=/usr/sbin/groupd' "$dest"/usr/lib/systemd/system/groupd.service ||
        { echo "systemd tier: make install laid out no groupd.service running /usr/sbin/groupd" >&2; exit 1; }
# The tier's own files, beside the installed ones.
rig=$dest/opt/groupd-rig
mkdir -p "$rig" "$dest/etc/systemd/system"
for b in vmm-standin lease-vmm; do
        cp "$pkg/.libs/$b" "$rig/$b" 2>/dev/null || cp "$pkg/$b" "$rig/$b" 2>/dev/null || echo "no $b" >&2
done
cp "$vmdir/guest-lib.sh" "$here/systemd-lib.sh" "$here/guest-run.sh" "$here"/scenario-*.sh "$rig/"
cp "$top/polkit/example.rules" "$rig/"
install -m 0644 "$here/groupd-rig.target" "$here/groupd-rig.service" "$dest/etc/systemd/system/"
echo "  groupd built and installed for the guest in $(secs "$t0" "$(now)") s"

# The guest root (cached outside the clone).
t0=$(now)
rc=0
root_img=$("$here/build-root.sh") || rc=$?
[ $rc -eq 77 ] && skip_tier "no guest root (see above)"
[ $rc -eq 0 ] || { echo "systemd tier: building the guest root failed" >&2; exit 1; }
echo "  guest root $root_img ($(secs "$t0" "$(now)") s)"

# ---------------------------------------------------------------------------------------------
# The guest's modules: the first stage's (the root's disk and file system), and the ones udev and
# modprobe load from the root (VFIO, the NICs, KVM), with their dependencies, from the kernel package.
STAGE1_MODULES=(virtio_pci virtio_blk crc32c_generic ext4)
ROOT_MODULES=(vfio vfio_iommu_type1 vfio_pci e1000e e1000 kvm kvm_amd kvm_intel ccp autofs4 configfs)

# The own kernel has all of these built in (tests/vm/kernel-rig.config); modprobe finds them in
# modules.builtin, as on a stock kernel it finds what Debian builds in.
OWN_BUILTIN=(virtio_blk ext4 autofs4 vfio vfio_iommu_type1 vfio_pci_core vfio_pci iommufd e1000e e1000 kvm kvm_amd
        kvm_intel)

# own_modules: the own kernel's modules directory: no module, a modules.builtin naming what it builds in.
own_modules() {
        local out=$1 kver=$RIG_KVER m
        local stamp="own $kver $(sha256sum <"$RIG_KERNEL" | cut -c1-16) ${OWN_BUILTIN[*]}"
        [ "$(cat "$out/modules.stamp" 2>/dev/null)" = "$stamp" ] && return 0
        rm -rf "$out/modroot"
        mkdir -p "$out/modroot/lib/modules/$kver"
        for m in "${OWN_BUILTIN[@]}"; do echo "kernel/builtin/$m.ko"; done >"$out/modroot/lib/modules/$kver/modules.builtin"
        : >"$out/modroot/lib/modules/$kver/modules.order"
        depmod -b "$out/modroot" "$kver"
        : >"$out/stage1.load"
        echo "$stamp" >"$out/modules.stamp"
}

# initrd LINE: BUILD/vm-systemd/LINE/initrd.img for the line's kernel; sets RIG_* from its rig.env.
initrd() {
        local line=$1 out=$work/$1 deb kver tmp st m n
        # shellcheck disable=SC1090
        . "$build_dir/vm/$line/rig.env"
        mkdir -p "$out"
        if [ "$line" = own-6.12 ]; then
                own_modules "$out"
        else
                stock_modules "$line" "$out" || return 1
        fi
        initrd_image "$out"
}

# stock_modules LINE OUT: the modules of a Debian kernel package the guest needs, decompressed, with
# their dependencies and their own modules.dep; OUT/stage1.load lists the first stage's in load order.
stock_modules() {
        local line=$1 out=$2 deb kver tmp m n
        deb=$(find "$build_dir/vm/$line/dl" -maxdepth 1 -name '*.deb' | head -n 1)
        [ -n "$deb" ] || { echo "systemd tier: no kernel package in $build_dir/vm/$line/dl" >&2; return 1; }
        mkdir -p "$out"
        local stamp="$(basename "$deb") ${STAGE1_MODULES[*]} ${ROOT_MODULES[*]} $(sha256sum <"$here/run.sh" | cut -c1-16)"
        if [ "$(cat "$out/modules.stamp" 2>/dev/null)" != "$stamp" ]; then
                tmp=$out/unpack
                rm -rf "$tmp" "$out/modroot"
                mkdir -p "$tmp"
                dpkg-deb -x "$deb" "$tmp"
                [ -d "$tmp/lib/modules" ] || ln -s usr/lib "$tmp/lib"
                kver=$(ls "$tmp/lib/modules" | head -n 1)
                depmod -b "$tmp" "$kver"
                declare -A dep_of=() path_of=() seen=()
                local l k
                while IFS= read -r l; do
                        k=${l%%:*}
                        n=${k##*/}
                        n=${n%%.ko*}
                        n=${n//-/_}
                        path_of[$n]=$k
                        dep_of[$n]=${l#*:}
                done <"$tmp/lib/modules/$kver/modules.dep"
                order=()
                add() {
                        local m=$1 d dn
                        [ -n "${seen[$m]:-}" ] && return 0
                        seen[$m]=1
                        for d in ${dep_of[$m]:-}; do
                                dn=${d##*/}
                                dn=${dn%%.ko*}
                                add "${dn//-/_}"
                        done
                        [ -n "${path_of[$m]:-}" ] && order+=("${path_of[$m]}")
                        return 0
                }
                for m in "${STAGE1_MODULES[@]}"; do add "$m"; done
                stage1=("${order[@]}")
                for m in "${ROOT_MODULES[@]}"; do add "$m"; done
                mkdir -p "$out/modroot/lib/modules/$kver"
                : >"$out/stage1.load"
                for rel in "${order[@]}"; do
                        dst=${rel%.xz}
                        dst=${dst%.zst}
                        mkdir -p "$(dirname "$out/modroot/lib/modules/$kver/$dst")"
                        case $rel in
                        *.xz) xz -dc "$tmp/lib/modules/$kver/$rel" ;;
                        *.zst) zstd -dcq "$tmp/lib/modules/$kver/$rel" ;;
                        *) cat "$tmp/lib/modules/$kver/$rel" ;;
                        esac >"$out/modroot/lib/modules/$kver/$dst"
                done
                for rel in "${stage1[@]}"; do
                        dst=${rel%.xz}
                        echo "${dst%.zst}" >>"$out/stage1.load"
                done
                for f in modules.order modules.builtin modules.builtin.modinfo; do
                        [ -f "$tmp/lib/modules/$kver/$f" ] && cp "$tmp/lib/modules/$kver/$f" "$out/modroot/lib/modules/$kver/"
                done
                depmod -b "$out/modroot" "$kver"
                rm -rf "$tmp"
                echo "$stamp" >"$out/modules.stamp"
        fi
}

# initrd_image OUT: the first stage's initramfs (busybox, /init, the modules, the payload).
initrd_image() {
        local out=$1 st a
        st=$out/staging
        rm -rf "$st"
        mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,rig,lib,newroot}
        cp /bin/busybox "$st/bin/busybox"
        for a in $(/bin/busybox --list-full); do
                [ -e "$st/$a" ] || ln -s /bin/busybox "$st/$a"
        done
        install -m 0755 "$here/init" "$st/init"
        cp "$out/stage1.load" "$st/rig/stage1.load"
        cp -a "$out/modroot/lib/modules" "$st/lib/"
        cp -a "$dest" "$st/payload"
        mknod -m 600 "$st/dev/console" c 5 1
        mknod -m 666 "$st/dev/null" c 1 3
        (cd "$st" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 -n >"$out/initrd.img"
        rm -rf "$st"
        RIG_SD_INITRD=$out/initrd.img
}

# ---------------------------------------------------------------------------------------------
GUEST_TIMEOUT=${RIG_SD_GUEST_TIMEOUT:-900}
summary=()
failed=0

boot() {
        local line=$1 iommu=$2 log=$work/logs/$1-$2.log cmdline t0 t1
        # no_timer_check: under a loaded host, TCG can fail the kernel's early check of the timer through
        # the interrupt-remapped IO-APIC, which panics ("timer doesn't work through Interrupt-remapped
        # IO-APIC", seen with VT-d on 6.1).
        cmdline="console=ttyS0 iommu=nopt panic=-1 quiet no_timer_check systemd.unit=groupd-rig.target"
        cmdline="$cmdline systemd.show_status=error"
        [ $verbose -eq 1 ] && cmdline="$cmdline rig.journal=1"
        cmdline="$cmdline systemd.journald.forward_to_console=0 rig.label=$line-$iommu"
        if [ -n "$only" ]; then
                cmdline="$cmdline rig.only=$only"
        elif [ $all -eq 0 ] && [ "$booted" -gt 1 ]; then
                cmdline="$cmdline rig.only=$KERNEL_TOPICS"
        fi
        # The drive: the cached image behind a throw-away overlay (snapshot=on); the virtio PCI
        # function sits at 00:0a.0, clear of the rig's devices.
        x86_guest "$iommu" "$cmdline" "${X86_DEVICES[@]}"
        bold "=== systemd tier: kernel $line ($RIG_PKG $RIG_PKG_VERSION), $iommu IOMMU"
        t0=$(now)
        timeout -k 5 "$GUEST_TIMEOUT" qemu-system-x86_64 "${guest_args[@]}" -initrd "$RIG_SD_INITRD" \
                -drive "file=$root_img,if=none,id=root,format=raw,snapshot=on" \
                -device virtio-blk-pci,drive=root,addr=0a.0 </dev/null 2>&1 |
                sed -u 's/\r$//' | tee "$log" |
                tier_show $verbose RIG-JOURNAL '^IOMMU: |^SYSTEMD: |RIG-STAGE1-FAIL|RIG-FAILED-UNITS|Freezing execution|emergency mode' ||
                true
        t1=$(now)
        tier_verdict "$log"
        grep -q 'RIG-STAGE1-FAIL' "$log" && why="${why:+$why, }the first stage failed"
        tier_result "$line/$iommu" "$t0" "$t1" "$log" 200 $verbose
}

# ci_boot LINE IOMMU: --ci boots this one (or there is no --ci).
ci_boot() { [ $ci -eq 0 ] || [ "$1-$2" = 6.1-intel ] || [ "$1-$2" = own-6.12-amd ]; }

booted=0
for line in "${lines[@]}"; do
        rc=0
        # A line --ci boots with no IOMMU costs nothing (no kernel fetched, no initrd made).
        wanted=0
        for iommu in "${iommus[@]}"; do ci_boot "$line" "$iommu" && wanted=1; done
        if [ $wanted -eq 0 ]; then
                summary+=("--    $line  not booted (--ci)")
                continue
        fi
        "$vmdir/build-rig.sh" "$build_dir" "$line" >/dev/null 2>"$work/logs/build-rig-$line.log" || rc=$?
        if [ $rc -eq 77 ]; then
                bold "=== systemd tier: kernel $line: SKIPPED ($(tail -n 1 "$work/logs/build-rig-$line.log"))"
                if [ "$line" = own-6.12 ]; then
                        summary+=("SKIP  $line  the own kernel cannot be built here (tests/vm/build-kernel.sh)")
                else
                        summary+=("SKIP  $line  kernel package not reachable")
                fi
                continue
        elif [ $rc -ne 0 ]; then
                cat "$work/logs/build-rig-$line.log" >&2
                summary+=("FAIL  $line  kernel rig build failed")
                failed=1
                continue
        fi
        initrd "$line" || { summary+=("FAIL  $line  initrd build failed"); failed=1; continue; }
        for iommu in "${iommus[@]}"; do
                if ! ci_boot "$line" "$iommu"; then
                        summary+=("--    $line $iommu  not booted (--ci)")
                        continue
                fi
                booted=$((booted + 1))
                boot "$line" "$iommu" || failed=1
        done
done

tier_end "systemd tier" "$t_all" $failed "$([ $booted -gt 0 ] || echo "no kernel line could be had")"
