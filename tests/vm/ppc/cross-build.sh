#!/usr/bin/env bash
# Cross-builds groupd, groupctl, libgroupd (static) and the rig's test programs (vmm-standin, vfio-raw)
# for ppc64el, against a sysroot made from Debian's ppc64el packages.
#
#   tests/vm/ppc/cross-build.sh BUILD_DIR
#
# The sysroot: libsystemd-dev, libdbus-1-dev, libcap-ng-dev, check (configure asks for it) and the
# libraries they link against, fetched with the private apt configuration (apt-ppc64el.sh) and unpacked
# with dpkg-deb -x into PPC_CACHE/sysroot-HASH (HASH: the packages and their versions); nothing is
# installed. The compiler and libc are the host's gcc-powerpc64le-linux-gnu and libc6-dev-ppc64el-cross
# (installed when missing). The build goes to BUILD_DIR/ppc64el (configure --host=powerpc64le-linux-gnu,
# libgroupd static so that the guest needs only Debian's shared libraries); BUILD_DIR/ppc64el/sysroot
# links to the sysroot, which run.sh takes the guest's libraries from.
#
# Exit status: 0 built, 77 cannot be had here (no cross compiler to install, no ppc64el packages
# reachable), 1 the build failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../../.." && pwd)
[ $# -eq 1 ] || { echo "usage: tests/vm/ppc/cross-build.sh BUILD_DIR" >&2; exit 2; }
mkdir -p "$1"
build_dir=$(cd "$1" && pwd)
# shellcheck source=tests/vm/ppc/apt-ppc64el.sh
. "$here/apt-ppc64el.sh"

log() { echo "cross-build: $*" >&2; }
unavailable() { echo "cross-build: cannot cross-build for ppc64el here: $*" >&2; exit 77; }

# shellcheck source=tests/vm/host-lib.sh
. "$here/../host-lib.sh"
need_packages gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross linux-libc-dev-ppc64el-cross pkgconf dpkg apt

# The sysroot: the -dev packages and every library they link against (Depends, by hand: the set is
# small and stable, and a resolver run for ppc64el would drag in dpkg, tar and friends).
SYSROOT_PKGS=(libsystemd-dev libsystemd0 libdbus-1-dev libdbus-1-3 libcap-ng-dev libcap-ng0
        check libsubunit-dev libsubunit0 libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1)
ppc_apt_init "$build_dir"
exec 8>"$PPC_CACHE/.lock"
flock 8
ppc_apt_update || log "apt-get update for ppc64el failed; trying with the lists there are"
key=$(ppc_apt_versions "${SYSROOT_PKGS[@]}" | sort -u | tr '\n' ' ')
for p in "${SYSROOT_PKGS[@]}"; do
        case " $key" in *" $p="*) ;; *) unavailable "no ppc64el package $p (apt-get update for ppc64el failed?)" ;; esac
done
sysroot=$PPC_CACHE/sysroot-$(echo "$key" | sha256sum | cut -c1-16)
if [ ! -f "$sysroot/.done" ]; then
        t0=$(date +%s.%N)
        ppc_apt_fetch "$PPC_CACHE/debs" "${SYSROOT_PKGS[@]}" || unavailable "cannot download the sysroot packages"
        rm -rf "$sysroot.tmp"
        mkdir -p "$sysroot.tmp"
        for pv in $key; do
                p=${pv%%=*} v=${pv#*=}
                dpkg-deb -x "$(compgen -G "$PPC_CACHE/debs/${p}_${v//:/%3a}_*.deb" | head -n 1)" "$sysroot.tmp"
        done
        # -dev packages link their .so to /lib/...: point those into the sysroot.
        while IFS= read -r l; do
                ln -sfn "$sysroot$(readlink "$l")" "$l"
        done < <(find "$sysroot.tmp" -type l -lname '/*')
        echo "$key" >"$sysroot.tmp/.done"
        rm -rf "$sysroot"
        mv "$sysroot.tmp" "$sysroot"
        # Older sysroots (other package versions) go; their builds reconfigure against this one.
        find "$PPC_CACHE" -maxdepth 1 -name 'sysroot-*' ! -path "$sysroot" -exec rm -rf {} +
        log "sysroot $sysroot ready ($(since "$t0"))"
fi
exec 8>&-

triplet=powerpc64le-linux-gnu
libdirs=("$sysroot/usr/lib/$triplet" "$sysroot/lib/$triplet")
ldflags=
for d in "${libdirs[@]}"; do ldflags="$ldflags -L$d -Wl,-rpath-link,$d"; done

out=$build_dir/ppc64el
mkdir -p "$out"
ln -sfn "$sysroot" "$out/sysroot"
if [ ! -x "$top/configure" ]; then
        (cd "$top" && ./autogen.sh)
fi
opts="--host=$triplet --disable-shared --enable-static --enable-werror --with-systemdsystemunitdir=no $(cat "$sysroot/.done" | sha256sum | cut -c1-8)"
if [ ! -f "$out/Makefile" ] || [ "$top/configure" -nt "$out/Makefile" ] || [ "$(cat "$out/.options" 2>/dev/null)" != "$opts" ]; then
        log "configuring $out for $triplet"
        (cd "$out" && "$top/configure" -q --host=$triplet --disable-shared --enable-static --enable-werror \
                --with-systemdsystemunitdir=no \
                PKG_CONFIG=pkg-config PKG_CONFIG_SYSROOT_DIR="$sysroot" \
                PKG_CONFIG_LIBDIR="$sysroot/usr/lib/$triplet/pkgconfig:$sysroot/usr/share/pkgconfig" \
                LDFLAGS="$ldflags") >"$out/configure.log" 2>&1 || { cat "$out/configure.log" >&2; exit 1; }
        echo "$opts" >"$out/.options"
fi
t0=$(date +%s.%N)
if ! nice make -C "$out" -s -j"${PPC_JOBS:-2}" all >"$out/make.log" 2>&1; then
        cat "$out/make.log" >&2
        exit 1
fi
# The tier's own stand-in VMM (sPAPR and KVM-HV steps), against the static libgroupd just built.
if [ ! -x "$out/spapr-standin" ] || [ "$here/spapr-standin.c" -nt "$out/spapr-standin" ] ||
        [ "$out/.libs/libgroupd.a" -nt "$out/spapr-standin" ]; then
        $triplet-gcc -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror -I"$top/client" -I"$top/proto" -o "$out/spapr-standin.tmp" \
                "$here/spapr-standin.c" "$out/.libs/libgroupd.a"
        mv "$out/spapr-standin.tmp" "$out/spapr-standin"
fi
for b in groupd groupctl vmm-standin vfio-raw spapr-standin; do
        readelf -h "$out/$b" 2>/dev/null | grep -q 'Machine: *PowerPC64' ||
                { log "$out/$b is not a ppc64 executable"; exit 1; }
done
log "built groupd groupctl vmm-standin vfio-raw spapr-standin for $triplet ($(since "$t0"))"
