#!/usr/bin/env bash
# The hostile-client harness, short (1 s a phase), as part of make check: every attack against the real
# groupd on the sim host; fails if a bound breaks (the good client not served, fds or RSS over their bounds
# or not back to baseline, too many log lines, a crash). Latencies are printed, never judged here.
set -euo pipefail
build=${TOP_BUILDDIR:?run through make check}
if [ "$(id -u)" -ne 0 ]; then
        echo "hostile: skipped: needs root (attackers run as other uids)"
        exit 77
fi
# Every attack but fdflood: root's fds in flight are one count for every root process on the machine, so
# flooding them would fail the hand-overs of the tests make check runs beside this one. ./dev check runs
# fdflood on its own, after the suites.
args=(--seconds="${HOSTILE_SECONDS:-1}" --only="${HOSTILE_ONLY:-idle,emfile,events,garbage,reqflood}")
# A sanitizer build keeps freed memory in quarantine: RSS says nothing there.
if grep -q -- '-fsanitize=' "$build/Makefile" 2>/dev/null; then
        args+=(--no-rss-bounds)
fi
exec "$build/hostile" "$build/groupd" "${args[@]}"
