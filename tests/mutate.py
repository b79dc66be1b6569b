#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The mutation suite: small, realistic bugs put into the code one at a time, each of which the fast
suites (make check) must catch. Run by `./dev mutate [--only REGEX] [--list] [--keep-going]`.

Each mutant is a file tests/mutants/NAME.mutant:

    # What the bug is, in a sentence.
    # Killed by: the test (binary or script) expected to catch it
    file daemon/core/policy.c
    find
            if (s->uid == 0)
                    return 0;
    replace
            if (s->uid == 0 || s->gid == 0)
                    return 0;
    end

The find text must occur exactly once in the file (else the mutant is "stale": rewrite it, don't drop
it). Lines are matched exactly, indentation included. Several file/find/replace/end blocks may follow
one another in one mutant.

For each mutant, in a scratch copy of the tree (BUILD/mutate/src, refreshed from the work tree, built in
BUILD/mutate/build without -Werror): apply, build, run the tests the mutant names first, then the whole
of `make check` if they passed, each under a deadline; undo. A mutant is
    killed     a test failed (the table names which)
    hung       the deadline ended the run, or every failing test failed only by timing out (Check's
               "Test timeout expired", tests/deadline.sh's TIMEOUT): a hang, which a test should turn
               into a failure
    error      make check failed without a failing test (a Killed-by name that is no test)
    survived   every test passed: a missing test
    no-build   it did not compile (rewrite it so that it does)
    stale      its find text is not in the file exactly once
The score is killed / (all but stale and no-build). Exit status 0 when every mutant was killed.
"""

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
MUTANTS = os.path.join(HERE, "mutants")


class Mutant:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[: -len(".mutant")]
        self.what = ""
        self.killers = []
        self.edits = []  # (file, find, replace)
        self.parse()

    def parse(self):
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        i = 0
        file = None
        while i < len(lines):
            line = lines[i]
            if line.startswith("# Killed by:"):
                self.killers = [w.strip(",") for w in line.split(":", 1)[1].split() if w.strip(",")]
            elif line.startswith("#") and not self.what:
                self.what = line.lstrip("# ").strip()
            elif line.startswith("file "):
                file = line[5:].strip()
            elif line == "find":
                find, i = self._block(lines, i + 1, "replace")
                replace, i = self._block(lines, i + 1, "end")
                if file is None:
                    raise ValueError(f"{self.path}: find before file")
                self.edits.append((file, find, replace))
            elif line.strip():
                raise ValueError(f"{self.path}:{i + 1}: unexpected line {line!r}")
            i += 1
        if not self.edits:
            raise ValueError(f"{self.path}: no edit")

    @staticmethod
    def _block(lines, i, until):
        out = []
        while i < len(lines) and lines[i] != until:
            out.append(lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"missing '{until}'")
        return "\n".join(out) + "\n", i


def run(cmd, cwd, timeout, log):
    """Runs cmd; returns 'ok', 'fail' or 'timeout'."""
    with open(log, "ab") as out:
        out.write(("\n$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        try:
            p = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                               start_new_session=True)
        except subprocess.TimeoutExpired:
            return "timeout"
    return "ok" if p.returncode == 0 else "fail"


def failed_tests(build):
    """The tests the last make check says failed, from the automake harness's logs."""
    names = []
    path = os.path.join(build, "test-suite.log")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"^(FAIL|ERROR): (\S+)", line)
                if m and m.group(2) not in names:
                    names.append(m.group(2))
    return names


def timed_out(build, name):
    """True if test name failed only by running out of time: Check's "Test timeout expired" on every
    failing test of it, or tests/deadline.sh's TIMEOUT. Such a kill is a hang the suites bounded, not an
    assertion that caught the bug."""
    path = os.path.join(build, re.sub(r"\.sh$", "", name) + ".log")
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    if re.search(r"^TIMEOUT: ", text, re.M):
        return True
    failures = re.findall(r":[FE]:[^\n]*", text)
    return bool(failures) and all("Test timeout expired" in x for x in failures)


