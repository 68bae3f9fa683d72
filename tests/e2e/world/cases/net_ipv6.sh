#!/usr/bin/env bash
# IPv6 like IPv4: an AAAA answer opens exactly that address (v6.test, AAAA
# only); a never-resolved IPv6 address is refused fast; the same server's
# IPv4 address, never resolved, stays closed; allowed.test over IPv6 works.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init
((IPV6)) || skip "${IPV6_SKIP_REASON:-no IPv6 in the test world}"

ws=$(new_workspace v6.test allowed.test)
before=$(dns_log_lines)
out=$(cage "$ws" "
  echo unresolved \$($(timed 'curl -sS -m 10 http://[2001:db8:e2e::19]/'))
  echo v6=\$(curl -6 -sS -m 10 http://v6.test/)
  echo allowed6=\$(curl -6 -sS -m 10 http://allowed.test/)
  echo v4-of-v6-server \$($(timed 'curl -sS -m 10 http://198.51.100.17/'))
  echo allowed4=\$(curl -4 -sS -m 10 http://allowed.test/)
  echo unresolved-after \$($(timed 'curl -sS -m 10 http://[2001:db8:e2e::19]/'))")
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "v6.test (AAAA only) is reachable over IPv6" "$out" 'v6=cagent-e2e web17'
expect_match "allowed.test is reachable over IPv6" "$out" 'allowed6=cagent-e2e web10'
expect_match "control: IPv4 to a resolved address works in the same cage" "$out" 'allowed4=cagent-e2e web10'
for what in unresolved unresolved-after v4-of-v6-server; do
  line=$(grep "^$what " <<<"$out")
  expect_match "$what: refused (curl exit 7)" "$line" 'rc=7 '
  ms=$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$line")
  if [[ -n $ms ]] && ((ms < 2000)); then ok "$what: refused in ${ms} ms (< 2000)"
  else not_ok "$what: refused fast" "line: $line"; fi
done
expect_match "the AAAA lookup reached the world DNS server" "$(dns_log | tail -n +$((before + 1)))" 'v6\.test'
((CAGE_RC == 0)) || cage_err
finish
