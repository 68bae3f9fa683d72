#!/usr/bin/env bash
# dnsguard killed in a running cage (as root, from outside: docker exec).
#
# 1. One kill: cage-init restarts it with its state. An allowed lookup works
#    again within a second (measured in the cage, with another allowed name);
#    a connection to the address the agent resolved before the kill, by that
#    name, is admitted by the gate without a new lookup of it (the binding
#    came back from the journal; the 60 s refresh has not run yet) while the same name on an address it never resolved to is
#    refused, before and after (the gate still judges); a never-resolved
#    address is refused; the name allowed at run time (cagent allow) still
#    resolves; the decision record keeps its counts.
# 2. A crash loop (five exits within 60 s): not restarted. The cage loses
#    DNS but gains no network: names no longer resolve, a direct query to
#    the world's DNS is still redirected (no answer, never in its log), a
#    never-resolved address is refused. cage-init says so.
# 3. One kill on a user-defined network without dns_resolvers, cagent run
#    by the docker-group user: dnsguard's upstream is Docker's embedded
#    resolver (127.0.0.11, a NAT port), reached only on flows dnsguard opens.
#    The restarted dnsguard (same uid) reaches it again: an allowed name it
#    forwards resolves within a second, the address resolved before the kill
#    is admitted by its name, a denied name stays unresolved and never
#    leaves.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test extra.test)
log_start=$(dns_log_lines)
cage_bg "$ws" "
  cd /workspace
  curl -sS -m 10 http://allowed.test/ >before.out 2>&1; echo rc=\$? >>before.out
  echo direct=\$(dig +time=2 +tries=1 @$DNS4 leak-before-kill.denied.test A >/dev/null 2>&1; echo \$?) >>before.out
  echo directallowed=\$(dig +short +time=2 +tries=1 @$DNS4 allowed.test A 2>/dev/null) >>before.out
  addr=\$(getent ahostsv4 allowed.test | awk 'NR==1{print \$1}'); echo addr=\$addr >>before.out
  getent hosts counted.denied.test >/dev/null 2>&1
  curl -sS -m 10 -o /dev/null --resolve extra.test:80:\$addr http://extra.test/; echo wrongname=\$? >>before.out
  touch ready; $(cage_wait_file killed)
  s=\$(date +%s%N); i=0
  until getent hosts extra.test >/dev/null 2>&1 || [ \$i -ge 200 ]; do sleep 0.02; i=\$((i+1)); done
  echo recovered_ms=\$(( (\$(date +%s%N) - s) / 1000000 )) >>restart.out
  curl -sS -m 10 --resolve allowed.test:80:\$addr http://allowed.test/ >>restart.out 2>&1; echo held=\$? >>restart.out
  curl -sS -m 10 -o /dev/null --resolve extra.test:80:\$addr http://extra.test/; echo wrongname=\$? >>restart.out
  echo unresolved \$($(timed 'curl -sS -m 10 http://198.51.100.19/')) >>restart.out
  getent hosts denied.test >/dev/null 2>&1; echo runtime=\$? >>restart.out
  touch restarted; $(cage_wait_file go)
  getent hosts allowed.test >/dev/null 2>&1; echo resolve=\$? >after.out
  echo direct=\$(dig +time=2 +tries=1 @$DNS4 leak-after-kill.denied.test A >/dev/null 2>&1; echo \$?) >>after.out
  echo directallowed=\$(dig +short +time=2 +tries=1 @$DNS4 allowed.test A 2>/dev/null) >>after.out
  echo unresolved \$($(timed 'curl -sS -m 10 http://198.51.100.19/')) >>after.out
  curl -sS -m 10 -o /dev/null http://allowed.test/; echo curlname=\$? >>after.out
  touch done"
dnsguard_pid() { docker exec "$1" pgrep -x dnsguard 2>/dev/null | head -n1; }
if ! wait_for "the cage to be ready" 120 test -e "$ws/ready"; then
  not_ok "the cage started" "$(cat "$E2E_TMP/bg.err")"
  touch "$ws/killed" "$ws/go"; wait_cage_bg 60; finish
