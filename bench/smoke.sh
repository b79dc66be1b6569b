#!/usr/bin/env bash
# A smoke run of the benchmarks with tiny counts (part of make check), so that they keep working. Its
# figures mean nothing; it fails only when a benchmark cannot run to its end.
set -euo pipefail
build=${TOP_BUILDDIR:?run through make check}
if [ "$(id -u)" -ne 0 ]; then
        echo "bench smoke: skipped: needs root (the daemon binds its socket under a runtime dir it owns)"
        exit 77
fi
out=$("${TOP_SRCDIR:?}/bench/run.sh" "$build" --quick)
printf '%s\n' "$out"
grep -q '^ratio_vs_floor [0-9]' <<<"$out"
grep -q '^groupd_cycle_median ' <<<"$out"
grep -q '^throughput_8_clients ' <<<"$out"
