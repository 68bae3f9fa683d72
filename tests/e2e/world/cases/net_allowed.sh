#!/usr/bin/env bash
# An allowed name resolves through dnsguard and is reachable over HTTP; the
# query really went to the world's DNS server (its log), i.e. the cage used
# the configured dns_resolvers.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
before=$(dns_log_lines)
out=$(cage "$ws" 'getent ahostsv4 allowed.test | head -n1; curl -4 -sS -m 10 http://allowed.test/')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "allowed.test resolves to its world address" "$out" '198\.51\.100\.10 '
expect_match "HTTP to allowed.test answers with web10's body" "$out" 'cagent-e2e web10'
expect_match "the world DNS server received the lookup" "$(dns_log | tail -n +$((before + 1)))" 'allowed\.test'
((CAGE_RC == 0)) || cage_err
finish