fi
before=$(cat "$ws/before.out")
expect_match "before: allowed.test is reachable" "$before" 'cagent-e2e web10'
expect_match "before: a direct query to the world DNS server is answered (dnsguard's NXDOMAIN)" "$before" 'direct=0'
expect_match "before: …and for an allowed name, with the world's address" "$before" 'directallowed=198\.51\.100\.10'
expect_match "before: the same name on an address it never resolved to is refused (the gate)" "$before" 'wrongname=(7|52|56)'
expect_no_match "before: the world DNS server never saw the denied name" "$(dns_log | tail -n +$((log_start + 1)))" \
  'leak-before-kill'
ctr=$(cage_bg_container)
session=${ctr#cagent-}
record=$E2E_HOME/.cagent/logs/session-$session/decisions.json
rc=0; out=$(cd "$ws" && cagent_env "$E2E_CAGENT" allow denied.test 2>&1) || rc=$?
expect_eq "cagent allow denied.test before the kill" "$rc" 0

# ---- 1. one kill: back, with its state ----
pid1=$(dnsguard_pid "$ctr")
docker exec -u 0 "$ctr" kill -KILL "$pid1" || not_ok "docker exec kill dnsguard failed"
touch "$ws/killed"
if wait_for "the restart probes" 60 test -e "$ws/restarted"; then
  r=$(cat "$ws/restart.out")
  ms=$(sed -n 's/^recovered_ms=//p' <<<"$r")
  expect_true "an allowed lookup works again within 1 s of the kill (${ms} ms)" test "${ms:-9999}" -le 1000
  pid2=$(dnsguard_pid "$ctr")
  expect_true "dnsguard runs again, as a new process ($pid1 → $pid2)" test -n "$pid2" -a "$pid2" != "$pid1"
  expect_match "the address resolved before the kill is admitted by the gate, by its name" "$r" 'cagent-e2e web10'
  expect_match "…the connection succeeded" "$r" 'held=0'
  expect_match "the same name on an address it never resolved to is still refused" "$r" 'wrongname=(7|52|56)'
  expect_match "a never-resolved address is still refused (curl exit 7)" "$r" 'unresolved rc=7 '
  expect_match "the name allowed at run time still resolves" "$r" 'runtime=0'
  expect_match "the decision record kept the lookup denied before the kill" "$(cat "$record" 2>/dev/null)" \
    '"name":"counted\.denied\.test"'
  expect_match "cage-init said it restarted dnsguard" "$(cat "$E2E_TMP/bg.err")" 'restarted it'
else
  not_ok "the restart probes finished" "$(cat "$E2E_TMP/bg.err")"
fi

# ---- 2. a crash loop: not restarted, and closed ----
prev=$(dnsguard_pid "$ctr")
for i in 2 3 4 5; do
  [[ -n $prev ]] && docker exec -u 0 "$ctr" kill -KILL "$prev" 2>/dev/null
  if ((i < 5)); then
    wait_for "dnsguard restart $i" 10 bash -c "p=\$(docker exec '$ctr' pgrep -x dnsguard | head -n1); [ -n \"\$p\" ] && [ \"\$p\" != '$prev' ]"
    prev=$(dnsguard_pid "$ctr")
  fi
done
sleep 2  # longer than any backoff: a restart would have happened by now
expect_eq "after five exits within 60 s dnsguard is not restarted" "$(dnsguard_pid "$ctr")" ""
expect_match "…and cage-init says so" "$(cat "$E2E_TMP/bg.err")" 'not restarting it: DNS is unavailable'
mark=$(dns_log_lines)
touch "$ws/go"
if wait_for "the after-loop probes" 120 test -e "$ws/done"; then
  after=$(cat "$ws/after.out")
  expect_match "allowed.test no longer resolves" "$after" 'resolve=[1-9]'
  expect_match "a direct query to the world DNS server gets no answer" "$after" 'direct=[1-9]'
  expect_no_match "…not even for an allowed name (no fallback resolver)" "$(grep '^directallowed=' <<<"$after")" \
    '198\.51\.100\.10'
  expect_match "a never-resolved address is still refused (curl exit 7)" "$after" 'unresolved rc=7 '
  expect_match "HTTP by name fails (curl exit 6)" "$after" 'curlname=6'
  expect_no_match "nothing reached the world DNS server after the loop" "$(dns_log | tail -n +$((mark + 1)))" \
    'leak-after-kill|allowed\.test'
else
  not_ok "the after-loop probes finished" "$(cat "$E2E_TMP/bg.err")"
fi
wait_cage_bg 60

# ---- 3. one kill, with Docker's embedded resolver upstream ----
ws3=$(mktemp -d "$E2E_TMP/ws3.XXXXXX") || die "mktemp failed"
chown_workspace "$ws3"
CAGE_LABEL=$E2E_NAME-user-$$-$RANDOM
mark=$(dns_log_lines)
user_cagent "$ws3" --arg="--dns=$DNS4" --arg="--label=cagent.e2e.cage=$CAGE_LABEL" -d allowed.test -d extra.test -- sh -c "
  cd /workspace
  addr=\$(getent ahostsv4 allowed.test | awk 'NR==1{print \$1}'); echo addr=\$addr >before.out
  curl -sS -m 10 http://allowed.test/ >>before.out 2>&1
  touch ready; $(cage_wait_file killed)
  s=\$(date +%s%N); i=0
  until getent hosts extra.test >/dev/null 2>&1 || [ \$i -ge 200 ]; do sleep 0.02; i=\$((i+1)); done
  echo recovered_ms=\$(( (\$(date +%s%N) - s) / 1000000 )) >restart.out
  curl -sS -m 10 --resolve allowed.test:80:\$addr http://allowed.test/ >>restart.out 2>&1; echo held=\$? >>restart.out
  getent hosts leak-after-restart.denied.test >/dev/null 2>&1; echo denied=\$? >>restart.out
  touch done" </dev/null >"$E2E_TMP/bg3.out" 2>"$E2E_TMP/bg3.err" &
CAGE_PID=$!
E2E_EXIT_HOOKS+=("kill $CAGE_PID 2>/dev/null")
if wait_for "the user's cage to be ready" 120 test -e "$ws3/ready"; then
  expect_match "embedded resolver: allowed.test is reachable before the kill" "$(cat "$ws3/before.out")" \
    'cagent-e2e web10'
  ctr3=$(cage_bg_container)
  pid1=$(dnsguard_pid "$ctr3")
  docker exec -u 0 "$ctr3" kill -KILL "$pid1" || not_ok "docker exec kill dnsguard (user's cage) failed"
  touch "$ws3/killed"
  if wait_for "the user's restart probes" 60 test -e "$ws3/done"; then
    r=$(cat "$ws3/restart.out")
    ms=$(sed -n 's/^recovered_ms=//p' <<<"$r")
    expect_true "embedded resolver: an allowed lookup works again within 1 s of the kill (${ms} ms)" \
      test "${ms:-9999}" -le 1000
    expect_match "embedded resolver: the address resolved before the kill is admitted by its name" "$r" \
      'cagent-e2e web10'
    expect_match "…the connection succeeded" "$r" 'held=0'
    expect_match "embedded resolver: a denied name still does not resolve" "$r" 'denied=[1-9]'
    new_queries=$(dns_log | tail -n +$((mark + 1)))
    expect_match "the restarted dnsguard's lookup went out through the embedded resolver" "$new_queries" \
      ' extra\.test '
    expect_no_match "…and the denied name never left" "$new_queries" 'leak-after-restart'
  else
    not_ok "the user's restart probes finished" "$(cat "$E2E_TMP/bg3.err")"
  fi
else
  not_ok "the user's cage started" "$(cat "$E2E_TMP/bg3.err")"
  touch "$ws3/killed"
fi
wait_cage_bg 60
expect_eq "the user's cage ends normally" "$CAGE_RC" 0
finish
