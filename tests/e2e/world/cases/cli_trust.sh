#!/usr/bin/env bash
# extra_args in a workspace .cagent.yaml are ignored, with a warning that
# says how to trust the workspace, until the user does exactly that.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
printf 'extra_args: ["--add-host=trusted-arg.invalid:192.0.2.9"]\n' >>"$ws/.cagent.yaml"
chown_workspace "$ws"
out=$(run_cagent "$ws" -- cat /etc/hosts </dev/null 2>"$E2E_TMP/err")
err=$(cat "$E2E_TMP/err")
expect_no_match "untrusted: the workspace's extra_args were not applied" "$out" 'trusted-arg\.invalid'
expect_match "untrusted: a warning says the workspace is not trusted" "$err" 'not trusted'
hint=$(sed -n 's/.*to trust it: //p' <<<"$err" | head -n1)
expect_ne "the warning says how to trust it" "$hint" ""
if [[ -n $hint ]]; then
  (cd "$ws" && HOME=$E2E_HOME CAGENT_HOME=$E2E_HOME/.cagent bash -c "$hint") || not_ok "running the hint: $hint"
  out=$(run_cagent "$ws" -- cat /etc/hosts </dev/null 2>"$E2E_TMP/err")
  expect_match "trusted: the workspace's extra_args are applied" "$out" '192\.0\.2\.9[[:space:]]+trusted-arg\.invalid'
  expect_no_match "trusted: no warning" "$(cat "$E2E_TMP/err")" 'not trusted'
fi
finish
