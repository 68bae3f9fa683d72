#!/usr/bin/env bash
# rot.test answers one of three addresses per query, round robin, TTL 1 s.
# 1. Lookup-time insertion: repeated fetches of http://rot.test/ all succeed
#    while the answer moves between servers (each new address is opened
#    before the answer reaches curl).
# 2. The refresh: with the cage idle, dnsguard's periodic refresh re-resolves
#    rot.test by itself (seen in the world DNS server's log). The address that
#    refresh obtained (known from the server's round-robin counter) is then
#    reachable by IP with no lookup by the agent, while the rotation addresses
#    that only phase 1 opened have expired (set timeout = clamp(1 s) = 30 s).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

rot=(198.51.100.14 198.51.100.15 198.51.100.16)
ws=$(new_workspace rot.test)
before=$(dns_log_lines)
cage_bg "$ws" "
  cd /workspace
  i=0
  while [ \$i -lt 12 ]; do
    i=\$((i+1))
    curl -sS -m 5 http://rot.test/ >>phase1.out 2>&1 || echo FAILED >>phase1.out
    [ \$(sort -u phase1.out | grep -c '^cagent-e2e web1[456]\$') -ge 3 ] && break
    sleep 1.2   # > the record's 1 s TTL: the next lookup is a new upstream query
  done
  touch phase1.done; $(cage_wait_file probe.ip)
  ip=\$(cat probe.ip)
  for a in ${rot[*]}; do echo \"\$a \$($(timed 'curl -sS -m 5 http://$a/'))\" >>phase2.out; done
  echo \"byip=\$(curl -sS -m 5 -H 'Host: rot.test' http://\$ip/)\" >>phase2.out
  echo \"byname=\$(curl -sS -m 5 http://rot.test/)\" >>phase2.out
  touch phase2.done"
if ! wait_for "phase 1 (rotating fetches)" 120 test -e "$ws/phase1.done"; then
  not_ok "phase 1 finished" "$(cat "$E2E_TMP/bg.err")"; touch "$ws/probe.ip"; wait_cage_bg 30; finish
fi
phase1_end=$SECONDS
p1=$(cat "$ws/phase1.out")
expect_no_match "phase 1: every fetch of rot.test succeeded" "$p1" 'FAILED|curl:'
distinct=$(grep -c . <(sort -u <<<"$p1" | grep '^cagent-e2e web1[456]$'))
if ((distinct >= 2)); then ok "phase 1: the answer rotated over $distinct servers and each was reachable"
else not_ok "phase 1: the answer rotated (>= 2 servers seen)" "$p1"; fi

# Wait (bounded) for a rot.test A query the idle cage did not ask for: the refresh.
a_queries() { dns_log | tail -n +$((before + 1)) | grep -ci '^[a-z]* rot\.test 1$'; }
n1=$(a_queries)
if wait_for "dnsguard's refresh of rot.test" 100 bash -c "(( \$(tail -n +$((before + 1)) '$DNS_LOG' | grep -ci '^[a-z]* rot\\.test 1\$') > $n1 ))"; then
  ok "the refresh re-resolved rot.test with the cage idle ($((SECONDS - phase1_end)) s after phase 1)"
  # The server's counter counts every A query for rot.test of this run (only
  # this case asks for it): the refresh got rot[(k-1) % 3].
  k=$(dns_log | grep -ci '^[a-z]* rot\.test 1$')
  refreshed=${rot[$(((k - 1) % 3))]}
  # Phase-1 insertions expire 30 s after the last one; make sure that passed.
  while ((SECONDS - phase1_end < 32)); do sleep 0.5; done
  echo "$refreshed" >"$ws/probe.ip"
  if wait_for "phase 2" 60 test -e "$ws/phase2.done"; then
    p2=$(cat "$ws/phase2.out")
    # By address, with the name in Host: the connection gate admits it only
    # because the refresh (not a lookup of the agent's) bound rot.test to it.
    expect_match "the refreshed address $refreshed is reachable without a lookup" "$p2" \
      "byip=cagent-e2e web${refreshed##*.}"
    for a in "${rot[@]}"; do
      [[ $a == "$refreshed" ]] && continue
      expect_match "$a (opened only by phase 1, expired) is refused" "$(grep "^$a " <<<"$p2")" 'rc=7 '
    done
    expect_match "rot.test is reachable by name after the refresh" "$p2" 'byname=cagent-e2e web1[456]'
  else
    not_ok "phase 2 finished" "$(cat "$E2E_TMP/bg.err")"
  fi
else
  not_ok "dnsguard refreshed rot.test within 100 s" "$(dns_log | tail -n +$((before + 1)) | tail -n 20)"
fi
touch "$ws/probe.ip"
wait_cage_bg 60
expect_eq "cagent exits 0" "$CAGE_RC" 0
finish
