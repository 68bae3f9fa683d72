#!/usr/bin/env bash
# Docker's embedded resolver (127.0.0.11, a random port behind a DNAT of :53,
# present on every user-defined network) must not be a way around dnsguard:
# a query to 127.0.0.11:53 lands on dnsguard and is denied, and the resolver's
# real port — which the agent can read from /proc/net/udp — does not answer
# the agent at all (it would resolve any name: DNS tunnelling).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
out=$(cage "$ws" "
  echo via53: \$(dig +time=3 +tries=1 @127.0.0.11 secret-data.denied.test A | grep -o 'status: [A-Z]*')
  port=\$(python3 -c 'import sys; print(next((int(l.split()[1][9:], 16) for l in open(\"/proc/net/udp\") if l.split()[1].startswith(\"0B00007F:\")), \"\"))')
  echo port: \$port
  echo direct: \$(dig +time=2 +tries=1 -p \"\$port\" @127.0.0.11 secret-data.denied.test A | grep -c 'status:')")
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "a query to 127.0.0.11:53 is redirected to dnsguard and denied" "$out" 'via53: status: NXDOMAIN'
expect_match "control: Docker's resolver port is visible to the agent" "$out" 'port: [1-9][0-9]*'
expect_match "Docker's resolver port gives the agent no answer" "$out" 'direct: 0'
((CAGE_RC == 0)) || cage_err
finish
