#!/usr/bin/env bash
# Learn mode, from first run to saved allowlist: the same command fails in a
# normal cage (control), succeeds under `cagent --learn` (still through the
# gate, name-bound; a metadata address still never reachable), which ends
# with a proposal that folds a.wild.test + deep.b.wild.test into
# *.wild.test but keeps one.github.io and two.github.io apart (github.io is
# a public suffix); `cagent ps` marks the session; `cagent allow --save
# --from-learned` saves the proposal, and the same command then succeeds
# without --learn. A workspace file's `learn: true` is ignored.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# Each of the four names over HTTP: "NAME=<body>" (empty body: it failed).
probe='for n in a.wild.test deep.b.wild.test one.github.io two.github.io; do
  echo "$n=$(curl -sS -m 10 http://$n/ 2>/dev/null)"; done'
all_four() {  # DESC OUTPUT — every name reached web12
  local n
  for n in a.wild.test deep.b.wild.test one.github.io two.github.io; do
    expect_match "$1: $n" "$2" "${n//./\\.}=cagent-e2e web12"
  done
}

ws=$(new_workspace allowed.test)

# Control: without --learn (and before saving) the command fails.
out=$(cage "$ws" "$probe; echo \"allowed=\$(curl -sS -m 10 http://allowed.test/)\"")
expect_match "control: an allowed name is reachable in a normal cage" "$out" 'allowed=cagent-e2e web10'
expect_no_match "control: without --learn none of the four names is reachable" "$out" '=cagent-e2e web12'

# The learn session, in the background so `cagent ps` can see it.
CAGE_LABEL=$E2E_NAME-$$-$RANDOM
run_cagent "$ws" --learn --arg="--label=cagent.e2e.cage=$CAGE_LABEL" -- sh -c "$(cage_wait_file go)
  $probe
  getent hosts metadata.learn.test; echo \"metadata=\$?\"
  curl -sS -m 10 -o /dev/null -H 'Host: never-resolved.test' http://a.wild.test/; echo \"other-host=\$?\"" \
  </dev/null >"$E2E_TMP/bg.out" 2>"$E2E_TMP/bg.err" &
CAGE_PID=$!
E2E_EXIT_HOOKS+=("kill $CAGE_PID 2>/dev/null")
wait_for "the learn cage to run" 120 sh -c "[ -n \"\$(docker ps -q --filter label=cagent.e2e.cage=$CAGE_LABEL)\" ]"
container=$(cage_bg_container)
ps_out=$(cd "$ws" && cagent_env "$E2E_CAGENT" ps 2>&1)
expect_match "cagent ps marks the learn session" "$ps_out" "${container#cagent-} .* LEARN  "
ps_json=$(cd "$ws" && cagent_env "$E2E_CAGENT" ps --json 2>/dev/null)
expect_match "cagent ps --json says learn: true" "$ps_json" "\"session\":\"${container#cagent-}\".*\"learn\":true"
touch "$ws/go"
wait_cage_bg 180
out=$(cat "$E2E_TMP/bg.out")
err=$(cat "$E2E_TMP/bg.err")
printf '%s\n' "$err" >&2
expect_eq "the learn session exits 0" "$CAGE_RC" 0
all_four "under --learn the command succeeds" "$out"
expect_match "a metadata address still never resolves under --learn" "$out" 'metadata=2'
expect_match "the gate still binds Host to the name that resolved (another Host on that address is refused)" \
  "$out" 'other-host=(52|56|7)'
expect_match "a loud line at the start" "$err" 'LEARN MODE: every name resolves'
expect_match "a loud line at the end" "$(tail -n 1 <<<"$err")" 'LEARN MODE ended'
expect_match "the proposal folds the siblings below wild.test" "$err" \
  '\*\.wild\.test +×[0-9]+ +\(a\.wild\.test, deep\.b\.wild\.test\)'
expect_match "one.github.io stays an exact name" "$err" 'cagent:   one\.github\.io +×'
expect_match "two.github.io stays an exact name" "$err" 'cagent:   two\.github\.io +×'
expect_no_match "a public suffix is never folded" "$err" '\*\.github\.io|\*\.io|\*\.test'
expect_no_match "a name already allowed is not proposed" "$err" 'cagent:   allowed\.test'
expect_match "it says how to save it" "$err" 'cagent allow --save --from-learned'
expect_no_match "…and nothing of it is in the workspace" "$(ls -A "$ws")" 'learn'

# Save the proposal (reviewed above), then the same command without --learn.
rc=0; save=$(cd "$ws" && cagent_env "$E2E_CAGENT" allow --save --from-learned 2>&1) || rc=$?
printf '%s\n' "$save" >&2
expect_eq "cagent allow --save --from-learned exits 0" "$rc" 0
expect_match "it names what it takes from the learn session" "$save" 'from the last learn session: .*\*\.wild\.test'
expect_match "it saves to the workspace config" "$save" 'saved to .*\.cagent\.yaml'
expect_match "the workspace config gains *.wild.test" "$(cat "$ws/.cagent.yaml")" '"\*\.wild\.test"'
expect_match "…and one.github.io" "$(cat "$ws/.cagent.yaml")" '"one\.github\.io"'
out=$(cage "$ws" "$probe")
expect_eq "the next session (no --learn) exits 0" "$CAGE_RC" 0
all_four "after saving, without --learn the same command succeeds" "$out"
expect_no_match "…and it is not a learn session" "$(cage_err)" 'LEARN MODE'

# A workspace file cannot switch learn mode on (approved, as the test
# wrote it; not trusted): the same command fails as without learn, and
# cagent says why. --from-learned there has no proposal to take.
ws2=$(new_workspace allowed.test)
printf 'learn: true\n' >>"$ws2/.cagent.yaml"
chown_workspace "$ws2"
out=$(cage "$ws2" "$probe; echo \"allowed=\$(curl -sS -m 10 http://allowed.test/)\"")
expect_match "control: the workspace's own config is in force (its allowed name is reachable)" "$out" \
  'allowed=cagent-e2e web10'
expect_no_match "learn: true from a workspace file does not open the four names" "$out" '=cagent-e2e web12'
expect_match "…and cagent says it ignored it" "$(cage_err)" 'ignoring learn: true from .*\.cagent\.yaml'
expect_no_match "…and it is no learn session" "$(cage_err)" 'LEARN MODE'
rc=0; save=$(cd "$ws2" && cagent_env "$E2E_CAGENT" allow --save --from-learned 2>&1) || rc=$?
expect_eq "no learn session for this workspace: --from-learned exits 2" "$rc" 2
expect_match "…and says so" "$save" 'no learn session proposal for this workspace'
expect_no_match "…and saves nothing" "$(cat "$ws2/.cagent.yaml")" 'wild'
finish
