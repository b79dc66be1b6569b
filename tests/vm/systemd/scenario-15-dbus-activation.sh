#!/bin/sh
# shellcheck shell=dash
# D-Bus activation: with groupd.service stopped, the first call to org.groupd1 makes dbus-daemon start it
# through systemd (org.groupd1.service: SystemdService=groupd.service), and the call is answered.

if is_active; then
        fail dbus-activation "groupd.service is running before the call"
        exit 0
fi
t0=$(now_ms)
out=$(busctl --timeout=30 call org.groupd1 /org/groupd1 org.freedesktop.DBus.Introspectable Introspect 2>&1)
rc=$?
t1=$(now_ms)
if [ $rc -eq 0 ] && echo "$out" | grep -q 'org.groupd1.Manager' && is_active &&
        journal_since_mark | grep -q "Activating via systemd: service name='org.groupd1' unit='groupd.service'"; then
        pass dbus-activation "the first call started groupd.service through dbus-daemon and systemd, answered in $((t1 - t0)) ms"
else
        fail dbus-activation "busctl exit $rc ($(echo "$out" | head -c 200)), service '$(unit_state)'"
        journal_since_mark | grep -iE 'dbus|groupd' | tail -n 10 | sed 's/^/    /'
fi
owner=$(busctl --timeout=5 call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetConnectionUnixProcessID s org.groupd1 2>/dev/null | awk '{ print $2 }')
if [ -n "$owner" ] && [ "$owner" = "$(main_pid)" ]; then
        pass dbus-name-owner "org.groupd1 is owned by groupd.service's main process ($owner)"
else
        fail dbus-name-owner "org.groupd1's owner pid '$owner', MainPID $(main_pid)"
fi
