#!/bin/sh
# shellcheck shell=dash
# D-Bus Acquire by an unprivileged user (vmm, uid 1000) through the real polkitd: refused without a rule
# (org.groupd1.acquire-any is auth_admin, and nobody can authenticate here), granted with a rules file
# that allows vmm group 3 when the request carries a label. The lease is the caller's bus name's, so it
# ends when busctl exits, and the drivers come back.

call_as_vmm() {
        /usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups -- busctl --timeout=30 call org.groupd1 /org/groupd1 \
                org.groupd1.Manager Acquire 'asa{sv}' 1 3 1 label s sd-polkit 2>&1
}
groupctl status >/dev/null

out=$(call_as_vmm)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -qiE 'denied|not authori|authoriz'; then
        pass polkit-refuses-without-rule "refused: $(echo "$out" | head -n 1 | cut -c1-160)"
else
        fail polkit-refuses-without-rule "busctl exit $rc: $(echo "$out" | head -c 300)"
fi
[ "$(systemctl show -P ActiveState polkit.service)" = active ] && note "polkitd (polkit.service) is active: it was asked"

mkdir -p /etc/polkit-1/rules.d
cat >/etc/polkit-1/rules.d/50-rig-groupd.rules <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id == "org.groupd1.acquire-any" && subject.user == "vmm" &&
        action.lookup("groups") == "3" && action.lookup("label") != "") {
        return polkit.Result.YES;
    }
});
RULES
# polkitd reloads its rules when the directory changes.
got_rules() { journalctl -q -b -u polkit.service | grep -q 'Reloading rules\|Finished loading, compiling and executing'; }
wait_until 50 got_rules
sleep 1
out=$(call_as_vmm)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q '/org/groupd1/lease/'; then
        pass polkit-grants-with-rule "vmm acquired group 3 over D-Bus: $(echo "$out" | cut -c1-120)"
else
        fail polkit-grants-with-rule "busctl exit $rc: $(echo "$out" | head -c 300)"
        journal_since_mark | grep -iE 'polkit|groupd' | tail -n 10 | sed 's/^/    /'
fi
if [ $rc -eq 0 ] && wait_until 100 no_leases && wait_until 100 is_on 0000:00:03.0 e1000e; then
        pass polkit-lease-ends-with-caller "busctl left the bus; the lease ended and e1000e is back"
else
        fail polkit-lease-ends-with-caller "leases: $(groupctl leases --no-legend | tr '\n' '|'), 00:03.0 '$(driver_of 0000:00:03.0)'"
fi
# Group 6 is not in the rule: refused even with the rules file.
out=$(/usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups -- busctl --timeout=30 call org.groupd1 /org/groupd1 \
        org.groupd1.Manager Acquire 'asa{sv}' 1 6 1 label s sd-polkit 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -qiE 'denied|not authori|authoriz' &&
        [ "$(group_state 6)" = "0000:00:06.0= 0000:00:06.1=e1000" ]; then
        pass polkit-rule-is-narrow "group 6 refused: $(echo "$out" | head -n 1 | cut -c1-120)"
else
        fail polkit-rule-is-narrow "busctl exit $rc: $(echo "$out" | head -c 200); group 6 '$(group_state 6)'"
fi
