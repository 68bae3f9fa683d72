#!/usr/bin/env bash
# A name outside the allowlist does not resolve, HTTP to it fails at name
# resolution, and the query never leaves the cage (absent from the world DNS
# server's log), while an allowed name in the same cage works (control).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
before=$(dns_log_lines)
out=$(cage "$ws" '
  getent hosts denied.test; echo "getent=$?"
  curl -sS -m 10 -o /dev/null http://denied.test/; echo "curl=$?"
  curl -sS -m 10 http://allowed.test/')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "getent hosts denied.test fails (exit 2: not found)" "$out" 'getent=2'
expect_match "curl http://denied.test/ fails to resolve (exit 6)" "$out" 'curl=6'
expect_match "allowed.test in the same cage works" "$out" 'cagent-e2e web10'
log=$(dns_log | tail -n +$((before + 1)))
expect_match "control: the DNS log has the allowed lookup" "$log" 'allowed\.test'
expect_no_match "denied.test never reached the world DNS server" "$log" 'denied\.test'
finish
