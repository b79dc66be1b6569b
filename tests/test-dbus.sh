#!/usr/bin/env bash
# The D-Bus tier: a private system bus (tests/dbus/system.conf, which includes groupd's own bus policy
# file), the real polkitd on it with groupd's action file and the test rules made visible in a private
# mount namespace (the host's /usr/share/polkit-1 and /etc/polkit-1 are never touched), and groupd on
# the simulated host. Then test-dbus drives the API.
#
# GROUPD_TEST_KEEP=1 keeps the logs (dbus.log, polkitd.log, groupd.log). Skips (77) only when the pieces cannot run here: not root, no unshare/mount namespaces, no polkitd.
set -euo pipefail

top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${TOP_BUILDDIR:-$top/build}
groupd=${GROUPD_BIN:-$build/groupd}
client=$build/test-dbus
polkitd=/usr/lib/polkit-1/polkitd

skip() { echo "test-dbus: SKIPPED: $*" >&2; exit 77; }

# The shipped XML is valid: the polkit actions against polkit's DTD, the interface against D-Bus's.
xmllint --noout --dtdvalid /usr/share/polkit-1/policyconfig-1.dtd "$top/polkit/org.groupd1.policy" ||
        { echo "test-dbus: polkit/org.groupd1.policy is not valid against polkit's DTD" >&2; exit 1; }
xmllint --noout --dtdvalid /usr/share/xml/dbus-1/introspect.dtd "$top/proto/org.groupd1.xml" ||
        { echo "test-dbus: proto/org.groupd1.xml is not valid against D-Bus's introspection DTD" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (polkitd runs as root; callers switch uid)"
command -v dbus-daemon >/dev/null || skip "no dbus-daemon (Debian package dbus-daemon)"
[ -x "$polkitd" ] || skip "no $polkitd (Debian package polkitd)"
unshare -m true 2>/dev/null || skip "cannot make a mount namespace (unshare -m) here"
[ -x "$client" ] || { echo "test-dbus: $client is not built" >&2; exit 1; }

run=$(mktemp -d /tmp/groupd-dbus.XXXXXX)
chmod 755 "$run"   # callers run as other uids and must reach the bus socket
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        if [ -n "${GROUPD_TEST_KEEP:-}" ]; then echo "test-dbus: logs kept in $run" >&2; else rm -rf "$run"; fi
}
trap cleanup EXIT
fail() {
        echo "test-dbus: FAILED: $*" >&2
        for f in dbus.log polkitd.log groupd.log; do echo "--- $f:" >&2; cat "$run/$f" >&2 || true; done
        exit 1
}

# The bus: tests/dbus/system.conf, plus the shipped activation file in a service directory of its own
# (so that the bus parses it; nothing is activated: there is no systemd here, and groupd is started below).
mkdir -p "$run/services"
cp "$top/systemd/org.groupd1.service" "$run/services/"
cat >"$run/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>$top/tests/dbus/system.conf</include>
  <servicedir>$run/services</servicedir>
</busconfig>
CONF
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$run/bus"
dbus-daemon --config-file="$run/bus.conf" --address="$DBUS_SYSTEM_BUS_ADDRESS" --nofork \
        >"$run/dbus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$run/bus" ] && break; sleep 0.05; done
[ -S "$run/bus" ] || fail "dbus-daemon did not start"

dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.ListActivatableNames 2>&1 | grep -q '"org.groupd1"' ||
        fail "the bus did not take systemd/org.groupd1.service as the activation file of org.groupd1"

# polkitd sees only groupd's actions and the test rules. It changes to the user polkitd, which must be
# able to read them.
mkdir -p "$run/actions" "$run/rules" "$run/no-rules"
cp "$top/polkit/org.groupd1.policy" "$run/actions/"
cp "$top"/tests/dbus/rules.d/*.rules "$run/rules/"
chmod -R a+rX "$run/actions" "$run/rules" "$run/no-rules"
unshare -m sh -c '
        set -e
        mount --bind "$1/actions" /usr/share/polkit-1/actions
        mount --bind "$1/rules" /etc/polkit-1/rules.d
        if [ -d /usr/share/polkit-1/rules.d ]; then mount --bind "$1/no-rules" /usr/share/polkit-1/rules.d; fi
        exec "$2"' sh "$run" "$polkitd" >"$run/polkitd.log" 2>&1 &
pids+=($!)

"$groupd" --host=sim --runtime-dir="$run/rt" --policy="$run/no-policy.conf" --release-deadline=2 \
        >"$run/groupd.log" 2>&1 &
pids+=($!)

has_owner() {
        dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep -q "boolean true"
}
for _ in $(seq 200); do has_owner org.freedesktop.PolicyKit1 && has_owner org.groupd1 && break; sleep 0.05; done
has_owner org.freedesktop.PolicyKit1 || fail "polkitd did not take its name on the private bus"
has_owner org.groupd1 || fail "groupd did not take org.groupd1 on the private bus"

# What an administrator sees (busctl comes with systemd; without it, this look is skipped).
if command -v busctl >/dev/null; then
        busctl --system introspect org.groupd1 /org/groupd1 >"$run/introspect.txt" 2>&1 ||
                fail "busctl introspect failed: $(cat "$run/introspect.txt")"
        for m in Acquire Release ListGroups GetGroup ListLeases LeaseStarted LeaseEnded GroupChanged; do
                grep -q "^\.$m " "$run/introspect.txt" || fail "busctl introspect does not show $m"
        done
fi

rc=0
GROUPD_TEST_SOCKET="$run/rt/socket" "$client" || rc=$?
groupd_pid=${pids[2]}
kill -0 "$groupd_pid" 2>/dev/null || fail "groupd died during the tests"
if [ $rc -ne 0 ]; then fail "test-dbus exited with $rc"; fi
grep -q "No D-Bus API" "$run/groupd.log" && fail "groupd ran without its D-Bus API"

# Without polkitd, D-Bus callers get nothing (fail closed).
kill -TERM "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
for _ in $(seq 100); do has_owner org.freedesktop.PolicyKit1 || break; sleep 0.05; done
has_owner org.freedesktop.PolicyKit1 && fail "polkitd did not go away"
rc=0
GROUPD_TEST_NO_POLKIT=1 "$client" || rc=$?
if [ $rc -ne 0 ]; then fail "test-dbus without polkitd exited with $rc"; fi

# groupd stops cleanly with the bus still there (and, in the sanitizer build, without leaks).
kill -TERM "$groupd_pid"
rc=0
wait "$groupd_pid" || rc=$?
[ $rc -eq 0 ] || fail "groupd exited with $rc on SIGTERM"
exit 0
