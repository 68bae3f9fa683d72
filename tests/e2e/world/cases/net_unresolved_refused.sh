#!/usr/bin/env bash
# An address the cage never resolved is refused fast (TCP reset / ICMP
# admin-prohibited: curl exit 7 "couldn't connect" well under 2 s, not a
# timeout), before and after another name was resolved; the resolved address
# itself is reachable (control).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
out=$(cage "$ws" "
  echo before \$($(timed 'curl -sS -m 10 http://198.51.100.19/'))
  curl -sS -m 10 http://allowed.test/
  echo after \$($(timed 'curl -sS -m 10 http://198.51.100.19/'))
  echo byip \$($(timed "curl -sS -m 10 -H 'Host: allowed.test' http://198.51.100.10/"))")
expect_eq "cagent exits 0" "$CAGE_RC" 0
for when in before after; do
  line=$(grep "^$when " <<<"$out")
  expect_match "$when resolving: HTTP to never-resolved 198.51.100.19 is refused (curl exit 7)" "$line" 'rc=7 '
  ms=$(sed -n 's/.*ms=\([0-9]*\).*/\1/p' <<<"$line")
  if [[ -n $ms ]] && ((ms < 2000)); then ok "$when: refused in ${ms} ms (< 2000)"
  else not_ok "$when: refused fast" "line: $line"; fi
done
expect_match "control: the resolved address 198.51.100.10 is reachable by IP (Host allowed.test, which resolved to it)" "$(grep '^byip ' <<<"$out")" 'rc=0 '
finish
