#!/usr/bin/env bash
# The demo: groupd on the simulated default host, in a temporary runtime directory, and a short session
# with groupctl. Also part of the test suite: it fails when the story does not come out as told.
#
# Usage: tests/demo.sh [BUILD_DIR]
set -euo pipefail

build=${1:-${TOP_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)/build}}
groupd="$build/groupd"
groupctl="$build/groupctl"
vmm="$build/vmm-standin"
for b in "$groupd" "$groupctl" "$vmm"; do
        [ -x "$b" ] || { echo "demo: $b is not built (run ./dev build)" >&2; exit 1; }
done

run=$(mktemp -d /tmp/groupd-demo.XXXXXX)
export GROUPD_SOCKET="$run/socket"
daemon_pid=
cleanup() {
        [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
        rm -rf "$run"
}
trap cleanup EXIT

bold= plain=
if [ -t 1 ]; then bold=$(tput bold 2>/dev/null || true); plain=$(tput sgr0 2>/dev/null || true); fi
step() { printf '\n%s### %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '%s$ %s%s\n' "$bold" "$*" "$plain"; "$@"; }
fail() { echo "demo: FAILED: $*" >&2; echo "--- daemon log:" >&2; cat "$run/groupd.log" >&2; exit 1; }

step "Start groupd on the simulated host (a GPU with its audio function, a NIC, a multi-function device, a bridge, an NVMe controller, a USB controller, a crypto function vfio-pci refuses)"
printf '%s$ groupd --host=sim --runtime-dir=%s &%s\n' "$bold" "$run" "$plain"
"$groupd" --host=sim --runtime-dir="$run" --policy="$run/no-policy.conf" >"$run/groupd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
        "$groupctl" status >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || fail "groupd did not start"
        sleep 0.05
done
show "$groupctl" status

step "Every IOMMU group, its devices' drivers, and who holds it"
show "$groupctl" list

step "Group 3 is not viable: one function is on the host's e1000 driver. groupd claims both when asked."
out=$(show "$groupctl" show 3) || fail "show 3"
echo "$out"
grep -q "0000:03:00.1 is bound to e1000" <<<"$out" || fail "group 3 should be reported non-viable, naming 0000:03:00.1 and e1000"

step "The policy never hands out the NVMe controller (it may hold the host's disks)"
if out=$("$groupctl" acquire 5 2>&1); then fail "group 5 was handed out"; fi
echo "$out"

step "Acquire group 1 (GPU + audio) for a stand-in VMM; the VMM uses the fds it receives, then exits"
show "$groupctl" acquire 1 --label demo-vm --exec -- "$vmm" --hold 1 | tee "$run/acquire.out" || fail "acquire --exec"
grep -q "owner-exited" "$run/acquire.out" || fail "the lease's end was not announced with its reason"

step "The lease is gone and the host drivers are back"
show "$groupctl" leases
out=$(show "$groupctl" show 1) || fail "show 1"
echo "$out"
grep -q "nouveau" <<<"$out" && grep -q "snd_hda_intel" <<<"$out" || fail "host drivers of group 1 not restored"

step "Stop groupd"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "groupd exited with $?"
daemon_pid=
tail -n 4 "$run/groupd.log" | sed 's/^<[0-9]>//'
echo
echo "demo: done"
