#!/usr/bin/env bash
# Issue 11, item 1: a .cagent.yaml the agent writes in a workspace that had
# none must not widen the next session's policy unseen. The agent plants
# `domains: [denied.test]`; the next session (no terminal) does not resolve
# that name and says, in one line, which file it ignored and how to accept
# it; after --accept-workspace-config the name resolves, and stays accepted.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# A workspace without .cagent.yaml (the global config has the world's DNS).
ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
chown_workspace "$ws"
resolve='getent hosts denied.test >/dev/null 2>&1 && echo resolved=yes || echo resolved=no'

cage "$ws" "printf 'domains: [denied.test]\n' >/workspace/.cagent.yaml && echo planted"
expect_eq "session 1 exits 0" "$CAGE_RC" 0
expect_true "the agent could create .cagent.yaml (the workspace had none)" test -f "$ws/.cagent.yaml"
expect_match "at its end, cagent names the file the session created" "$(cage_err)" \
  "created or changed .*/\.cagent\.yaml"

out=$(cage "$ws" "$resolve")
expect_eq "session 2 exits 0" "$CAGE_RC" 0
expect_eq "session 2 does not resolve the planted name" "$out" "resolved=no"
err=$(cage_err)
expect_match "a one-line warning names the ignored file and how to accept it" "$err" \
  "ignoring [^ ]*/\.cagent\.yaml: .*--accept-workspace-config"
expect_eq "…exactly one such line" "$(grep -c 'ignoring .*\.cagent\.yaml' <<<"$err")" 1

out=$(run_cagent "$ws" --accept-workspace-config -- sh -c "$resolve" </dev/null 2>"$E2E_TMP/cage.err")
expect_eq "after --accept-workspace-config the name resolves" "$out" "resolved=yes"
out=$(cage "$ws" "$resolve")
expect_eq "the acceptance is remembered" "$out" "resolved=yes"
expect_no_match "…with no warning" "$(cage_err)" 'ignoring .*\.cagent\.yaml'

# The user's own edit between sessions applies with no extra step.
printf 'domains: [allowed.test]\n' >"$ws/.cagent.yaml"
out=$(cage "$ws" "$resolve")
expect_eq "the user's edit applies at once (denied.test no longer listed)" "$out" "resolved=no"
expect_no_match "…with no warning" "$(cage_err)" 'ignoring .*\.cagent\.yaml'
finish
