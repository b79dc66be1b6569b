#!/bin/sh
# shellcheck shell=dash
# Discovery: what groupd reports (groupctl list --json, one group a line) matches the kernel's sysfs for
# every IOMMU group: the same groups, members, IDs, drivers, type and reserved regions; and group 6
# (00:06.0 without a driver, 00:06.1 on e1000) is reported not viable, naming 00:06.1 and e1000.

if ! daemon_start; then
        fail discovery "groupd did not start"
        exit 0
fi

json=/tmp/list.json
groupctl list --json >"$json" 2>/tmp/list.err
st=$?
if [ $st -ne 0 ]; then
        fail discovery "groupctl list --json exited $st: $(cat /tmp/list.err)"
        daemon_stop
        exit 0
fi

# What sysfs says, in the shape the JSON is reduced to below.
expected_devices() {
        for d in $(members "$1"); do
                drv=$(driver_of "$d")
                printf '%s %s %s %s %s\n' "$d" "$(cat "$pci/$d/vendor")" "$(cat "$pci/$d/device")" \
                        "$(cat "$pci/$d/class")" "${drv:-null}"
        done
}
json_devices() {
        grep -o '"address":"[^"]*","vendor":"[^"]*","device":"[^"]*","class":"[^"]*","driver":[^,]*' |
                sed 's/"address":"\([^"]*\)","vendor":"\([^"]*\)","device":"\([^"]*\)","class":"\([^"]*\)","driver":"\{0,1\}\([^",]*\)"\{0,1\}/\1 \2 \3 \4 \5/'
}
expected_regions() {
        while read -r s e t; do
                echo "$s $e $t"
        done <"$groups/$1/reserved_regions"
}
json_regions() {
        grep -o '"start":"[^"]*","end":"[^"]*","type":"[^"]*"' |
                sed 's/"start":"\([^"]*\)","end":"\([^"]*\)","type":"\([^"]*\)"/\1 \2 \3/'
}

sys_groups=$(ls "$groups" | sort -n | tr '\n' ' ' | sed 's/ $//')
json_groups=$(grep -o '^{"group":[0-9]*' "$json" | sed 's/.*://' | sort -n | tr '\n' ' ' | sed 's/ $//')
n=$(echo "$sys_groups" | wc -w)
bad=
if [ "$sys_groups" != "$json_groups" ]; then
        bad="groups differ: sysfs has '$sys_groups', groupd '$json_groups';"
fi
for g in $sys_groups; do
        line=$(grep "^{\"group\":$g," "$json")
        exp=$(expected_devices "$g")
        got=$(echo "$line" | json_devices)
        [ "$exp" = "$got" ] || bad="$bad group $g devices: sysfs '$(echo "$exp" | tr '\n' ';')' groupd '$(echo "$got" | tr '\n' ';')';"
        exp=$(expected_regions "$g")
        got=$(echo "$line" | json_regions)
        [ "$exp" = "$got" ] || bad="$bad group $g regions: sysfs '$(echo "$exp" | tr '\n' ';')' groupd '$(echo "$got" | tr '\n' ';')';"
        t=$(cat "$groups/$g/type" 2>/dev/null)
        echo "$line" | grep -q "\"type\":\"$t\"" || bad="$bad group $g type: sysfs '$t', groupd '$(echo "$line" | grep -o '"type":"[^"]*"' | head -n 1)';"
        # Viable as the kernel sees it: every device on vfio-pci, on no driver, or a bridge on pcieport.
        viable=true
        for d in $(members "$g"); do
                case $(driver_of "$d") in
                "" | vfio-pci | pcieport) ;;
                *) viable=false ;;
                esac
        done
        echo "$line" | grep -q "\"viable\":$viable" || bad="$bad group $g: viable should be $viable;"
done
if [ -z "$bad" ]; then
        pass discovery-matches-sysfs "$n groups"
else
        fail discovery-matches-sysfs "$bad"
fi

g6=$(group_of "$MF0")
line=$(grep "^{\"group\":$g6," "$json")
why=$(echo "$line" | sed -n 's/.*"viability":"\([^"]*\)".*/\1/p')
if echo "$line" | grep -q '"viable":false' && echo "$why" | grep -q '0000:00:06.1' &&
        echo "$why" | grep -q -w e1000 && ! echo "$why" | grep -q '0000:00:06.0'; then
        pass discovery-group6-not-viable "\"$why\""
else
        fail discovery-group6-not-viable "group $g6 should be not viable naming 0000:00:06.1 and e1000 (and not 06.0): $line"
fi

# The text form says the same, for a person.
out=$(groupctl show "$g6" 2>&1)
if echo "$out" | grep -q 'Viable: no: .*0000:00:06.1.*e1000'; then
        pass discovery-show-group6
else
        fail discovery-show-group6 "groupctl show $g6 said: $(echo "$out" | tr '\n' '|')"
fi

# A device address names its group.
out=$(groupctl show 00:03.0 2>&1)
if echo "$out" | grep -qE "^Group $(group_of "$NIC")([^0-9]|\$)" && echo "$out" | grep -q '0000:00:03.0.*e1000e'; then
        pass discovery-by-address
else
        fail discovery-by-address "groupctl show 00:03.0 said: $(echo "$out" | tr '\n' '|')"
fi

daemon_stop
