#!/bin/sh
# shellcheck shell=dash
# Discovery on POWER: what groupd reports (groupctl list --json) matches sysfs for every IOMMU group (one
# per PHB on pseries, per PE on powernv): the same groups, members, IDs, drivers and viability; and the
# group of two functions is reported not viable, naming the function on a host driver and that driver.
. /groupd/ppc-lib.sh

if ! daemon_start; then
        fail discovery "groupd did not start"
        exit 0
fi
json=/tmp/list.json
if ! groupctl list --json >"$json" 2>/tmp/list.err; then
        fail discovery "groupctl list --json failed: $(cat /tmp/list.err)"
        daemon_stop
        exit 0
fi

sys_groups=$(ls "$groups" | sort -n | tr '\n' ' ' | sed 's/ $//')
json_groups=$(grep -o '^{"group":[0-9]*' "$json" | sed 's/.*://' | sort -n | tr '\n' ' ' | sed 's/ $//')
bad=
[ "$sys_groups" = "$json_groups" ] || bad="groups differ: sysfs '$sys_groups', groupd '$json_groups';"
for g in $sys_groups; do
        line=$(grep "^{\"group\":$g," "$json")
        exp= got=
        for d in $(members "$g"); do
                drv=$(driver_of "$d")
                exp="$exp $d $(cat "$pci/$d/vendor") $(cat "$pci/$d/device") ${drv:-null};"
        done
        got=$(echo "$line" | grep -o '"address":"[^"]*","vendor":"[^"]*","device":"[^"]*","class":"[^"]*","driver":[^,]*' |
                sed 's/"address":"\([^"]*\)","vendor":"\([^"]*\)","device":"\([^"]*\)","class":"[^"]*","driver":"\{0,1\}\([^",]*\)"\{0,1\}/ \1 \2 \3 \4;/' | tr -d '\n')
        [ "$exp" = "$got" ] || bad="$bad group $g: sysfs '$exp' groupd '$got';"
        viable=true
        for d in $(members "$g"); do
                case $(driver_of "$d") in "" | vfio-pci | pcieport) ;; *) viable=false ;; esac
        done
        echo "$line" | grep -q "\"viable\":$viable" || bad="$bad group $g: viable should be $viable;"
done
n=$(echo "$sys_groups" | wc -w)
if [ -z "$bad" ]; then
        pass discovery-matches-sysfs "$MACHINE: $n groups, members, IDs, drivers, viability"
else
        fail discovery-matches-sysfs "$bad"
fi

line=$(grep "^{\"group\":$PAIR_GROUP," "$json")
why=$(echo "$line" | sed -n 's/.*"viability":"\([^"]*\)".*/\1/p')
if [ -n "$PAIR_GROUP" ] && echo "$line" | grep -q '"viable":false' && echo "$why" | grep -q "$PAIR_NIC" &&
        echo "$why" | grep -q -w "$PAIR_NIC_DRIVER" && ! echo "$why" | grep -q "$PAIR_EDU"; then
        pass discovery-pair-not-viable "group $PAIR_GROUP: \"$why\""
else
        fail discovery-pair-not-viable "group '$PAIR_GROUP' should be not viable naming $PAIR_NIC ($PAIR_NIC_DRIVER): $line"
fi
out=$(groupctl show "$NET_DEV" 2>&1)
if echo "$out" | grep -q "^Group $NET_GROUP" && echo "$out" | grep -q "$NET_DEV.*e1000e"; then
        pass discovery-by-address "$NET_DEV is in group $NET_GROUP"
else
        fail discovery-by-address "groupctl show $NET_DEV said: $(echo "$out" | tr '\n' '|')"
fi
daemon_stop
