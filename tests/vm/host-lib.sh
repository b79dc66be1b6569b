# shellcheck shell=bash
# Helpers for the rig's scripts that run on the host (bash): the three tiers' run.sh (tests/vm/,
# tests/vm/systemd/, tests/vm/ppc/) and the builders (build-rig.sh, build-kernel.sh, rig-qemu.sh,
# ppc/cross-build.sh). The guest has its own (guest-lib.sh, busybox sh).
#
# A script that sources this defines log MESSAGE (to stderr) and unavailable WHY (says that what it
# makes cannot be had here, and exits 77) before it calls need_packages.

now() { date +%s.%N; }
# secs T0 T1: the seconds from one now() to another, one decimal.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# since T0: "N.N s" from a now() until now.
since() { echo "$(secs "$1" "$(now)") s"; }
bold() { printf '\033[1m%s\033[0m\n' "$*"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# need_packages PKG...: installs the Debian packages that are missing, quietly (after one apt-get update
# when the first try fails); unavailable when that cannot be done (not root, no package source).
need_packages() {
        local missing=() p
        for p in "$@"; do installed "$p" || missing+=("$p"); done
        [ ${#missing[@]} -eq 0 ] && return 0
        [ "$(id -u)" -eq 0 ] || unavailable "missing packages ${missing[*]} and not root to install them"
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
                apt-get update -qq >/dev/null 2>&1 || true
                apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
                        unavailable "cannot install ${missing[*]} (no package source reachable?)"
        fi
}

# backports_apt DIR: apt_opts, a private apt configuration for bookworm-backports whose lists and
# downloads live under DIR/apt (the system's apt is left alone); backports_update refreshes its lists.
backports_apt() {
        backports_dir=$1
        mkdir -p "$backports_dir/apt/lists/partial" "$backports_dir/apt/cache/archives/partial" || return 1
        cat >"$backports_dir/apt/backports.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt_opts=(-o APT::Sandbox::User=root
                -o "Dir::Etc::SourceList=$backports_dir/apt/backports.sources"
                -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$backports_dir/apt/lists"
                -o "Dir::Cache=$backports_dir/apt/cache"
                -o Dir::State::status=/dev/null)
}

# backports_update: one update of backports_apt's lists at a time (build-kernel.sh and rig-qemu.sh share
# the cache's); DIR/apt/updated says when they were last checked (apt leaves unchanged lists untouched).
backports_update() {
        flock "$backports_dir/.apt.lock" apt-get "${apt_opts[@]}" update -qq 2>&1 |
                grep -v '^W: Download is performed unsandboxed' >&2 || true
        touch "$backports_dir/apt/updated"
}

# backports_fresh: the lists were checked in the last day.
backports_fresh() { [ -n "$(find "$backports_dir/apt/updated" -mmin -1440 2>/dev/null)" ]; }

# split_opts ARG...: OPTS, the arguments with each --name=value made two words (--name value), so that
# an option loop handles one form.
split_opts() {
        local a
        OPTS=()
        for a in "$@"; do
                case $a in
                --*=*) OPTS+=("${a%%=*}" "${a#*=}") ;;
                *) OPTS+=("$a") ;;
                esac
        done
}

# ---------------------------------------------------------------------------------------------
# The tiers' run.sh: each boots guests whose serial output carries the rig's markers (guest-run.sh):
# "SCENARIO NAME PASS|FAIL|SKIP ...", RIG-TOPIC-TIME, RIG-DONE at the end, RIG-TIMEOUT when the guest's
# watchdog fired, RIG-MODULE-FAIL when a module did not load.

# x86_choices: lines and iommus (arrays), every kernel line and both IOMMUs when none was asked for;
# exits 2 on an unknown one.
x86_choices() {
        local l
        [ ${#lines[@]} -gt 0 ] || lines=(6.1 6.12 own-6.12)
        [ ${#iommus[@]} -gt 0 ] || iommus=(intel amd)
        for l in "${lines[@]}"; do
                case $l in 6.1 | 6.12 | own-6.12) ;; *) echo "run.sh: unknown kernel line '$l'" >&2; exit 2 ;; esac
        done
        for l in "${iommus[@]}"; do
                case $l in intel | amd) ;; *) echo "run.sh: unknown IOMMU '$l' (intel or amd)" >&2; exit 2 ;; esac
        done
}

# shellcheck disable=SC2054,SC2034 # qemu's comma lists; used by the sourcing scripts
# The x86 guests' PCI devices (tests/vm/README.md lists them, guest-lib.sh names them); run.sh adds more.
X86_DEVICES=(-device edu,addr=01.0 -device pci-testdev,addr=02.0
        -netdev hubport,id=n0,hubid=0 -device e1000e,addr=03.0,netdev=n0,romfile=
        -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=04.0
        -netdev hubport,id=n1,hubid=0 -device e1000e,bus=rp1,netdev=n1,romfile=
        -device pcie-root-port,id=rp2,chassis=2,slot=2,addr=05.0 -device edu,bus=rp2
        -device edu,addr=06.0,multifunction=on
        -netdev hubport,id=n2,hubid=0 -device e1000,addr=06.1,netdev=n2,romfile=)

