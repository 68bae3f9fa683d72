#!/usr/bin/env bash
# Docker's embedded resolver (127.0.0.11, a random port behind a DNAT of :53,
# present on every user-defined network) must not be a way around dnsguard:
# a query to 127.0.0.11:53 lands on dnsguard and is denied, and the resolver's
# real port — which the agent can read from /proc/net/udp — does not answer
# the agent at all (it would resolve any name: DNS tunnelling).
#
# Controls, in the same cage: an allowed name asked at 127.0.0.11:53 comes
# back with the world's address, which only dnsguard (through the world's
# DNS) knows, and the denial carries dnsguard's Extended DNS Error — so the
# NXDOMAIN is dnsguard's, not Docker's or the host's. And once the cage's
# table is removed from the container's namespace (from the host), the very
# same query to the resolver's port is answered: the silence before was the
# ruleset's, not a dead port.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
log_before=$(dns_log_lines)
# peer.allowed.test: a network alias of web13, a name Docker's resolver
# answers itself (it cannot forward anything from this --internal network).
cage_bg "$ws" "
  cd /workspace
  dig +time=3 +tries=1 @127.0.0.11 secret-data.denied.test A >denied.out 2>&1
  dig +short +time=3 +tries=1 @127.0.0.11 allowed.test A >allowed.out 2>&1
  port=\$(python3 -c 'import sys; print(next((int(l.split()[1][9:], 16) for l in open(\"/proc/net/udp\") if l.split()[1].startswith(\"0B00007F:\")), \"\"))')
  echo \"port: \$port\" >port.out
  echo direct: \$(dig +time=2 +tries=1 -p \"\$port\" @127.0.0.11 secret-data.denied.test A | grep -c 'status:') >direct.out
  echo directpeer: \$(dig +time=2 +tries=1 -p \"\$port\" @127.0.0.11 peer.allowed.test A | grep -c 'status:') >>direct.out
  touch ready; $(cage_wait_file go)
  dig +time=2 +tries=1 -p \"\$port\" @127.0.0.11 peer.allowed.test A >control.out 2>&1
  touch done"
if wait_for "the cage's lookups" 120 test -e "$ws/ready"; then
  denied=$(cat "$ws/denied.out")
  expect_match "a query to 127.0.0.11:53 is redirected to dnsguard and denied" "$denied" 'status: NXDOMAIN'
  expect_match "…with dnsguard's Extended DNS Error (the answer is dnsguard's)" "$denied" 'blocked by cagent policy'
  expect_eq "control: an allowed name asked at 127.0.0.11:53 gets the world's address (dnsguard answers there)" \
    "$(cat "$ws/allowed.out")" 198.51.100.10
  expect_match "control: …which dnsguard forwarded to the world's DNS" "$(dns_log | tail -n +$((log_before + 1)))" \
    ' allowed\.test '
  expect_no_match "the denied name never reached the world's DNS" "$(dns_log | tail -n +$((log_before + 1)))" \
    'secret-data'
  expect_match "control: Docker's resolver port is visible to the agent" "$(cat "$ws/port.out")" 'port: [1-9][0-9]*'
  expect_match "Docker's resolver port gives the agent no answer" "$(cat "$ws/direct.out")" 'direct: 0'
  expect_match "…not even for a name Docker's resolver owns" "$(cat "$ws/direct.out")" 'directpeer: 0'
  # The control: the same query, same cage, same port, without the ruleset.
  ctr=$(cage_bg_container)
  pid=$(docker inspect -f '{{.State.Pid}}' "$ctr" 2>/dev/null)
  if [[ $pid =~ ^[1-9][0-9]*$ ]] && nsenter -t "$pid" -n nft list table inet cagent >/dev/null 2>&1 &&
     nsenter -t "$pid" -n nft delete table inet cagent; then
    ok "control: the cage's table removed from the container's namespace (from the host)"
  else
    not_ok "control: could not remove the cage's table (pid '$pid')"
  fi
  touch "$ws/go"
  if wait_for "the control lookup" 60 test -e "$ws/done"; then
    control=$(cat "$ws/control.out")
    expect_match "control: without the ruleset the resolver's port answers the agent" "$control" 'status: NOERROR'
    expect_match "control: …with the alias's address" "$control" '198\.51\.100\.13'
  else
    not_ok "the control lookup finished" "$(cat "$E2E_TMP/bg.err")"
  fi
else
  not_ok "the cage ran its lookups" "$(cat "$E2E_TMP/bg.err")"
fi
touch "$ws/go"
wait_cage_bg 60
expect_eq "cagent exits 0" "$CAGE_RC" 0
((CAGE_RC == 0)) || cat "$E2E_TMP/bg.err"
finish
