#!/usr/bin/env bash
# shellcheck shell=bash
# Sourced by the ppc64le tier's scripts: a private apt configuration for Debian's ppc64el packages.
#
# Its own sources list (bookworm, bookworm-updates, bookworm-backports; bookworm-security is left out:
# its ppc64el index fails to download with a size mismatch), its own lists and archive cache, an empty
# dpkg status and its own architecture. Nothing is installed: packages are fetched with `apt-get
# download` and unpacked with dpkg-deb -x. /etc/apt and dpkg's architectures are left alone.
#
# Where: PPC_CACHE, by default /var/cache/groupd-rig/ppc64el (shared by every clone and worktree on the
# machine: the kernel and the sysroot do not depend on the source tree, and `rm -rf build` should not
# cost a re-download), or BUILD/vm-ppc/cache when that is not writable. Inside it, what is unpacked is
# keyed by a hash of its inputs (package names and versions), so a new version lands beside the old.
#
#   ppc_apt_init BUILD_DIR      sets PPC_CACHE and PPC_APT (the options for apt-get/apt-cache)
#   ppc_apt_update              refreshes the lists when older than a day (or missing); false offline
#   ppc_apt_version PKG         the candidate version of PKG (empty when unknown)
#   ppc_apt_versions PKG...     "PKG=VERSION" lines, in one apt-cache run (each run reads every list)
#   ppc_apt_fetch DIR PKG...    downloads PKG=candidate into DIR unless there already

ppc_apt_init() {
        local build_dir=$1
        PPC_CACHE=${PPC_CACHE:-/var/cache/groupd-rig/ppc64el}
        if ! mkdir -p "$PPC_CACHE" 2>/dev/null || [ ! -w "$PPC_CACHE" ]; then
                PPC_CACHE=$build_dir/vm-ppc/cache
                mkdir -p "$PPC_CACHE"
        fi
        mkdir -p "$PPC_CACHE/apt/lists/partial" "$PPC_CACHE/apt/cache/archives/partial" "$PPC_CACHE/debs"
        local keyring=/usr/share/keyrings/debian-archive-keyring.gpg s
        {
                for s in bookworm bookworm-updates bookworm-backports; do
                        echo "deb [arch=ppc64el signed-by=$keyring] http://deb.debian.org/debian $s main"
                done
        } >"$PPC_CACHE/apt/sources.list.new"
        if ! cmp -s "$PPC_CACHE/apt/sources.list.new" "$PPC_CACHE/apt/sources.list"; then
                mv "$PPC_CACHE/apt/sources.list.new" "$PPC_CACHE/apt/sources.list"
        else
                rm -f "$PPC_CACHE/apt/sources.list.new"
        fi
        PPC_APT=(-o APT::Architecture=ppc64el -o APT::Architectures::=ppc64el
                -o "Dir::Etc::SourceList=$PPC_CACHE/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
                -o "Dir::State::Lists=$PPC_CACHE/apt/lists" -o "Dir::Cache=$PPC_CACHE/apt/cache"
                -o Dir::State::status=/dev/null -o APT::Sandbox::User=root -o Debug::NoLocking=1)
}

ppc_apt_update() {
        if [ -n "$(find "$PPC_CACHE/apt/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null)" ] &&
                [ "${1:-}" != --force ]; then
                return 0
        fi
        apt-get "${PPC_APT[@]}" update -qq 2>&1 | grep -v 'Download is performed unsandboxed' >&2
        [ -n "$(find "$PPC_CACHE/apt/lists" -maxdepth 1 -name '*_Packages*' 2>/dev/null)" ]
}

ppc_apt_version() {
        apt-cache "${PPC_APT[@]}" show --no-all-versions "$1" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }'
}

ppc_apt_versions() {
        apt-cache "${PPC_APT[@]}" show --no-all-versions "$@" 2>/dev/null |
                awk '$1 == "Package:" { p = $2 } $1 == "Version:" { print p "=" $2 }'
}

ppc_apt_fetch() {
        local dir=$1 p v pv want=()
        shift
        mkdir -p "$dir"
        declare -A ver=()
        while IFS= read -r pv; do ver[${pv%%=*}]=${pv#*=}; done < <(ppc_apt_versions "$@")
        for p in "$@"; do
                v=${ver[$p]:-}
                [ -n "$v" ] || { echo "apt-ppc64el: no package $p for ppc64el" >&2; return 1; }
                compgen -G "$dir/${p}_${v//:/%3a}_*.deb" >/dev/null || want+=("$p=$v")
        done
        [ ${#want[@]} -eq 0 ] && return 0
        (cd "$dir" && apt-get "${PPC_APT[@]}" download -qq "${want[@]}" 2>&1 |
                grep -v 'Download is performed unsandboxed' >&2)
        for p in "${want[@]}"; do
                compgen -G "$dir/${p%%=*}_*.deb" >/dev/null || { echo "apt-ppc64el: download of $p failed" >&2; return 1; }
        done
}
