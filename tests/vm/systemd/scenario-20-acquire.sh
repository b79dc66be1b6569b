#!/bin/sh
# shellcheck shell=dash
# Acquire and release under the shipped sandbox, in each delivery mode (MODES): groups 3 (e1000e) and 6
# (edu + e1000) in one lease, handed to a stand-in VMM that uses them; the fds in the fd store while the
# lease lives; the drivers back after the release; and no denial in the journal. (acquire_once lives in
# systemd-lib.sh; scenario-25 runs it again with the system call filter made to kill.)

for mode in $MODES; do
        acquire_once "$mode" shipped
done
