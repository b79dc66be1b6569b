#!/usr/bin/env bash
# Builds the rig's own 6.12 kernel, with iommufd and the VFIO device cdev, which Debian's kernels leave
# out (6.1, bookworm-backports' 6.12, even sid's).
#
#   tests/vm/build-kernel.sh [--cache DIR] [--jobs N] [--quiet]
#
# The source is bookworm-backports' linux-source-6.12 (the same 6.12.y as the backports kernel image),
# fetched with `apt-get download` through a private sources list and lists directory (/etc/apt is left
# alone), never installed. The configuration is `make allnoconfig` with KCONFIG_ALLCONFIG = the kernel's
# tiny configs (kernel/configs/tiny.config, arch/x86/configs/tiny.config) plus tests/vm/kernel-rig.config;
# every option the fragment sets to y must come out y, or the build fails.
#
# The result lives OUTSIDE the clone, so that every clone and CI run on the machine shares it:
#
#   CACHE/kernel-KEY/      KEY = hash of the source package version, the fragment and RECIPE below
#       vmlinux            the ELF kernel (PVH entry: qemu -kernel boots it without decompressing)
#       bzImage            the same kernel for bootloaders
#       config             the .config it was built from
#       kver               `make kernelrelease`
#       headers/include/   the kernel's uapi headers (headers_install): linux/iommufd.h, linux/vfio.h
#       source             "linux-source-6.12 VERSION"
#       build-time         seconds the build took (download and unpack included)
#   CACHE/dl/              the source .deb
#   CACHE/src-VERSION/     the unpacked source tree, kept so that a fragment change builds incrementally
#   CACHE/obj-VERSION/     the build tree (O=); both are removed when a newer source version is built
#   CACHE/apt/             the private apt lists and cache
#
# CACHE is $GROUPD_RIG_CACHE, else /var/cache/groupd-rig. The kernel directory's path is printed on
# stdout (the only line there); progress goes to stderr. A cached kernel costs nothing: its key is
# computed from the package lists (refreshed once a day) and the fragment, and nothing is built.
#
# Exit status: 0 built or cached, 77 the source cannot be had here (no network, not root), 1 error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/kernel-rig.config
# Bump when the way the kernel is built changes (not the fragment: that is hashed itself).
RECIPE="allnoconfig+tiny+fragment vmlinux bzImage headers_install r1"
SRC_PKG=linux-source-6.12

cache=${GROUPD_RIG_CACHE:-/var/cache/groupd-rig}
jobs=${RIG_KERNEL_JOBS:-2}
quiet=0
while [ $# -gt 0 ]; do
        case $1 in
        --cache) cache=$2; shift 2 ;;
        --cache=*) cache=${1#*=}; shift ;;
        --jobs) jobs=$2; shift 2 ;;
        --jobs=*) jobs=${1#*=}; shift ;;
        --quiet) quiet=1; shift ;;
        *) sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        esac
done

log() { [ $quiet -eq 1 ] || echo "build-kernel: $*" >&2; }
die() {
        echo "build-kernel: error: $*" >&2
        exit 1
}
unavailable() {
        echo "build-kernel: the own kernel cannot be built here: $*" >&2
        exit 77
}
# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"

[ -f "$fragment" ] || die "no $fragment"
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
        unavailable "cannot write the cache $cache (set GROUPD_RIG_CACHE, or run as root)"
fi
cache=$(cd "$cache" && pwd)

exec 8>"$cache/.kernel.lock"
flock 8
t_start=$(now)

# ---------------------------------------------------------------------------------------------
# The private apt configuration for bookworm-backports (lists refreshed once a day).
mkdir -p "$cache/dl"
backports_apt "$cache"
src_version() {
        apt-cache "${apt_opts[@]}" show "$SRC_PKG" 2>/dev/null | awk '$1 == "Version:" { print $2 }' |
                sort -V | tail -n 1
}
backports_fresh || backports_update
version=$(src_version)
if [ -z "$version" ]; then
        backports_update
        version=$(src_version)
fi
if [ -z "$version" ]; then
        # Offline: the newest kernel built before will do.
        newest=$(ls -td "$cache"/kernel-*/ 2>/dev/null | head -n 1)
        if [ -n "$newest" ] && [ -f "$newest/vmlinux" ]; then
                log "cannot resolve $SRC_PKG now (offline?); using the cached $(cat "$newest/source")"
                echo "${newest%/}"
                exit 0
        fi
        unavailable "apt-cache cannot find $SRC_PKG in bookworm-backports (no network?)"
fi

