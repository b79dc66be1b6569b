#!/usr/bin/env bash
# Builds an initramfs archive that carries a QEMU into the rig's guest, for the scenarios that hand a
# device to a real VMM (scenario-80-qemu.sh; later groupd's delivery modes).
#
#   tests/vm/rig-qemu.sh OUT.cpio 10|7.2
#
#   10   QEMU 10 from bookworm-backports (qemu-system-x86, qemu-system-common, qemu-system-data and
#        seabios, fetched with `apt-get download` through the private sources list that build-kernel.sh
#        keeps under the rig cache, and unpacked with `dpkg-deb -x`; never installed). It takes a
#        pre-opened iommufd and VFIO cdev (-object iommufd,fd= -device vfio-pci,iommufd=,fd=).
#   7.2  Debian's own QEMU (the host's qemu-system-x86, which run.sh installs): the legacy path,
#        -device vfio-pci,host=ADDR opening /dev/vfio/N itself.
#
# The archive holds /opt/qemu-VER/: bin/qemu-system-x86_64 (a wrapper: the libraries below on
# LD_LIBRARY_PATH and -L share), libexec/qemu-system-x86_64 (the real binary), lib/ (every library
# ldd names, the host's copies), share/ (bios-256k.bin and the x86 option ROMs) and version. Nothing
# in it lands outside /opt/qemu-VER, so two QEMUs and the rig's own libraries never collide.
#
# Why in the initramfs and not the host's root over virtio-9p: a virtio device is one more PCI device
# in the guest, and it would renumber the IOMMU groups that every scenario names (the groups are
# numbered in PCI order; a device in slot 7 moves 00:1f.x and bus 1 up by one). The archive is not
# compressed, and goes first in the initrd (the kernel reads an uncompressed cpio only at a 4-byte
# aligned offset): unpacking plain bytes is quick even under TCG.
#
# Cached: OUT is rebuilt only when its stamp (QEMU version, this script) changes.
# Exit status: 0 built or up to date, 77 this QEMU cannot be had here, 1 error.
set -euo pipefail

[ $# -eq 2 ] || { sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out=$1 want=$2
case $want in 10 | 7.2) ;; *) echo "rig-qemu: unknown QEMU '$want' (10 or 7.2)" >&2; exit 2 ;; esac

cache=${GROUPD_RIG_CACHE:-/var/cache/groupd-rig}
log() { echo "rig-qemu[$want]: $*" >&2; }
die() {
        echo "rig-qemu[$want]: error: $*" >&2
        exit 1
}
unavailable() {
        echo "rig-qemu[$want]: QEMU $want cannot be had here: $*" >&2
        exit 77
}
# shellcheck source=tests/vm/host-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/host-lib.sh"
t_start=$(now)

need_packages dpkg apt busybox-static seabios

