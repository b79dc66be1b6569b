#!/bin/sh
# shellcheck shell=dash
# scenario-20 again with the system call filter made to kill instead of answering EPERM (a drop-in
# resetting SystemCallErrorNumber=): a call the shipped filter refuses, which groupd might survive
# quietly, would then kill groupd with SIGSYS, and the kernel would log it (audit type 1326).

mkdir -p /etc/systemd/system/groupd.service.d
printf '[Service]\nSystemCallErrorNumber=\n' >/etc/systemd/system/groupd.service.d/rig-seccomp-kill.conf
systemctl daemon-reload
systemctl restart groupd.service
for mode in $MODES; do
        acquire_once "$mode" seccomp-kill
done
