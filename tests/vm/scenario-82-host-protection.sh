#!/bin/sh
# shellcheck shell=dash
# Device truth, what is never handed out (issue 13), with the default policy (no policy file): q35's own
# host bridge (00:00.0) and the ICH9 group (00:1f.*: LPC bridge, SATA, SMBus) are refused with their
# reasons in words, before any device is touched, and `groupctl show` says so first. A root port's own
# group has no device to assign (a bridge is never bound to vfio-pci). A group holding a driverless
# PCIe-to-PCI bridge and an e1000 behind it is acquired: the bridge stays driverless (the kernel accepts
# the group so), the endpoint goes to vfio-pci and back to e1000.

if ! daemon_start; then
        fail host-protection "groupd did not start"
        exit 0
fi

# refused NAME SPEC EXIT TEXT...: the acquire fails with EXIT naming every TEXT, the group's devices
# are as they were, and show says the first TEXT before anyone tries.
refused() {
        name=$1 spec=$2 want=$3
        shift 3
        g=$(group_of "$spec")
        before=$(group_state "$g")
        out=$(timeout 20 groupctl acquire "$spec" 2>&1)
        st=$?
        bad=
        [ "$st" = "$want" ] || bad="exit $st (expected $want);"
        for text in "$@"; do
                echo "$out" | grep -qF -- "$text" || bad="$bad no \"$text\";"
        done
        [ "$(group_state "$g")" = "$before" ] || bad="$bad group $g changed from '$before' to '$(group_state "$g")';"
        for d in $(members "$g"); do
                [ -z "$(override_of "$d")" ] || bad="$bad $d has driver_override '$(override_of "$d")';"
        done
        no_leases || bad="$bad a lease is left;"
        shown=$(groupctl show "$spec" 2>&1)
        echo "$shown" | grep -qF -- "$1" || bad="$bad show does not say \"$1\";"
        if [ -z "$bad" ]; then
                pass "$name" "$(echo "$out" | sed 's/^groupctl: //' | head -n 1)"
        else
                fail "$name" "$bad output: $out"
        fi
}

refused host-bridge-refused "$HOST_BRIDGE" 5 "$HOST_BRIDGE is the host bridge: the host stands on it" \
        "allow WHO pci=$HOST_BRIDGE host-critical"
refused ich9-refused "$LPC" 5 "$LPC is the ISA/LPC bridge: the host stands on it" \
        "$SATA is a mass storage controller, never handed out (rule \"never class=0x01\", the built-in policy)"
refused root-port-nothing-to-assign 0000:00:04.0 6 \
        "group $(group_of 0000:00:04.0) has no device to assign: 0000:00:04.0 is a PCIe port (pcieport)"

# The bridge and the endpoint behind it.
gb=$(group_of "$PCI_BRIDGE")
if acquire_exec /tmp/bridged.out "$BEHIND" --label bridged --exec -- vmm-standin --hold 60; then
        sed 's/^/    /' /tmp/bridged.out
        s=$(group_state "$gb")
        if [ "$s" = "$PCI_BRIDGE= $BEHIND=vfio-pci" ] && grep -q "group $gb: viable, in container" /tmp/bridged.out &&
                grep -q "device $BEHIND 8086:100e (config space)" /tmp/bridged.out; then
                pass bridge-left-driverless "group $gb: $s; the stand-in used $BEHIND"
        else
                fail bridge-left-driverless "group $gb is '$s' (expected the bridge driverless, $BEHIND on vfio-pci)"
        fi
        kill -TERM "$VMM_PID"
        if wait_until 100 is_on "$BEHIND" e1000 && wait_until 50 node_gone "$gb"; then
                if [ "$(group_state "$gb")" = "$PCI_BRIDGE= $BEHIND=e1000" ] && [ -z "$(override_of "$BEHIND")" ] &&
                        [ -z "$(override_of "$PCI_BRIDGE")" ]; then
                        pass bridge-group-restored "$(group_state "$gb")"
                else
                        fail bridge-group-restored "group $gb is '$(group_state "$gb")', overrides '$(override_of "$PCI_BRIDGE")' '$(override_of "$BEHIND")'"
                fi
        else
                fail bridge-group-restored "10 s after the owner exited: group $gb is '$(group_state "$gb")'"
                daemon_log_tail
        fi
else
        fail bridge-left-driverless "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null
daemon_stop
