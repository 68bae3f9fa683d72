#!/usr/bin/env bash
# Inside the cage the agent cannot read (let alone change) the ruleset: an
# nf_tables dump over netlink (what `nft list ruleset` does; the image has no
# nft binary) fails with EPERM. Control: root in the same container (docker
# exec, which keeps the container's capabilities) lists the cagent table, so
# the probe works and the agent's failure is the cage's doing.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
cage_bg "$ws" "
  python3 /workspace/probe.py nft-list >/workspace/nft.out 2>&1; echo rc=\$? >>/workspace/nft.out
  if command -v nft >/dev/null; then nft list ruleset >/workspace/nftbin.out 2>&1; echo rc=\$? >>/workspace/nftbin.out; fi
  touch /workspace/ready; $(cage_wait_file go)"
if wait_for "the cage to run its probe" 120 test -e "$ws/ready"; then
  agent=$(cat "$ws/nft.out")
  expect_match "agent: nf_tables dump denied with EPERM" "$agent" 'nft-list denied EPERM'
  expect_match "agent: the probe exits non-zero" "$agent" 'rc=1'
  if [[ -f $ws/nftbin.out ]]; then
    expect_no_match "agent: nft list ruleset fails" "$(cat "$ws/nftbin.out")" 'rc=0'
  fi
  ctr=$(cage_bg_container)
  root=$(docker exec -u 0 "$ctr" python3 /workspace/probe.py nft-list 2>&1)
  expect_match "control: root in the container lists the cagent table" "$root" 'nft-list ok tables=.*cagent'
else
  not_ok "the cage ran" "$(cat "$E2E_TMP/bg.err")"
fi
touch "$ws/go"
wait_cage_bg 60
expect_eq "cagent exits 0" "$CAGE_RC" 0
finish
