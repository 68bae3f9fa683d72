#!/usr/bin/env bash
# cagent refuses to make the user's home directory (or cagent's own) the
# workspace: the agent writes the whole workspace, and there it would write
# the dotfiles that run on the host as the user, or the trusted global
# config and approvals. Exit 2, one line, no container, the command never
# runs. Controls: a project inside the same home runs as usual.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

t0=$(date +%s.%N)
rc=0; err=$(user_cagent "$E2E_USER_HOME" -- sh -c 'echo pwned >>/workspace/.bashrc' </dev/null 2>&1 >/dev/null) || rc=$?
expect_eq "the user's home as the workspace: exit 2" "$rc" 2
expect_match "…the line says why" "$err" "cannot run in $E2E_USER_HOME: it holds your home directory"
expect_no_match "…and nothing wrote its .bashrc" "$(cat "$E2E_USER_HOME/.bashrc" 2>/dev/null)" pwned
mkdir -p "$E2E_HOME/.cagent"
rc=0; err=$(run_cagent "$E2E_HOME/.cagent" -- touch /workspace/config.yaml.new </dev/null 2>&1 >/dev/null) || rc=$?
expect_eq "cagent's own directory as the workspace: exit 2" "$rc" 2
expect_match "…the line says why" "$err" "cagent's own directory"
expect_false "…and the command never ran" test -e "$E2E_HOME/.cagent/config.yaml.new"
expect_eq "no container was created" "$(containers_created_since "$t0")" ""

# Controls: a project in the same home, for the same user and for root.
proj=$E2E_USER_HOME/proj-$$
mkdir -p "$proj"
chown "$E2E_UID:$E2E_GID" "$proj"
rc=0; user_cagent "$proj" -- sh -c 'echo ok >/workspace/ran' </dev/null >/dev/null 2>"$E2E_TMP/cage.err" || rc=$?
expect_eq "control: a project in the user's home runs (exit 0)" "$rc" 0
expect_eq "control: …and the command ran" "$(cat "$proj/ran" 2>/dev/null)" ok
((rc == 0)) || cage_err
rm -rf "$proj"
ws=$(new_workspace allowed.test)
cage "$ws" 'echo ok'
expect_eq "control: root's ordinary workspace runs" "$CAGE_RC" 0
finish
