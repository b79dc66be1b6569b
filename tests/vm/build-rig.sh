#!/usr/bin/env bash
# Builds the real-kernel rig for one Debian kernel line: the kernel to boot and its initramfs.
#
#   tests/vm/build-rig.sh BUILD_DIR KERNEL_LINE [--bin PATH...] [--file PATH...] [--scenarios FILE]
#                         [--cpio PATH...]
#
# KERNEL_LINE is 6.1 (bookworm's linux-image-amd64) or 6.12 (bookworm-backports, reached through a
# private sources list and lists directory; /etc/apt is left alone), or own-6.12: the rig's own build
# of bookworm-backports' linux-source-6.12 with iommufd and the VFIO cdev, everything built in
# (tests/vm/build-kernel.sh builds it once per machine into /var/cache/groupd-rig). Everything is
# cached under BUILD_DIR/vm/<line>/ and redone only when its inputs change:
#
#   dl/             the kernel .deb (apt-get download; never installed)
#   kernel/         vmlinux (extracted from the bzImage: PVH entry, boots faster), bzImage, config,
#                   modroot/ (the rig's modules, decompressed, with their own modules.dep),
#                   modules.load (load order), stamp
#   base.cpio.gz    busybox-static + applet links, /init, /rig/*, the modules (rebuilt when the
#                   kernel, busybox, init or capture-sysfs.sh change)
#   payload.cpio.gz /groupd: the --bin executables (libtool wrappers resolved) with their shared
#                   libraries and the dynamic loader at their own paths (libraries outside the
#                   system directories go to /groupd/lib, on LD_LIBRARY_PATH), the --file files,
#                   and the scenario script as /groupd/scenarios.sh
#   initrd.img      the --cpio archives (uncompressed, first: the kernel reads a plain cpio only at a
#                   4-byte aligned offset; rig-qemu.sh makes them) + base.cpio.gz + payload.cpio.gz
#                   (the kernel unpacks concatenated archives)
#   rig.env         RIG_* variables for run.sh (kernel, initrd, versions)
#
# Executables can also come from GROUPD_VM_BINS (space-separated paths).
# Exit status: 0 built (or up to date), 77 the kernel line cannot be had here, 1 error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The rig's modules in load order; their dependencies come from modules.dep. A trailing '?' marks
# a module that may not exist as a module on some kernels (vfio_virqfd is part of vfio.ko since 6.2).
RIG_MODULES=(irqbypass vfio vfio_iommu_type1 'vfio_virqfd?' vfio_pci_core vfio_pci e1000e e1000 kvm ccp kvm_amd)

usage() {
        sed -n '4p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}

[ $# -ge 2 ] || usage
build_dir=$1 line=$2
shift 2
case $line in
6.1 | 6.12 | own-6.12) ;;
*)
        echo "build-rig: unknown kernel line '$line' (6.1, 6.12 or own-6.12)" >&2
        exit 2
        ;;
esac

bins=() files=() scenarios= cpios=()
if [ -n "${GROUPD_VM_BINS:-}" ]; then
        read -ra bins <<<"$GROUPD_VM_BINS"
fi
while [ $# -gt 0 ]; do
        case $1 in
        --bin | --file)
                opt=$1
                shift
                [ $# -gt 0 ] || usage
                while [ $# -gt 0 ] && [[ $1 != --* ]]; do
                        if [ "$opt" = --bin ]; then bins+=("$1"); else files+=("$1"); fi
                        shift
                done
                ;;
        --bin=*) bins+=("${1#--bin=}"); shift ;;
        --file=*) files+=("${1#--file=}"); shift ;;
        --scenarios) [ $# -ge 2 ] || usage; scenarios=$2; shift 2 ;;
        --cpio) [ $# -ge 2 ] || usage; cpios+=("$2"); shift 2 ;;
        --scenarios=*) scenarios=${1#--scenarios=}; shift ;;
        *) usage ;;
        esac
done

mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)
cache=$build_dir/vm/$line
mkdir -p "$cache"

log() { echo "build-rig[$line]: $*" >&2; }
die() {
        echo "build-rig[$line]: error: $*" >&2
        exit 1
}
unavailable() {
        echo "$line kernel line not available: $*" >&2
        exit 77
}
# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"

# One build at a time per kernel line.
exec 9>"$cache/.lock"
flock 9

t_start=$(now)