def refresh_scratch(src):
    """Copies the work tree's tracked and unignored files into src (only what changed); returns the
    paths that changed."""
    changed = []
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=TOP, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for rel in files:
        if not rel or rel.startswith(("build", ".git/")):
            continue
        a, b = os.path.join(TOP, rel), os.path.join(src, rel)
        if not os.path.isfile(a):
            continue
        if os.path.exists(b) and filecmp.cmp(a, b, shallow=False):
            continue
        os.makedirs(os.path.dirname(b), exist_ok=True)
        shutil.copy(a, b)   # a new mtime, so that make sees the change
        changed.append(rel)
    return changed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    ap.add_argument("--only", help="run only the mutants whose name matches this regex")
    ap.add_argument("--list", action="store_true", help="list the mutants and whether they apply")
    ap.add_argument("--deadline", type=int, default=600, help="seconds for one make check (default 600)")
    args = ap.parse_args()

    mutants = []
    for f in sorted(os.listdir(MUTANTS)):
        if f.endswith(".mutant") and (not args.only or re.search(args.only, f)):
            mutants.append(Mutant(os.path.join(MUTANTS, f)))
    if not mutants:
        print("mutate: no mutants", file=sys.stderr)
        return 2

    work = os.path.join(os.path.abspath(args.build_dir), "mutate")
    src, build = os.path.join(work, "src"), os.path.join(work, "build")
    os.makedirs(src, exist_ok=True)
    changed = refresh_scratch(src)
    if any(os.path.basename(c) in ("Makefile.am", "configure.ac") for c in changed):
        # make would not relink programs whose link flags changed: start the build afresh.
        shutil.rmtree(build, ignore_errors=True)
        for f in ("configure", "Makefile.in"):
            if os.path.exists(os.path.join(src, f)):
                os.unlink(os.path.join(src, f))

    def applies(m):
        for file, find, _ in m.edits:
            with open(os.path.join(src, file), encoding="utf-8") as f:
                if f.read().count(find) != 1:
                    return False
        return True

    if args.list:
        for m in mutants:
            print(f"{m.name:40} {'applies' if applies(m) else 'STALE':8} {m.what}")
        return 0

    log = os.path.join(work, "mutate.log")
    open(log, "w").close()
    if not os.path.exists(os.path.join(build, "Makefile")):
        os.makedirs(build, exist_ok=True)
        if not os.path.exists(os.path.join(src, "configure")):
            if run(["./autogen.sh"], src, 600, log) != "ok":
                print(f"mutate: autogen failed, see {log}", file=sys.stderr)
                return 1
        if run([os.path.join(src, "configure"), "-q"], build, 600, log) != "ok":
            print(f"mutate: configure failed, see {log}", file=sys.stderr)
            return 1
    jobs = str(os.cpu_count() or 2)
    if run(["make", "-s", "-j" + jobs, "all"], build, 1200, log) != "ok" or \
            run(["make", "-s", "-j" + jobs, "check", "TESTS="], build, 1200, log) != "ok":
        print(f"mutate: the unmutated tree does not build, see {log}", file=sys.stderr)
        return 1
    if run(["make", "-s", "-j" + jobs, "check"], build, args.deadline, log) != "ok":
        print(f"mutate: the unmutated tree fails its tests ({', '.join(failed_tests(build))}); see {log}",
              file=sys.stderr)
        return 1

    rows = []
    for m in mutants:
        t0 = time.monotonic()
        if not applies(m):
            rows.append((m, "stale", "", 0.0))
            print(f"  {m.name}: stale", flush=True)
            continue
        originals = {}
        for file, find, replace in m.edits:
            p = os.path.join(src, file)
            if p not in originals:
                with open(p, encoding="utf-8") as f:
                    originals[p] = f.read()
        try:
            for file, find, replace in m.edits:
                p = os.path.join(src, file)
                with open(p, encoding="utf-8") as f:
                    text = f.read()
                with open(p, "w", encoding="utf-8") as f:
                    f.write(text.replace(find, replace, 1))
            status, by = "survived", ""
            if run(["make", "-s", "-j" + jobs, "all"], build, 600, log) != "ok" or \
                    run(["make", "-s", "-j" + jobs, "check", "TESTS="], build, 600, log) != "ok":
                status = "no-build"
            else:
                tries = []
                if m.killers:
                    tries.append(["TESTS=" + " ".join(m.killers)])
                tries.append([])
                for extra in tries:
                    r = run(["make", "-s", "-j" + jobs, "check"] + extra, build, args.deadline, log)
                    if r == "timeout":
                        status, by = "hung", " ".join(extra)[6:] or "make check"
                        break
                    if r == "fail":
                        names = failed_tests(build)
                        if not names:
                            # make itself failed (a test named that does not exist): not a kill.
                            status, by = "error", "make check failed before any test did; see mutate.log"
                            break
                        caught = [n for n in names if not timed_out(build, n)]
                        if caught:
                            status, by = "killed", ", ".join(caught)
                            if m.killers and not extra:
                                # Caught, but not by the test it names: fix its "Killed by:" line.
                                by += f" (not {' '.join(m.killers)}, as named)"
                            break
                        # Only timeouts: a hang. The whole suite may still catch it by an assertion.
                        status, by = "hung", ", ".join(names) + " (timed out)"
        finally:
            for p, text in originals.items():
                with open(p, "w", encoding="utf-8") as f:
                    f.write(text)
                # Newer than the objects built from the mutant, so that make rebuilds them.
                os.utime(p, None)
        rows.append((m, status, by, time.monotonic() - t0))
        print(f"  {m.name}: {status}{' by ' + by if by else ''} ({time.monotonic() - t0:.0f} s)", flush=True)

    # Leave the scratch build as the tree is.
    run(["make", "-s", "-j" + jobs, "all"], build, 1200, log)

    print()
    print(f"| mutant | where | status | caught by | s |")
    print(f"| --- | --- | --- | --- | --- |")
    for m, status, by, secs in rows:
        where = ", ".join(sorted({e[0] for e in m.edits}))
        print(f"| {m.name} | {where} | {status} | {by} | {secs:.0f} |")
    counted = [r for r in rows if r[1] not in ("stale", "no-build", "error")]
    killed = [r for r in counted if r[1] == "killed"]
    print()
    print(f"mutation score: {len(killed)}/{len(counted)} killed"
          + "".join(f", {sum(1 for r in rows if r[1] == s)} {s}"
                    for s in ("survived", "hung", "error", "no-build", "stale") if any(r[1] == s for r in rows)))
    return 0 if len(killed) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
