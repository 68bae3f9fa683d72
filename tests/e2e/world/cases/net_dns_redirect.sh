#!/usr/bin/env bash
# An agent that bypasses resolv.conf and asks the world's DNS server directly
# (`dig @198.51.100.53 secret-data.denied.test`, UDP and TCP) is redirected to
# dnsguard and denied: the answer is NXDOMAIN and the world DNS server's query
# log never shows the name (the data never left the cage). A direct query for
# an allowed name still gets its real answer (control: dig works, the log works).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
before=$(dns_log_lines)
out=$(cage "$ws" "
  echo udp: \$(dig +time=3 +tries=1 @$DNS4 secret-data.denied.test A | grep -o 'status: [A-Z]*')
  echo tcp: \$(dig +tcp +time=3 +tries=1 @$DNS4 secret-data.denied.test A | grep -o 'status: [A-Z]*')
  echo allowed: \$(dig +short +time=3 +tries=1 @$DNS4 allowed.test A)")
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "direct UDP query for the denied name is answered NXDOMAIN" "$out" 'udp: status: NXDOMAIN'
expect_match "direct TCP query for the denied name is answered NXDOMAIN" "$out" 'tcp: status: NXDOMAIN'
expect_match "control: a direct query for an allowed name gets the real answer" "$out" 'allowed: 198\.51\.100\.10'
log=$(dns_log | tail -n +$((before + 1)))
expect_match "control: the allowed lookup is in the world DNS server's log" "$log" 'allowed\.test'
expect_no_match "secret-data.denied.test never reached the world DNS server" "$log" 'secret-data'
((CAGE_RC == 0)) || cage_err
finish
