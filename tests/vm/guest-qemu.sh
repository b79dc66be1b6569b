#!/bin/sh
# shellcheck shell=dash
# Helpers for guest scenarios that hand a device to a real QEMU (busybox sh; guest-lib.sh sources this
# file). rig-qemu.sh puts the QEMUs at /opt/qemu-10 (bookworm-backports: iommufd, device cdevs) on the
# own-6.12 line and /opt/qemu-7.2 (Debian's own) on the stock lines.
#
# The QEMU command lines (the guest's QEMU is paused, -S: it never runs guest code, but realizes every
# device, maps the guest's RAM for DMA and answers QMP):
#
#   $(qemu_bin 10) $(qemu_base_args DIR [ACCEL]) $(qemu_iommufd_args IOMMUFD-FD DEVICE-FD)
#   $(qemu_bin 7.2) $(qemu_base_args DIR [ACCEL]) $(qemu_host_args PCI-ADDRESS)
#
# where DIR is a scratch directory for the QMP pipes (qmp_prepare DIR makes it), and ACCEL is tcg or
# kvm (default: qemu_accel). The fd arguments may be placeholders that a broker replaces, such as
# vfio-broker's {iommufd} and {device}. The vfio-pci device is always id=hostdev0.
#
# QMP over two FIFOs (QEMU's -chardev pipe: DIR/qmp.in and DIR/qmp.out), so plain sh speaks it:
#
#   qmp_prepare DIR            the FIFOs (before QEMU starts)
#   qmp_connect DIR PID [SECS] reads the greeting and negotiates capabilities; false when PID exits
#                              or SECS (default 60) pass first. PID (QEMU, or the process that waits
#                              for it) is watched by every later qmp_cmd too.
#   qmp_cmd DIR JSON [SECS]    sends one command, prints the reply's line (events are skipped); false
#                              on an error reply, a time-out (default 30 s) or PID's end
#   qmp_pci_id DIR QDEV-ID     query-pci: prints "VVVV:DDDD" (hex) of the device with that qdev id
#   qmp_quit DIR PID [SECS]    quit, and wait until PID exits
#   qmp_close DIR              closes the shell's ends of the FIFOs

QMP_IN_FD=7
QMP_OUT_FD=8

# qemu_bin VERSION: the wrapper of that QEMU, or nothing (and false) when the rig has none.
qemu_bin() {
        [ -x "/opt/qemu-$1/bin/qemu-system-x86_64" ] || return 1
        echo "/opt/qemu-$1/bin/qemu-system-x86_64"
}
qemu_version() { cat "/opt/qemu-$1/version" 2>/dev/null; }

# qemu_accel: kvm when the guest has /dev/kvm (nested SVM), else tcg.
qemu_accel() {
        if [ -c /dev/kvm ]; then echo kvm; else echo tcg; fi
}

qemu_base_args() {
        _dir=$1 _accel=${2:-$(qemu_accel)}
        echo "-machine q35 -accel $_accel -cpu qemu64 -m 64 -smp 1 -nodefaults -display none -S" \
                "-chardev pipe,id=qmp,path=$_dir/qmp -mon chardev=qmp,mode=control"
}
# The iommufd path: the VMM gets an iommufd and an unbound device cdev and binds them itself.
qemu_iommufd_args() {
        echo "-object iommufd,id=iommufd0,fd=$1 -device vfio-pci,id=hostdev0,iommufd=iommufd0,fd=$2"
}
# The legacy path: QEMU opens /dev/vfio/vfio and /dev/vfio/N itself (node grant).
qemu_host_args() {
        echo "-device vfio-pci,id=hostdev0,host=$1"
}

qmp_prepare() {
        rm -rf "$1"
        mkdir -p "$1"
        mkfifo "$1/qmp.in" "$1/qmp.out"
        chmod 0777 "$1"
        chmod 0666 "$1/qmp.in" "$1/qmp.out"
}

# Both FIFOs are opened read-write, so that no open blocks on a QEMU that never came up. Replies are
# read with a plain blocking `read`: busybox's `read -t` gives up on a whole line, and loses what it had
# read, when a long reply (query-pci) trickles in slower than the time-out, as it does under load.
# A watchdog ends the wait instead: after SECS, or once PID is gone, it writes a line of its own, with a
# tag, into the reply FIFO (a stale one from an earlier wait is recognized by its tag and skipped).
qmp_connect() {
        _dir=$1 QMP_PID=$2 _secs=${3:-60}
        QMP_ACTIVE_DIR=$_dir
        eval "exec $QMP_IN_FD<>\"$_dir/qmp.in\" $QMP_OUT_FD<>\"$_dir/qmp.out\""
        _qmp_wait greeting "$_secs" >/dev/null || return 1
        qmp_cmd "$_dir" '{"execute": "qmp_capabilities"}' >/dev/null
}

