#!/usr/bin/env bash
# A workspace owned by group 0 must not put the agent in
# the root group. cage-init falls back as for a root-owned workspace: the
# agent keeps its own uid/gid and says why.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
chown -R "$E2E_UID:0" "$ws"
out=$(cage "$ws" 'echo "id=$(id -u):$(id -g) groups=$(id -G)"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
# The negative checks below pass on a missing line: first, that it is there.
expect_match "control: the agent printed its ids" "$out" 'id=[0-9]+:[0-9]+ groups=[0-9]'
expect_no_match "the agent's gid is not 0" "$out" 'id=[0-9]+:0 '
expect_no_match "0 is not among its groups" "$out" 'groups=(.* )?0( |$)'
expect_no_match "it did not take the workspace owner's uid either" "$out" "id=$E2E_UID:"
expect_match "cage-init says why" "$(cage_err)" 'owned by root \(group 0\)'
finish
