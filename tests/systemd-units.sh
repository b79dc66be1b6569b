#!/usr/bin/env bash
# The systemd units: `systemd-analyze verify` says nothing about them, and the offline security review
# keeps their exposure at or below the level they were tuned to (a hardening option that goes missing
# raises it). The installed ExecStart= path does not exist here, so the copy checked runs the built
# binary instead; nothing else changes.
set -euo pipefail

: "${TOP_SRCDIR:?run through make check}" "${TOP_BUILDDIR:?}" "${GROUPD_BIN:?}"
MAX_EXPOSURE=${MAX_EXPOSURE:-1.0}

if ! command -v systemd-analyze >/dev/null; then
        echo "systemd-units: skipped: no systemd-analyze (Debian package systemd)" >&2
        exit 77
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed -e "s|^ExecStart=[^ ]*groupd|ExecStart=$GROUPD_BIN|" "$TOP_BUILDDIR/systemd/groupd.service" > "$dir/groupd.service"
cp "$TOP_SRCDIR/systemd/groupd.socket" "$dir/"
grep -q "^ExecStart=$GROUPD_BIN" "$dir/groupd.service"

cd "$dir"
rc=0
out=$(systemd-analyze verify --man=no groupd.socket groupd.service 2>&1) || rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "systemd-analyze verify (rc $rc):" >&2
        echo "$out" >&2
        exit 1
fi
echo "verify: clean"

sec=$(systemd-analyze security --offline=true groupd.service 2>&1)
level=$(sed -n 's/.*Overall exposure level for groupd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
if [ -z "$level" ]; then
        echo "no exposure level in:" >&2
        echo "$sec" >&2
        exit 1
fi
echo "exposure: $level (at most $MAX_EXPOSURE)"
grep '✗' <<<"$sec" || true
if ! awk -v a="$level" -v b="$MAX_EXPOSURE" 'BEGIN { exit !(a <= b) }'; then
        echo "exposure $level is above $MAX_EXPOSURE" >&2
        exit 1
fi

# The journal catalog explains every MESSAGE_ID the audit module sends, and each entry is well formed
# ("-- ID" then a Subject:).
ids=$(sed -n 's/^#define MESSAGE_ID_[A-Z_]* "\([0-9a-f]\{32\}\)"$/\1/p' "$TOP_SRCDIR/daemon/core/audit.c")
[ -n "$ids" ] || { echo "no MESSAGE_IDs found in audit.c" >&2; exit 1; }
for id in $ids; do
        if ! grep -A1 -x -- "-- $id" "$TOP_SRCDIR/systemd/groupd.catalog" | grep -q '^Subject: '; then
                echo "MESSAGE_ID $id (daemon/core/audit.c) has no catalog entry with a Subject" >&2
                exit 1
        fi
done
echo "catalog: $(wc -w <<<"$ids") message ids explained"
