#!/usr/bin/env bash
# --print-config prints the merged configuration (default/global + workspace
# + flags, lists appended) and exits without starting a container.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test ws-only.test)
t0=$(date +%s.%N)
rc=0; out=$(run_cagent "$ws" --print-config -d flag-only.test --ignore '*.flagsecret' -r 'flagro/' \
              </dev/null 2>"$E2E_TMP/err") || rc=$?
expect_eq "cagent --print-config exits 0" "$rc" 0
expect_match "shows the workspace's domains" "$out" 'ws-only\.test'
expect_match "shows the -d domain" "$out" 'flag-only\.test'
expect_match "shows a default domain (global layer kept)" "$out" 'api\.anthropic\.com'
expect_match "shows the --ignore pattern" "$out" '\*\.flagsecret'
expect_match "shows the -r pattern" "$out" 'flagro/'
expect_match "shows dns_resolvers from the global config" "$out" "$DNS4"
expect_match "shows the --arg" "$out" "--network=$NET"
expect_eq "no container was created" "$(containers_created_since "$t0")" ""
# Control: the same flags without --print-config start a container, and the
# same containers_created_since sees it.
t1=$(date +%s.%N)
rc=0; out=$(run_cagent "$ws" -d flag-only.test --ignore '*.flagsecret' -r 'flagro/' -- echo print-config-control \
              </dev/null 2>"$E2E_TMP/err") || rc=$?
expect_eq "control: without --print-config cagent exits 0" "$rc" 0
expect_match "control: …and the command ran" "$out" 'print-config-control'
expect_match "control: containers_created_since sees the container it created" \
  "$(containers_created_since "$t1")" '^cagent-'
finish
