#!/usr/bin/env bash
# The agent's capability sets: NET_ADMIN and NET_RAW (and the other dangerous
# ones) gone from the bounding set, nothing effective/permitted/ambient,
# no_new_privs set, and raw sockets cannot be opened.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
out=$(cage "$ws" 'python3 /workspace/probe.py caps; python3 /workspace/probe.py raw-socket; echo raw-rc=$?')
expect_eq "cagent exits 0" "$CAGE_RC" 0
bnd=$(grep '^CapBnd ' <<<"$out")
expect_match "CapBnd was read" "$bnd" '^CapBnd [0-9a-f]{16}'
for cap in NET_ADMIN NET_RAW SYS_ADMIN SYS_PTRACE SETPCAP SETFCAP; do
  expect_no_match "CapBnd lacks $cap" "$bnd" "$cap"
done
for set in CapEff CapPrm CapAmb; do
  expect_match "$set is empty" "$(grep "^$set " <<<"$out")" "^$set 0000000000000000 "
done
expect_match "NoNewPrivs is 1" "$out" 'NoNewPrivs 1'
expect_match "raw IPv4 socket denied" "$out" 'raw4 denied EPERM'
expect_match "raw IPv6 socket denied" "$out" 'raw6 denied EPERM'
expect_match "packet socket denied" "$out" 'packet denied EPERM'
expect_match "no raw socket could be opened" "$out" 'raw-rc=1'
finish