key=$( { echo "$SRC_PKG $version"; echo "$RECIPE"; cat "$fragment"; } | sha256sum | cut -c1-16)
out=$cache/kernel-$key
if [ -f "$out/vmlinux" ] && [ -f "$out/kver" ] && [ -d "$out/headers/include/linux" ]; then
        log "cached: $(cat "$out/kver") from $SRC_PKG $version ($out)"
        echo "$out"
        exit 0
fi

# ---------------------------------------------------------------------------------------------
# A build: tools, source, configuration, kernel.
need_packages gcc make libc6-dev bison flex libelf-dev bc rsync xz-utils dpkg apt util-linux

deb=$(find "$cache/dl" -maxdepth 1 -name "${SRC_PKG}_*.deb" | head -n 1)
if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Version)" != "$version" ]; then
        log "downloading $SRC_PKG $version"
        rm -f "$cache/dl/${SRC_PKG}"_*.deb
        (cd "$cache/dl" && apt-get "${apt_opts[@]}" download -qq "$SRC_PKG=$version" 2>&1 |
                grep -v '^W: Download is performed unsandboxed' >&2) || true
        deb=$(find "$cache/dl" -maxdepth 1 -name "${SRC_PKG}_*.deb" | head -n 1)
        [ -n "$deb" ] || unavailable "apt-get download $SRC_PKG=$version failed"
fi

src=$cache/src-$version obj=$cache/obj-$version
if [ ! -f "$src/.unpacked" ]; then
        t0=$(now)
        log "unpacking $(basename "$deb")"
        rm -rf "$src" "$src.tmp"
        mkdir -p "$src.tmp"
        dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
                xz -dc | tar -x -C "$src.tmp" --strip-components=1
        [ -f "$src.tmp/Makefile" ] || die "no kernel tree in $deb"
        touch "$src.tmp/.unpacked"
        mv "$src.tmp" "$src"
        log "unpacked in $(since "$t0")"
fi

mkdir -p "$obj"
allconfig=$obj/rig.allconfig
cat "$src/kernel/configs/tiny.config" "$src/arch/x86/configs/tiny.config" "$fragment" >"$allconfig"
kmake() { nice -n 10 make -C "$src" O="$obj" ARCH=x86_64 -s "$@"; }
log "configuring: allnoconfig + tiny configs + $(basename "$fragment")"
KCONFIG_ALLCONFIG=$allconfig kmake allnoconfig >"$obj/config.log" 2>&1 || {
        cat "$obj/config.log" >&2
        die "make allnoconfig failed"
}
# Every y the fragment asks for must be there (Kconfig drops what it cannot satisfy, silently).
lost=$(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=y$/\1/p' "$fragment" | while read -r sym; do
        grep -qx "$sym=y" "$obj/.config" || echo "$sym"
done)
[ -z "$lost" ] || die "the configuration lost: $(echo "$lost" | tr '\n' ' ')(a dependency is off; see $obj/.config)"

t0=$(now)
log "building vmlinux and bzImage with -j$jobs under nice (a few minutes)"
if ! kmake -j"$jobs" vmlinux bzImage >"$obj/build.log" 2>&1; then
        tail -n 40 "$obj/build.log" >&2
        die "the kernel build failed (all of it in $obj/build.log)"
fi
t_build=$(since "$t0")
rm -rf "$out.new"
mkdir -p "$out.new"
kmake headers_install INSTALL_HDR_PATH="$out.new/headers" >/dev/null 2>&1 || die "make headers_install failed"
cp "$obj/vmlinux" "$out.new/vmlinux"
cp "$obj/arch/x86/boot/bzImage" "$out.new/bzImage"
cp "$obj/.config" "$out.new/config"
kmake kernelrelease >"$out.new/kver"
echo "$SRC_PKG $version" >"$out.new/source"
echo "$(since "$t_start") total, $t_build compiling, -j$jobs, $(nproc) cpus" >"$out.new/build-time"
rm -rf "$out"
mv "$out.new" "$out"
# Trees of other source versions are dead weight (1.5 GB each); kernels stay, they are small. Only
# trees this script made go (the cache root is shared with other tiers' builds).
for d in "$cache"/src-* "$cache"/obj-*; do
        [ -f "$d/.unpacked" ] || [ -f "$d/rig.allconfig" ] || continue
        case $d in "$src" | "$obj") continue ;; esac
        log "removing $(basename "$d"), the tree of an older source"
        rm -rf "$d"
done
log "built $(cat "$out/kver") in $(cat "$out/build-time"): $out"
echo "$out"
