#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Fuzzes the wire codec (proto/proto.c) with libFuzzer for SECONDS (default 30), then the
# VFIO_IOMMU_GET_INFO capability-chain parser (daemon/host/iommu-info.c, tests/fuzz-iommu-info.c) for a third
# of that (at least 5 s), seeded with the real kernels' captured buffers (tests/data/iommu-info-*.bin).
#
#     tests/fuzz.sh [SECONDS]
#
# Builds tests/fuzz-codec.c with clang -fsanitize=fuzzer,address,undefined straight from the sources (no
# configure needed) into a temporary directory, seeds a corpus with one valid packet of every message type
# (written by the same file built as a seed writer), and runs. Exits non-zero on a crash, a leak, a failed
# round trip, or an allocation over 1 MiB (the decoder bounds every array by the bytes left, so no input
# can make it allocate more than a few hundred KiB). The crashing input is kept and its path printed.
#
# Environment:
#     CC            the compiler (default clang; must provide libFuzzer)
#     FUZZ_CORPUS   a directory to keep the corpus in across runs (default: a temporary one)
#     FUZZ_ARGS     extra libFuzzer arguments (e.g. "-jobs=4 -workers=4")
#     FUZZ_COVERAGE if 1, replay the final corpus through a coverage build and print proto.c's line and
#                   branch coverage (needs llvm-profdata and llvm-cov)
set -eu

seconds=${1:-30}
case $seconds in
        ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-clang}
work=$(mktemp -d "${TMPDIR:-/tmp}/groupd-fuzz.XXXXXX")
keep=0
cleanup() {
        if [ "$keep" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v "$CC" >/dev/null 2>&1; then
        echo "fuzz.sh: $CC not found; libFuzzer needs clang" >&2
        exit 77
fi

srcs="$top/tests/fuzz-codec.c $top/proto/proto.c $top/common/parse-util.c"
cflags="-std=gnu11 -g -O1 -I$top/proto -I$top/common -Wall -Wextra -Wno-unused-parameter"

echo "fuzz.sh: building in $work"
# shellcheck disable=SC2086 # word splitting of the flag lists is wanted
$CC $cflags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
        $srcs -o "$work/fuzz-codec"
# shellcheck disable=SC2086
$CC $cflags -DGD_FUZZ_WRITE_SEEDS $srcs -o "$work/write-seeds"

corpus=${FUZZ_CORPUS:-$work/corpus}
mkdir -p "$corpus"
"$work/write-seeds" "$corpus"
echo "fuzz.sh: $(find "$corpus" -type f | wc -l) inputs in the corpus, fuzzing for ${seconds}s"

rc=0
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
"$work/fuzz-codec" \
        -max_total_time="$seconds" \
        -max_len=8192 \
        -timeout=10 \
        -malloc_limit_mb=1 \
        -use_value_profile=1 \
        -print_final_stats=1 \
        -artifact_prefix="$work/" \
        ${FUZZ_ARGS:-} \
        "$corpus" >"$work/fuzz.log" 2>&1 || rc=$?

if [ "$rc" != 0 ]; then
        keep=1
        tail -n 60 "$work/fuzz.log" >&2
        echo "fuzz.sh: FAILED (libFuzzer exit status $rc); the log and the crashing input are in $work:" >&2
        for f in "$work"/crash-* "$work"/leak-* "$work"/oom-* "$work"/timeout-* "$work"/slow-unit-*; do
                if [ -e "$f" ]; then echo "        $f" >&2; fi
        done
        exit 1
fi
# The seeds loaded, the last progress line, and the final statistics.
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$work/fuzz.log" || true
grep -E '^(Done [0-9]+ runs|stat::)' "$work/fuzz.log" || true

if [ "${FUZZ_COVERAGE:-0}" = 1 ]; then
        # A plain coverage build of the same target, driven over the corpus by a tiny main().
        cat >"$work/replay.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv) {
        static uint8_t buf[1 << 17];
        for (int i = 1; i < argc; i++) {
                FILE *f = fopen(argv[i], "re");
                size_t n;
                if (!f)
                        continue;
                n = fread(buf, 1, sizeof buf, f);
                fclose(f);
                LLVMFuzzerTestOneInput(buf, n);
        }
        return 0;
}
EOF
        # shellcheck disable=SC2086
        $CC $cflags -fprofile-instr-generate -fcoverage-mapping $srcs "$work/replay.c" -o "$work/replay"
        find "$corpus" -type f -print0 | LLVM_PROFILE_FILE="$work/replay-%p.profraw" xargs -0 "$work/replay"
        llvm-profdata merge -o "$work/replay.profdata" "$work"/replay-*.profraw
        llvm-cov report "$work/replay" -instr-profile="$work/replay.profdata" "$top/proto/proto.c"
fi

# ---- the second target: the GET_INFO capability-chain parser
info_seconds=$((seconds / 3))
[ "$info_seconds" -ge 5 ] || info_seconds=5
isrcs="$top/tests/fuzz-iommu-info.c $top/daemon/host/iommu-info.c"
icflags="$cflags -I$top/daemon/host"
# shellcheck disable=SC2086
$CC $icflags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
        $isrcs -o "$work/fuzz-iommu-info"
# shellcheck disable=SC2086
$CC $icflags -DGD_FUZZ_WRITE_SEEDS $isrcs -o "$work/write-info-seeds"
icorpus=$work/corpus-iommu-info
mkdir -p "$icorpus"
"$work/write-info-seeds" "$icorpus"
for f in "$top"/tests/data/iommu-info-*.bin; do
        if [ -e "$f" ]; then cp "$f" "$icorpus/"; fi
done
echo "fuzz.sh: GET_INFO parser: $(find "$icorpus" -type f | wc -l) inputs in the corpus, fuzzing for ${info_seconds}s"
rc=0
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
"$work/fuzz-iommu-info" \
        -max_total_time="$info_seconds" \
        -max_len=4096 \
        -timeout=10 \
        -use_value_profile=1 \
        -print_final_stats=1 \
        -artifact_prefix="$work/" \
        ${FUZZ_ARGS:-} \
        "$icorpus" >"$work/fuzz-info.log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
        keep=1
        tail -n 60 "$work/fuzz-info.log" >&2
        echo "fuzz.sh: GET_INFO parser FAILED (libFuzzer exit status $rc); the log and the input are in $work" >&2
        exit 1
fi
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$work/fuzz-info.log" || true
grep -E '^Done [0-9]+ runs' "$work/fuzz-info.log" || true

echo "fuzz.sh: OK"
