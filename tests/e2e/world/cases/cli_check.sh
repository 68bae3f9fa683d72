#!/usr/bin/env bash
# `cagent check` proves the enforcement in a throwaway cage: every row
# passes in a normal cage (and the name it denied never reached the world's
# DNS server); with the connection gate turned off by the trusted config the
# gate's row says "off" and the command fails; an allowed name that does
# not resolve fails the row that names it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# cagent check with the world's session options, in WS; stdout to stdout,
# stderr to $E2E_TMP/check.err; sets CHECK_RC.
check() {
  local ws=$1; shift
  local accept; accept=$(accept_tests_config "$ws")
  CHECK_RC=0
  (cd "$ws" && cagent_env timeout --kill-after=10 180 "$E2E_CAGENT" check --no-update ${accept:+"$accept"} \
      --arg="--network=$NET" --arg="--label=cagent.e2e.run=$RUN_ID" "$@") </dev/null 2>"$E2E_TMP/check.err" ||
    CHECK_RC=$?
  return 0
}

ws=$(new_workspace allowed.test)
printf 'API_KEY=s3cret\n' >"$ws/.env"
chown_workspace "$ws"
# Without --name it takes the allowlist's first exact name: the default
# config's (api.anthropic.com), which the world does not serve.
out=$(check "$ws"; echo "rc=$CHECK_RC")
expect_match "no --name: the first exact name of the allowlist" "$out" 'an allowed name resolves +api\.anthropic\.com'
out=$(check "$ws" --name allowed.test; echo "rc=$CHECK_RC")
printf '%s\n' "$out"
expect_match "exit 0" "$out" 'rc=0'
for row in "the agent holds no privilege" "an allowed name resolves" "an allowed name connects" \
  "a name not allowed does not resolve" "DNS sent to another resolver: dnsguard answers" \
  "an address nobody resolved is refused at once" "another site on the allowed address is refused" \
  "ignored: \\.env" "a name not allowed is never forwarded" "inbound: nothing from outside gets in" \
  "inbound: the host cannot connect in"; do
  expect_match "passes: $row" "$out" "pass  $row"
done
expect_match "it says every check passed" "$out" 'every check passed'
expect_no_match "the denied name never reached the world's DNS server" "$(dns_log)" 'cagent-check-'
expect_match "…which did see the allowed name (the control)" "$(dns_log)" 'allowed\.test'
expect_eq "the ignored file is untouched" "$(cat "$ws/.env")" "API_KEY=s3cret"
expect_eq "no cage left behind" "$(session_containers | wc -l)" 0

# Broken on purpose: the gate off in the trusted (global) config.
printf 'connection_gate: false\n' >>"$E2E_HOME/.cagent/config.yaml"
E2E_EXIT_HOOKS+=("sed -i '/^connection_gate: false\$/d' '$E2E_HOME/.cagent/config.yaml'")
out=$(check "$ws" --name allowed.test; echo "rc=$CHECK_RC")
sed -i '/^connection_gate: false$/d' "$E2E_HOME/.cagent/config.yaml"
expect_match "gate off: exit 1" "$out" 'rc=1'
expect_match "gate off: its row says off, not pass" "$out" 'off   another site on the allowed address is refused +the connection gate is off'
expect_match "gate off: the other rows still pass (the control)" "$out" 'pass  an allowed name connects'
expect_match "gate off: the summary counts it" "$out" '1 check did not pass'

# An allowed name that does not resolve: that row fails, and says which name.
out=$(check "$ws" -d nowhere.test --name nowhere.test; echo "rc=$CHECK_RC")
expect_match "unresolvable name: exit 1" "$out" 'rc=1'
expect_match "unresolvable name: the resolve row fails, naming it" "$out" 'fail  an allowed name resolves +nowhere\.test: no address'
expect_match "unresolvable name: the denial rows still pass" "$out" 'pass  a name not allowed does not resolve'
# A name the configuration does not allow: refused before any cage starts.
out=$(check "$ws" --name denied.test; echo "rc=$CHECK_RC")
expect_match "--name not allowed: exit 2" "$out" 'rc=2'
expect_match "--name not allowed: one line saying so" "$(cat "$E2E_TMP/check.err")" 'denied\.test is not allowed'
finish
