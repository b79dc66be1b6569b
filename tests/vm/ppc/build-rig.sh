#!/usr/bin/env bash
# Builds the ppc64le rig: bookworm-backports' 6.12 ppc64el kernel and an initramfs for it.
#
#   tests/vm/ppc/build-rig.sh BUILD_DIR
#
# Takes the cross-built programs from BUILD_DIR/ppc64el (cross-build.sh) and the shared guest side from
# tests/vm/ (init, guest-lib.sh, guest-run.sh), with this directory's scenarios. The kernel
# (linux-image-6.12.*-powerpc64le-64k, Debian's server flavour) and busybox-static come as ppc64el
# packages through the private apt configuration (apt-ppc64el.sh), never installed:
#
#   PPC_CACHE/kernel-HASH/  vmlinux (the package's own: it boots directly), modroot/, modules.load
#                           (HASH: package, version, this script)
#   BUILD_DIR/vm-ppc/       base.cpio.gz (busybox, /init, modules), payload.cpio.gz (/groupd: the
#                           programs, the shared libraries they need from the sysroot and the cross
#                           libc, the scripts), initrd.img, rig.env
#
# Exit status: 0 built (or up to date), 77 the kernel or busybox cannot be had here, 1 error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm=$(cd "$here/.." && pwd)
[ $# -eq 1 ] || { echo "usage: tests/vm/ppc/build-rig.sh BUILD_DIR" >&2; exit 2; }
build_dir=$(cd "$1" && pwd)
# shellcheck source=tests/vm/ppc/apt-ppc64el.sh
. "$here/apt-ppc64el.sh"

log() { echo "build-rig[ppc64le]: $*" >&2; }
die() { echo "build-rig[ppc64le]: error: $*" >&2; exit 1; }
unavailable() { echo "ppc64le rig not available: $*" >&2; exit 77; }
# shellcheck source=tests/vm/host-lib.sh
. "$vm/host-lib.sh"

# The rig's modules in load order (dependencies from modules.dep); '?' marks one that may be missing
# (kvm_hv loads only where the CPU can run HV guests: powernv, or pseries with cap-nested-hv).
RIG_MODULES=(vfio vfio_iommu_spapr_tce vfio_pci_core vfio_pci e1000e e1000 virtio_net 'kvm_hv?')
triplet=powerpc64le-linux-gnu
xbuild=$build_dir/ppc64el
out=$build_dir/vm-ppc
mkdir -p "$out"
for b in groupd groupctl vmm-standin vfio-raw spapr-standin; do
        [ -x "$xbuild/$b" ] || die "$xbuild/$b is missing: run tests/vm/ppc/cross-build.sh first"
done
sysroot=$(readlink -f "$xbuild/sysroot")

for p in kmod gzip busybox-static dpkg apt; do
        installed "$p" || unavailable "missing host package $p"
done

t_start=$(now)
ppc_apt_init "$build_dir"
exec 8>"$PPC_CACHE/.lock"
flock 8
ppc_apt_update || log "apt-get update for ppc64el failed; trying with the lists there are"
kpkg=$(apt-cache "${PPC_APT[@]}" pkgnames linux-image-6.12 2>/dev/null |
        grep -E '^linux-image-6\.12\.[0-9]+\+[a-z0-9]+-powerpc64le-64k$' | sort -V | tail -n 1 || true)
[ -n "$kpkg" ] || unavailable "no linux-image-6.12*-powerpc64le-64k in bookworm-backports for ppc64el (offline?)"
# The guest's own D-Bus system bus (dbus-daemon, dbus-send): the memlock scenario compares the D-Bus
# MemlockLimit with groupctl's. Their libraries beyond the sysroot's come along.
GUEST_PKGS=(busybox-static dbus-daemon dbus-bin libexpat1 libapparmor1 libaudit1 libselinux1 libpcre2-8-0)
vers=$(ppc_apt_versions "$kpkg" "${GUEST_PKGS[@]}")
kver_pkg=$(echo "$vers" | sed -n "s/^$kpkg=//p")
bb_ver=$(echo "$vers" | sed -n 's/^busybox-static=//p')
[ -n "$bb_ver" ] || unavailable "no busybox-static for ppc64el"
script_sum=$(sha256sum <"$here/build-rig.sh" | cut -c1-16)
kdir=$PPC_CACHE/kernel-$(echo "$vers $script_sum" | sha256sum | cut -c1-16)

modname() {
        local n=${1##*/}
        n=${n%%.ko*}
        echo "${n//-/_}"
}
if [ ! -f "$kdir/.done" ]; then
        t0=$(now)
        ppc_apt_fetch "$PPC_CACHE/debs" "$kpkg" "${GUEST_PKGS[@]}" ||
                unavailable "cannot download $kpkg or the guest's packages (${GUEST_PKGS[*]})"
        tmp=$kdir.unpack
        rm -rf "$tmp" "$kdir.tmp"
        mkdir -p "$tmp" "$kdir.tmp"
        dpkg-deb -x "$(compgen -G "$PPC_CACHE/debs/${kpkg}_*.deb" | head -n 1)" "$tmp"
        [ -d "$tmp/lib/modules" ] || { [ -d "$tmp/usr/lib/modules" ] && ln -s usr/lib "$tmp/lib"; }
        kver=$(find "$tmp/lib/modules/" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
        [ -f "$tmp/boot/vmlinux-$kver" ] || die "no vmlinux in $kpkg"
        depmod -b "$tmp" "$kver"
        cp "$tmp/boot/vmlinux-$kver" "$kdir.tmp/vmlinux"
        cp "$tmp/boot/config-$kver" "$kdir.tmp/config"
        echo "$kver" >"$kdir.tmp/kver"
        declare -A dep_of path_of seen
        while IFS= read -r l; do
                k=${l%%:*}
                n=$(modname "$k")
                path_of[$n]=$k
                dep_of[$n]=${l#*:}
        done <"$tmp/lib/modules/$kver/modules.dep"
        order=()
        add_module() {
                local m=$1 d
                [ -n "${seen[$m]:-}" ] && return 0
                seen[$m]=1
                # shellcheck disable=SC2086 # a space-separated list
                for d in ${dep_of[$m]}; do add_module "$(modname "$d")"; done
                order+=("${path_of[$m]}")
        }
        for wanted in "${RIG_MODULES[@]}"; do
                n=${wanted%\?}
                if [ -z "${path_of[$n]:-}" ]; then
                        grep -qE "/${n//_/[-_]}\.ko" "$tmp/lib/modules/$kver/modules.builtin" && continue
                        [ "$n" != "$wanted" ] && continue
                        die "module $n not in $kpkg"
                fi
                add_module "$n"
        done
        mods=$kdir.tmp/modroot/lib/modules/$kver
        mkdir -p "$mods"
        : >"$kdir.tmp/modules.load"
        for rel in "${order[@]}"; do
                case $rel in
                *.ko.xz) how="xz -dc" dst=${rel%.xz} ;;
                *.ko.zst) how="zstd -dcq" dst=${rel%.zst} ;;
                *) how=cat dst=$rel ;;
                esac
                mkdir -p "$(dirname "$mods/$dst")"
                # shellcheck disable=SC2086
                $how "$tmp/lib/modules/$kver/$rel" >"$mods/$dst"
                echo "$dst" >>"$kdir.tmp/modules.load"
        done
        cp "$tmp/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$mods/" 2>/dev/null || true
        depmod -b "$kdir.tmp/modroot" "$kver"
        mkdir -p "$kdir.tmp/busybox" "$kdir.tmp/guest"
        for pv in $vers; do
                p=${pv%%=*} v=${pv#*=}
                [ "$p" = "$kpkg" ] && continue
                dpkg-deb -x "$(compgen -G "$PPC_CACHE/debs/${p}_${v//:/%3a}_*.deb" | head -n 1)" \
                        "$kdir.tmp/$([ "$p" = busybox-static ] && echo busybox || echo guest)"
        done
        echo "$kpkg $kver_pkg" >"$kdir.tmp/.done"
        rm -rf "$tmp" "$kdir"
        mv "$kdir.tmp" "$kdir"
        find "$PPC_CACHE" -maxdepth 1 -name 'kernel-*' ! -path "$kdir" -exec rm -rf {} +
        log "kernel $kver and busybox ready in $kdir ($(since "$t0"))"
fi
exec 8>&-
kver=$(cat "$kdir/kver")

cpio_gz() {
        (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -6 -n >"$2.tmp"
        mv "$2.tmp" "$2"
}

# Base: busybox (ppc64el, static) with its applet links, /init, the modules.
bb=$kdir/busybox/bin/busybox
base_stamp="$(cat "$kdir/.done") $(cat "$vm/init" | sha256sum | cut -c1-16)"
if [ "$(cat "$out/base.stamp" 2>/dev/null)" != "$base_stamp" ] || [ ! -f "$out/base.cpio.gz" ]; then
        st=$out/base.staging
        rm -rf "$st"
        mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,root,etc,rig,groupd/lib,lib/modules,lib64,mnt}
        cp "$bb" "$st/bin/busybox"
        # The applet list from the package's own docs would do; the binary cannot run here, so take
        # the usual set: busybox --install at boot makes the rest.
        for a in sh ash mount ls cat echo sleep poweroff insmod grep sed awk tr sort; do
                ln -s /bin/busybox "$st/bin/$a"
        done
        install -m 0755 "$vm/init" "$st/rig/init.sh"
        cat >"$st/init" <<'INIT'
#!/bin/sh
# The ppc64le rig's /init: busybox's applet links (the busybox here is ppc64el's, which the host
# cannot run to list them), then the shared rig init.
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
exec /bin/sh /rig/init.sh
INIT
        chmod 0755 "$st/init"
        cp -a "$kdir/modroot/lib/modules/." "$st/lib/modules/"
        cp "$kdir/modules.load" "$st/rig/modules.load"
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$st/etc/passwd"
        printf 'root:x:0:\nkvm:x:104:\nnogroup:x:65534:\n' >"$st/etc/group"
        printf 'hosts: files\npasswd: files\ngroup: files\n' >"$st/etc/nsswitch.conf"
        mknod -m 600 "$st/dev/console" c 5 1 2>/dev/null || true
        mknod -m 666 "$st/dev/null" c 1 3 2>/dev/null || true
        cpio_gz "$st" "$out/base.cpio.gz"
        rm -rf "$st"
        echo "$base_stamp" >"$out/base.stamp"
fi

# Payload: /groupd with the programs and every shared library they need (NEEDED, transitively), found
# in the sysroot or the cross libc; the loader at /lib64/ld64.so.2.
pst=$out/payload.staging
rm -rf "$pst"
mkdir -p "$pst/groupd/lib" "$pst/lib64"
libpath=("$sysroot/usr/lib/$triplet" "$sysroot/lib/$triplet" "$kdir/guest/usr/lib/$triplet"
        "$kdir/guest/lib/$triplet" "/usr/$triplet/lib")
declare -A lib_seen
add_libs() {
        local so d found
        for so in $(readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
                [ -n "${lib_seen[$so]:-}" ] && continue
                lib_seen[$so]=1
                found=
                for d in "${libpath[@]}"; do
                        if [ -e "$d/$so" ]; then found=$d/$so; break; fi
                done
                [ -n "$found" ] || die "no $so for $1 in the sysroot or /usr/$triplet/lib"
                cp -L "$found" "$pst/groupd/lib/$so"
                add_libs "$found"
        done
}
for b in groupd groupctl vmm-standin vfio-raw spapr-standin; do
        cp "$xbuild/$b" "$pst/groupd/$b"
        add_libs "$xbuild/$b"
done
for b in dbus-daemon dbus-send; do
        cp "$kdir/guest/usr/bin/$b" "$pst/groupd/$b"
        add_libs "$kdir/guest/usr/bin/$b"
done
cp -L "/usr/$triplet/lib/ld64.so.2" "$pst/lib64/ld64.so.2"
cp "$vm/guest-lib.sh" "$vm/guest-run.sh" "$here/ppc-lib.sh" "$here"/scenario-*.sh "$pst/groupd/"
install -m 0755 "$here/guest-scenarios.sh" "$pst/groupd/scenarios.sh"
payload_stamp=$( (cd "$pst" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum | cut -c1-16)
if [ "$(cat "$out/payload.stamp" 2>/dev/null)" != "$payload_stamp" ] || [ ! -f "$out/payload.cpio.gz" ]; then
        cpio_gz "$pst" "$out/payload.cpio.gz"
        echo "$payload_stamp" >"$out/payload.stamp"
fi
rm -rf "$pst"
cat "$out/base.cpio.gz" "$out/payload.cpio.gz" >"$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
{
        printf 'RIG_KVER=%q\n' "$kver"
        printf 'RIG_PKG=%q\n' "$kpkg"
        printf 'RIG_PKG_VERSION=%q\n' "$kver_pkg"
        printf 'RIG_KERNEL=%q\n' "$kdir/vmlinux"
        printf 'RIG_INITRD=%q\n' "$out/initrd.img"
} >"$out/rig.env"
log "ready: $kpkg $kver_pkg, initrd $(du -h "$out/initrd.img" | cut -f1) ($(since "$t_start"))"
