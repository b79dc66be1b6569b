#!/usr/bin/env bash
# The systemd tier's guest root: a small Debian root (systemd, udev, dbus, polkitd, the libraries groupd
# needs, busybox for the scenarios' shell tools) made from the archive's own packages, as an ext4 image.
#
#   tests/vm/systemd/build-root.sh [--cache DIR]     prints the image's path on stdout
#
# The packages are fetched with `apt-get download` (never installed on the host) and unpacked with
# `dpkg-deb -x`; no maintainer script runs (the accounts and the few files they would make are written
# here). The image is cached outside the clone, in DIR (default $GROUPD_RIG_CACHE, else
# /var/cache/groupd-rig/systemd-root), under a key made of the package list, the versions apt resolves
# and this script: rebuilt when any of them changes, reused while apt cannot resolve (offline).
# Exit status: 0 ready, 77 the root cannot be had here (no apt, no archive, not root), 1 error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${GROUPD_RIG_CACHE:-/var/cache/groupd-rig/systemd-root}
[ "${1:-}" = --cache ] && { cache=$2; shift 2; }

# What the guest runs, by Debian (bookworm) package name. The libraries are named explicitly (no
# dependency solver: the closure of these few is small and stable within a release); verify_root below
# fails when an executable the tier uses lacks a library.
PACKAGES=(
        base-files libc6 libgcc-s1 gcc-12-base busybox-static
        systemd libsystemd-shared libsystemd0 udev libudev1 kmod libkmod2 mount util-linux
        dbus dbus-daemon dbus-bin dbus-system-bus-common libdbus-1-3 libexpat1
        polkitd libpolkit-gobject-1-0 libglib2.0-0 libduktape207 libffi8 libpcre2-8-0
        libcap-ng0 libacl1 libapparmor1 libaudit1 libaudit-common libblkid1 libcap2 libcrypt1
        libcryptsetup12 libdevmapper1.02.1 libargon2-1 libjson-c5 libssl3 libgcrypt20 libgpg-error0
        libip4tc2 liblz4-1 liblzma5 libmount1 libpam0g libseccomp2 libselinux1 libzstd1 zlib1g
        libsmartcols1 libuuid1 libfdisk1 libtinfo6 libbz2-1.0
)
# Executables that must find every library they need.
CHECK_BINS=(/lib/systemd/systemd /lib/systemd/systemd-udevd /lib/systemd/systemd-journald /bin/systemctl
        /usr/bin/busctl /usr/bin/systemd-analyze /usr/bin/systemd-run /bin/journalctl /usr/bin/dbus-daemon
        /usr/lib/polkit-1/polkitd /sbin/modprobe /usr/bin/setpriv /bin/mount)

log() { echo "build-root: $*" >&2; }
die() {
        echo "build-root: error: $*" >&2
        exit 1
}
unavailable() {
        echo "build-root: the guest root cannot be had here: $*" >&2
        exit 77
}
[ "$(id -u)" -eq 0 ] || unavailable "not root (the image keeps the packages' owners)"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || unavailable "no apt-get/dpkg-deb"
command -v mke2fs >/dev/null || unavailable "no mke2fs (e2fsprogs)"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# The key: every package's candidate version, and this script.
versions=$(apt-cache policy "${PACKAGES[@]}" 2>/dev/null |
        awk '/^[^ ]/ { p = $1; sub(/:$/, "", p) } $1 == "Candidate:" { print p, $2 }' | sort -u)