# Each command carries an id that its reply echoes, so that a late reply to an earlier command that
# timed out is never taken for this one's.
qmp_cmd() {
        # shellcheck disable=SC3028 # busybox ash has $RANDOM
        _id="q$(cut -d' ' -f1 /proc/uptime)-$RANDOM"
        echo "$2" | sed "s/^ *{/{\"id\": \"$_id\", /" >&$QMP_IN_FD || return 1
        _qmp_wait "$_id" "${3:-30}"
}

_qmp_alive() {
        [ -z "$1" ] && return 0
        [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# _qmp_wait greeting|ID SECS: prints the greeting or the line of the reply with that id; false on an
# error reply, a time-out or QMP_PID's end.
_qmp_wait() {
        # shellcheck disable=SC3028 # busybox ash has $RANDOM
        _what=$1 _tag="$(cut -d' ' -f1 /proc/uptime)-$RANDOM"
        (
                eval "exec $QMP_IN_FD>&- $QMP_OUT_FD>&-"
                _t=0
                while [ "$_t" -lt $(($2 * 10)) ] && _qmp_alive "$QMP_PID"; do
                        sleep 0.1
                        _t=$((_t + 1))
                done
                echo "{\"qmp-watchdog\": \"$_tag\"}" >"$QMP_ACTIVE_DIR/qmp.out"
        ) >/dev/null 2>&1 &
        _wd=$!
        _rc=1
        while read -r QMP_LINE <&$QMP_OUT_FD; do
                case $QMP_LINE in
                *'"qmp-watchdog"'*)
                        case $QMP_LINE in *"\"$_tag\""*) break ;; esac
                        continue
                        ;;
                *'"QMP"'*) [ "$_what" = greeting ] || continue ;;
                *'"event"'*) continue ;;
                *"\"id\": \"$_what\""*)
                        case $QMP_LINE in
                        *'"return"'*) ;;
                        *)
                                echo "$QMP_LINE"
                                break
                                ;;
                        esac
                        ;;
                *) continue ;;
                esac
                echo "$QMP_LINE"
                _rc=0
                break
        done
        kill "$_wd" 2>/dev/null
        return $_rc
}

# query-pci: the first object to close that holds both "qdev_id": "ID" and "class_info" is that
# device's own (QEMU does not keep the schema's key order); its "id" object has vendor and device.
qmp_pci_id() {
        _r=$(qmp_cmd "$1" '{"execute": "query-pci"}') || return 1
        echo "$_r" | awk -v want="\"qdev_id\": \"$2\"" '
        {
                n = split($0, c, "")
                depth = 0
                for (i = 1; i <= n; i++) {
                        if (c[i] == "{") {
                                start[++depth] = i
                        } else if (c[i] == "}" && depth > 0) {
                                obj = substr($0, start[depth], i - start[depth] + 1)
                                depth--
                                if (index(obj, want) && index(obj, "\"class_info\"") &&
                                    match(obj, /"id": \{[^}]*\}/)) {
                                        id = substr(obj, RSTART, RLENGTH)
                                        v = id; sub(/.*"vendor": /, "", v); sub(/[^0-9].*/, "", v)
                                        d = id; sub(/.*"device": /, "", d); sub(/[^0-9].*/, "", d)
                                        printf "%04x:%04x\n", v, d
                                        exit
                                }
                        }
                }
        }' | grep .
}

qmp_quit() {
        _dir=$1 _pid=$2 _secs=${3:-30}
        qmp_cmd "$_dir" '{"execute": "quit"}' 10 >/dev/null
        _i=0
        while kill -0 "$_pid" 2>/dev/null; do
                _i=$((_i + 1))
                [ "$_i" -gt $((_secs * 10)) ] && return 1
                sleep 0.1
        done
        return 0
}

qmp_close() {
        eval "exec $QMP_IN_FD>&- $QMP_OUT_FD>&-"
}

# pci_id ADDR: the host device's "VVVV:DDDD" from sysfs.
pci_id() {
        _v=$(cat "/sys/bus/pci/devices/$1/vendor") _d=$(cat "/sys/bus/pci/devices/$1/device")
        echo "${_v#0x}:${_d#0x}"
}
