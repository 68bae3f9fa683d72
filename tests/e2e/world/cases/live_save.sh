#!/usr/bin/env bash
# `cagent allow NAME --save` opens the name in the running cage and appends
# it to the workspace .cagent.yaml (comments kept), as the user's approved
# change: the next session allows it without asking. A session-only allow
# (live_allow) is gone next session; this one persists.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
printf '# the team'"'"'s names\ndomains:\n  - "allowed.test"   # our site\n' >"$ws/.cagent.yaml"
chown_workspace "$ws"
cage_bg "$ws" "$(cage_wait_file go); getent hosts denied.test; echo \"getent=\$?\" >/workspace/result"
wait_for "the cage to run" 120 sh -c "[ -n \"\$(docker ps -q --filter label=cagent.e2e.cage=$CAGE_LABEL)\" ]"
container=$(cage_bg_container)
# dnsguard writes its decision record as it starts serving (control socket included).
wait_for "dnsguard to serve" 60 test -e "$E2E_HOME/.cagent/logs/session-${container#cagent-}/decisions.json"
rc=0; out=$(cd "$ws" && cagent_env "$E2E_CAGENT" allow denied.test --save 2>&1) || rc=$?
expect_eq "cagent allow --save exits 0" "$rc" 0
expect_match "it says where it saved" "$out" 'saved to .*\.cagent\.yaml'
expect_eq "the file keeps its comments and gains the name" "$(cat "$ws/.cagent.yaml")" \
  "$(printf '# the team'"'"'s names\ndomains:\n  - "allowed.test"   # our site\n  - "denied.test"')"
touch "$ws/go"
wait_cage_bg 120
expect_match "the running cage resolves it" "$(cat "$ws/result" 2>/dev/null)" 'getent=0'
expect_match "at its end, cagent says the changed file is the user's approved edit" "$(cat "$E2E_TMP/bg.err")" \
  'changed .*\.cagent\.yaml and you approved the new content'
# Between sessions (no cage running for the workspace): a session-only
# allow has nothing to act on and refuses, writing nothing (the control);
# --save saves for the next session and says so.
rc=0; out=$(cd "$ws" && cagent_env "$E2E_CAGENT" allow extra.test 2>&1) || rc=$?
expect_eq "no running cage, without --save: exit 2" "$rc" 2
expect_match "no running cage, without --save: says so" "$out" 'no running cage for this workspace'
expect_no_match "…and writes nothing" "$(cat "$ws/.cagent.yaml")" 'extra\.test'
rc=0; out=$(cd "$ws" && cagent_env "$E2E_CAGENT" allow extra.test --save 2>&1) || rc=$?
expect_eq "no running cage, --save: exit 0" "$rc" 0
expect_match "no running cage, --save: says the next session starts with it" "$out" \
  'no running cage for this workspace; the next session starts with it'
expect_match "no running cage, --save: the file gains the name" "$(cat "$ws/.cagent.yaml")" '- "extra\.test"'
out=$(cage "$ws" 'getent hosts denied.test; echo "denied=$?"; getent hosts extra.test; echo "extra=$?"')
expect_match "the next session allows it (the saved file is the user's, no question asked)" "$out" 'denied=0'
expect_match "the next session allows the name saved between sessions" "$out" 'extra=0'
expect_no_match "…and it was not treated as a file the agent may have written" "$(cage_err)" 'may have|ignor'
finish
