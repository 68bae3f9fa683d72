#!/usr/bin/env bash
# Exit statuses pass through: the command's status is cagent's (0, 1, 7, 42);
# a docker failure gives 125 and a clear message.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
for want in 0 1 7 42; do
  rc=0; run_cagent "$ws" -- sh -c "exit $want" </dev/null >/dev/null 2>"$E2E_TMP/err" || rc=$?
  expect_eq "sh -c 'exit $want' → cagent exits $want" "$rc" "$want"
done
rc=0; err=$(run_cagent "$ws" --arg=--no-such-docker-option -- true </dev/null 2>&1 >/dev/null) || rc=$?
expect_eq "a docker run failure → 125" "$rc" 125
expect_match "…with a message naming docker" "$err" '[Dd]ocker'
finish
