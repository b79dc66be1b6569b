#!/bin/sh
# shellcheck shell=dash
# systemd-analyze inside the guest, on the units as installed: verify says nothing, and the security
# review of the loaded service rates it at most 1.0.

# --man=no: the guest has no man(1) to look Documentation=man:groupd(8) up with.
out=$(systemd-analyze verify --man=no groupd.socket groupd.service 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
        pass analyze-verify "systemd-analyze verify --man=no groupd.socket groupd.service: clean"
else
        fail analyze-verify "exit $rc: $(echo "$out" | head -n 5 | tr '\n' '|')"
fi
groupctl status >/dev/null
sec=$(systemd-analyze security groupd.service 2>&1)
level=$(echo "$sec" | sed -n 's/.*Overall exposure level for groupd.service: \([0-9.]*\).*/\1/p')
if [ -n "$level" ] && awk -v a="$level" 'BEGIN { exit !(a <= 1.0) }'; then
        pass analyze-security "exposure $level; still open: $(echo "$sec" | grep '✗' | awk '{ print $2 }' | tr '\n' ' ')"
else
        fail analyze-security "exposure '$level': $(echo "$sec" | tail -n 3 | tr '\n' '|')"
fi
