#!/usr/bin/env bash
# A cage whose dnsguard is killed (as root, from outside: docker exec) loses
# DNS but gains no network: names no longer resolve, a direct query to the
# world's DNS server is still redirected (no answer, never in its log), and a
# never-resolved address is still refused. Before the kill everything worked.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
log_start=$(dns_log_lines)
# Before the kill, the same direct queries as after it: answered (a denied
# name by dnsguard's NXDOMAIN, an allowed one with the world's address), so
# "no answer" after the kill is the kill's doing.
cage_bg "$ws" "
  cd /workspace
  curl -sS -m 10 http://allowed.test/ >before.out 2>&1; echo rc=\$? >>before.out
  echo direct=\$(dig +time=2 +tries=1 @$DNS4 leak-before-kill.denied.test A >/dev/null 2>&1; echo \$?) >>before.out
  echo directallowed=\$(dig +short +time=2 +tries=1 @$DNS4 allowed.test A 2>/dev/null) >>before.out
  touch ready; $(cage_wait_file go)
  getent hosts allowed.test >/dev/null 2>&1; echo resolve=\$? >after.out
  echo direct=\$(dig +time=2 +tries=1 @$DNS4 leak-after-kill.denied.test A >/dev/null 2>&1; echo \$?) >>after.out
  echo directallowed=\$(dig +short +time=2 +tries=1 @$DNS4 allowed.test A 2>/dev/null) >>after.out
  echo unresolved \$($(timed 'curl -sS -m 10 http://198.51.100.19/')) >>after.out
  curl -sS -m 10 -o /dev/null http://allowed.test/; echo curlname=\$? >>after.out
  touch done"
if wait_for "the cage to be ready" 120 test -e "$ws/ready"; then
  expect_match "before the kill: allowed.test is reachable" "$(cat "$ws/before.out")" 'cagent-e2e web10'
  expect_match "before the kill: a direct query to the world DNS server is answered (dnsguard's NXDOMAIN)" \
    "$(cat "$ws/before.out")" 'direct=0'
  expect_match "before the kill: …and for an allowed name, with the world's address" \
    "$(cat "$ws/before.out")" 'directallowed=198\.51\.100\.10'
  expect_match "before the kill: the world DNS server's log shows dnsguard's lookups" \
    "$(dns_log | tail -n +$((log_start + 1)))" ' allowed\.test '
  expect_no_match "before the kill: …and not the denied name" "$(dns_log | tail -n +$((log_start + 1)))" 'leak-before-kill'
  ctr=$(cage_bg_container)
  before=$(dns_log_lines)
  docker exec -u 0 "$ctr" sh -c 'pkill -KILL -x dnsguard' || not_ok "docker exec pkill dnsguard failed"
  if wait_for "dnsguard to be gone" 20 bash -c "! docker exec '$ctr' pgrep -x dnsguard"; then
    ok "dnsguard is dead (and was not restarted)"
  else
    not_ok "dnsguard is dead" "$(docker exec "$ctr" ps -eo pid,user,args 2>&1)"
  fi
  touch "$ws/go"
  if wait_for "the after-kill probes" 120 test -e "$ws/done"; then
    after=$(cat "$ws/after.out")
    expect_match "allowed.test no longer resolves" "$after" 'resolve=[1-9]'
    expect_match "a direct query to the world DNS server gets no answer" "$after" 'direct=[1-9]'
    expect_no_match "…not even for an allowed name (no fallback resolver)" \
      "$(grep '^directallowed=' <<<"$after")" '198\.51\.100\.10'
    expect_match "a never-resolved address is still refused (curl exit 7)" "$after" 'unresolved rc=7 '
    expect_match "HTTP by name fails (curl exit 6)" "$after" 'curlname=6'
    expect_no_match "nothing reached the world DNS server after the kill" \
      "$(dns_log | tail -n +$((before + 1)))" 'leak-after-kill|allowed\.test'
  else
    not_ok "the after-kill probes finished" "$(cat "$E2E_TMP/bg.err")"
  fi
else
  not_ok "the cage started" "$(cat "$E2E_TMP/bg.err")"
fi
touch "$ws/go"
wait_cage_bg 60
finish