n_resolved=$(grep -cv ' (none)$' <<<"$versions" || true)
if [ "$n_resolved" -ne "$(printf '%s\n' "${PACKAGES[@]}" | sort -u | wc -l)" ]; then
        latest=$(ls -t "$cache"/*/root.img 2>/dev/null | head -n 1 || true)
        [ -n "$latest" ] && { log "apt cannot resolve every package now; using the cached $latest"; echo "$latest"; exit 0; }
        unavailable "apt-cache cannot resolve the guest's packages (no package lists?)"
fi
key=$( (echo "$versions"; sha256sum <"$here/build-root.sh") | sha256sum | cut -c1-16)
dir=$cache/$key
if [ -f "$dir/root.img" ]; then
        echo "$dir/root.img"
        exit 0
fi

t0=$(date +%s)
log "building the guest root $key (${#PACKAGES[@]} packages)"
rm -rf "$cache"/*.new
mkdir -p "$dir.new/debs" "$dir.new/root"
# Reuse the debs of an older build where the version is the same.
for old in "$cache"/*/debs/*.deb; do
        [ -e "$old" ] && ln -f "$old" "$dir.new/debs/" 2>/dev/null || true
done
want=()
while read -r p v; do
        f=$(ls "$dir.new/debs/${p}_"*.deb 2>/dev/null | head -n 1 || true)
        if [ -n "$f" ] && [ "$(dpkg-deb -f "$f" Version)" = "$v" ]; then continue; fi
        rm -f "$dir.new/debs/${p}_"*.deb
        want+=("$p=$v")
done <<<"$versions"
if [ ${#want[@]} -gt 0 ]; then
        (cd "$dir.new/debs" && apt-get -o APT::Sandbox::User=root download -qq "${want[@]}" 2>&1 |
                grep -v '^W: Download is performed unsandboxed' >&2) || true
fi
for p in "${PACKAGES[@]}"; do
        ls "$dir.new/debs/${p}_"*.deb >/dev/null 2>&1 || unavailable "apt-get download $p failed"
done
# Keep only the wanted debs (an older build's extra ones would otherwise be unpacked).
for f in "$dir.new/debs"/*.deb; do
        p=$(dpkg-deb -f "$f" Package)
        printf '%s\n' "${PACKAGES[@]}" | grep -qx "$p" || rm -f "$f"
done

root=$dir.new/root
for f in "$dir.new/debs"/*.deb; do
        dpkg-deb -x "$f" "$root"
done
# What the guest never reads.
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,zsh} "$root"/lib/udev/hwdb.d \
        "$root"/lib/udev/hwdb.bin

# What maintainer scripts would have made.
mkdir -p "$root"/{proc,sys,dev,run,tmp,root,home/vmm,var/log/journal,var/tmp,etc/systemd/system,mnt,opt}
chmod 1777 "$root/tmp" "$root/var/tmp"
# base-files' postinst makes these; GLib's default system bus address is under /var/run (polkitd).
rm -rf "$root/var/run" "$root/var/lock"
ln -s /run "$root/var/run"
ln -s /run/lock "$root/var/lock"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
messagebus:x:100:101::/nonexistent:/usr/sbin/nologin
polkitd:x:101:102:polkit:/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
systemd-timesync:x:997:997:systemd Time Synchronization:/:/usr/sbin/nologin
vmm:x:1000:1000:an unprivileged VMM:/home/vmm:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
adm:x:4:
tty:x:5:
disk:x:6:
kmem:x:15:
dialout:x:20:
cdrom:x:24:
audio:x:29:
video:x:44:
utmp:x:43:
kvm:x:104:
render:x:105:
input:x:106:
sgx:x:107:
systemd-journal:x:999:
messagebus:x:101:
polkitd:x:102:
systemd-network:x:998:
systemd-timesync:x:997:
vmm:x:1000:
nogroup:x:65534:
EOF
awk -F: '{ print $1 ":*:19000:0:99999:7:::" }' "$root/etc/passwd" >"$root/etc/shadow"
chmod 0640 "$root/etc/shadow"
chown 1000:1000 "$root/home/vmm"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
echo rig >"$root/etc/hostname"
echo 6f9a2b1c5d3e4f708192a3b4c5d6e7f8 >"$root/etc/machine-id"
: >"$root/etc/fstab"
verify_root() {
        local b missing
        for b in "${CHECK_BINS[@]}"; do
                chroot "$root" /bin/busybox test -x "$b" || die "$b is not in the guest root"
                missing=$(chroot "$root" /lib64/ld-linux-x86-64.so.2 --list "$b" 2>&1 | grep 'not found' || true)
                [ -z "$missing" ] || die "$b lacks libraries: $missing"
        done
}
verify_root

# busybox provides the scenarios' tools (sh, awk, sed, grep, pidof, timeout...) where Debian's are absent.
# Its sh runs its own applets before PATH: a scenario names a Debian tool by its full path.
for a in $("$root/bin/busybox" --list-full); do
        [ -e "$root/$a" ] || [ -L "$root/$a" ] || { mkdir -p "$root/$(dirname "$a")"; ln -s /bin/busybox "$root/$a"; }
done
[ -e "$root/bin/sh" ] || ln -s busybox "$root/bin/sh"
# Nothing but the tier's target runs: no getty, no network, no timers.
ln -sf /dev/null "$root/etc/systemd/system/getty@.service"
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@.service"
ln -sf /dev/null "$root/etc/systemd/system/systemd-timesyncd.service"
ldconfig -r "$root" 2>/dev/null || true


# ext4, written from the directory (no loop mount); the guest boots it with qemu's snapshot=on, so each
# boot writes to a throw-away overlay and the image stays as built.
size_mb=$(($(du -sm "$root" | cut -f1) + 160))
mke2fs -q -t ext4 -L groupd-rig -E root_owner=0:0 -d "$root" "$dir.new/root.img" "${size_mb}M" >&2 ||
        die "mke2fs failed"
rm -rf "$root"
echo "$versions" >"$dir.new/packages"
rm -rf "$dir"
mv "$dir.new" "$dir"
# Older roots go; their debs were linked into this one where still wanted.
for old in "$cache"/*/; do
        [ "${old%/}" = "$dir" ] || rm -rf "$old"
done
log "guest root ready in $(($(date +%s) - t0)) s: $dir/root.img ($(du -h "$dir/root.img" | cut -f1) used)"
echo "$dir/root.img"
