#!/usr/bin/env bash
# A workspace .cagent.yaml applies only once the user approved its exact
# content for that very directory. The agent plants `domains: [denied.test]`
# in a workspace that had none; the next session ignores it with one line
# naming --accept-workspace-config — and so does a session after the
# workspace is renamed (mv) or copied (cp -a), which an approval keyed by
# the path alone would take as the user's own file. An approval does not travel
# with a copy, nor as a file copied into the workspace. Positive controls:
# after --accept-workspace-config the name resolves and stays approved; a
# user's edit asks again (no terminal: ignored), then applies once accepted.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# A workspace without .cagent.yaml (the global config has the world's DNS).
ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
chown_workspace "$ws"
resolve='getent hosts denied.test >/dev/null 2>&1 && echo resolved=yes || echo resolved=no'
warning='ignoring [^ ]*/\.cagent\.yaml: .*--accept-workspace-config'
# accept_in WS WHAT — the user's word: with --accept-workspace-config the
# name resolves, and the next session (no flag) still resolves it, unasked.
accept_in() {
  local out
  out=$(run_cagent "$1" --accept-workspace-config -- sh -c "$resolve" </dev/null 2>"$E2E_TMP/cage.err")
  expect_eq "$2: after --accept-workspace-config the name resolves" "$out" "resolved=yes"
  out=$(cage "$1" "$resolve")
  expect_eq "$2: the approval is remembered" "$out" "resolved=yes"
  expect_no_match "$2: …with no warning" "$(cage_err)" 'ignoring .*\.cagent\.yaml'
}

cage "$ws" "printf 'domains: [denied.test]\n' >/workspace/.cagent.yaml && echo planted"
expect_eq "session 1 exits 0" "$CAGE_RC" 0
expect_true "the agent could create .cagent.yaml (the workspace had none)" test -f "$ws/.cagent.yaml"
expect_match "at its end, cagent names the file the session created" "$(cage_err)" \
  "created or changed .*/\.cagent\.yaml"

out=$(cage "$ws" "$resolve")
expect_eq "session 2 exits 0" "$CAGE_RC" 0
expect_eq "session 2 does not resolve the planted name" "$out" "resolved=no"
err=$(cage_err)
expect_match "a one-line warning names the ignored file and how to accept it" "$err" "$warning"
expect_eq "…exactly one such line" "$(grep -c 'ignoring .*\.cagent\.yaml' <<<"$err")" 1

# The reproduced attack: renamed or copied, the planted file was "first sight".
mv "$ws" "$ws-renamed"
ws=$ws-renamed
out=$(cage "$ws" "$resolve")
expect_eq "after mv: the planted name still does not resolve" "$out" "resolved=no"
expect_match "after mv: the warning again" "$(cage_err)" "$warning"
cp -a "$ws" "$ws-copy"
out=$(cage "$ws-copy" "$resolve")
expect_eq "after cp -a: the planted name does not resolve in the copy" "$out" "resolved=no"
expect_match "after cp -a: the warning again" "$(cage_err)" "$warning"

# The user's word: approved, used, remembered for this directory.
accept_in "$ws" "the planted file, read and approved"
approvals=$E2E_HOME/.cagent/approvals
expect_ne "the approval lives under CAGENT_HOME" "$(ls -A "$approvals" 2>/dev/null)" ""

# An approval does not travel: not with a copy of the approved directory,
# nor as the approval files themselves copied into the workspace.
cp -a "$ws" "$ws-copy2"
mkdir -p "$ws-copy2/.cagent"
cp -a "$approvals" "$ws-copy2/.cagent/approvals"
cp -a "$approvals"/. "$ws-copy2/"
chown -R "$E2E_UID:$E2E_GID" "$ws-copy2"
out=$(cage "$ws-copy2" "$resolve")
expect_eq "a copy of the approved directory (approval files copied in) does not resolve it" "$out" "resolved=no"
expect_match "…and says why" "$(cage_err)" "$warning"

# The user edits the approved file: other bytes, so cagent asks again.
printf 'domains: [denied.test, allowed.test]\n' >"$ws/.cagent.yaml"
chown "$E2E_UID:$E2E_GID" "$ws/.cagent.yaml"
out=$(cage "$ws" "$resolve")
expect_eq "the edited file is not used unapproved (no terminal)" "$out" "resolved=no"
expect_match "…and says it changed" "$(cage_err)" 'ignoring .*\.cagent\.yaml: it changed since you approved it'
accept_in "$ws" "the user's edit"

# Approvals are kept per content (a few, for branches). The user narrows the
# file and approves that, then removes it (a branch without one). A file in
# use is read-only in the cage; an absent one is not, so the agent writes
# the older content, approved before, which allowed denied.test. The session
# takes that approval back, so the next session asks instead of loading it.
printf 'domains: [allowed.test]\n' >"$ws/.cagent.yaml"
chown "$E2E_UID:$E2E_GID" "$ws/.cagent.yaml"
run_cagent "$ws" --accept-workspace-config -- true </dev/null 2>/dev/null
out=$(cage "$ws" "$resolve")
expect_eq "control: the narrowed, approved file is used (denied.test no longer resolves)" "$out" "resolved=no"
expect_no_match "…with no warning" "$(cage_err)" 'ignoring .*\.cagent\.yaml'
rm "$ws/.cagent.yaml"
cage "$ws" "printf 'domains: [denied.test]\n' >/workspace/.cagent.yaml && echo reverted"
expect_match "at its end, cagent says the next session asks" "$(cage_err)" \
  'created or changed .*\.cagent\.yaml; the next session shows it and uses it only once you approve it'
out=$(cage "$ws" "$resolve")
expect_eq "the older approved content the agent wrote back is not loaded unasked" "$out" "resolved=no"
expect_match "…the warning names it" "$(cage_err)" "$warning"
accept_in "$ws" "the older content, approved again by the user"
finish