# ---------------------------------------------------------------------------------------------
# Host tools (Debian 12, as root): installed when missing, quietly.
need_packages busybox-static kmod xz-utils zstd gzip dpkg apt util-linux

# ---------------------------------------------------------------------------------------------
# Which kernel package, and which version.
apt_opts=(-o APT::Sandbox::User=root)
if [ "$line" = 6.12 ]; then
        backports_apt "$cache"
fi

apt_update() {
        if [ "$line" = 6.12 ]; then
                backports_update
        else
                apt-get update -qq >/dev/null 2>&1 || true
        fi
}

# The private backports lists are refreshed once a day; the system's are left to apt.
lists_fresh() { [ "$line" != 6.12 ] || backports_fresh; }

resolve_package() {
        local p=
        if [ "$line" = own-6.12 ]; then
                resolve_own_kernel
                return
        fi
        if [ "$line" = 6.1 ]; then
                p=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
                        awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\./ { print $2; exit }')
        else
                p=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
                        awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.12\./ { print $2; exit }')
                if [ -z "$p" ]; then
                        # Backports moved on past 6.12: take the newest 6.12 package left.
                        p=$(apt-cache "${apt_opts[@]}" pkgnames linux-image-6.12 2>/dev/null |
                                grep -E '^linux-image-6\.12\.[0-9]+\+[a-z0-9]+-amd64(-unsigned)?$' |
                                sort -V | tail -n 1 || true)
                fi
        fi
        [ -n "$p" ] || return 1
        pkg=$p
        pkg_version=$(apt-cache "${apt_opts[@]}" show "$pkg" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
        [ -n "$pkg_version" ]
}

# own-6.12: tests/vm/build-kernel.sh builds (or finds in its cache) the rig's own kernel; it has no
# modules, so the line's kernel directory holds the kernel, its config and an empty module list.
own_dir=
resolve_own_kernel() {
        local rc=0
        own_dir=$("$here/build-kernel.sh") || rc=$?
        [ $rc -ne 77 ] || unavailable "the own kernel cannot be built here (see above)"
        [ $rc -eq 0 ] && [ -f "$own_dir/vmlinux" ] || die "build-kernel.sh failed (exit $rc)"
        pkg=$(awk '{ print $1 }' "$own_dir/source")
        pkg_version="$(awk '{ print $2 }' "$own_dir/source") (${own_dir##*/})"
}
fetch_own_kernel() {
        local kdir_new=$cache/kernel.new kver
        kver=$(cat "$own_dir/kver")
        rm -rf "$kdir_new"
        mkdir -p "$kdir_new/modroot/lib/modules/$kver"
        cp "$own_dir/vmlinux" "$own_dir/bzImage" "$own_dir/config" "$own_dir/kver" "$kdir_new/"
        : >"$kdir_new/modules.load"
        echo "own build in $own_dir, everything built in" >"$kdir_new/notes"
        echo "$kernel_stamp" >"$kdir_new/stamp"
        rm -rf "$kdir"
        mv "$kdir_new" "$kdir"
        log "kernel $kver ready: $(cat "$kdir/notes")"
}

pkg='' pkg_version=''
lists_fresh || apt_update
if ! resolve_package; then
        apt_update
        resolve_package || true
fi

kdir=$cache/kernel
script_sum=$(sha256sum <"$here/build-rig.sh" | cut -c1-16)
if [ -z "$pkg" ]; then
        if [ -f "$kdir/stamp" ]; then
                log "cannot resolve the kernel package now (offline?); using the cached one"
                pkg=$(awk '{print $1}' "$kdir/stamp")
                pkg_version=$(awk '{print $2}' "$kdir/stamp")
        elif [ "$line" = 6.12 ]; then
                unavailable "no linux-image-6.12*-amd64 package found in bookworm-backports (apt-get update of the private list failed, or the suite no longer has 6.12)"
        else
                unavailable "apt-cache cannot resolve linux-image-amd64 (no package lists, no network?)"
        fi
fi
kernel_stamp="$pkg $pkg_version $script_sum"

# ---------------------------------------------------------------------------------------------
# Fetch and unpack the kernel when the package (or this script) changed.
modname() {
        local n=${1##*/}
        n=${n%%.ko*}
        echo "${n//-/_}"
}

extract_vmlinux() {
        # extract_vmlinux BZIMAGE OUT: the bzImage's setup header says where the compressed kernel
        # is (payload_offset/payload_length, boot protocol 2.08+); its first bytes say how it is
        # compressed. The build appends the uncompressed size (4 bytes), left out here. When the
        # header does not help, look for a known compression magic instead.
        local bz=$1 out=$2 setup_sects offset length start magic cmd
        u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
        u8() { od -An -t u1 -j "$2" -N 1 "$1" | tr -d ' '; }
        decompressor() {
                case $1 in
                fd377a585a00*) echo "xz -dcq --single-stream" ;;
                28b52ffd*) echo "zstd -dcq" ;;
                1f8b08*) echo "gzip -dcq" ;;
                425a68*) echo "bzip2 -dcq" ;;
                5d0000*) echo "xz -dcq --format=lzma" ;;
                02214c18*) echo "lz4 -dcq" ;;
                *) return 1 ;;
                esac
        }
        is_elf() { [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

        rm -f "$out"
        if [ "$(dd if="$bz" bs=1 skip=$((0x202)) count=4 2>/dev/null)" = HdrS ]; then
                setup_sects=$(u8 "$bz" $((0x1f1)))
                [ "$setup_sects" = 0 ] && setup_sects=4
                offset=$(u32 "$bz" $((0x248)))
                length=$(u32 "$bz" $((0x24c)))
                start=$(((setup_sects + 1) * 512 + offset))
                magic=$(od -An -tx1 -j "$start" -N 6 "$bz" | tr -d ' \n')
                if cmd=$(decompressor "$magic"); then
                        # shellcheck disable=SC2086 # cmd is a command and its options
                        tail -c +$((start + 1)) "$bz" | head -c $((length - 4)) | $cmd >"$out" 2>/dev/null || true
                        if is_elf "$out"; then
                                echo "${cmd%% *}"
                                return 0
                        fi
                fi
        fi
        # Fallback: scan for magics, as the kernel's scripts/extract-vmlinux does.
        local m pos
        for m in '\xfd\x37\x7a\x58\x5a\x00' '\x28\xb5\x2f\xfd' '\x1f\x8b\x08' '\x5d\x00\x00\x00' '\x42\x5a\x68'; do
                for pos in $(LC_ALL=C grep -obUaP "$m" "$bz" 2>/dev/null | cut -d: -f1 | head -n 20); do
                        magic=$(od -An -tx1 -j "$pos" -N 6 "$bz" | tr -d ' \n')
                        cmd=$(decompressor "$magic") || continue
                        # shellcheck disable=SC2086
                        tail -c +$((pos + 1)) "$bz" | $cmd >"$out" 2>/dev/null || true
                        if is_elf "$out"; then
                                echo "${cmd%% *} (scan)"
                                return 0
                        fi
                done
        done
        rm -f "$out"
        return 1
}

fetch_kernel() {
        local t0 deb tmp kver kdir_new mods rel n wanted optional f src dst how
        if [ "$line" = own-6.12 ]; then
                fetch_own_kernel
                return
        fi
        t0=$(now)
        mkdir -p "$cache/dl"
        deb=$(find "$cache/dl" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
        if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Version)" != "$pkg_version" ]; then
                log "downloading $pkg $pkg_version"
                rm -f "$cache/dl"/*.deb
                if ! (cd "$cache/dl" && apt-get "${apt_opts[@]}" download -qq "$pkg=$pkg_version" 2>&1 |
                        grep -v '^W: Download is performed unsandboxed' >&2); then
                        true
                fi
                deb=$(find "$cache/dl" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
                if [ -z "$deb" ]; then
                        # Stale lists point at a version the archive no longer has: refresh once.
                        apt_update
                        resolve_package || unavailable "cannot resolve the kernel package after apt-get update"
                        (cd "$cache/dl" && apt-get "${apt_opts[@]}" download -qq "$pkg=$pkg_version" 2>&1 |
                                grep -v '^W: Download is performed unsandboxed' >&2) || true
                        deb=$(find "$cache/dl" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
                        [ -n "$deb" ] || unavailable "apt-get download $pkg=$pkg_version failed"
                        kernel_stamp="$pkg $pkg_version $script_sum"
                fi
        fi

        log "unpacking $(basename "$deb")"
        tmp=$cache/unpack
        rm -rf "$tmp"
        mkdir -p "$tmp"
        dpkg-deb -x "$deb" "$tmp"
        if [ ! -d "$tmp/lib/modules" ] && [ -d "$tmp/usr/lib/modules" ]; then
                ln -s usr/lib "$tmp/lib"
        fi
        kver=$(find "$tmp/lib/modules/" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
        if [ -z "$kver" ] || [ ! -f "$tmp/boot/vmlinuz-$kver" ]; then
                die "no kernel image in $deb"
        fi
        depmod -b "$tmp" "$kver"

        kdir_new=$cache/kernel.new
        rm -rf "$kdir_new"
        mkdir -p "$kdir_new/modroot/lib/modules/$kver"
        cp "$tmp/boot/vmlinuz-$kver" "$kdir_new/bzImage"
        cp "$tmp/boot/config-$kver" "$kdir_new/config"
        echo "$kver" >"$kdir_new/kver"

        # Resolve the load order from modules.dep: every module after its dependencies.
        declare -A dep_of path_of seen
        local l k
        while IFS= read -r l; do
                k=${l%%:*}
                n=$(modname "$k")
                path_of[$n]=$k
                dep_of[$n]=${l#*:}
        done <"$tmp/lib/modules/$kver/modules.dep"
        local order=()
        add_module() {
                local m=$1 d
                [ -n "${seen[$m]:-}" ] && return 0
                seen[$m]=1
                # shellcheck disable=SC2086 # a space-separated list
                for d in ${dep_of[$m]}; do
                        add_module "$(modname "$d")"
                done
                order+=("${path_of[$m]}")
        }
        : >"$kdir_new/notes"
        for wanted in "${RIG_MODULES[@]}"; do
                optional=
                [ "${wanted%\?}" != "$wanted" ] && optional=1
                n=${wanted%\?}
                if [ -z "${path_of[$n]:-}" ]; then
                        if grep -qE "/${n//_/[-_]}\.ko" "$tmp/lib/modules/$kver/modules.builtin" 2>/dev/null; then
                                echo "$n: built into the kernel" >>"$kdir_new/notes"
                        elif [ -n "$optional" ]; then
                                echo "$n: not a module on $kver (part of another module)" >>"$kdir_new/notes"
                        else
                                die "module $n not found in $pkg $pkg_version"
                        fi
                        continue
                fi
                add_module "$n"
        done
        mods=$kdir_new/modroot/lib/modules/$kver
        : >"$kdir_new/modules.load"
        for rel in "${order[@]}"; do
                src=$tmp/lib/modules/$kver/$rel
                case $rel in
                *.ko.xz) how="xz -dc" dst=${rel%.xz} ;;
                *.ko.zst) how="zstd -dcq" dst=${rel%.zst} ;;
                *.ko.gz) how="gzip -dc" dst=${rel%.gz} ;;
                *) how=cat dst=$rel ;;
                esac
                mkdir -p "$(dirname "$mods/$dst")"
                # shellcheck disable=SC2086
                $how "$src" >"$mods/$dst"
                echo "$dst" >>"$kdir_new/modules.load"
        done
        for f in modules.order modules.builtin modules.builtin.modinfo; do
                [ -f "$tmp/lib/modules/$kver/$f" ] && cp "$tmp/lib/modules/$kver/$f" "$mods/"
        done
        depmod -b "$kdir_new/modroot" "$kver"

        if how=$(extract_vmlinux "$kdir_new/bzImage" "$kdir_new/vmlinux"); then
                if command -v readelf >/dev/null && ! readelf -n "$kdir_new/vmlinux" 2>/dev/null | grep -q '(0x00000012)'; then
                        log "vmlinux has no PVH entry note: booting the bzImage instead"
                        rm -f "$kdir_new/vmlinux"
                else
                        echo "vmlinux: extracted ($how)" >>"$kdir_new/notes"
                fi
        else
                log "could not extract vmlinux from the bzImage: booting the bzImage instead"
                echo "vmlinux: extraction failed, bzImage boots" >>"$kdir_new/notes"
        fi

        echo "$kernel_stamp" >"$kdir_new/stamp"
        rm -rf "$kdir" "$tmp"
        mv "$kdir_new" "$kdir"
        log "kernel $kver ready ($(since "$t0")): $(tr '\n' ';' <"$kdir/notes" | sed 's/;$//; s/;/; /g')"
}

if [ "$(cat "$kdir/stamp" 2>/dev/null)" != "$kernel_stamp" ] || [ ! -f "$kdir/bzImage" ]; then
        fetch_kernel
fi
kver=$(cat "$kdir/kver")

# ---------------------------------------------------------------------------------------------
# cpio_gz DIR OUT: a newc archive of DIR, owned by root, gzipped.
cpio_gz() {
        (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) |
                gzip -6 -n >"$2.tmp"
        mv "$2.tmp" "$2"
}

# Base archive: busybox, /init, the rig's scripts and the modules.
busybox_bin=/bin/busybox
base_stamp="$kernel_stamp $(cat "$busybox_bin" "$here/init" "$here/capture-sysfs.sh" | sha256sum | cut -c1-16)"
if [ "$(cat "$cache/base.stamp" 2>/dev/null)" != "$base_stamp" ] || [ ! -f "$cache/base.cpio.gz" ]; then
        t0=$(now)
        st=$cache/base.staging
        rm -rf "$st"
        mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,root,etc,rig,groupd/lib,lib/modules,mnt}
        cp "$busybox_bin" "$st/bin/busybox"
        while read -r applet; do
                [ -e "$st/$applet" ] || [ -L "$st/$applet" ] || ln -s /bin/busybox "$st/$applet"
        done < <("$busybox_bin" --list-full)
        install -m 0755 "$here/init" "$st/init"
        install -m 0755 "$here/capture-sysfs.sh" "$st/rig/capture-sysfs.sh"
        cp -a "$kdir/modroot/lib/modules/." "$st/lib/modules/"
        # No list on a kernel without modules (own-6.12): /init then loads nothing.
        [ -s "$kdir/modules.load" ] && cp "$kdir/modules.load" "$st/rig/modules.load"
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$st/etc/passwd"
        printf 'root:x:0:\nkvm:x:104:\nnogroup:x:65534:\n' >"$st/etc/group"
        printf 'hosts: files\npasswd: files\ngroup: files\n' >"$st/etc/nsswitch.conf"
        echo rig >"$st/etc/hostname"
        # The kernel opens /dev/console for init before /init mounts devtmpfs.
        mknod -m 600 "$st/dev/console" c 5 1 2>/dev/null || true
        mknod -m 666 "$st/dev/null" c 1 3 2>/dev/null || true
        cpio_gz "$st" "$cache/base.cpio.gz"
        rm -rf "$st"
        echo "$base_stamp" >"$cache/base.stamp"
        log "base initramfs built ($(du -h "$cache/base.cpio.gz" | cut -f1), $(since "$t0"))"
fi

# ---------------------------------------------------------------------------------------------
# Payload archive: /groupd.
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }
is_libtool_wrapper() { ! is_elf "$1" && head -c 4096 "$1" | grep -q 'temporary wrapper script for'; }
find_libtool() {
        local d
        d=$(cd "$(dirname "$1")" && pwd)
        while [ "$d" != / ]; do
                [ -x "$d/libtool" ] && { echo "$d/libtool"; return 0; }
                d=$(dirname "$d")
        done
        return 1
}

# vfio-raw and vfio-broker, the rig's own raw VFIO programs (with the sysfs steps they share, rig-sysfs.c),
# always go in (static, so they need no libraries).
build_static() {
        local src=("$here/$1.c" "$here/rig-sysfs.c") bin=$build_dir/vm/$1
        if [ ! -x "$bin" ] || [ "${src[0]}" -nt "$bin" ] || [ "${src[1]}" -nt "$bin" ] || [ "$here/rig-sysfs.h" -nt "$bin" ]; then
                need_packages gcc libc6-dev
                cc -O2 -Wall -Wextra -static -o "$bin.$$" "${src[@]}" 2>/dev/null ||
                        cc -O2 -Wall -Wextra -o "$bin.$$" "${src[@]}" ||
                        die "cannot compile $1.c"
                mv "$bin.$$" "$bin"
        fi
        echo "$bin"
}
vfio_raw=$(build_static vfio-raw)
vfio_broker=$(build_static vfio-broker)

pst=$cache/payload.staging
rm -rf "$pst"
mkdir -p "$pst/groupd/lib"
copy_libs() {
        # copy_libs LDD_OUTPUT: each resolved library (and the loader) into the payload.
        local soname arrow path rest
        while read -r soname arrow path rest; do
                if [ "$arrow" != "=>" ]; then
                        # The loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso: "linux-vdso.so.1 (0x...)"
                        [ "${soname#/}" != "$soname" ] || continue
                        path=$soname
                        soname=${soname##*/}
                fi
                [ "${path#/}" != "$path" ] || die "unresolved library: $soname $arrow $path"
                case $path in
                /lib/* | /lib64/* | /usr/lib/* | /usr/lib64/*)
                        if [ ! -e "$pst$path" ]; then
                                mkdir -p "$(dirname "$pst$path")"
                                cp -L "$path" "$pst$path"
                        fi
                        ;;
                *) cp -L "$path" "$pst/groupd/lib/$soname" ;;
                esac
        done
}
declare -A bin_seen
for b in "$vfio_raw" "$vfio_broker" "${bins[@]}"; do
        [ -e "$b" ] || die "no such executable: $b"
        name=${b##*/}
        [ -n "${bin_seen[$name]:-}" ] && continue
        bin_seen[$name]=1
        if is_libtool_wrapper "$b"; then
                lt=$(find_libtool "$b") || die "$b is a libtool wrapper, and no libtool script above it"
                real=$("$lt" --mode=execute echo "$b")
                [ -x "$real" ] || die "libtool names $real for $b, which is not there"
                cp -L "$real" "$pst/groupd/$name"
                copy_libs < <("$lt" --mode=execute ldd "$b" 2>/dev/null | grep -v 'not a dynamic')
        else
                cp -L "$b" "$pst/groupd/$name"
                if is_elf "$b" && ldd "$b" >/dev/null 2>&1; then
                        copy_libs < <(ldd "$b")
                fi
        fi
        chmod 0755 "$pst/groupd/$name"
