#!/usr/bin/env bash
# alias.test is listed; it is a CNAME chain alias.test -> hop.elsewhere.test ->
# target.unlisted.test (A 198.51.100.13), neither of which is listed. The
# listed name works end to end; the chain's members asked directly do not.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace alias.test)
out=$(cage "$ws" '
  getent hosts target.unlisted.test; echo "target-getent=$?"
  getent hosts hop.elsewhere.test; echo "hop-getent=$?"
  echo "alias=$(curl -sS -m 10 http://alias.test/)"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "the unlisted CNAME target does not resolve by itself" "$out" 'target-getent=2'
expect_match "the unlisted middle of the chain does not resolve by itself" "$out" 'hop-getent=2'
expect_match "HTTP to the listed alias reaches the chain's target (web13)" "$out" 'alias=cagent-e2e web13'
finish
