#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The layering rules of DESIGN.md, checked on the sources and on the built client library:
#
#   daemon/core/**   includes no D-Bus header (<dbus/...>, <systemd/sd-bus.h>), not the wire header
#                    (groupd-proto.h) nor the installed client header, no edge header, nothing of client/
#   daemon/host/**   the same, and besides no core header and no <systemd/sd-event.h> / <systemd/sd-bus.h>
#   common/**        what both may include: none of the above either (common/ sits below every room)
#   libgroupd.so     exports gd_* and nothing else (client/libgroupd.sym)
#
# The build enforces part of it (the rooms' include paths, Makefile.am); this catches the rest, a header
# that is reachable anyway (<systemd/...> is always on the system path) or a path spelled out
# ("../edge/bus.h"). Each violation is one line, file:line: what it includes, and the rule.
#
# Run by make check (TOP_SRCDIR, TOP_BUILDDIR from the environment), or by hand: tests/layering.sh [SRCDIR
# [BUILDDIR]]. Exit status 0 (all rules hold), 1 (a violation, or an exception below no longer needed).
set -euo pipefail

src=${1:-${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}}
build=${2:-${TOP_BUILDDIR:-$src/build}}

# Known violations, for a change that lands in steps: "file header" per line, relative to $src. A listed
# include is reported but does not fail the test; once it is gone the test fails until its line is
# removed here, so the list can only shrink and cannot hide a new violation. None today.
KNOWN="
"

failed=0
declare -A known_seen=()

fail() {
        echo "layering: $*" >&2
        failed=1
}

# The headers of a directory, by name: edge/*.h, core/*.h, client/*.h.
headers_of() {
        local d f
        for d in "$@"; do
                for f in "$src/$d"/*.h; do
                        [ -e "$f" ] && basename "$f"
                done
        done
        return 0
}

# check_includes RULE FILES... -- PATTERNS...: every #include in FILES whose target (as written, or for
# a quoted one its last component) matches one of the extended regexps PATTERNS breaks RULE.
check_includes() {
        local room=$1 files=() patterns=() f pat n line inc base rel hit
        shift
        while [ $# -gt 0 ] && [ "$1" != "--" ]; do
                files+=("$1")
                shift
        done
        shift
        patterns=("$@")
        for f in "${files[@]}"; do
                [ -f "$f" ] || continue
                rel=${f#"$src"/}
                n=0
                while IFS= read -r line; do
                        n=$((n + 1))
                        [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\<\"])([^\>\"]+)[\>\"] ]] || continue
                        inc=${BASH_REMATCH[2]}
                        # "x/y.h" is found by its name in any room's directory; <x/y.h> only as written.
                        base=$inc
                        [ "${BASH_REMATCH[1]}" = '"' ] && base=${inc##*/}
                        hit=
                        for pat in "${patterns[@]}"; do
                                if [[ $inc =~ $pat ]] || [[ $base =~ $pat ]]; then
                                        hit=$pat
                                        break
                                fi
                        done
                        [ -n "$hit" ] || continue
                        if grep -qxF "$rel $base" <<<"$KNOWN"; then
                                echo "layering: known, expected to go: $rel:$n: includes $inc ($room)"
                                known_seen["$rel $base"]=1
                                continue
                        fi
                        fail "$rel:$n: includes $inc: $room"
                done <"$f"
        done
}

# An exact header name as a regexp: dots escaped, anchored.
as_regex() {
        local h
        for h in "$@"; do
                h=${h//./\\.}
                printf '^%s$\n' "$h"
        done
}

shopt -s nullglob globstar
core_files=("$src"/daemon/core/**/*.[ch])
host_files=("$src"/daemon/host/**/*.[ch])
common_files=("$src"/common/**/*.[ch])
if [ ${#core_files[@]} -eq 0 ] || [ ${#host_files[@]} -eq 0 ]; then
        echo "layering: no daemon/core or daemon/host sources under $src" >&2
        exit 1
fi

# What nobody below the edges may include: D-Bus, the wire and client API, the edges themselves (their
# headers by name, the generated interface description, or any path through edge/ or client/).
mapfile -t names < <(headers_of daemon/edge)
mapfile -t edge_h < <(as_regex "${names[@]}" org.groupd1-xml.h)
mapfile -t names < <(headers_of client)
mapfile -t client_h < <(as_regex "${names[@]}")
mapfile -t names < <(headers_of daemon/core)
mapfile -t core_h < <(as_regex "${names[@]}")
below_edges=('^dbus/' '^dbus-1' '^systemd/sd-bus\.h$' '^groupd-proto\.h$' '(^|/)edge/' '(^|/)client/'
             '(^|/)proto/' "${edge_h[@]}" "${client_h[@]}")

check_includes "the core knows no D-Bus, no wire format and no edge" \
        "${core_files[@]}" -- "${below_edges[@]}"
check_includes "the host knows no D-Bus, no wire format, no edge, no core and no event loop" \
        "${host_files[@]}" -- "${below_edges[@]}" '(^|/)core/' "${core_h[@]}" '^systemd/sd-event\.h$'
check_includes "common/ sits below every room: it includes none of them" \
        "${common_files[@]}" -- "${below_edges[@]}" '(^|/)core/' "${core_h[@]}" '(^|/)host/' \
        '^systemd/sd-event\.h$'

# An exception that no longer applies must go from KNOWN.
while read -r k; do
        [ -n "$k" ] || continue
        [ -n "${known_seen[$k]:-}" ] ||
                fail "'$k' is listed in KNOWN (tests/layering.sh) but no longer included: remove the line"
done <<<"$KNOWN"

# libgroupd.so: gd_* only. nm -D lists the version node (LIBGROUPD_0, type A) too: that is not a symbol.
lib=$build/.libs/libgroupd.so
if [ ! -e "$lib" ]; then
        echo "layering: $lib not built (--disable-shared?): export check skipped"
elif ! command -v nm >/dev/null; then
        echo "layering: no nm: export check skipped"
else
        n_gd=0
        while read -r _ type name; do
                [ "$type" = A ] && [[ $name =~ ^LIBGROUPD_ ]] && continue
                if [[ $name =~ ^gd_ ]]; then
                        n_gd=$((n_gd + 1))
                else
                        fail "libgroupd.so exports $name ($type): only gd_* is API (client/libgroupd.sym)"
                fi
        done < <(nm -D --defined-only "$lib")
        [ "$n_gd" -gt 0 ] || fail "libgroupd.so exports no gd_* at all: is $lib a libgroupd?"
        echo "layering: libgroupd.so exports $n_gd gd_* symbols"
fi

if [ $failed -ne 0 ]; then
        echo "layering: FAILED (rules: tests/layering.sh, DESIGN.md's Layout)" >&2
        exit 1
fi
echo "layering: all rules hold"
