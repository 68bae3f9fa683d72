#!/usr/bin/env bash
# Every doctest case must be one ctest test that runs it. ctest takes a
# case's name as a CMake list, so a ';' in it cuts the name: the test then
# selects no case at all, and doctest reports 0 cases as a pass. This
# check fails on such a name, and on a binary whose case count disagrees
# with the registered tests.
#
#   check_names.sh UNIT_TEST_BINARY...
set -uo pipefail
status=0
for bin in "$@"; do
  names=$("$bin" --list-test-cases --no-intro=true 2>/dev/null | sed -n 's/^\(.*\)$/\1/p' | grep -v '^\[doctest\]' | grep -v '^=*$')
  bad=$(grep ';' <<<"$names")
  if [[ -n $bad ]]; then
    echo "not ok - $(basename "$bin"): test case names with ';' (ctest would run none of them):"
    sed 's/^/    /' <<<"$bad"
    status=1
  else
    echo "ok - $(basename "$bin"): $(grep -c . <<<"$names") case names, none with ';'"
  fi
done
exit $status
