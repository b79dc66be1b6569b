#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The test harness's wrapper (LOG_COMPILER): runs one test with a deadline, so that a hang fails in
# bounded time and names the test instead of stalling make check. The deadline is GROUPD_TEST_DEADLINE
# seconds (default 300), or the test's entry in GROUPD_TEST_DEADLINES ("tests/demo.sh:120 ...").
# Check suites have their own per-test timeouts inside (CK_DEFAULT_TIMEOUT); this bounds the rest:
# fixtures, shell tiers, a test program stuck outside a test.
test=$1
deadline=${GROUPD_TEST_DEADLINE:-300}
for t in ${GROUPD_TEST_DEADLINES:-}; do
        case $t in "${test#./}":*) deadline=${t##*:} ;; esac
done
timeout --kill-after=10 "$deadline" "$@"
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "TIMEOUT: ${test#./} did not finish within $deadline s (a hang); killed." >&2
        exit 1
fi
exit $rc