prefix=/opt/qemu-$want
if [ "$want" = 10 ]; then
        # The lists are shared with build-kernel.sh (one update at a time); one download at a time.
        backports_apt "$cache" 2>/dev/null || unavailable "cannot write the cache $cache"
        exec 9>"$cache/.qemu.lock"
        flock 9
        version_of() {
                apt-cache "${apt_opts[@]}" show "$1" 2>/dev/null | awk '$1 == "Version:" { print $2 }' |
                        sort -V | tail -n 1
        }
        backports_fresh || backports_update
        version=$(version_of qemu-system-x86)
        case $version in *:10.*) ;; *) backports_update; version=$(version_of qemu-system-x86) ;; esac
        root=
        if [ -z "$version" ]; then
                # Offline: whatever was unpacked before.
                root=$(ls -d "$cache"/qemu-*/root 2>/dev/null | sort -V | tail -n 1)
                [ -n "$root" ] || unavailable "no qemu-system-x86 in bookworm-backports (no network?)"
                version=$(cat "$root/../version")
                log "cannot resolve qemu-system-x86 now (offline?); using the cached $version"
        fi
        case $version in *:10.*) ;; *) unavailable "bookworm-backports has qemu-system-x86 $version, not 10" ;; esac
        qdir=$cache/qemu-${version//[:~+]/_}
        if [ -z "$root" ] && [ ! -f "$qdir/version" ]; then
                log "downloading qemu-system-x86 $version"
                rm -rf "$qdir"
                mkdir -p "$qdir/dl" "$qdir/root"
                (cd "$qdir/dl" && apt-get "${apt_opts[@]}" download -qq "qemu-system-x86=$version" \
                        "qemu-system-common=$version" "qemu-system-data=$version" 2>&1 |
                        grep -v '^W: Download is performed unsandboxed' >&2) || true
                # seabios from backports too (QEMU 10 asks for a newer one); bookworm's is the fallback.
                (cd "$qdir/dl" && apt-get "${apt_opts[@]}" download -qq seabios 2>&1 |
                        grep -v '^W: Download is performed unsandboxed' >&2) || true
                for p in qemu-system-x86 qemu-system-common qemu-system-data; do
                        ls "$qdir/dl/${p}"_*.deb >/dev/null 2>&1 || unavailable "apt-get download $p=$version failed"
                done
                for d in "$qdir"/dl/*.deb; do dpkg-deb -x "$d" "$qdir/root"; done
                echo "$version" >"$qdir/version"
        fi
        root=${root:-$qdir/root}
        binary=$root/usr/bin/qemu-system-x86_64
        data=$root/usr/share/qemu
        bios=$root/usr/share/seabios/bios-256k.bin
        [ -f "$bios" ] || bios=/usr/share/seabios/bios-256k.bin
        depends=$(dpkg-deb -f "$(ls "$qdir"/dl/qemu-system-x86_*.deb 2>/dev/null | head -n 1)" Depends 2>/dev/null || true)
else
        need_packages qemu-system-x86
        version=$(dpkg-query -W -f='${Version}' qemu-system-x86)
        case $version in *:7.2*) ;; *) log "note: the host's qemu-system-x86 is $version, not 7.2" ;; esac
        binary=/usr/bin/qemu-system-x86_64
        data=/usr/share/qemu
        bios=/usr/share/seabios/bios-256k.bin
        depends=
fi
[ -x "$binary" ] || die "no $binary"

# Libraries QEMU needs that the host lacks: install the library packages its Depends names.
unresolved=$(ldd "$binary" 2>/dev/null | awk '/not found/ { print $1 }')
if [ -n "$unresolved" ] && [ -n "$depends" ]; then
        # shellcheck disable=SC2046 # package names
        need_packages $(echo "$depends" | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -E '^lib|^zlib')
        unresolved=$(ldd "$binary" 2>/dev/null | awk '/not found/ { print $1 }')
fi
[ -z "$unresolved" ] || unavailable "libraries not found for $binary: $(echo "$unresolved" | tr '\n' ' ')"

stamp="$want $version $(sha256sum <"$0" | cut -c1-16) $(sha256sum <"$binary" | cut -c1-16)"
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
        exit 0
fi

st=$out.staging
rm -rf "$st"
mkdir -p "$st$prefix"/{bin,libexec,lib,share}
cp "$binary" "$st$prefix/libexec/qemu-system-x86_64"
ldd "$binary" | while read -r soname arrow path rest; do
        if [ "$arrow" != "=>" ]; then
                # The loader ("/lib64/ld-linux-x86-64.so.2 (0x...)"), at its own path; the vdso has none.
                case $soname in /*) mkdir -p "$st$(dirname "$soname")" && cp -L "$soname" "$st$soname" ;; esac
                continue
        fi
        case $path in /*) cp -L "$path" "$st$prefix/lib/" ;; *) die "unresolved library $soname" ;; esac
done
cp "$bios" "$st$prefix/share/bios-256k.bin"
for f in kvmvapic.bin linuxboot.bin linuxboot_dma.bin multiboot.bin multiboot_dma.bin pvh.bin; do
        [ -f "$data/$f" ] && cp "$data/$f" "$st$prefix/share/"
done
echo "$version" >"$st$prefix/version"
cat >"$st$prefix/bin/qemu-system-x86_64" <<EOF
#!/bin/sh
# QEMU $version with its own libraries and firmware (tests/vm/rig-qemu.sh).
LD_LIBRARY_PATH=$prefix/lib exec $prefix/libexec/qemu-system-x86_64 -L $prefix/share "\$@"
EOF
chmod 0755 "$st$prefix/bin/qemu-system-x86_64"

mkdir -p "$(dirname "$out")"
(cd "$st" && find . -mindepth 1 | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) >"$out.tmp"
# Pad to a multiple of 4: the archive after it must start aligned.
size=$(stat -c %s "$out.tmp")
[ $((size % 4)) -eq 0 ] || head -c $((4 - size % 4)) /dev/zero >>"$out.tmp"
mv "$out.tmp" "$out"
echo "$stamp" >"$out.stamp"
rm -rf "$st"
log "QEMU $version for the guest: $(du -h "$out" | cut -f1) uncompressed ($(since "$t_start"))"