done
for f in "${files[@]}"; do
        [ -e "$f" ] || die "no such file: $f"
        cp -rL "$f" "$pst/groupd/"
done
if [ -n "$scenarios" ]; then
        [ -f "$scenarios" ] || die "no such scenario script: $scenarios"
        install -m 0755 "$scenarios" "$pst/groupd/scenarios.sh"
fi
payload_stamp=$( (cd "$pst" && find . -printf '%p %l %m\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum | cut -c1-16)
if [ "$(cat "$cache/payload.stamp" 2>/dev/null)" != "$payload_stamp" ] || [ ! -f "$cache/payload.cpio.gz" ]; then
        cpio_gz "$pst" "$cache/payload.cpio.gz"
        echo "$payload_stamp" >"$cache/payload.stamp"
        log "payload built: $(cd "$pst/groupd" && find . -maxdepth 1 -type f | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')($(du -h "$cache/payload.cpio.gz" | cut -f1))"
fi
rm -rf "$pst"

cpio_stamp=
for c in "${cpios[@]}"; do
        [ -f "$c" ] || die "no such archive: $c"
        cpio_stamp="$cpio_stamp $(stat -c '%s %Y' "$c")"
done
if [ "$(cat "$cache/initrd.stamp" 2>/dev/null)" != "$base_stamp $payload_stamp$cpio_stamp" ] || [ ! -f "$cache/initrd.img" ]; then
        cat "${cpios[@]}" "$cache/base.cpio.gz" "$cache/payload.cpio.gz" >"$cache/initrd.img.tmp"
        mv "$cache/initrd.img.tmp" "$cache/initrd.img"
        echo "$base_stamp $payload_stamp$cpio_stamp" >"$cache/initrd.stamp"
fi

if [ -f "$kdir/vmlinux" ]; then kernel=$kdir/vmlinux kind=vmlinux; else kernel=$kdir/bzImage kind=bzImage; fi
{
        printf 'RIG_LINE=%q\n' "$line"
        printf 'RIG_KVER=%q\n' "$kver"
        printf 'RIG_PKG=%q\n' "$pkg"
        printf 'RIG_PKG_VERSION=%q\n' "$pkg_version"
        printf 'RIG_KERNEL=%q\n' "$kernel"
        printf 'RIG_KERNEL_KIND=%q\n' "$kind"
        printf 'RIG_INITRD=%q\n' "$cache/initrd.img"
} >"$cache/rig.env"
log "ready: $pkg $pkg_version ($kver, $kind), initrd $(du -h "$cache/initrd.img" | cut -f1) ($(since "$t_start"))"
