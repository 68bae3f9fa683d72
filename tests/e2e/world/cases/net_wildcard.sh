#!/usr/bin/env bash
# "*.wild.test" admits names below wild.test at any depth but not the apex.
# The apex is tried first, in a cage where nothing has opened its address yet.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace '*.wild.test')
before=$(dns_log_lines)
out=$(cage "$ws" '
  getent hosts wild.test; echo "apex-getent=$?"
  curl -sS -m 10 -o /dev/null http://wild.test/; echo "apex-curl=$?"
  echo "sub=$(curl -sS -m 10 http://a.wild.test/)"
  echo "deep=$(curl -sS -m 10 http://deep.b.wild.test/)"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "the apex wild.test does not resolve" "$out" 'apex-getent=2'
expect_match "HTTP to the apex fails at resolution" "$out" 'apex-curl=6'
expect_match "a.wild.test is reachable" "$out" 'sub=cagent-e2e web12'
expect_match "deep.b.wild.test (two levels down) is reachable" "$out" 'deep=cagent-e2e web12'
log=$(dns_log | tail -n +$((before + 1)))
expect_match "control: the sub-name lookups reached the DNS server" "$log" 'deep\.b\.wild\.test'
expect_no_match "the apex query never reached the DNS server" "$log" '(^|[^.a-z0-9-])wild\.test'
finish