# x86_guest IOMMU CMDLINE DEVICE-ARG...: guest_args, qemu's q35 under TCG (one CPU, 1 GiB, serial on
# stdio) with the emulated IOMMU (intel or amd, interrupt remapping on) and the devices, booting
# RIG_KERNEL with CMDLINE. The Intel IOMMU goes before the devices and the AMD one after them, as each
# wants. The caller adds its initramfs and disks.
x86_guest() {
        local iommu=$1 cmdline=$2
        shift 2
        # shellcheck disable=SC2054 # qemu's comma lists
        guest_args=(-machine q35 -accel tcg -cpu qemu64,+svm,+npt -m 1024 -smp 1 -nodefaults -nographic
                -no-reboot -serial stdio -kernel "$RIG_KERNEL")
        if [ "$iommu" = intel ]; then
                # shellcheck disable=SC2054
                guest_args+=(-device intel-iommu,intremap=on "$@" -append "$cmdline intel_iommu=on")
        else
                # shellcheck disable=SC2054
                guest_args+=("$@" -device amd-iommu,intremap=on -append "$cmdline")
        fi
}

# tier_show VERBOSE BLOCKS EXTRA: the serial output (stdin) for the terminal: all of it with VERBOSE=1;
# else the lines that matter (the kernel's version, the rig's markers, each scenario's line, a panic or
# a stall, and the lines matching the regex EXTRA), leaving out the blocks that BLOCKS names
# (space-separated NAMEs, each from a NAME-BEGIN line to a NAME-END line: a daemon's log, a capture).
tier_show() {
        if [ "$1" -eq 1 ]; then
                cat
                return
        fi
        awk -v blocks="$2" -v extra="$3" '
        BEGIN {
                nb = split(blocks, b, " ")
                pat = "^KERNEL: |RIG-MODULE-FAIL|RIG-TIMEOUT|RIG-DONE|RIG-SCENARIOS-NONE|RIG-TOPIC-TIME|" \
                      "SCENARIO [^ ]+ (PASS|FAIL|SKIP)|Kernel panic|RCU stall|blocked for more than"
                if (extra != "")
                        pat = pat "|" extra
        }
        {
                for (i = 1; i <= nb; i++) {
                        if (index($0, b[i] "-BEGIN"))
                                quiet = 1
                        else if (index($0, b[i] "-END")) {
                                quiet = 0
                                next
                        }
                }
        }
        quiet { next }
        $0 ~ pat {
                sub(/^.*SCENARIO /, "SCENARIO ")
                print "  " $0
                fflush()
        }'
}

# tier_verdict LOG: n_pass, n_fail and n_skip, the SCENARIO lines' counts, and why, what went wrong with
# the boot ("" when it passed): a failed scenario, no RIG-DONE, the guest's watchdog, no scenario
# passed, a module that did not load.
tier_verdict() {
        local log=$1
        why=
        n_pass=$(grep -cE 'SCENARIO [^ ]+ PASS' "$log" || true)
        n_fail=$(grep -cE 'SCENARIO [^ ]+ FAIL' "$log" || true)
        n_skip=$(grep -cE 'SCENARIO [^ ]+ SKIP' "$log" || true)
        [ "$n_fail" -eq 0 ] || why="$n_fail failed"
        grep -q RIG-DONE "$log" || why="${why:+$why, }no RIG-DONE (hung, crashed or timed out)"
        grep -q RIG-TIMEOUT "$log" && why="${why:+$why, }guest watchdog fired"
        [ "$n_pass" -gt 0 ] || why="${why:+$why, }no scenario passed"
        grep -q RIG-MODULE-FAIL "$log" && why="${why:+$why, }a module did not load"
        return 0
}

# tier_result LABEL T0 T1 LOG TAIL VERBOSE [DETAIL]: says how the boot went (from why, n_pass and
# n_skip) and adds a line to summary; on failure, without VERBOSE, shows LOG's last TAIL lines first.
# Returns 0 when the boot passed.
tier_result() {
        local label=$1 t log=$4 tail=$5 verbose=$6 detail=${7:-}
        t=$(secs "$2" "$3")
        if [ -z "$why" ]; then
                echo "  boot $label: $n_pass passed, $n_skip skipped in $t s"
                summary+=("PASS  $label  $t s  $n_pass passed, $n_skip skipped${detail:+  $detail}")
                return 0
        fi
        if [ "$verbose" -eq 0 ]; then
                echo "---- serial output of $label (the last $tail lines; all of it in $log) ----"
                tail -n "$tail" "$log"
                echo "----"
        fi
        echo "  boot $label: FAILED: $why ($t s)"
        summary+=("FAIL  $label  $t s  $why${detail:+  $detail}")
        return 1
}

# tier_end NAME T0 FAILED [SKIPPED]: the tier's time and summary; exits 1 when FAILED is not 0, else 77
# (the tier did not run here) when SKIPPED says why.
tier_end() {
        local s
        bold "=== $1: $(secs "$2" "$(now)") s"
        for s in "${summary[@]}"; do echo "  $s"; done
        if [ "$3" -ne 0 ]; then
                echo "$1: FAILED" >&2
                exit 1
        fi
        if [ -n "${4:-}" ]; then
                echo "$1: SKIPPED: $4" >&2
                exit 77
        fi
        echo "$1: passed"
}
